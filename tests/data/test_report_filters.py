"""The gallery and the statistics report filter by class, subset and problem in the browser (plain JS)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from detforge.data.dataset import Dataset
from detforge.data.show import show_dataset
from detforge.data.stats import dataset_stats
from detforge.data.stats_report import write_stats_report
from detforge.structures import Annotation, Categories, ImageRecord

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _dataset(root: Path) -> Dataset:
    """Image 1 (train): a cat and a box past its edge (box.clipped); image 2 (val): a dog; image 3: no subset."""
    root.mkdir(parents=True, exist_ok=True)
    images = []
    for i, subset in ((1, "train"), (2, "val"), (3, None)):
        path = root / f"im{i}.png"
        Image.new("RGB", (40, 30), (90, 90, 90)).save(path)
        images.append(ImageRecord(i, path.name, path, 40, 30, subset))
    anns = (
        Annotation(1, 1, 1, (2.0, 2.0, 20.0, 20.0)),
        Annotation(2, 1, 1, (30.0, 5.0, 50.0, 15.0)),
        Annotation(3, 2, 2, (5.0, 5.0, 15.0, 15.0)),
    )
    return Dataset(tuple(images), anns, Categories.from_names(["cat", "dog <b>"]), root, "test")


def _filterables(page: str) -> list[dict[str, list[str]]]:
    found = []
    for tag in re.findall(r"<[a-z]+[^>]* data-classes=[^>]*>", page):
        attrs = dict(re.findall(r'data-(classes|subsets|problems)="([^"]*)"', tag))
        found.append({k: json.loads(html.unescape(v)) for k, v in attrs.items()})
    return found


def _selects(page: str) -> dict[str, list[str]]:
    out = {}
    for key, body in re.findall(r'<select data-filter="(\w+)"[^>]*>(.*?)</select>', page):
        out[key] = [html.unescape(v) for v in re.findall(r'<option value="([^"]*)"', body)]
    return out


def test_gallery_has_class_subset_and_problem_filters(tmp_path: Path) -> None:
    page = show_dataset(_dataset(tmp_path / "data"), tmp_path / "out", n=10).read_text()
    selects = _selects(page)
    assert selects["classes"] == ["", "cat", "dog <b>"]
    assert selects["subsets"] == ["", "(none)", "train", "val"]
    assert "box.clipped" in selects["problems"]
    items = _filterables(page)
    assert items[0] == {"classes": ["cat"], "subsets": ["train"], "problems": ["box.clipped"]}
    assert items[1] == {"classes": ["dog <b>"], "subsets": ["val"], "problems": []}
    assert items[2]["subsets"] == ["(none)"] and items[2]["classes"] == []
    assert "<script>" in page and "http" not in page.split("<script>")[1]  # inline, no external assets
    assert "dog <b>" not in page  # names are escaped


def test_stats_report_lists_problems_filterably(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path / "data")
    page = write_stats_report(dataset, dataset_stats(dataset), tmp_path / "report").read_text()
    assert set(_selects(page)) == {"classes", "subsets", "problems"}
    rows = _filterables(page)
    clipped = [r for r in rows if r["problems"] == ["box.clipped"]]
    assert clipped == [{"classes": ["cat"], "subsets": ["train"], "problems": ["box.clipped"]}]


@pytest.mark.skipif(not CHROMIUM.exists() or not CHROMEDRIVER.exists(), reason="no chromium/chromedriver")
def test_gallery_filters_in_a_real_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    monkeypatch.setenv("SE_OFFLINE", "true")
    page = show_dataset(_dataset(tmp_path / "data"), tmp_path / "out", n=10)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.get(page.as_uri())

        def shown() -> list[str]:
            items = driver.find_elements(By.CSS_SELECTOR, ".item")
            return [i.find_element(By.TAG_NAME, "b").text for i in items if i.is_displayed()]

        assert shown() == ["im1.png", "im2.png", "im3.png"]
        Select(driver.find_element(By.CSS_SELECTOR, 'select[data-filter="problems"]')).select_by_value("box.clipped")
        assert shown() == ["im1.png"]
        assert driver.find_element(By.ID, "filter-count").text == "1 of 3 shown"
        Select(driver.find_element(By.CSS_SELECTOR, 'select[data-filter="problems"]')).select_by_value("")
        Select(driver.find_element(By.CSS_SELECTOR, 'select[data-filter="subsets"]')).select_by_value("val")
        assert shown() == ["im2.png"]
        Select(driver.find_element(By.CSS_SELECTOR, 'select[data-filter="classes"]')).select_by_value("cat")
        assert shown() == []
    finally:
        driver.quit()
