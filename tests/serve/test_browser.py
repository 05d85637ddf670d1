"""`soilnet serve` as a person uses it: the real command, the page in headless Chromium (Debian's package),
tiles drawn, a click that shows the COG's values, the layer switcher, the points, a screenshot that is not blank.

Needs /usr/bin/chromium (``.ci/run`` installs it with apt-get) and Playwright (a dev dependency); where
either is missing the test is skipped with the reason. The tile tests (test_render.py) always run.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port
from tests.fixtures.map_outputs import cog_value

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
#: Copy the screenshot here as well (e.g. to look at it after the run).
SCREENSHOT_DIR = os.environ.get("SOILNET_SCREENSHOT_DIR")

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium; .ci/run does) "
        "to run the viewer's browser test",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright (dev dependency) is not installed")


@pytest.fixture(scope="module")
def viewer_url(published_map) -> Iterator[str]:
    """`soilnet serve --map ... --points ...` running as its own process; yields the page URL."""
    port = free_port()
    soilnet = Path(sys.executable).with_name("soilnet")
    cmd = [str(soilnet), "serve", "--map", published_map.out, "--points", published_map.points_url]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "healthz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"soilnet serve did not come up on {url}:\n{proc.stdout.read()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def shown_value(text: str) -> float | None:
    return None if text == "no data" else float(text)


def test_viewer_in_a_real_browser(viewer_url: str, published_map, tmp_path: Path) -> None:
    requests: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 750})
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(viewer_url)

        # Tiles drawn, points drawn (3000 points: clustered at this zoom), legend in physical units.
        page.wait_for_selector("body[data-tiles=loaded]", timeout=60_000)
        assert page.locator("img.leaflet-tile-loaded").count() > 0
        page.wait_for_function("document.getElementById('points-count').textContent.length > 0", timeout=30_000)
        assert "clustered" in page.inner_text("#points-count")
        assert page.locator(".cluster").count() > 0
        legend = page.inner_text("#legend")
        assert "soc_g_kg (g/kg)" in legend
        ticks = [float(t) for t in page.locator("#legend [data-tick]").all_inner_texts()]
        assert len(ticks) == 5 and ticks[0] < ticks[-1]

        # Points off (so the click lands on the map), then a click near the map's centre.
        page.uncheck("#show-points")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2 - 37, box["y"] + box["height"] / 2 + 23)
        page.wait_for_selector("body[data-values=ready]", timeout=30_000)
        lon = float(page.get_attribute("#values", "data-lon"))
        lat = float(page.get_attribute("#values", "data-lat"))
        rows = page.locator("#values tr[data-layer]")
        shown = {
            rows.nth(i).get_attribute("data-layer"): rows.nth(i).locator("td.value").inner_text()
            for i in range(rows.count())
        }
        assert set(shown) == {"soc_g_kg", "soc_g_kg_std", "input_missing"}
        for layer, text in shown.items():
            want = cog_value(published_map.cog(layer), lon, lat)
            assert want is not None, f"the click at {lon}, {lat} fell on nodata of {layer}"
            if layer == "input_missing":
                assert text == str(int(want))
            else:  # shown with the stored precision (scale 0.1: one decimal)
                assert shown_value(text) == pytest.approx(want, abs=0.05 + 1e-9), f"{layer}: page {text}, COG {want}"

        page.check("#show-points")
        page.wait_for_function("document.querySelectorAll('.cluster').length > 0", timeout=30_000)
        shot = tmp_path / "viewer.png"
        page.screenshot(path=str(shot))

        # The layer switcher redraws with the std layer's legend.
        page.click("label[data-layer=soc_g_kg_std] input")
        page.wait_for_function("document.getElementById('legend').innerText.includes('soc_g_kg_std')")
        page.wait_for_selector("body[data-tiles=loaded]", timeout=60_000)
        assert "soc_g_kg_std (g/kg)" in page.inner_text("#legend")
        browser.close()

    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"), dtype=np.float64)
    assert pixels.var() > 100, "the screenshot is (nearly) blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "the screenshot shows no colour scale"
    if SCREENSHOT_DIR:
        shutil.copy(shot, Path(SCREENSHOT_DIR) / "serve-screenshot.png")
    assert not errors, f"errors on the page: {errors}"
    outside = [u for u in requests if not u.startswith(viewer_url)]
    assert not outside, f"the page fetched from outside the viewer: {outside}"
