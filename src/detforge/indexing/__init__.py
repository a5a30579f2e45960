"""Indexing photos (a folder, a glob or a list of paths): the values read on each photo in reading order, a
status per photo, the index files (CSV, JSON), resumable runs, and copies sorted into folders by value
(`detforge index`)."""

from detforge.indexing.order import estimate_skew, group_lines, reading_order
from detforge.indexing.outputs import INDEX_CSV, INDEX_JSON, write_index
from detforge.indexing.pages import IndexSettings, page_record
from detforge.indexing.photo_listing import PhotoListing, list_photos
from detforge.indexing.record_log import RECORDS_FILE, RecordLog
from detforge.indexing.records import STATUSES, FileKey, FoundBox, PageRecord, Status
from detforge.indexing.run import IndexSummary, PredictsMany, run_index
from detforge.indexing.sort import NOTHING_FOLDER, REVIEW_FOLDER, SortSummary, folder_name, sort_photos

__all__ = [
    "INDEX_CSV",
    "INDEX_JSON",
    "NOTHING_FOLDER",
    "RECORDS_FILE",
    "REVIEW_FOLDER",
    "STATUSES",
    "FileKey",
    "FoundBox",
    "IndexSettings",
    "IndexSummary",
    "PageRecord",
    "PhotoListing",
    "PredictsMany",
    "RecordLog",
    "SortSummary",
    "Status",
    "estimate_skew",
    "folder_name",
    "group_lines",
    "list_photos",
    "page_record",
    "reading_order",
    "run_index",
    "sort_photos",
    "write_index",
]
