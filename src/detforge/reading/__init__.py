"""Reading: text recognition inside detected boxes (after detection, before writers and the service).

`Reader` is the one-method interface (`read(image, boxes) -> TextReads`); `ReadSettings` the validated
settings stored with a model.
"""

from detforge.reading.base import Reader, TextRead
from detforge.reading.build import build_reader
from detforge.reading.settings import RECOGNIZERS, ReadSettings, load_lexicon

__all__ = ["RECOGNIZERS", "ReadSettings", "Reader", "TextRead", "build_reader", "load_lexicon"]
