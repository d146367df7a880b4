"""End-to-end browser tests: the real ``python live.py --web`` server, driven by Chromium (Playwright).

One server (a subprocess on a free port, playing the shared vlog clip with the selfie
segmenter) serves every test in this module; it is stopped with SIGTERM by the last test,
which checks that it exits promptly and cleanly even with a preview stream still open.

Skipped, with the reason, when Playwright, Debian's Chromium (/usr/bin/chromium), Gradio or
the shared test data (../shared) are not there. Set SAVE_SCREENSHOTS=1 to write the
screenshots into docs/ (studio.png, live.png) instead of the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import MODELS, PORTRAIT, ROOT, TWO_PEOPLE, VLOG, need

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BLUE_BGR = np.array((213, 143, 0), np.float32)  # "blue" in the studio and in the live cycle

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM}")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
pytest.importorskip("gradio", reason="the studio UI needs gradio")
pytest.importorskip("PIL", reason="reading the downloads' DPI needs Pillow")
from PIL import Image  # noqa: E402


# ---------------------------------------------------------------------------------------------
# helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def get_image(url: str, timeout: float = 5.0) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        data = r.read()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"{url} did not return a picture"
    return image


def poll(check, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Call ``check`` until it returns something truthy; that value, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def blue_fraction(patch: np.ndarray, tolerance: float = 60.0) -> float:
    """Share of the patch's pixels within ``tolerance`` (BGR distance) of the live/studio blue."""
    distance = np.linalg.norm(patch.astype(np.float32) - BLUE_BGR, axis=2)
    return float((distance < tolerance).mean())


def top_corners(image: np.ndarray, fw: float = 1 / 6, fh: float = 1 / 4) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    ph, pw = max(1, int(h * fh)), max(1, int(w * fw))
    return image[:ph, :pw], image[:ph, w - pw:]


def screenshot_path(tmp_path: Path, name: str) -> Path:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        folder = ROOT / "docs"
        folder.mkdir(exist_ok=True)
        return folder / name
    return tmp_path / name


# ---------------------------------------------------------------------------------------------
# fixtures
class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str) -> dict:
        return get_json(self.url + path)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    vlog = need(VLOG)
    weights = need(MODELS / "selfie_segmentation.onnx")
    face = need(MODELS / "face_detection_short_range.onnx")
    need(PORTRAIT)
    work = tmp_path_factory.mktemp("web")
    (work / "bg").mkdir()
    port = free_port()
    log = work / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "live.py", "--web", "--port", str(port), "--no-window", "--source", str(vlog),
               "--loop", "--model", "selfie", "--weights", str(weights), "--face-weights", str(face),
               "--backgrounds-dir", str(work / "bg"), "--snapshot-dir", str(work)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(proc, port, log)

    def running():
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{srv.output()}")
        try:
            return srv.api("/api/v1/live/status").get("state") == "running"
        except OSError:
            return False

    try:
        poll(running, 60, 0.25, "the live view to run")
        yield srv
    finally:
        if proc.poll() is None:  # the last test stops it; this is only for a failed / deselected run
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def browser(server):
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    pg.js_errors = []  # uncaught exceptions in the page
    pg.on("pageerror", lambda exc: pg.js_errors.append(str(exc)))
    yield pg
    context.close()


def open_studio(page, server):
    page.goto(server.url + "/", wait_until="load")
    page.locator("#photos input[type=file]").wait_for(state="attached")
    page.locator("#make").wait_for()


def choose(page, elem_id: str, option: str):
    """Pick ``option`` in the Gradio dropdown ``#elem_id`` through its list (as a user does)."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()  # a substring match
    assert option in page.locator(f"#{elem_id} input").input_value()


def download(page, tmp_path: Path) -> Path:
    link = page.locator("#download a[download]").first
    link.wait_for()
    with page.expect_download() as info:
        link.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


# ---------------------------------------------------------------------------------------------
# the studio tab
def test_studio_makes_a_blue_passport_photo(page, server, tmp_path):
    open_studio(page, server)
    upload(page, PORTRAIT)
    page.locator('#background [data-testid="blue-radio-label"]').click()
    choose(page, "size", "Passport (ICAO 9303 / EU)")
    page.locator('#format [data-testid="jpg-radio-label"]').click()
    started = time.monotonic()
    page.locator("#make").click()
    page.locator("#message").get_by_text("Done").wait_for(timeout=60_000)
    made_s = time.monotonic() - started
    message = page.locator("#message").inner_text()
    assert "413×531 px at 300 DPI" in message, message
    page.locator("#result img").wait_for()  # the preview is shown

    path = download(page, tmp_path)
    assert path.suffix == ".jpg", path.name
    with Image.open(path) as im:
        assert im.format == "JPEG"
        assert im.size == (413, 531)
        dpi = im.info.get("dpi")
        assert dpi is not None and round(dpi[0]) == 300 and round(dpi[1]) == 300, dpi
        rgb = np.asarray(im.convert("RGB"))
    bgr = rgb[:, :, ::-1]
    for corner in top_corners(bgr, 0.12, 0.08):
        assert np.abs(corner.reshape(-1, 3).mean(axis=0) - BLUE_BGR).max() < 30, corner.reshape(-1, 3).mean(0)

    shot = screenshot_path(tmp_path, "studio.png")
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nstudio: made in {made_s:.1f} s; screenshot {shot}")
    assert "Traceback" not in page.content()
    assert not page.js_errors, page.js_errors


def upload(page, path) -> None:
    """Put a picture into the Photos input and wait until the upload has finished (Gradio then shows
    the file's size as a download link; before that a click on Make would see no file)."""
    size = page.locator("#photos").get_by_text(re.compile(r"\d+(\.\d+)?\s*[KM]B")).first
    for attempt in range(3):  # a page still wiring up its inputs can drop the first selection
        page.locator("#photos input[type=file]").set_input_files(str(path))
        try:
            size.wait_for(timeout=20_000)
            break
        except sync_api.TimeoutError:
            if attempt == 2:
                raise
    assert path.stem in page.locator("#photos").inner_text()


def test_studio_explains_two_faces_in_plain_words(page, server, tmp_path):
    open_studio(page, server)
    upload(page, need(TWO_PEOPLE))
    page.locator("#make").click()
    page.locator("#message").get_by_text(re.compile(r"\bfaces?\b", re.I)).wait_for(timeout=60_000)
    message = page.locator("#message").inner_text()
    assert "Done" not in message, message
    assert "Traceback" not in message and "Error(" not in message, message
    assert "Traceback" not in page.content()
    assert page.locator("#download a[download]").count() == 0  # nothing to download
    assert not page.js_errors, page.js_errors


def test_studio_makes_a_print_sheet(page, server, tmp_path):
    open_studio(page, server)
    upload(page, PORTRAIT)
    choose(page, "paper", "4×6 in")
    page.locator("#sheet").click()
    page.locator("#message").get_by_text("Sheet:").wait_for(timeout=60_000)
    path = download(page, tmp_path)
    with Image.open(path) as im:
        assert im.format in ("JPEG", "PNG"), im.format
        assert im.size in ((1800, 1200), (1200, 1800)), im.size
        dpi = im.info.get("dpi")
        assert dpi is not None and round(dpi[0]) == 300 and round(dpi[1]) == 300, dpi
    assert "Traceback" not in page.content()
    assert not page.js_errors, page.js_errors


# ---------------------------------------------------------------------------------------------
# the live tab
def test_live_tab_embeds_the_live_page(page, server):
    page.goto(server.url + "/", wait_until="domcontentloaded")
    page.get_by_role("tab", name="Live").click()
    frame = page.locator('iframe[src="/live"]')
    frame.wait_for()
    assert frame.is_visible()
    # the embedded page works: its gallery is filled from the live API
    page.frame_locator('iframe[src="/live"]').locator("#gallery .thumb").first.wait_for()
    # its preview streams only while the tab shows (it went on, encoded for nobody, behind the studio)
    before = poll(lambda: server.api("/api/v1/live/status")["watchers"] or None, 10, 0.2, what="the preview")
    page.get_by_role("tab", name="ID photo studio").click()
    poll(lambda: server.api("/api/v1/live/status")["watchers"] == before - 1, 10, 0.2, what="the hidden preview to stop")
    page.get_by_role("tab", name="Live").click()
    poll(lambda: server.api("/api/v1/live/status")["watchers"] == before, 10, 0.2, what="the preview again")
    assert not page.js_errors, page.js_errors


@contextmanager
def failed_live_server(tmp_path, *args):
    """``live.py --web ARGS`` (the selfie model) whose live view failed to start: its URL."""
    port = free_port()
    with open(tmp_path / "server.log", "wb") as out:
        proc = subprocess.Popen([sys.executable, "live.py", "--web", "--port", str(port), "--no-window", *args,
                                 "--model", "selfie", "--weights", str(need(MODELS / "selfie_segmentation.onnx"))],
                                cwd=ROOT, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"

        def failed():
            try:
                return get_json(url + "/api/v1/live/status").get("state") == "failed"
            except OSError:
                return False

        poll(failed, 60, 0.25, "the live view to fail")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def test_live_page_without_a_camera_says_why_and_shows_no_broken_picture(page, tmp_path):
    """No camera: the preview showed a broken-image icon and the gallery was blank."""
    with failed_live_server(tmp_path, "--camera", "97") as url:
        page.goto(url + "/live", wait_until="load")
        page.locator("#camera-box").wait_for(state="visible")
        assert page.locator("#camera-why").inner_text().startswith("The camera could not be opened: ")
        assert "camera 97" in page.locator("#camera-why").inner_text()
        assert page.locator("#retry").inner_text() == "Try this camera" and page.input_value("#camera") == "97"
        page.wait_for_function("document.getElementById('gallery').textContent.length > 0")
        assert "while the live view runs" in page.locator("#gallery").inner_text()
        preview = page.locator("#preview")
        assert preview.get_attribute("src") is None and not preview.is_visible()  # (no broken-image icon)
        page.locator("#snapshot").click()  # a link to the 503 gave a "canceled" download and no word why
        page.wait_for_function("document.getElementById('notice').textContent.includes('No snapshot')")
        assert "no frame yet" in page.locator("#notice").inner_text()
        page.screenshot(path=str(tmp_path / "live_no_camera.png"))
        assert not page.js_errors


def test_live_page_without_a_virtual_camera_does_not_blame_the_camera(page, tmp_path):
    """``--web --vcam`` with no virtual-camera device: the panel said "The camera could not be
    opened", offered webcam 0 in place of the --source file, and "Try this camera"."""
    import glob

    if glob.glob("/sys/devices/virtual/video4linux/video*"):
        pytest.skip("a v4l2loopback device is loaded here: the virtual camera would open")
    with failed_live_server(tmp_path, "--vcam", "--source", str(need(VLOG))) as url:
        page.goto(url + "/live", wait_until="load")
        page.locator("#camera-box").wait_for(state="visible")
        why = page.locator("#camera-why").inner_text()
        assert why.startswith("The output could not be opened: ") and "virtual camera" in why, why
        assert "\n" in why  # the how-to keeps its lines
        assert page.locator("#retry").inner_text() == "Try again"
        assert page.input_value("#camera").endswith("vlog_720p.mp4")
        page.screenshot(path=str(tmp_path / "live_no_vcam.png"))
        assert not page.js_errors


def test_live_page_switches_background_and_view(page, server, tmp_path):
    before = server.api("/api/v1/live/status")
    assert before["state"] == "running"
    if before["background"] == "blue":  # make the click below a real change
        urllib.request.urlopen(urllib.request.Request(
            server.url + "/api/v1/live/background", data=b'{"background": "white"}',
            headers={"Content-Type": "application/json"}), timeout=5).read()
        poll(lambda: server.api("/api/v1/live/status")["background"] == "white", 3, what="white")

    page.goto(server.url + "/live", wait_until="domcontentloaded")
    thumb = page.locator('#gallery .thumb[data-name="blue"]')
    thumb.wait_for()
    assert page.locator("#gallery .thumb").count() >= 5  # blur, the colours, none

    clicked = time.monotonic()
    thumb.click()

    def blue_now():
        if server.api("/api/v1/live/status")["background"] != "blue":
            return False
        frame = get_image(server.url + "/api/v1/live/frame.jpg")
        fractions = [blue_fraction(c) for c in top_corners(frame)]
        return fractions if min(fractions) > 0.8 else False

    fractions = poll(blue_now, 3.0, 0.1, "status and frame to show the blue background")
    switched_s = time.monotonic() - clicked
    page.locator('#gallery .thumb.current[data-name="blue"]').wait_for(timeout=5_000)  # the panel follows
    # ... and so does the colour picker (it started light blue whatever the run's colour)
    page.wait_for_function("() => document.getElementById('color').value === '#008fd5'", timeout=5_000)
    # the figures keep their width as the numbers change (the line reflowed between refreshes)
    widths = page.evaluate("""() => ['9.8', '12.5', '108.0'].map(t => {
        const e = document.getElementById('fps'); e.textContent = t; return e.getBoundingClientRect().width; })""")
    assert widths[0] == widths[1] == widths[2] and widths[0] > 0, widths  # (108.0 fps: a GPU's)

    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0", timeout=10_000)
    width = page.evaluate("() => document.getElementById('preview').naturalWidth")
    assert 0 < width <= 640, width
    page.wait_for_function("() => document.getElementById('fps').textContent !== '–'", timeout=5_000)

    shot = screenshot_path(tmp_path, "live.png")
    time.sleep(0.3)  # a fresh MJPEG frame on screen
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nlive: blue after {switched_s:.2f} s (corners {fractions}); preview {width} px; screenshot {shot}")

    for view in ("matte", "composite"):
        page.locator(f'button.view[data-view="{view}"]').click()
        poll(lambda: server.api("/api/v1/live/status")["view"] == view, 3, what=f"view {view}")
        page.locator(f'button.view.on[data-view="{view}"]').wait_for(timeout=5_000)
    assert not page.js_errors, page.js_errors
    assert page.locator("#notice").inner_text() == ""


def test_a_preview_refused_says_why_and_comes_back(page, server, tmp_path):
    """With 8 previews open a 9th page showed a broken-image icon, said nothing, and never asked
    again once the others had closed."""
    streams = []
    try:
        for _ in range(8):
            streams.append(urllib.request.urlopen(server.url + "/api/v1/live/stream.mjpg", timeout=10))
            assert streams[-1].read(64).startswith(b"--frame")
        poll(lambda: server.api("/api/v1/live/status")["watchers"] == 8, 5, what="8 viewers")
        page.goto(server.url + "/live", wait_until="load")
        page.wait_for_function("document.getElementById('preview-note').textContent.includes('at most 8')",
                               timeout=15_000)
        assert not page.locator("#preview").is_visible()  # (no broken-image icon)
        page.screenshot(path=str(screenshot_path(tmp_path, "live_ninth.png")))
    finally:
        for stream in streams:
            stream.close()
    page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0", timeout=20_000)
    assert page.locator("#preview").is_visible() and page.locator("#preview-note").inner_text() == ""
    assert not page.js_errors, page.js_errors


# ---------------------------------------------------------------------------------------------
# last: shutting down
def test_server_stops_on_sigterm_with_a_stream_open(server):
    stream = urllib.request.urlopen(server.url + "/api/v1/live/stream.mjpg", timeout=5)
    assert stream.read(64).startswith(b"--frame")  # a preview viewer is connected
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(3.5)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the server did not exit within 3.5 s of SIGTERM:\n{server.output()}") from None
    finally:
        stream.close()
    took = time.monotonic() - started
    print(f"\nserver exited {code} after {took:.2f} s")
    assert code == 0, server.output()
    assert "Traceback" not in server.output(), server.output()
