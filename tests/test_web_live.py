"""The live panel's HTTP API against a running pipeline: switching, uploads, refusals, the stream, the rate."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from compositing import BackgroundLibrary, ColorBackground, Compositor  # noqa: E402
from fakes import IndexEngine, SyntheticSource, wait_until  # noqa: E402
from idphoto import IdPhotoMaker  # noqa: E402
from matting import make_smoother  # noqa: E402
from realtime import NullSink, Pipeline, PipelineOptions  # noqa: E402
from realtime.remote import LiveHandle  # noqa: E402
from web import UploadFolder, WebOptions, create_app  # noqa: E402


class LiveRun:
    """A pipeline on a synthetic 30-fps source, run on a thread, attached to a LiveHandle."""

    def __init__(self, backgrounds_dir, fps=30.0, size=(72, 128)):
        self.sink = NullSink()
        library = BackgroundLibrary(backgrounds_dir, initial=ColorBackground((0, 0, 0), name="black"))
        self.source = SyntheticSource(fps=fps, size=size)
        self.pipeline = Pipeline(self.source, IndexEngine(), make_smoother("none"), Compositor(), library,
                                 [self.sink], options=PipelineOptions(mode="async", terminal_keys=False))
        self.live = LiveHandle("synthetic")
        self.pipeline.remote = self.live
        self.live.attach(self.pipeline)
        self.thread = threading.Thread(target=self.pipeline.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_until(lambda: self.sink.frames > 3, what="first frames")
        return self

    def __exit__(self, *exc):
        self.pipeline.stop("quit")
        self.thread.join(5)
        self.live.detach("stopped")
        assert not self.thread.is_alive()


def unused_maker():
    def no_engine():
        raise AssertionError("the live API must not load the photo engine")
    return IdPhotoMaker(no_engine)


@pytest.fixture()
def run(tmp_path):
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    with LiveRun(folder) as live_run:
        uploads = UploadFolder()
        app = create_app(unused_maker(), live_run.live,
                         WebOptions(backgrounds_dir=str(folder), gradio=False, max_upload_mb=1), uploads)
        live_run.client = TestClient(app, base_url="http://127.0.0.1")
        live_run.folder = folder
        live_run.uploads = uploads
        yield live_run
        uploads.cleanup()


def output_color(run) -> np.ndarray:
    """Mean BGR of the newest output frame (waits for a frame made after the call)."""
    seq, _ = run.live.latest_frame()
    got = run.live.wait_frame(seq + 1, timeout=5)
    assert got is not None
    return got[1].reshape(-1, 3).mean(axis=0)


def frame_color(run) -> np.ndarray:
    run.live.wait_frame(run.live.latest_frame()[0] + 1, timeout=5)
    r = run.client.get("/api/v1/live/frame.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (72, 128, 3)  # full size, as the virtual camera gets it
    return image.reshape(-1, 3).mean(axis=0)


def test_status_reports_the_figures(run):
    wait_until(lambda: run.pipeline.stats.outputs > 40, what="a second of output")
    s = run.client.get("/api/v1/live/status").json()
    for key in ("fps", "mattes_per_s", "latency_ms", "background", "view", "paused", "engine", "cpu_cores"):
        assert key in s, key
    assert s["state"] == "running" and s["engine"] == "index" and s["background"] == "black"
    assert s["view"] == "composite" and s["paused"] is False
    assert 15 < s["fps"] < 45 and s["mattes_per_s"] > 0 and s["latency_ms"] >= 0


def test_status_gives_a_colour_background_as_hex_for_the_colour_picker(run):
    """The panel's colour picker started light blue whatever the run's colour: the status now
    says the colour (names as the compositor paints them), null for anything else."""
    status = lambda: run.client.get("/api/v1/live/status").json()  # noqa: E731
    assert status()["background_color"] == "#000000"  # the run's black
    ok, png = cv2.imencode(".png", np.full((90, 160, 3), (30, 30, 30), np.uint8))
    saved = run.client.post("/api/v1/live/backgrounds", files={"file": ("blue.png", png.tobytes(), "image/png")})
    assert saved.json()["saved"] == "blue.png", saved.text
    for chosen, shown in (("blue", "#008fd5"), ("#4A90D9", "#4a90d9"), ("blur", None), ("blue.png", None)):
        assert run.client.post("/api/v1/live/background", json={"background": chosen}).status_code == 200
        wait_until(lambda: status()["background_color"] == shown, what=f"{chosen} in the status")


def test_an_upload_of_two_files_in_one_request_is_refused(run):
    """Two ``file`` fields in one upload kept the last and silently dropped the first."""
    pictures = [("file", (name, cv2.imencode(".png", np.full((90, 160, 3), v, np.uint8))[1].tobytes(), "image/png"))
                for name, v in (("one.png", 40), ("two.png", 200))]
    r = run.client.post("/api/v1/live/backgrounds", files=pictures)
    assert r.status_code == 400 and "send one file per request, not 2" in r.json()["error"], r.text
    assert not any(run.folder.iterdir())
    r = run.client.post("/api/v1/live/backgrounds", files=pictures[:1])
    assert r.status_code == 200 and r.json()["saved"] == "one.png", r.text


def test_switch_by_colour_name_and_upload_changes_the_output(run):
    assert np.allclose(frame_color(run), 0, atol=40)  # black background (the alpha is nearly 0)
    r = run.client.post("/api/v1/live/background", json={"background": "#ff0000"})
    assert r.status_code == 200, r.text
    assert np.allclose(output_color(run), (0, 0, 255), atol=40)
    r = run.client.post("/api/v1/live/background", json={"background": "white"})
    assert r.json() == {"background": "white"}
    assert np.allclose(frame_color(run), 255, atol=40)
    # upload a green picture, then pick it by name from the list
    ok, png = cv2.imencode(".png", np.full((90, 160, 3), (0, 200, 0), np.uint8))
    r = run.client.post("/api/v1/live/backgrounds", files={"file": ("My Garden!.png", png.tobytes(), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["saved"] == "My-Garden.png" and (run.folder / "My-Garden.png").is_file()
    listed = run.client.get("/api/v1/live/backgrounds").json()
    entry = next(e for e in listed if e["name"] == "My-Garden")
    assert entry["kind"] == "file" and entry["thumbnail"].endswith("/thumbnail.jpg")
    thumb = run.client.get(entry["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    r = run.client.post("/api/v1/live/background", json={"background": "My-Garden"})
    assert r.json() == {"background": "My-Garden"}
    assert np.allclose(output_color(run), (0, 200, 0), atol=40)
    assert run.client.get("/api/v1/live/status").json()["background"] == "My-Garden"


def test_the_frame_read_right_after_a_change_shows_it(run):
    """The README's curl example: a POST, then frame.jpg at once. The frame had the old background
    (12 of 12 tries in a trial) until the next frame was made: a change now answers once a frame
    made after it is out."""
    def now_color():
        r = run.client.get("/api/v1/live/frame.jpg")
        return cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).reshape(-1, 3).mean(axis=0)

    for colour, bgr in [("#ff0000", (0, 0, 255)), ("#0000ff", (255, 0, 0))] * 4:
        assert run.client.post("/api/v1/live/background", json={"background": colour}).status_code == 200
        assert np.allclose(now_color(), bgr, atol=40), colour
    run.client.post("/api/v1/live/background", json={"background": "white"})
    for view, level in [("matte", 0), ("composite", 255)] * 3:
        assert run.client.post("/api/v1/live/view", json={"view": view}).status_code == 200
        assert np.allclose(now_color(), level, atol=40), view


def test_hotkeys_and_panel_share_one_state(run, caplog):
    caplog.set_level(logging.INFO, logger="web")
    assert run.client.post("/api/v1/live/view", json={"view": "matte"}).json() == {"view": "matte"}
    assert "view: matte (from the browser)" in caplog.text  # logged, as a hotkey's change is
    assert run.pipeline.state.view == "matte"
    run.live.call(lambda p: p.apply("matte"))  # the m key toggles it back
    assert run.client.get("/api/v1/live/status").json()["view"] == "composite"
    assert run.client.post("/api/v1/live/pause", json={}).json() == {"paused": True}
    assert "paused: the last frame keeps going out (from the browser)" in caplog.text
    assert run.client.get("/api/v1/live/status").json()["paused"] is True
    run.live.call(lambda p: p.apply("next"))
    assert run.client.get("/api/v1/live/status").json()["background"] == run.pipeline.library.current_name
    assert run.client.post("/api/v1/live/pause", json={"paused": False}).json() == {"paused": False}


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "..", "backgrounds/../x.png", "a\\b.png"])
def test_paths_are_refused(run, value):
    r = run.client.post("/api/v1/live/background", json={"background": value})
    assert r.status_code == 400 and "error" in r.json()
    assert run.pipeline.library.current_name == "black"


def test_unknown_names_and_bad_bodies_are_4xx(run):
    r = run.client.post("/api/v1/live/background", json={"background": "no-such-picture"})
    assert r.status_code == 404 and "unknown background" in r.json()["error"]
    assert run.client.post("/api/v1/live/background", json={"x": 1}).status_code == 400
    r = run.client.post("/api/v1/live/background", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "the request body is not valid JSON"
    r = run.client.post("/api/v1/live/background", data={"background": "blur"})  # a form, not JSON
    assert r.status_code == 400 and r.json()["error"].startswith("the request body must be a JSON object")
    # each route's own example (/view and /pause named the background's)
    for route, example in (("view", '{"view": "matte"}'), ("pause", '{"paused": true}'),
                           ("camera", '{"camera": "1"}'), ("background", '{"background": "blur"}')):
        r = run.client.post(f"/api/v1/live/{route}", json=[1, 2])
        assert r.status_code == 400 and r.json()["error"].endswith(example), (route, r.text)
    r = run.client.post("/api/v1/live/backgrounds", data={"x": "1"})
    assert r.status_code == 400 and r.json()["error"] == "file: missing (send it as a multipart/form-data file)"
    assert run.client.post("/api/v1/live/view", json={"view": "sideways"}).status_code == 400
    assert run.client.get("/api/v1/live/backgrounds/999/thumbnail.jpg").status_code == 404


def test_bad_uploads_are_refused_and_nothing_is_overwritten(run):
    folder = run.folder
    (folder / "beach.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    before = (folder / "beach.png").read_bytes()
    ok, png = cv2.imencode(".png", np.full((20, 20, 3), 200, np.uint8))
    r = run.client.post("/api/v1/live/backgrounds", files={"file": ("beach.png", png.tobytes(), "image/png")})
    assert r.json()["saved"] == "beach-2.png" and (folder / "beach.png").read_bytes() == before
    r = run.client.post("/api/v1/live/backgrounds", files={"file": ("../../../escape.png", png.tobytes())})
    assert r.status_code == 200 and r.json()["saved"] == "escape.png"
    assert (folder / "escape.png").is_file() and not (folder.parent / "escape.png").exists()
    for name, data, status in [("notes.png", b"hello, not a picture", 415), ("tool.exe", png.tobytes(), 415),
                               ("empty.jpg", b"", 400), ("big.png", b"\0" * 1_100_000, 413)]:
        r = run.client.post("/api/v1/live/backgrounds", files={"file": (name, data)})
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"]
    assert sorted(p.name for p in folder.iterdir()) == ["beach-2.png", "beach.png", "escape.png"]
    assert not list(run.uploads.path.rglob("*.*"))  # staged uploads are gone


def test_no_request_when_the_run_is_gone(tmp_path):
    live = LiveHandle("7")
    live.detach("failed", "cannot open camera 7")
    app = create_app(unused_maker(), live, WebOptions(backgrounds_dir=str(tmp_path), gradio=False), UploadFolder())
    client = TestClient(app, base_url="http://127.0.0.1")
    s = client.get("/api/v1/live/status").json()
    assert s["state"] == "failed" and "camera 7" in s["error"] and s["fps"] is None
    r = client.post("/api/v1/live/background", json={"background": "white"})
    assert r.status_code == 503 and "camera 7" in r.json()["error"]
    r = client.get("/api/v1/live/frame.jpg")
    assert r.status_code == 503 and r.json()["error"] == "no frame yet (the live view failed)"  # (not "is failed")
    assert client.post("/api/v1/live/camera", json={"camera": "1"}).json()["camera"] == "1"
    assert live.wait_for_restart(timeout=1) and live.camera == "1"
    for bad in ("null", "true", "-1", "1.5", "NaN", "1e400", "[0]", '{"index": 0}'):
        r = client.post("/api/v1/live/camera", content=f'{{"camera": {bad}}}',
                        headers={"content-type": "application/json"})
        assert r.status_code == 400 and "webcam index" in r.json()["error"], (bad, r.text)
    assert client.post("/api/v1/live/camera", json={"camera": 2}).json()["camera"] == "2"
    assert client.post("/api/v1/live/camera", json={"camera": "/dev/video2"}).json()["camera"] == "/dev/video2"
    # a webcam, never a file on the server (it would have played /etc/... or a video anywhere), nor an
    # index that overflowed inside OpenCV and took the whole server down
    for bad in ("/etc/passwd", "../clip.mp4", "/dev/../etc/passwd", "rtsp://host/x", "99999999999999999999"):
        r = client.post("/api/v1/live/camera", json={"camera": bad})
        assert r.status_code == 400, (bad, r.text)
    assert client.post("/api/v1/live/camera", json={"camera": 10**20}).status_code == 400
    live_with_file = LiveHandle("/videos/clip.mp4", source="/videos/clip.mp4")
    live_with_file.detach("ended")
    app = create_app(unused_maker(), live_with_file, WebOptions(backgrounds_dir=str(tmp_path), gradio=False),
                     UploadFolder())
    r = TestClient(app, base_url="http://127.0.0.1").post("/api/v1/live/camera", json={"camera": "/videos/clip.mp4"})
    assert r.status_code == 200  # the --source the server started with may run again


def test_background_values_as_on_the_command_line_and_a_refusal_changes_nothing(run):
    """blur:SIGMA and transparent work as with --background; blur strengths up to the CLI's 500;
    a request that is refused leaves the blur strength as it was (it was set before the name was
    looked at)."""
    library = run.pipeline.library
    r = run.client.post("/api/v1/live/background", json={"background": "nosuch", "blur_strength": 5})
    assert r.status_code == 404 and library.blur_strength == 12.0
    assert run.client.post("/api/v1/live/background", json={"background": "blur:20"}).json() == {"background": "blur"}
    assert library.blur_strength == 20.0
    r = run.client.post("/api/v1/live/background", json={"background": "blur", "blur_strength": 300})
    assert r.status_code == 200 and library.blur_strength == 300.0
    assert run.client.get("/api/v1/live/status").json()["blur_strength"] == 300.0
    for bad in ({"background": "blur:abc"}, {"background": "blur:0"}, {"background": "blur", "blur_strength": 501}):
        assert run.client.post("/api/v1/live/background", json=bad).status_code == 400, bad
    r = run.client.post("/api/v1/live/background", json={"background": "transparent"})
    assert r.json() == {"background": "key green"}
    assert np.allclose(output_color(run), (0, 255, 0), atol=60)


def test_stream_delivers_frames_while_the_output_keeps_its_rate(tmp_path):
    import http.client

    from web import WebServer

    folder = tmp_path / "bg"
    with LiveRun(folder, fps=30.0, size=(360, 640)) as live_run:
        server = WebServer(unused_maker(), live_run.live,
                           WebOptions(port=_free_port(), backgrounds_dir=str(folder), gradio=False))
        server.start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.options.port, timeout=10)
            conn.request("GET", "/api/v1/live/stream.mjpg")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("content-type").startswith("multipart/x-mixed-replace")
            start_outputs, started = live_run.pipeline.stats.outputs, time.monotonic()
            jpegs, buffer = 0, b""
            while time.monotonic() - started < 3.0:
                buffer += response.read1(65536)
                while b"\xff\xd9" in buffer:
                    frame, buffer = buffer.split(b"\xff\xd9", 1)
                    start = frame.find(b"\xff\xd8")
                    image = cv2.imdecode(np.frombuffer(frame[start:] + b"\xff\xd9", np.uint8), cv2.IMREAD_COLOR)
                    assert image is not None and image.shape[1] <= 640
                    jpegs += 1
            elapsed = time.monotonic() - started
            rate = (live_run.pipeline.stats.outputs - start_outputs) / elapsed
            assert jpegs / elapsed >= 10, f"preview {jpegs / elapsed:.1f} fps"
            assert rate >= 0.9 * 30, f"output {rate:.1f} fps while streaming"
            assert live_run.live.watchers == 1
            conn.close()
        finally:
            stop_started = time.monotonic()
            server.stop()
            assert time.monotonic() - stop_started < 2.5
        assert not server.running


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_preview(port: int, query: str = "") -> tuple[object, np.ndarray]:
    """Open the preview stream and decode its first JPEG: ``(the open response, the picture)``."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/api/v1/live/stream.mjpg" + query)
    response = conn.response = conn.getresponse()
    assert response.status == 200, response.read()
    buffer = b""
    while b"\xff\xd9" not in buffer:
        chunk = response.read1(65536)
        assert chunk, "the stream ended before its first frame"
        buffer += chunk
    start = buffer.find(b"\xff\xd8")
    image = cv2.imdecode(np.frombuffer(buffer[start:buffer.index(b"\xff\xd9") + 2], np.uint8), cv2.IMREAD_COLOR)
    return conn, image


def test_the_preview_is_mirrored_as_the_window_is(tmp_path):
    """--no-mirror and the f key mirror the browser's preview too, not just the window (it was always
    mirrored); ?mirror= still decides for itself."""
    from web import WebServer

    folder = tmp_path / "bg"
    folder.mkdir()
    picture = np.zeros((90, 160, 3), np.uint8)
    picture[:, 80:] = 255  # dark left, bright right: what the virtual camera gets
    cv2.imwrite(str(folder / "halves.png"), picture)
    with LiveRun(folder, size=(90, 160)) as live_run:
        live_run.live.call(lambda p: p.library.select_name("halves"))
        server = WebServer(unused_maker(), live_run.live,
                           WebOptions(port=_free_port(), backgrounds_dir=str(folder), gradio=False))
        server.start()
        try:
            def bright_side(query=""):
                conn, image = _first_preview(server.options.port, query)
                conn.close()
                return "right" if image[:, 80:].mean() > image[:, :80].mean() else "left"

            assert live_run.pipeline.state.mirror and bright_side() == "left"
            live_run.live.call(lambda p: p.apply("mirror"))  # the f key (or --no-mirror)
            assert bright_side() == "right"
            assert bright_side("?mirror=true") == "left"
        finally:
            server.stop()


def test_previews_free_the_server_when_viewers_leave_or_the_run_ends(tmp_path):
    """A preview waiting for frames that do not come (the source ended, the camera stalled) held a
    server thread for good and never noticed its viewer had gone: some 40 of them hung every route.
    Now: no run, no stream (503); a stalled run sends the last frame once a second, so a viewer that
    went away is noticed; the stream ends when the run does."""
    from web import WebServer

    live = LiveHandle("synthetic")
    live.attach(object())
    live.publish(np.full((72, 128, 3), 90, np.uint8))  # one frame, then nothing (a stalled camera)
    server = WebServer(unused_maker(), live, WebOptions(port=_free_port(), backgrounds_dir=str(tmp_path),
                                                        gradio=False))
    server.start()
    try:
        for _ in range(3):
            conn, image = _first_preview(server.options.port)
            assert image is not None
            conn.close()  # the viewer goes away
        wait_until(lambda: live.watchers == 0, timeout=5, what="the dropped previews to be let go")
        conn, _ = _first_preview(server.options.port)
        live.detach("ended")  # the source ends while someone watches
        response = conn.response
        deadline = time.monotonic() + 5
        while response.read1(65536) and time.monotonic() < deadline:
            pass
        assert time.monotonic() < deadline, "the preview went on after the run ended"
        conn.close()
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.options.port}/api/v1/live/stream.mjpg", timeout=5)
        assert refused.value.code == 503 and "ended" in refused.value.read().decode()
    finally:
        server.stop()


def test_at_most_eight_previews_even_when_opened_at_once(tmp_path):
    """The limit was checked before a stream counted itself: 12-18 of 45 opened together got in (and
    each encoded every frame again: 40 of them took the output from 24 to 9 fps)."""
    import socket

    from web import WebServer

    live = LiveHandle("synthetic")
    live.attach(object())
    live.publish(np.full((72, 128, 3), 90, np.uint8))
    server = WebServer(unused_maker(), live, WebOptions(port=_free_port(), backgrounds_dir=str(tmp_path),
                                                        gradio=False))
    server.start()
    socks = []
    try:
        for _ in range(20):  # all sent before any answer is read
            sock = socket.create_connection(("127.0.0.1", server.options.port), timeout=10)
            sock.sendall(b"GET /api/v1/live/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            socks.append(sock)
        statuses = [sock.recv(64).split(b" ")[1] for sock in socks]
        assert statuses.count(b"200") == 8 and statuses.count(b"503") == 12, statuses
        for sock in socks:
            sock.close()
        wait_until(lambda: live.watchers == 0, timeout=5, what="the closed previews to be let go")
    finally:
        for sock in socks:
            sock.close()
        server.stop()


def test_thumbnails_of_none_and_blur_show_the_camera_not_the_output(run):
    run.client.post("/api/v1/live/background", json={"background": "white"})
    output_color(run)
    listed = run.client.get("/api/v1/live/backgrounds").json()
    for name in ("none", "blur"):
        entry = next(e for e in listed if e["name"] == name)
        r = run.client.get(entry["thumbnail"])
        thumb = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert abs(thumb[:, :, 1].mean() - 128) < 20, name  # the synthetic camera's green level, not white
    white = next(e for e in listed if e["name"] == "white")
    thumb = cv2.imdecode(np.frombuffer(run.client.get(white["thumbnail"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert thumb.mean() > 240


def test_a_snapshot_that_cannot_be_saved_is_reported_as_such(run, tmp_path):
    """It answered 503 "no frame yet" when the snapshot could not be written."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    run.pipeline.options.snapshot_dir = str(blocker / "shots")
    wait_until(lambda: run.pipeline._last_output is not None, 20, "a first output")
    response = run.client.post("/api/v1/live/snapshot")
    assert response.status_code == 500 and "could not create snapshot folder" in response.json()["error"]
    run.pipeline.options.snapshot_dir = str(tmp_path / "shots")
    response = run.client.post("/api/v1/live/snapshot")
    assert response.status_code == 200 and Path(response.json()["saved"]).is_file()


def test_status_asked_as_the_run_ends_says_it_ended(tmp_path):
    """The status request waits for the render loop; when the run ended meanwhile, it answered
    "running" with the error "the live view is not running"."""
    class Ending:  # a pipeline whose render loop no longer takes commands: its source just ended
        pass

    live = LiveHandle("clip.mp4")
    live.attach(Ending())
    app = create_app(unused_maker(), live, WebOptions(backgrounds_dir=str(tmp_path), gradio=False), UploadFolder())
    client = TestClient(app, base_url="http://127.0.0.1")
    threading.Timer(0.3, live.detach, args=("ended",)).start()
    s = client.get("/api/v1/live/status").json()
    assert s["state"] == "ended" and s["error"] is None, s


def test_status_has_the_same_keys_before_a_run_as_during_one(run):
    """While starting (no run yet) cpu_cores, mode and size were missing, not null."""
    wait_until(lambda: run.pipeline.stats.outputs > 5, what="output")
    running = run.client.get("/api/v1/live/status").json()
    waiting = LiveHandle("clip.mp4")  # a server whose run has not started
    app = create_app(unused_maker(), waiting, WebOptions(gradio=False), UploadFolder())
    starting = TestClient(app, base_url="http://127.0.0.1").get("/api/v1/live/status").json()
    assert set(starting) == set(running), set(running) ^ set(starting)
    assert starting["cpu_cores"] is None and starting["size"] is None and starting["mode"] is None


def test_a_viewer_that_stopped_reading_gives_up_its_place(monkeypatch):
    """Eight clients that stopped reading without closing (half-open sockets, a laptop asleep)
    held every preview place for good: the user's own browser got 503."""
    from realtime import remote

    now = [1000.0]
    monkeypatch.setattr(remote.time, "monotonic", lambda: now[0])
    live = LiveHandle("synthetic")
    tickets = [live.try_watch(8) for _ in range(8)]
    assert None not in tickets and live.try_watch(8) is None
    now[0] += remote.STALLED_VIEWER_S / 2
    live.watched(tickets[0])  # one still reads
    now[0] += remote.STALLED_VIEWER_S / 2 + 1
    assert live.watchers == 1  # the figures count only viewers that still read
    newcomer = live.try_watch(8)
    assert newcomer is not None and live.watchers == 2  # the seven stalled ones let go
    for ticket in tickets:
        live.unwatch(ticket)  # (when their connections finally close: nothing counted twice)
    assert live.watchers == 1
    live.unwatch(newcomer)
    assert live.watchers == 0


def test_runs_restarted_from_the_panel_do_not_pile_up(reference_ckpt, tmp_path):
    """A pipeline holds reference cycles; in a server (many long-lived objects, so full garbage
    collections are rare) every run restarted from the panel kept its model and buffers: about
    25 MB a restart, 0.5 to 1.1 GB over 20."""
    import gc

    from app.config import settings_from_args
    from app.web_mode import run_live_loop
    from realtime import Pipeline

    clip = tmp_path / "short.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    settings = settings_from_args(["--web", "--no-window", "--source", str(clip), "--weights", str(reference_ckpt),
                                   "--inference-size", "64", "--backgrounds-dir", str(tmp_path)])
    live, stopping = LiveHandle(str(clip), source=str(clip)), threading.Event()
    gc.collect()
    gc.disable()  # as rare as a big server's full collections
    try:
        loop = threading.Thread(target=run_live_loop, args=(settings, live, stopping), daemon=True)
        loop.start()
        for _ in range(3):
            wait_until(lambda: live.state == "ended", timeout=60, what="the clip to end")
            live.request_restart(str(clip))
        wait_until(lambda: live.state == "ended", timeout=60, what="the clip to end")
        alive = sum(type(o) is Pipeline for o in gc.get_objects())
        stopping.set()
        live.close()
        loop.join(10)
    finally:
        gc.enable()
    assert alive <= 1, f"{alive} pipelines still held after 4 runs"


def test_a_failed_output_is_not_called_a_camera_problem(tmp_path, monkeypatch):
    """``--web --vcam`` without a virtual-camera device: the status says the output failed (the
    panel then offers to try again, not another camera: no camera fixes a missing device), and
    a retry builds the run again."""
    from app import web_mode
    from app.config import settings_from_args
    from realtime import SinkError

    clip = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    settings = settings_from_args(["--web", "--no-window", "--source", str(clip), "--backgrounds-dir", str(tmp_path)])
    built = []

    def build(settings, source, first):
        built.append(source.name)
        raise SinkError("No virtual camera device was found")

    monkeypatch.setattr(web_mode, "build_pipeline", build)
    live, stopping = LiveHandle(str(clip), source=str(clip)), threading.Event()
    app = create_app(unused_maker(), live, WebOptions(backgrounds_dir=str(tmp_path), gradio=False), UploadFolder())
    client = TestClient(app, base_url="http://127.0.0.1")
    loop = threading.Thread(target=web_mode.run_live_loop, args=(settings, live, stopping), daemon=True)
    loop.start()
    try:
        wait_until(lambda: live.state == "failed", timeout=20, what="the output to fail")
        s = client.get("/api/v1/live/status").json()
        assert s["failed"] == "output" and "virtual camera" in s["error"] and s["camera"] == str(clip), s
        client.post("/api/v1/live/camera", json={"camera": str(clip)})  # "Try again"
        wait_until(lambda: len(built) == 2 and live.state == "failed", timeout=20, what="the retry")
    finally:
        stopping.set()
        live.close()
        loop.join(10)
    live = LiveHandle("7")
    live.detach("failed", "cannot open camera 7")
    assert live.failed_part == "camera"
    live.request_restart("1")
    assert live.failed_part == ""


def test_viewers_that_keep_reading_keep_their_places(tmp_path, monkeypatch):
    """The other side of giving a stalled viewer's place away: a stream that goes on taking frames
    is never counted as stalled, however long it runs."""
    import socket

    from realtime import remote
    from web import WebServer

    monkeypatch.setattr(remote, "STALLED_VIEWER_S", 0.5)
    live = LiveHandle("synthetic")
    live.attach(object())
    publishing = threading.Event()

    def publish():
        while not publishing.is_set():
            live.publish(np.full((72, 128, 3), 90, np.uint8))
            time.sleep(0.03)

    threading.Thread(target=publish, daemon=True).start()
    server = WebServer(unused_maker(), live, WebOptions(port=_free_port(), backgrounds_dir=str(tmp_path),
                                                        gradio=False))
    server.start()
    socks, reading = [], threading.Event()

    def read(sock):
        while not reading.is_set():
            try:
                if not sock.recv(65536):
                    return
            except OSError:
                return

    try:
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", server.options.port), timeout=10)
            sock.sendall(b"GET /api/v1/live/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(64).split(b" ")[1] == b"200"
            socks.append(sock)
            threading.Thread(target=read, args=(sock,), daemon=True).start()
        time.sleep(2.0)  # four times the stalled limit
        late = socket.create_connection(("127.0.0.1", server.options.port), timeout=10)
        late.sendall(b"GET /api/v1/live/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert late.recv(64).split(b" ")[1] == b"503"  # the eight still watch
        late.close()
        assert live.watchers == 8
    finally:
        reading.set()
        publishing.set()
        for sock in socks:
            sock.close()
        server.stop()


def test_a_picture_named_like_an_alias_is_chosen_by_its_name(run):
    """Uploads named key, alpha or transparent were listed by those names, but choosing one (by the
    API, or a click on its thumbnail) gave the key green that transparent means live."""
    for name, color in (("key", (0, 0, 200)), ("alpha", (200, 0, 0))):
        ok, png = cv2.imencode(".png", np.full((90, 160, 3), color, np.uint8))
        r = run.client.post("/api/v1/live/backgrounds", files={"file": (f"{name}.png", png.tobytes(), "image/png")})
        assert r.status_code == 200 and r.json()["saved"] == f"{name}.png", r.text
        assert run.client.post("/api/v1/live/background", json={"background": name}).json() == {"background": name}
        assert np.allclose(output_color(run), color, atol=40)
    r = run.client.post("/api/v1/live/background", json={"background": "transparent"})
    assert r.json() == {"background": "key green"}  # no picture of that name: the key green, as before


def test_a_thumbnail_is_made_without_a_word_in_the_log(run, caplog):
    """Uploading a 1920x1079 picture printed "beach.jpg is 1920x1079; using it at most 640 px per
    side": the thumbnail's size, read as if the background itself were shrunk."""
    import logging

    ok, jpeg = cv2.imencode(".jpg", np.full((1079, 1920, 3), 120, np.uint8))
    assert run.client.post("/api/v1/live/backgrounds", files={"file": ("beach.jpg", jpeg.tobytes())}).status_code == 200
    entry = next(e for e in run.client.get("/api/v1/live/backgrounds").json() if e["name"] == "beach")
    with caplog.at_level(logging.INFO):
        assert run.client.get(entry["thumbnail"]).status_code == 200
    assert "640 px" not in caplog.text


def test_a_picture_uploaded_as_a_video_is_refused(run):
    """A JPEG named .mp4 was saved, and choosing it cut the output to about 4 fps: the 1-frame
    "video" was opened again on every frame."""
    ok, jpeg = cv2.imencode(".jpg", np.full((90, 160, 3), 90, np.uint8))
    r = run.client.post("/api/v1/live/backgrounds", files={"file": ("still.mp4", jpeg.tobytes(), "video/mp4")})
    assert r.status_code == 415 and "this is a picture (JPEG), not a video" in r.json()["error"], r.text
    assert not (run.folder / "still.mp4").exists()
    # raw MPEG-1 video (Pillow knows its header as "MPEG") is a video: saved
    clip = run.folder.parent / "raw.m1v"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"PIM1"), 25, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    r = run.client.post("/api/v1/live/backgrounds", files={"file": ("clip.mpg", clip.read_bytes(), "video/mpeg")})
    assert r.status_code == 200 and r.json()["saved"] == "clip.mpg", r.text


def test_a_camera_of_other_digits_is_a_400(tmp_path):
    """"²".isdigit() is true and int() refuses it: the API answered 500."""
    live = LiveHandle("7")
    live.detach("failed", "cannot open camera 7")
    app = create_app(unused_maker(), live, WebOptions(backgrounds_dir=str(tmp_path), gradio=False), UploadFolder())
    client = TestClient(app, base_url="http://127.0.0.1")
    for bad in ("²", "１", "٣"):
        r = client.post("/api/v1/live/camera", json={"camera": bad})
        assert r.status_code == 400 and "webcam index" in r.json()["error"], (bad, r.text)


def test_a_retried_run_keeps_the_view_and_background_chosen(tmp_path):
    """Retrying after the source ended (or a camera failed) reset the background and the view
    chosen in the panel to the command line's."""
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    with LiveRun(folder) as first:
        live = first.live
        live.call(lambda p: p.library.use(ColorBackground((48, 32, 16), name="#102030")))
        live.call(lambda p: setattr(p.state, "view", "matte"))
        live.call(lambda p: p.library.set_blur_strength(30.0))
        live.call(lambda p: setattr(p.state, "mirror", False))
    assert live.state == "stopped"
    second = LiveRun(folder)
    second.live = live  # the server's one handle
    second.pipeline.remote = live
    live.attach(second.pipeline)
    state, library = second.pipeline.state, second.pipeline.library
    assert (state.view, state.mirror, library.current_name, library.blur_strength) == ("matte", False, "#102030", 30.0)
    live.detach("ended")
    live.attach(LiveRun(folder).pipeline)  # and again: the choice is kept across several retries
    assert live.pipeline.library.current_name == "#102030" and live.pipeline.state.view == "matte"
