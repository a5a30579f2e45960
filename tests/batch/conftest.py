"""A small model artifact and a folder of generated photos for the batch-engine tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_fixtures import make_artifact, write_photos


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_artifact(tmp_path_factory.mktemp("batch_model") / "model.pt")


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photos(tmp_path_factory.mktemp("batch_photos"), 12)
