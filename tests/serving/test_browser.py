"""The web page in real headless Chromium against a uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detforge.serving import LoadedModel, ServeSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
XSS_NAME = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not CHROMEDRIVER.exists(),
    reason="/usr/bin/chromium or /usr/bin/chromedriver is missing (apt-get install chromium chromium-driver)",
)


def _driver(profile: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1000,800",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def test_page_uploads_draws_filters_and_escapes_labels(
    fake_predictor, image_bytes, live_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    image = tmp_path / "street photo.png"
    image.write_bytes(image_bytes(64, 48))
    model = LoadedModel(fake_predictor(("cat", XSS_NAME)), name="toy", score_threshold=0.5)
    app = create_app(model, settings=ServeSettings())

    with live_server(app) as base:
        driver = _driver(tmp_path / "profile")
        try:
            driver.set_page_load_timeout(20)
            driver.get(base + "/")
            wait = WebDriverWait(driver, 20, poll_frequency=0.05)
            wait.until(lambda d: d.find_element(By.ID, "model-name").text != "")  # threshold 0.5 from /v1/model
            driver.find_element(By.ID, "file").send_keys(str(image))
            drawn = driver.find_element(By.ID, "drawn")
            wait.until(lambda d: drawn.get_attribute("data-count") != "0")

            assert json.loads(drawn.get_attribute("data-labels") or "") == ["cat", XSS_NAME]  # scores 0.9, 0.6
            assert driver.find_element(By.ID, "file-name").text == "street photo.png"
            assert "server" in driver.find_element(By.ID, "latency").text
            items = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#detections li")]
            assert items == ["cat 0.90", f"{XSS_NAME} 0.60"]  # the name is shown as text
            canvas = driver.execute_script("const c = document.getElementById('canvas'); return [c.width, c.height];")
            assert canvas == [64, 48]

            slider = driver.find_element(By.ID, "threshold")
            move = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));"
            driver.execute_script(move, slider, "0.2")
            assert drawn.get_attribute("data-count") == "3"
            driver.execute_script(move, slider, "0.95")
            assert drawn.get_attribute("data-count") == "0"

            assert driver.execute_script("return document.querySelectorAll('img').length;") == 0
            with pytest.raises(NoAlertPresentException):
                _ = driver.switch_to.alert.text
        finally:
            driver.quit()


def test_page_shows_values_read_large_beside_the_photo_and_highlights_their_box(
    fake_predictor, image_bytes, live_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")
    image = tmp_path / "page.png"
    image.write_bytes(image_bytes(320, 240))
    predictor = fake_predictor(("number", "figure"), texts=("3.14", None, XSS_NAME))  # scores 0.9, 0.6, 0.3
    app = create_app(LoadedModel(predictor, name="toy", score_threshold=0.5), settings=ServeSettings())
    yellow = (
        "const c = document.getElementById('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, "
        "c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) { if (d[i] === 255 && d[i + 1] === 214 "
        "&& d[i + 2] === 0) n++; } return n;"
    )

    with live_server(app) as base:
        driver = _driver(tmp_path / "profile")
        try:
            driver.set_page_load_timeout(20)
            driver.get(base + "/")
            wait = WebDriverWait(driver, 20, poll_frequency=0.05)
            wait.until(lambda d: d.find_element(By.ID, "model-name").text != "")
            driver.find_element(By.ID, "file").send_keys(str(image))
            drawn = driver.find_element(By.ID, "drawn")
            wait.until(lambda d: drawn.get_attribute("data-count") != "0")

            assert json.loads(drawn.get_attribute("data-texts") or "") == ["3.14"]  # 0.3 box below the slider
            values = driver.find_elements(By.CSS_SELECTOR, "#values li .value")
            assert [v.text for v in values] == ["3.14"]
            assert driver.find_element(By.ID, "reads").is_displayed()
            size = driver.execute_script("return parseFloat(getComputedStyle(arguments[0]).fontSize);", values[0])
            assert size >= 32  # large type
            canvas = driver.find_element(By.ID, "canvas").rect
            panel = driver.find_element(By.ID, "reads").rect
            assert panel["x"] >= canvas["x"] + canvas["width"] and panel["y"] < canvas["y"] + canvas["height"]
            assert "read 3.14" in driver.find_element(By.ID, "status").text

            assert drawn.get_attribute("data-highlighted") == "-1" and driver.execute_script(yellow) == 0
            item = driver.find_element(By.CSS_SELECTOR, "#values li")
            ActionChains(driver).move_to_element(item).perform()
            wait.until(lambda d: drawn.get_attribute("data-highlighted") == "0")
            assert "active" in (item.get_attribute("class") or "") and driver.execute_script(yellow) > 50
            item.click()  # pinned: stays highlighted when the pointer leaves
            ActionChains(driver).move_to_element(driver.find_element(By.ID, "status")).perform()
            wait.until(lambda d: d.find_element(By.ID, "drawn").get_attribute("data-highlighted") == "0")

            slider = driver.find_element(By.ID, "threshold")
            move = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));"
            driver.execute_script(move, slider, "0.2")
            assert json.loads(drawn.get_attribute("data-texts") or "") == ["3.14", XSS_NAME]
            shown = [v.text for v in driver.find_elements(By.CSS_SELECTOR, "#values li .value")]
            assert shown == ["3.14", XSS_NAME]  # a value read is text, never markup
            assert driver.execute_script("return document.querySelectorAll('img').length;") == 0
            driver.execute_script(move, slider, "0.95")
            assert not driver.find_element(By.ID, "reads").is_displayed()
        finally:
            driver.quit()
