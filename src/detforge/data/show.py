"""The label gallery: a random sample of a dataset's images drawn with their annotations.

Writes `images/*.jpg` (each image with its boxes, polygons and, where a COCO mask library is
importable, RLE masks), `gallery.png` (a grid with captions) and `index.html` (every image with
its file name, subset and objects, filterable in the browser by class, subset and problem). Images
that cannot be read are listed, not fatal.
"""

from __future__ import annotations

import html
import importlib
import io
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageDraw

from detforge.data.dataset import Dataset
from detforge.data.images import load_image
from detforge.data.problem_table import FILTER_SCRIPT, FILTER_STYLE, NO_SUBSET, filter_attributes, filter_controls
from detforge.errors import DatasetError, InvalidImage
from detforge.fileio import atomic_write_bytes, atomic_write_text
from detforge.outdir import output_folder
from detforge.structures import RLE, Annotation, ImageRecord, Polygons
from detforge.visualization.draw import draw_boxes, load_font

__all__ = ["GalleryEntry", "mask_decoder", "pick_images", "show_dataset"]

log = logging.getLogger(__name__)

MaskDecoder = Callable[[RLE], np.ndarray]


@dataclass(frozen=True)
class GalleryEntry:
    """One image of the gallery: its record, objects as (class name, count), and what was written.

    `drawn` is the JPEG's path relative to the gallery folder (None if the image was unreadable, then
    `error` says why); `notes` are things worth knowing that did not stop the drawing; `problems` the
    codes of what `data check` finds on this image without opening it (plus `image.unreadable`).
    """

    image: ImageRecord
    objects: tuple[tuple[str, int], ...]
    num_boxes: int
    drawn: str | None
    error: str | None = None
    notes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def pick_images(dataset: Dataset, n: int, seed: int) -> tuple[ImageRecord, ...]:
    """`n` images chosen at random (the same for the same seed and dataset), in dataset order; all if fewer."""
    k = min(n, len(dataset.images))
    chosen = sorted(random.Random(seed).sample(range(len(dataset.images)), k))
    return tuple(dataset.images[i] for i in chosen)


def _decode_with(module: ModuleType, rle: RLE) -> np.ndarray:
    h, w = (int(v) for v in rle.size)
    if isinstance(rle.counts, str):
        obj = {"size": [h, w], "counts": rle.counts.encode("ascii")}
    else:
        obj = module.frPyObjects({"size": [h, w], "counts": [int(c) for c in rle.counts]}, h, w)
    mask = np.asarray(module.decode(obj), dtype=bool)
    return mask.reshape(h, w)


def mask_decoder() -> MaskDecoder | None:
    """An RLE -> [H, W] bool decoder from faster_coco_eval or pycocotools, or None if neither imports."""
    for name in ("faster_coco_eval.core.mask", "pycocotools.mask"):
        try:
            module = importlib.import_module(name)
        except Exception:  # missing, or a binary that does not load here
            continue
        return partial(_decode_with, module)
    return None


def _scaled_polygons(poly: Polygons, sx: float, sy: float) -> Polygons:
    return Polygons(tuple(tuple(v * (sx if j % 2 == 0 else sy) for j, v in enumerate(p)) for p in poly.points))


def _masks(
    anns: tuple[Annotation, ...], size: tuple[int, int], scaled: tuple[int, int], decode: MaskDecoder | None
) -> tuple[np.ndarray | None, list[str]]:
    """[N, h, w] bool masks at the `scaled` (w, h) size for the RLE annotations (None if there are none)."""
    rles = [(i, a) for i, a in enumerate(anns) if isinstance(a.segmentation, RLE)]
    if not rles:
        return None, []
    if decode is None:
        return None, [f"{len(rles)} RLE masks not drawn: install faster-coco-eval or pycocotools to decode them"]
    notes: list[str] = []
    out = np.zeros((len(anns), scaled[1], scaled[0]), dtype=bool)
    for i, ann in rles:
        assert isinstance(ann.segmentation, RLE)
        try:
            mask = decode(ann.segmentation)
        except Exception as exc:  # malformed counts: keep the box, say why the mask is missing
            notes.append(f"annotation {ann.id}: RLE mask could not be decoded ({exc})")
            continue
        if (mask.shape[1], mask.shape[0]) != size:
            notes.append(
                f"annotation {ann.id}: mask is {mask.shape[1]}x{mask.shape[0]}, image is {size[0]}x{size[1]}; "
                "mask not drawn"
            )
            continue
        small = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize(scaled, Image.Resampling.NEAREST)
        out[i] = np.asarray(small) > 127
    return out, notes


def _draw_image(
    dataset: Dataset, record: ImageRecord, max_side: int, decode: MaskDecoder | None
) -> tuple[Image.Image, list[str]]:
    """The record's image at most `max_side` px on its longest side, with its annotations drawn."""
    image = load_image(record.path)
    notes: list[str] = []
    w, h = image.size
    if record.width and record.height and (record.width, record.height) != (w, h):
        notes.append(f"annotations give the size {record.width}x{record.height}, the image is {w}x{h}")
    scale = min(1.0, max_side / max(w, h))
    scaled = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scaled != (w, h):
        image = image.resize(scaled, Image.Resampling.BILINEAR, reducing_gap=2.0)
    sx, sy = scaled[0] / w, scaled[1] / h
    anns = dataset.annotations_of(record.id)
    index = {c.id: i for i, c in enumerate(dataset.categories)}
    names = {c.id: c.name for c in dataset.categories}
    boxes = np.asarray([a.bbox for a in anns], dtype=np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
    labels = [names.get(a.category_id, f"id {a.category_id}") + (" (crowd)" if a.iscrowd else "") for a in anns]
    polygons = [
        _scaled_polygons(a.segmentation, sx, sy) if isinstance(a.segmentation, Polygons) else None for a in anns
    ]
    masks, mask_notes = _masks(anns, (w, h), scaled, decode)
    drawn = draw_boxes(
        image,
        boxes,
        labels,
        class_ids=[index.get(a.category_id, a.category_id) for a in anns],
        polygons=polygons if any(p is not None for p in polygons) else None,
        masks=masks,
    )
    return drawn, notes + mask_notes


def _safe_stem(file_name: str) -> str:
    stem = Path(file_name.replace("\\", "/")).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:40] or "image"


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: object, width: int) -> str:
    if draw.textlength(text, font=font) <= width:  # type: ignore[arg-type]
        return text
    while text and draw.textlength(text + "…", font=font) > width:  # type: ignore[arg-type]
        text = text[:-1]
    return text + "…"


def _grid_shape(count: int) -> tuple[int, int, int]:
    """(columns, rows, tile side in px) of a square-ish grid of `count` cells, at most ~4096 px wide."""
    cols = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / cols))
    return cols, rows, max(96, min(256, 4096 // cols))


def _grid(entries: list[GalleryEntry], thumbs: list[Image.Image | None]) -> Image.Image:
    """A square-ish grid: each cell a thumbnail above a caption (file name, then box count or 'unreadable')."""
    cols, rows, tile = _grid_shape(len(entries))
    font = load_font(max(10, tile // 18))
    line = math.ceil(font.getbbox("Hgy")[3]) + 1
    pad = 4
    cell_h = tile + 2 * line + 3 * pad
    grid = Image.new("RGB", (cols * (tile + pad) + pad, rows * (cell_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for k, (entry, thumb) in enumerate(zip(entries, thumbs, strict=True)):
        x, y = pad + (k % cols) * (tile + pad), pad + (k // cols) * (cell_h + pad)
        draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=(64, 64, 64) if thumb else (230, 230, 230))
        if thumb is not None:
            grid.paste(thumb, (x + (tile - thumb.width) // 2, y + (tile - thumb.height) // 2))
            caption = f"{entry.num_boxes} box" + ("" if entry.num_boxes == 1 else "es")
            color = (40, 40, 40)
        else:
            draw.text((x + tile // 2, y + tile // 2), "unreadable", font=font, fill=(180, 0, 0), anchor="mm")
            caption, color = "unreadable", (180, 0, 0)
        name = _fit_text(draw, entry.image.file_name, font, tile)
        draw.text((x, y + tile + pad), name, font=font, fill=(0, 0, 0))
        draw.text((x, y + tile + line + 2 * pad), caption, font=font, fill=color)
    return grid


def _entry_html(entry: GalleryEntry) -> str:
    e = html.escape
    im = entry.image
    size = f"{im.width}x{im.height}" if im.width and im.height else "unknown size"
    facts = f"<b>{e(im.file_name)}</b><br>subset: {e(im.subset or '(none)')}, {e(size)}, {entry.num_boxes} objects"
    objects = ", ".join(f"{e(name)} &times; {count}" for name, count in entry.objects) or "no objects"
    notes = "".join(f'<li class="note">{e(n)}</li>' for n in entry.notes)
    if entry.drawn is None:
        picture = f'<div class="unreadable">unreadable: {e(entry.error or "unknown reason")}</div>'
    else:
        src = e(entry.drawn, quote=True)
        picture = f'<a href="{src}"><img src="{src}" alt="{e(im.file_name, quote=True)}" loading="lazy"></a>'
    codes = entry.problems + (("image.unreadable",) if entry.drawn is None else ())
    attrs = filter_attributes([name for name, _ in entry.objects], [im.subset or NO_SUBSET], codes)
    found = f'<p class="problems">problems: {e(", ".join(codes))}</p>' if codes else ""
    body = f"{picture}<p>{facts}</p><p>{objects}</p>{found}<ul>{notes}</ul>"
    return f'<section class="item"><span class="filter-data"{attrs}></span>{body}</section>'


def _html(dataset: Dataset, entries: list[GalleryEntry], seed: int, subset: str | None) -> str:
    e = html.escape
    unreadable = sum(1 for x in entries if x.drawn is None)
    where = f" of subset {e(subset)}" if subset is not None else ""
    items = "\n".join(_entry_html(x) for x in entries)
    codes = [c for x in entries for c in x.problems] + (["image.unreadable"] if unreadable else [])
    subsets = [x.image.subset or NO_SUBSET for x in entries]
    controls = filter_controls([c.name for c in dataset.categories], subsets, codes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>detforge label gallery</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.item {{ display: inline-block; vertical-align: top; width: 340px; margin: 0.5em; }}
.item img {{ max-width: 320px; max-height: 320px; }}
.unreadable {{ width: 320px; padding: 1em; background: #fde8e8; color: #a00; overflow-wrap: anywhere; }}
.note {{ color: #8a5a00; }}
.problems {{ color: #a00; }}
{FILTER_STYLE}
</style></head><body>
<h1>Label gallery</h1>
<p>{len(entries)} images{where} of {len(dataset.images)} in {e(str(dataset.root))} ({e(dataset.format)}),
chosen with seed {seed}; {unreadable} unreadable.</p>
<p><a href="gallery.png"><img src="gallery.png" alt="gallery grid" style="max-width: 100%"></a></p>
{controls}
{items}
{FILTER_SCRIPT}
</body></html>
"""


def _problem_codes(dataset: Dataset) -> dict[int, tuple[str, ...]]:
    """Image id -> sorted codes of the problems `data check` finds on it without opening images."""
    from detforge.data.check import check_dataset

    codes: dict[int, set[str]] = {}
    for p in check_dataset(dataset, images=False, leakage=False).problems:
        if p.image_id is not None:
            codes.setdefault(p.image_id, set()).add(p.code)
    return {k: tuple(sorted(v)) for k, v in codes.items()}


def show_dataset(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    n: int = 16,
    seed: int = 0,
    subset: str | None = None,
    max_side: int = 640,
    overwrite: bool = False,
) -> Path:
    """Draw `n` randomly chosen images (deterministic for `seed`; all if fewer) with their annotations.

    Writes `out_dir/images/NNN_<name>.jpg` (longest side <= `max_side` px), `out_dir/gallery.png`
    and `out_dir/index.html`, and returns the HTML path. `subset` limits the choice to one subset
    (DatasetError naming the known subsets if absent). `out_dir` must be new, empty or an earlier gallery,
    which is replaced as a whole (`overwrite` replaces any folder; see `detforge.outdir`).
    """
    inputs = sorted({im.path.parent for im in dataset.images})
    with output_folder(out_dir, "data show", overwrite=overwrite, inputs=inputs) as folder:
        html = _draw_gallery(dataset, folder, n=n, seed=seed, subset=subset, max_side=max_side)
    return Path(out_dir) / html.relative_to(folder)


def _draw_gallery(dataset: Dataset, out_dir: Path, *, n: int, seed: int, subset: str | None, max_side: int) -> Path:
    """`show_dataset`'s drawing into the empty folder `out_dir`."""
    if n < 1:
        raise ValueError(f"show_dataset: n must be >= 1, got {n}")
    if max_side < 16:
        raise ValueError(f"show_dataset: max_side must be >= 16 pixels, got {max_side}")
    if subset is not None:
        try:
            dataset = dataset.subset(subset)
        except KeyError as exc:
            raise DatasetError(str(exc.args[0])) from None
    out = Path(out_dir)
    decode = mask_decoder()
    names = {c.id: c.name for c in dataset.categories}
    found = _problem_codes(dataset)
    entries: list[GalleryEntry] = []
    thumbs: list[Image.Image | None] = []
    picked = pick_images(dataset, n, seed)
    tile = _grid_shape(len(picked))[2]
    for k, record in enumerate(picked):
        anns = dataset.annotations_of(record.id)
        counts = Counter(names.get(a.category_id, f"id {a.category_id}") for a in anns)
        objects = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        try:
            drawn, notes = _draw_image(dataset, record, max_side, decode)
        except InvalidImage as exc:
            log.warning("gallery: skipping unreadable image %s: %s", record.file_name, exc)
            entries.append(GalleryEntry(record, objects, len(anns), None, str(exc), problems=found.get(record.id, ())))
            thumbs.append(None)
            continue
        rel = f"images/{k:03d}_{_safe_stem(record.file_name)}.jpg"
        buf = io.BytesIO()
        drawn.save(buf, format="JPEG", quality=92, subsampling=0)  # 4:4:4 keeps thin coloured lines
        atomic_write_bytes(out / rel, buf.getvalue())
        entries.append(GalleryEntry(record, objects, len(anns), rel, None, tuple(notes), found.get(record.id, ())))
        drawn.thumbnail((tile, tile), Image.Resampling.BILINEAR)
        thumbs.append(drawn)
    buf = io.BytesIO()
    _grid(entries, thumbs).save(buf, format="PNG")
    atomic_write_bytes(out / "gallery.png", buf.getvalue())
    return atomic_write_text(out / "index.html", _html(dataset, entries, seed, subset))
