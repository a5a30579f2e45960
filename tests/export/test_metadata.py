import json

import pytest

from detforge.export import METADATA_KEYS, ExportError, ExportMetadata


def _meta(**changes: object) -> ExportMetadata:
    values: dict[str, object] = {
        "model_name": "fasterrcnn_mobilenet_v2_fpn",
        "class_names": ("cat", "dog"),
        "category_ids": (3, 7),
        "min_size": 64,
        "max_size": 96,
        "score_threshold": 0.25,
        "detection_score_thresh": 0.05,
        "nms_thresh": 0.5,
        "detections_per_img": 100,
        "has_masks": False,
        "detforge_version": "0.1.0",
        "format": "onnx",
    }
    values.update(changes)
    return ExportMetadata(**values)  # type: ignore[arg-type]


def test_props_are_json_strings_and_round_trip() -> None:
    meta = _meta()
    props = meta.to_props()
    assert set(props) == set(METADATA_KEYS) | {"detforge.read", "detforge.score_threshold_calibrated"}
    assert json.loads(props["detforge.read"]) is None
    assert json.loads(props["detforge.class_names"]) == ["cat", "dog"]
    assert json.loads(props["detforge.category_ids"]) == [3, 7]
    assert json.loads(props["detforge.score_threshold"]) == 0.25
    assert ExportMetadata.from_props({**props, "other": "x"}, where="m.onnx") == meta
    assert ExportMetadata.from_json(meta.to_json(), where="m.ts") == meta
    assert meta.num_classes == 2


def test_read_settings_round_trip_and_old_files_without_them_load() -> None:
    from detforge.reading import ReadSettings

    read = ReadSettings(classes=("cat",), allow="0123456789.", pattern=r"\d+(\.\d+)?", lexicon=("1", "2.5"))
    meta = _meta(read=read)
    back = ExportMetadata.from_props(meta.to_props(), where="m.onnx")
    assert back.read == read
    old = {k: v for k, v in meta.to_props().items() if k != "detforge.read"}  # exported before reading existed
    assert ExportMetadata.from_props(old, where="m.onnx").read is None
    bad = {**meta.to_props(), "detforge.read": json.dumps({"allow": "", "enabled": True})}
    with pytest.raises(ExportError, match=r"m\.onnx.*read\.allow"):
        ExportMetadata.from_props(bad, where="m.onnx")


def test_missing_and_bad_keys_name_the_file_and_key() -> None:
    props = _meta().to_props()
    del props["detforge.class_names"]
    with pytest.raises(ExportError, match=r"m\.onnx.*detforge\.class_names.*missing"):
        ExportMetadata.from_props(props, where="m.onnx")
    bad = {**_meta().to_props(), "detforge.min_size": "{not json"}
    with pytest.raises(ExportError, match=r"m\.onnx: metadata detforge\.min_size"):
        ExportMetadata.from_props(bad, where="m.onnx")
    wrong = {**_meta().to_props(), "detforge.category_ids": "[3]"}
    with pytest.raises(ExportError, match="category_ids: expected 2 distinct integers"):
        ExportMetadata.from_props(wrong, where="m.onnx")


@pytest.mark.parametrize(
    ("field", "value"),
    [("score_threshold", 1.5), ("min_size", 0), ("format", "tflite"), ("detections_per_img", 0), ("class_names", ())],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        _meta(**{field: value})
