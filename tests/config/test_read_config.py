"""The `read` section and `data.text_attribute`: parsing, validation, suggestions, paths, automatic choices."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detforge.config import Config, ReadConfig, auto_config, default_config_yaml, dump_config, load_config
from detforge.config.auto_read import allow_list, auto_pattern, transcriptions_by_class
from detforge.data.dataset import Dataset
from detforge.errors import ConfigError
from detforge.reading import ReadSettings
from detforge.structures import Annotation, Categories, ImageRecord


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_reading_stage() -> None:
    read = Config().read
    assert (read.enabled, read.classes, read.allow, read.pattern, read.lexicon) == ("auto", None, "auto", "auto", None)
    assert (read.min_score, read.target_precision, read.recognizer) == ("auto", 0.98, "ppocr")
    assert read.padding == ReadSettings().padding  # one default for the crop padding
    assert Config().data.text_attribute is None


def test_yaml_section_is_parsed_and_lexicon_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "numbers.txt").write_text("3.14\n3.15\n", encoding="utf-8")
    path = _write(
        tmp_path,
        "data:\n  text_attribute: number\nread:\n  enabled: true\n  classes: [task_number]\n  allow: '0123456789.'\n"
        "  pattern: '\\d+\\.\\d+'\n  lexicon: numbers.txt\n  padding: 0.3\n  min_score: 0.7\n"
        "  target_precision: 0.9\n  recognizer: tesseract\n",
    )
    config = load_config(path)
    read = config.read
    assert config.data.text_attribute == "number"
    assert read.enabled is True and read.classes == ("task_number",) and read.allow == "0123456789."
    assert read.pattern == r"\d+\.\d+" and read.lexicon == (tmp_path / "numbers.txt").resolve()
    assert (read.padding, read.min_score, read.target_precision, read.recognizer) == (0.3, 0.7, 0.9, "tesseract")
    assert load_config(_write(tmp_path, dump_config(config))) == config  # what a run saves reads back the same


def test_relative_lexicon_override_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, ["read.lexicon=words.txt"]).read.lexicon == tmp_path / "words.txt"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("read.pattern='[0-9'", "invalid value for 'read.pattern': '[0-9'"),
        ("read.pattern='[0-9'", "not a valid regular expression"),
        ("read.min_score=1.5", "expected auto or a number in [0, 1]"),
        ("read.min_score=often", "invalid value for 'read.min_score': 'often'"),
        ("read.enabled=sometimes", "invalid value for 'read.enabled'"),
        ("read.classes=[]", "expected a list of class names"),
        ("read.classes=[a,a]", "class names listed twice: ['a']"),
        ("read.allow=' '", "expected auto, null, or the allowed characters"),
        ("read.allow=1234", "YAML read this as the number 1234; quote the characters"),
        ("read.padding=3", "invalid value for 'read.padding': 3"),
        ("read.target_precision=0", "invalid value for 'read.target_precision'"),
        ("read.recognizer=easyocr", "expected 'ppocr' or 'tesseract'"),
        ("data.text_attribute=''", "invalid value for 'data.text_attribute'"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value) and f"(override {override!r})" in str(info.value)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("read.allowlist", "read.allow"),
        ("read.whitelist", "read.allow"),
        ("read.regex", "read.pattern"),
        ("read.vocabulary", "read.lexicon"),
        ("read.min_conf", "read.min_score"),
        ("read.text_threshold", "read.min_score"),
        ("read.enable", "read.enabled"),
        ("read.recogniser", "read.recognizer"),
        ("data.min_score", "read.min_score"),  # right key, wrong section
        ("read.text_attribute", "data.text_attribute"),
        ("reading.enabled", "read.enabled"),  # misspelt section
        ("data.text_attr", "data.text_attribute"),
    ],
)
def test_unknown_keys_suggest_the_right_one(key: str, suggestion: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown key '{key}'.*did you mean '{suggestion}'"):
        load_config(None, [f"{key}=1"])


def test_config_show_lists_the_read_keys_with_defaults(tmp_path: Path) -> None:
    text = default_config_yaml()
    section = text[text.index("\nread:") :]
    for line in (
        "  enabled: auto  #",
        "  classes: null  #",
        "  allow: auto  #",
        "  pattern: auto  #",
        "  lexicon: null  #",
        "  padding: 0.05  #",
        "  min_score: auto  #",
        "  target_precision: 0.98  #",
        "  recognizer: ppocr  #",
    ):
        assert line in section
    assert "  text_attribute: null  #" in text
    assert load_config(_write(tmp_path, text)) == Config()


def test_a_config_file_with_only_a_read_section_is_a_config(tmp_path: Path) -> None:
    from detforge.api.train import _is_config_file

    assert _is_config_file(_write(tmp_path, "read:\n  enabled: false\n"))


# --- automatic choices -------------------------------------------------------------------------------


def _dataset(texts: dict[str, list[str | None]], *, n_val: int = 2) -> Dataset:
    """One train image per text (class given by the dict key) plus `n_val` val images without text."""
    names = list(texts) + (["other"] if "other" not in texts else [])
    categories = Categories.from_names(names)
    images, anns = [], []
    items = [(name, text) for name, values in texts.items() for text in values]
    for i, (name, text) in enumerate(items, start=1):
        images.append(ImageRecord(i, f"{i}.jpg", Path(f"/nowhere/{i}.jpg"), 640, 480, "train"))
        anns.append(Annotation(i, i, categories.by_name(name).id, (10.0, 10.0, 50.0, 40.0), text=text))
    for j in range(n_val):
        k = len(items) + j + 1
        images.append(ImageRecord(k, f"{k}.jpg", Path(f"/nowhere/{k}.jpg"), 640, 480, "val"))
    return Dataset(tuple(images), tuple(anns), categories, Path("/nowhere"), "coco")


def _by_key(reasons: list[str]) -> dict[str, str]:
    return {line.split(" = ")[0]: line for line in reasons}


def test_transcriptions_turn_reading_on_with_their_classes_and_characters() -> None:
    data = _dataset({"task_number": ["3.14", " 2. 7 ", "１２", None, "  "], "page": [None], "other": []})
    assert transcriptions_by_class(data) == {"task_number": ["3.14", "2.7", "12"]}  # normalised, empty left out
    config, reasons = auto_config(data, device="cpu", cpu_count=2)
    read = config.read
    assert read.enabled is True and read.classes == ("task_number",)
    assert read.allow == ").0123456789:"  # '.', 1, 2, 3, 4, 7 seen; every digit added; the pattern's delimiters
    assert read.pattern == r"[\.\):]*(?P<value>[0-9\.]{2,5}?)[\.\):]*"  # lengths 2..4 (+1), inner '.' kept
    assert read.min_score == "auto"  # calibrated after training, not here
    assert config.data.flip is False
    by_key = _by_key(reasons)
    assert "3 training boxes have transcriptions" in by_key["read.enabled"]
    assert "task_number (3)" in by_key["read.classes"]
    assert "3 training transcriptions, and every digit, and the delimiters '):'" in by_key["read.allow"]
    assert "lengths (2..4, +1) of 3 training transcriptions" in by_key["read.pattern"]
    assert "mirrored" in by_key["data.flip"]


def test_allow_list_keeps_letters_and_completes_digits_only_when_digits_occur() -> None:
    assert allow_list(["AB", "ba"]) == ("ABab", False)
    assert allow_list(["0123456789"]) == ("0123456789", False)
    assert allow_list(["x1"]) == ("0123456789x", True)


def _value(pattern: str, text: str) -> str | None:
    match = re.fullmatch(pattern, text)
    return None if match is None else match.group("value")


def test_auto_pattern_strips_surrounding_delimiters_and_keeps_inner_ones() -> None:
    auto = auto_pattern(["12", "3", "99"])
    assert auto is not None
    pattern, stripped = auto
    assert pattern == r"[\.\):]*(?P<value>[0-9]{1,3}?)[\.\):]*" and stripped == ").:"
    assert [_value(pattern, t) for t in ("12.", "12)", "3:", ":7.", "100", "12", "1234", "1.2", "")] == [
        "12",
        "12",
        "3",
        "7",
        "100",
        "12",
        None,
        None,
        None,
    ]  # lengths 1..3, no inner '.'
    decimals, _ = auto_pattern(["3.14", "2.7"]) or ("", "")
    assert [_value(decimals, t) for t in ("3.14.", "3.14", "2.7)", "31.4", "3.1.4.")] == [
        "3.14",
        "3.14",
        "2.7",
        "31.4",
        "3.1.4",
    ]  # only the trailing '.' is stripped


def test_auto_pattern_keeps_a_delimiter_the_values_start_or_end_with() -> None:
    pattern, stripped = auto_pattern(["12)", "4)"]) or ("", "")
    assert stripped == ").:"  # ')' still stripped in front, kept at the end
    assert _value(pattern, "12).") == "12)" and _value(pattern, ")4)") == "4)"
    pattern, _ = auto_pattern([".5", "A-1"]) or ("", "")
    assert _value(pattern, ".5.") == ".5" and _value(pattern, "A-1:") == "A-1"  # '-' escaped in the class
    assert auto_pattern([]) is None and auto_pattern([""]) is None


def test_a_lexicon_leaves_no_automatic_pattern(tmp_path: Path) -> None:
    (tmp_path / "values.txt").write_text("1\n2\n", encoding="utf-8")
    base = load_config(None, [f"read.lexicon={tmp_path / 'values.txt'}"])
    config, reasons = auto_config(_dataset({"n": ["1"]}), device="cpu", cpu_count=2, base=base)
    assert config.read.pattern is None and "lexicon" in _by_key(reasons)["read.pattern"]
    assert config.read.allow == "0123456789"  # no delimiters to strip: none added


def test_no_transcriptions_keep_reading_off_and_flips_on() -> None:
    config, reasons = auto_config(_dataset({"digit": [None, None]}), device="cpu", cpu_count=2)
    assert config.read.enabled is False and config.read.classes is None and config.read.allow == "auto"
    assert config.data.flip is True
    assert "no training box has a transcription" in _by_key(reasons)["read.enabled"]


def test_forced_reading_without_transcriptions_reads_every_class_with_any_character() -> None:
    base = load_config(None, ["read.enabled=true"])
    config, reasons = auto_config(_dataset({"digit": [None]}), device="cpu", cpu_count=2, base=base)
    assert config.read.enabled is True and config.read.classes is None and config.read.allow is None
    assert "read.enabled" not in _by_key(reasons)  # the user's value, not a choice
    assert "any character" in _by_key(reasons)["read.allow"]
    assert config.read.pattern is None and "any value" in _by_key(reasons)["read.pattern"]


def test_explicit_read_keys_are_kept_and_auto_is_still_resolved() -> None:
    data = _dataset({"task_number": ["3.14"], "page": ["A"]})
    base = load_config(None, ["read.enabled=auto", "read.classes=[page]", "read.allow='0123456789.'", "data.flip=true"])
    config, reasons = auto_config(data, device="cpu", cpu_count=2, base=base)
    assert config.read.enabled is True  # "auto" given explicitly is still a choice to make
    assert config.read.classes == ("page",) and config.read.allow == "0123456789." and config.data.flip is True
    assert not {"read.classes", "read.allow", "data.flip"} & set(_by_key(reasons))
    off, _ = auto_config(data, device="cpu", cpu_count=2, base=load_config(None, ["read.enabled=false"]))
    assert off.read.enabled is False and off.read.classes is None and off.data.flip is True
    # the allow-list follows the classes read
    only_page, _ = auto_config(data, device="cpu", cpu_count=2, base=load_config(None, ["read.classes=[page]"]))
    assert only_page.read.allow == ").:A"
    # a pattern the user gives wins, and the allow-list then takes no delimiters
    own, reasons = auto_config(data, device="cpu", cpu_count=2, base=load_config(None, ["read.pattern='[0-9.]+'"]))
    assert own.read.pattern == "[0-9.]+" and own.read.allow == ".0123456789A" and "read.pattern" not in _by_key(reasons)


def test_unknown_read_class_is_a_config_error() -> None:
    base = load_config(None, ["read.classes=[task_numbr]"])
    with pytest.raises(ConfigError, match=r"read.classes: unknown class names \['task_numbr'\].*'task_number'"):
        auto_config(_dataset({"task_number": ["1"]}), device="cpu", cpu_count=2, base=base)


def test_read_config_section_is_frozen_and_closed() -> None:
    with pytest.raises(ValueError, match="extra"):
        ReadConfig.model_validate({"allowlist": "01"})
    read = ReadConfig()
    with pytest.raises(ValueError):
        read.enabled = True  # type: ignore[misc]
