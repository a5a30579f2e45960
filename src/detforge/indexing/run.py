"""An index run over a folder of photos: list the photos, skip those already recorded, predict and read the
rest (progress bar), record each photo as soon as it is done, then rebuild the index files and sort."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from detforge.errors import ConfigError
from detforge.fileio import remove_partial_writes
from detforge.indexing.folder import open_index_folder
from detforge.indexing.outputs import write_index
from detforge.indexing.pages import IndexSettings, page_record
from detforge.indexing.photo_listing import is_folder_source, list_photos
from detforge.indexing.record_log import RECORDS_FILE, RecordLog
from detforge.indexing.records import STATUSES, FileKey, PageRecord
from detforge.indexing.sort import SortSummary, sort_photos
from detforge.inference.predictor import PredictionResult
from detforge.inference.sources import ImageSource
from detforge.progress import progress_enabled

__all__ = ["IndexSummary", "PredictsMany", "run_index"]

log = logging.getLogger(__name__)


class PredictsMany(Protocol):
    """What an index run needs of a predictor (`detforge.inference.Predictor` has it): one PredictionResult
    per source, in order, with the text read in the boxes, an unreadable photo reported, not raised."""

    def predict_many(
        self, sources: Iterable[ImageSource], *, on_error: Literal["report", "raise", "skip"] = "report"
    ) -> Iterator[PredictionResult]: ...


@dataclass(frozen=True)
class IndexSummary:
    """The outcome of a run. `counts`: photos per status in the index; `done_now` photos predicted in this
    run, `skipped` photos whose record from an earlier run was reused; `records` the index in file order;
    `index_csv` / `index_json` the files written; `errors` (file, message) of the photos that could not be
    read; `sorted` what `--sort-into` did (None without it)."""

    photos: int
    done_now: int
    skipped: int
    counts: dict[str, int]
    records: tuple[PageRecord, ...] = field(repr=False)
    index_csv: Path
    index_json: Path
    errors: tuple[tuple[str, str], ...] = ()
    sorted: SortSummary | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary (what `detforge index --json` prints)."""
        sort = None
        if self.sorted is not None:
            sort = {
                "copied": self.sorted.copied,
                "kept": self.sorted.kept,
                "folders": list(self.sorted.folders),
                "review_files": [str(p) for p in self.sorted.review_files],
            }
        return {
            "photos": self.photos,
            "done_now": self.done_now,
            "skipped": self.skipped,
            "counts": dict(self.counts),
            "index_csv": str(self.index_csv),
            "index_json": str(self.index_json),
            "errors": [{"file": f, "error": e} for f, e in self.errors],
            "sort_into": sort,
        }


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_folders(photos: Path, out: Path, sort_into: Path | None) -> None:
    if not is_folder_source(photos):  # a glob or a path list: files under out or sort_into are left out
        return
    p, o = photos.resolve(), out.resolve()
    if _inside(p, o):
        raise ConfigError(f"out {out}: the photo folder {photos} is inside it; choose a folder of its own")
    if sort_into is not None:
        s = sort_into.resolve()
        if _inside(p, s) or _inside(s, p):
            raise ConfigError(
                f"sort_into {sort_into}: overlaps the photo folder {photos}; choose a folder outside it "
                "(photos are copied, never moved)"
            )


def _progress(total: int, progress: bool) -> tqdm[None]:
    disable = not progress_enabled(progress)
    return tqdm(total=total, desc="index", unit="photo", file=sys.stderr, disable=disable, dynamic_ncols=True)


def run_index(
    predictor: PredictsMany,
    photos: str | Path,
    out: str | Path,
    settings: IndexSettings,
    *,
    sort_into: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> IndexSummary:
    """Index the photos of `photos` (a folder, a glob pattern or a `.txt` list of paths: `list_photos`) into
    `out` (see docs/index.md).

    Photos recorded in `out/records.jsonl` with the same relative path, size, modification time and
    settings fingerprint are skipped; the others (new, changed, or an error last time) go through
    `predictor.predict_many` and each is recorded as soon as its result arrives. Then `out/index.csv` and
    `out/index.json` are rebuilt from the records of the photos present now, in relative-path order, and
    with `sort_into` the photos are copied into folders by value. The photos are only ever read.
    `out` must be new, empty or this photo folder's index (see `open_index_folder`; `overwrite` clears it).
    `progress`: a tqdm bar on stderr (shown only when stderr is a terminal).
    """
    photos, out = Path(photos), Path(out)
    sort_dir = None if sort_into is None else Path(sort_into)
    _check_folders(photos, out, sort_dir)
    found = list_photos(photos, exclude=[out, *([] if sort_dir is None else [sort_dir])])
    listing = found.photos
    open_index_folder(out, photos, overwrite=overwrite, inputs=(photos,))
    remove_partial_writes(out)
    record_log = RecordLog(out / RECORDS_FILE)
    known = record_log.load()
    current: dict[str, PageRecord] = {}
    todo: list[tuple[ImageSource, FileKey]] = []
    for source, key in listing:
        old = known.get(key.file)
        if old is not None and old.key == key and old.status != "error" and old.settings == settings.fingerprint:
            current[key.file] = old
        else:
            todo.append((source, key))
    skipped = len(current)
    if skipped:
        log.info("%d of %d photos already indexed in %s; %d to do", skipped, len(listing), out, len(todo))
    keys = {source.name: key for source, key in todo}
    with (
        record_log,
        _progress(len(todo), progress) as bar,
        logging_redirect_tqdm() if not bar.disable else nullcontext(),
    ):
        for result in predictor.predict_many((source for source, _ in todo), on_error="report"):
            record = page_record(result, keys[result.source], settings)
            record_log.append([record])
            current[record.file] = record
            bar.update(1)
    records = tuple(current[key.file] for _, key in listing if key.file in current)
    csv_path, json_path = write_index(records, out, source=str(photos), min_score=settings.min_score)
    counts: dict[str, int] = {status: sum(r.status == status for r in records) for status in STATUSES}
    errors = tuple((r.file, r.error or "") for r in records if r.status == "error")
    sorted_summary = None if sort_dir is None else sort_photos(records, found.base, sort_dir, settings.class_names)
    return IndexSummary(
        photos=len(listing),
        done_now=len(records) - skipped,
        skipped=skipped,
        counts=counts,
        records=records,
        index_csv=csv_path,
        index_json=json_path,
        errors=errors,
        sorted=sorted_summary,
    )
