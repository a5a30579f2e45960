"""Reading the task numbers of the sample dataset: accuracy on ground-truth boxes and ms per crop per runtime.

Data: the bundled sample dataset (`detforge data sample`, seed 0, 240 photos; quick: 60), its test split,
every ground-truth box with its true value (`attributes.text`: the number only, while the box also holds
the '.' or ')' written after it).

The settings `detforge train` derives for the dataset (`auto_config` on its train split: automatic allow-list
and pattern, default padding): exact/CER on the test split and on every split's boxes, AUROC of the text score
(right vs wrong reads), and the threshold calibrated on val at precision 0.98 with its coverage on val and test.

Accuracy (exact match of the normalised value, and character error rate = edit distance / reference length)
for PP-OCRv6 small on ONNX Runtime with
- the peer: plain argmax decoding, 4 px padding, no allow-list (how the system this project grew from read);
- the same with a trailing '.' / ')' deleted afterwards (the peer given the benefit of the doubt);
- detforge decoding: default settings; digits allow-list; + pattern `[1-9][0-9]?`; a lexicon of 1..99;
  the allow-list "0123456789.)" with the pattern `(?P<value>[1-9][0-9]?)[.)]?`;
- Tesseract (`--psm 7`, digits whitelist) where the binary is installed (full run only).

Speed: `PPOCRReader.read` over all test photos (crop, resize, model, decoding), ms per crop, on ONNX Runtime
and OpenVINO, crops batched (16) and one at a time, 2 threads, interleaved after warm-up.

    python benchmarks/bench_reading.py [--quick] [--data DIR] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import SETTLE_S, THREADS, interleaved, machine_info, set_threads, summarize, write_result  # noqa: E402

from detforge.evaluation.text_metrics import edit_distance  # noqa: E402
from detforge.reading import ReadSettings, TextRead  # noqa: E402
from detforge.structures.text import normalize_text  # noqa: E402

Page = tuple[np.ndarray, np.ndarray, list[str]]  # image RGB, boxes [N, 4] XYXY, true values


def load_split(root: Path, split: str = "test") -> list[Page]:
    """Every photo of `split` of a sample dataset with its ground-truth boxes and their true values."""
    from PIL import Image

    coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text(encoding="utf-8"))
    per_image: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        per_image.setdefault(ann["image_id"], []).append(ann)
    pages: list[Page] = []
    for image in coco["images"]:
        anns = per_image.get(image["id"], [])
        if not anns:
            continue
        with Image.open(root / "images" / split / image["file_name"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=np.float32)
        truths = [str((a.get("attributes") or {}).get("text", "")) for a in anns]
        if not all(truths):
            raise SystemExit(f"{root}: annotations without attributes.text; regenerate the sample dataset")
        pages.append((rgb, boxes, truths))
    return pages


def score(reads: Sequence[TextRead], truths: Sequence[str], fix: Callable[[str], str] = lambda s: s) -> dict[str, Any]:
    """Exact-match accuracy of normalised values, character error rate, and a few misreads."""
    got = [normalize_text(fix(r.text)) for r in reads]
    want = [normalize_text(t) for t in truths]
    exact = [g == w for g, w in zip(got, want, strict=True)]
    errors = sum(edit_distance(g, w) for g, w in zip(got, want, strict=True))
    misreads = [f"{w}->{g or '(nothing)'}" for g, w, ok in zip(got, want, exact, strict=True) if not ok]
    return {
        "exact": round(float(np.mean(exact)), 4),
        "cer": round(errors / max(1, sum(len(w) for w in want)), 4),
        "misreads": misreads[:12],
    }


def read_all(reader: Any, pages: Sequence[Page]) -> list[TextRead]:
    return [r for image, boxes, _ in pages for r in reader.read(image, boxes)]


def accuracy(pages: Sequence[Page], *, quick: bool) -> dict[str, Any]:
    from detforge.reading.ppocr import PPOCRReader

    truths = [t for *_, page_truths in pages for t in page_truths]
    lexicon = tuple(str(i) for i in range(1, 100))
    variants: dict[str, ReadSettings] = {
        "detforge_default": ReadSettings(),
        "detforge_digits": ReadSettings(allow="0123456789"),
        "detforge_digits_pattern": ReadSettings(allow="0123456789", pattern="[1-9][0-9]?"),
        "detforge_lexicon_1_99": ReadSettings(lexicon=lexicon),
        "detforge_value_group": ReadSettings(allow="0123456789.)", pattern=r"(?P<value>[1-9][0-9]?)[.)]?"),
    }
    for padding in (0.0, 0.05, 0.3):
        variants[f"detforge_value_group_padding_{padding}"] = ReadSettings(
            allow="0123456789.)", pattern=r"(?P<value>[1-9][0-9]?)[.)]?", padding=padding
        )
    rows: dict[str, Any] = {}
    peer = PPOCRReader(ReadSettings(padding=0.0), runtime="onnxruntime", threads=THREADS)
    # the peer's 4 px: boxes grown by 4 px, no relative padding
    pad4 = [(image, boxes + np.array([-4, -4, 4, 4], dtype=np.float32), t) for image, boxes, t in pages]
    peer_reads = read_all(peer, pad4)
    rows["peer_argmax_4px"] = score(peer_reads, truths)
    rows["peer_argmax_4px_terminator_deleted"] = score(peer_reads, truths, lambda s: s.rstrip(".)"))
    for name, settings in variants.items():
        reader = PPOCRReader(settings, runtime="onnxruntime", threads=THREADS)
        rows[name] = {"settings": settings.to_dict() | {"lexicon": "1..99" if settings.lexicon else None}}
        rows[name].update(score(read_all(reader, pages), truths))
    if not quick and shutil.which("tesseract"):
        from detforge.reading.tesseract import TesseractReader

        start = time.perf_counter()
        reads = read_all(TesseractReader(ReadSettings(allow="0123456789", pattern="[1-9][0-9]?")), pages)
        rows["tesseract_digits_pattern"] = score(reads, truths)
        rows["tesseract_digits_pattern"]["ms_per_crop"] = round((time.perf_counter() - start) * 1000 / len(truths), 1)
    else:
        rows["tesseract_digits_pattern"] = "n/a: quick run or tesseract not installed"
    return rows


def auto_settings(root: Path) -> ReadSettings:
    """The ReadSettings `detforge train` derives for the dataset at `root` (its train split), uncalibrated."""
    from detforge.config import auto_config
    from detforge.data.formats import load_dataset
    from detforge.engine.reading import read_settings_from_config

    config, _ = auto_config(load_dataset(root), device="cpu", cpu_count=THREADS)
    settings = read_settings_from_config(config.read)
    if settings is None:
        raise SystemExit(f"{root}: train derives no reading (no transcriptions)")
    return settings


def automatic(root: Path) -> dict[str, Any]:
    """Exact/CER with the settings `train` derives, on the test split and on every split's boxes, plus how
    well the text score separates right from wrong reads (AUROC) and the coverage at precision 0.98 of the
    threshold calibrated on val."""
    from detforge.evaluation.read_calibration import calibrate_read_threshold
    from detforge.reading.ppocr import PPOCRReader

    settings = auto_settings(root)
    reader = PPOCRReader(settings, runtime="onnxruntime", threads=THREADS)
    out: dict[str, Any] = {"settings": settings.to_dict()}
    by_split: dict[str, tuple[list[TextRead], list[str]]] = {}
    for split in ("train", "val", "test"):
        pages = load_split(root, split)
        by_split[split] = (read_all(reader, pages), [t for *_, ts in pages for t in ts])
    every = ([r for s in by_split.values() for r in s[0]], [t for s in by_split.values() for t in s[1]])
    for name, (reads, truths) in [*by_split.items(), ("all", every)]:
        row = score(reads, truths)
        ok = np.array([normalize_text(r.text) == normalize_text(t) for r, t in zip(reads, truths, strict=True)])
        row["auroc"] = round(_auroc(np.array([r.score for r in reads]), ok), 3)
        out[name] = row
    val_reads, val_truths = by_split["val"]
    val_ok = [normalize_text(r.text) == normalize_text(t) for r, t in zip(val_reads, val_truths, strict=True)]
    cal = calibrate_read_threshold([r.score for r in val_reads], val_ok, 0.98)
    test_reads, test_truths = by_split["test"]
    trusted = [
        (normalize_text(r.text) == normalize_text(t))
        for r, t in zip(test_reads, test_truths, strict=True)
        if r.score >= cal.threshold
    ]
    out["calibration"] = {
        "val": cal.to_dict(),
        "test_coverage": round(len(trusted) / max(1, len(test_reads)), 3),
        "test_precision": round(float(np.mean(trusted)) if trusted else float("nan"), 3),
    }
    return out


def _auroc(scores: np.ndarray, ok: np.ndarray) -> float:
    """P(a right read scores above a wrong one), ties counted half; NaN without both kinds."""
    pos, neg = scores[ok], scores[~ok]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def speed(pages: Sequence[Page], *, quick: bool) -> dict[str, Any]:
    from detforge.errors import DetforgeError
    from detforge.reading.ppocr import PPOCRReader

    settings = ReadSettings(allow="0123456789.)", pattern=r"(?P<value>[1-9][0-9]?)[.)]?")
    crops = sum(len(b) for _, b, _ in pages)
    calls: dict[str, Callable[[], object]] = {}
    notes: dict[str, str] = {}
    for runtime in ("onnxruntime", "openvino"):
        for label, batch in (("batched16", 16), ("one_at_a_time", 1)):
            try:
                reader = PPOCRReader(settings, runtime=runtime, threads=THREADS, batch_size=batch)
            except DetforgeError as exc:
                notes[f"{runtime}_{label}"] = f"n/a: {exc}"
                continue
            calls[f"{runtime}_{label}"] = lambda reader=reader: read_all(reader, pages)
    samples = interleaved(calls, rounds=2 if quick else 4, warmup=1, settle_s=SETTLE_S)
    rows: dict[str, Any] = {}
    for name, times in samples.items():
        t = summarize([s / crops for s in times])
        rows[name] = t.as_ms()
    return {"crops": crops, "threads": THREADS, "ms_per_crop": {**rows, **notes}, "goal_ms_per_crop": 30}


def main(out_dir: Path, *, quick: bool, data: Path | None = None) -> dict[str, Any]:
    """Accuracy and speed of reading on the sample test split; writes `out_dir/reading.json`."""
    from detforge.data.sample.generate import make_sample

    set_threads(THREADS)
    with tempfile.TemporaryDirectory(prefix="bench_reading_") as tmp:
        root = data if data is not None else make_sample(Path(tmp) / "sample", n=60 if quick else 240, seed=0)
        pages = load_split(Path(root))
        auto = automatic(Path(root))
    result: dict[str, Any] = {
        "benchmark": "reading",
        "data": f"sample dataset seed 0, {'60' if quick else '240'} photos, test split ground-truth boxes"
        if data is None
        else str(data),
        "boxes": sum(len(t) for *_, t in pages),
        "goal_exact": 0.95,
        "automatic_settings": auto,
        "accuracy": accuracy(pages, quick=quick),
        "speed": speed(pages, quick=quick),
        "machine": machine_info(with_matmul=False),
    }
    result["rows"] = _rows(result)
    write_result(out_dir, "reading", result)
    return result


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The results.md table: exact reads with the settings `train` derives vs plain argmax, and ms per crop."""
    auto, acc = result["automatic_settings"], result["accuracy"]
    peer = acc["peer_argmax_4px"]
    rows: list[dict[str, Any]] = []
    for split in ("test", "all"):
        got = auto[split]
        rows.append(
            {
                "case": f"exact reads on ground-truth boxes, {split} ({'68' if split == 'test' else 'every'} box(es))",
                "detforge": got["exact"],
                "peer": peer["exact"] if split == "test" else None,
                "unit": "share read exactly",
                "goal": ">= 0.95" if split == "test" else None,
                "meets_goal": got["exact"] >= 0.95 if split == "test" else None,
                "note": f"automatic settings of `detforge train` (allow {auto['settings']['allow']!r}, pattern "
                f"{auto['settings']['pattern']!r}); CER {got['cer']}; peer: plain argmax, 4 px padding, no allow-list",
            }
        )
    for name, cell in result["speed"]["ms_per_crop"].items():
        if isinstance(cell, dict):
            rows.append(
                {
                    "case": f"ms per crop, {name.replace('_', ' ')}",
                    "detforge": cell["median_ms"],
                    "unit": "ms",
                    "ratio_min": cell["min_ms"],
                    "ratio_max": cell["max_ms"],
                    "goal": "<= 30",
                    "meets_goal": cell["median_ms"] <= 30,
                    "note": f"{result['speed']['crops']} test crops, {result['speed']['threads']} threads, "
                    "crops padded to 320 px",
                }
            )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="60 photos, fewer rounds, no Tesseract")
    parser.add_argument("--data", type=Path, default=None, help="an existing sample dataset folder to read")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    cli = parser.parse_args()
    res = main(cli.out, quick=cli.quick, data=cli.data)
    print(f"{res['boxes']} ground-truth boxes")
    auto = res["automatic_settings"]
    print(f"automatic settings: allow {auto['settings']['allow']!r} pattern {auto['settings']['pattern']!r}")
    for split in ("test", "val", "all"):
        row = auto[split]
        print(f"  {split:5s} exact {row['exact']:.3f}  CER {row['cer']:.3f}  AUROC {row['auroc']:.3f}")
    cal = auto["calibration"]
    print(
        f"  val-calibrated threshold {cal['val']['threshold']:.3f}: val coverage {cal['val']['coverage']:.2f}, "
        f"test coverage {cal['test_coverage']:.2f} precision {cal['test_precision']:.3f}"
    )
    for name, row in res["accuracy"].items():
        if isinstance(row, dict):
            print(f"{name:44s} exact {row['exact']:.3f}  CER {row['cer']:.3f}")
        else:
            print(f"{name:44s} {row}")
    for name, row in res["speed"]["ms_per_crop"].items():
        print(f"{name:30s} {row['median_ms'] if isinstance(row, dict) else row} ms/crop")
