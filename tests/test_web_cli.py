"""``python live.py --web`` and ID photos from the command line, run as a user runs them (real processes)."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import MODELS, NIGHT_SKY, PORTRAIT, ROOT, TWO_PEOPLE, VLOG, need

pytest.importorskip("fastapi")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nobody listens there any more (a server can bind it again; TIME_WAIT is fine)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def selfie_args() -> list[str]:
    return ["--model", "selfie", "--weights", str(need(MODELS / "selfie_segmentation.onnx"))]


def face_args() -> list[str]:
    return ["--face-weights", str(need(MODELS / "face_detection_short_range.onnx"))]


def get(url: str, headers: dict | None = None, timeout: float = 10):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def head(url: str):
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
    try:
        connection.request("HEAD", urllib.parse.urlsplit(url).path)
        r = connection.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        connection.close()


class Server:
    def __init__(self, args: list[str], tmp_path, port: int | None = None):
        self.port = port or free_port()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "MODNET_OFFLINE": "1"}
        self.log = open(tmp_path / f"server-{self.port}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--web", "--port", str(self.port),
                                      "--no-window", *args], cwd=tmp_path, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_state(self, states, headers=None, timeout=60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                code, body, _ = get(self.base + "/api/v1/live/status", headers, timeout=2)
                if code == 200 and json.loads(body)["state"] in states:
                    return json.loads(body)
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server never reached {states}: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(10)
        return code, time.monotonic() - started


def test_camera_that_cannot_open_leaves_the_studio_working_and_sigterm_stops_it(tmp_path):
    server = Server(["--camera", "97", *selfie_args()], tmp_path)
    try:
        status = server.wait_state(("failed",))
        assert "camera 97" in status["error"] and status["fps"] is None
        code, body, _ = get(server.base + "/api/v1/sizes")
        assert code == 200 and any(s["id"] == "passport" for s in json.loads(body))
        code, body, headers = get(server.base + "/")
        assert code == 200 and "text/html" in headers["content-type"]
        for route in ("/api/v1/sizes", "/api/v1/live/status", "/api/v1/health", "/live"):  # curl -I: 405 before
            code, body, headers = head(server.base + route)
            assert code == 200 and body == b"" and int(headers["content-length"]) > 0, (route, code, headers)
        code, _, headers = head(server.base + "/api/v1/live/stream.mjpg")  # endless: not answered as GET
        assert code == 405 and headers["allow"] == "GET"
    finally:
        code, took = server.stop()
    assert code == 0 and took < 2, (code, took, server.output())  # the README: within 2 s
    assert "studio and live panel: http://127.0.0.1:" in server.output()
    assert "Traceback" not in server.output()


def test_recording_is_finalised_when_the_run_ends_and_the_server_stops(tmp_path):
    target = tmp_path / "call.mp4"
    server = Server(["--source", str(need(VLOG)), "--record", str(target), "--duration", "4", *selfie_args()],
                    tmp_path)
    assert server.proc.wait(120) == 0, server.output()
    capture = cv2.VideoCapture(str(target))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) > 30
    capture.release()
    assert port_is_free(server.port)


def test_a_restarted_run_records_into_a_new_file(tmp_path):
    """--web --record: the clip ends, the Live tab starts it again; the first recording is kept
    and the second goes to call-2.mp4 (the file was opened again and truncated), the third, after an
    attempt on a camera that is not there, to call-3.mp4 (it went to call-2-2.mp4)."""
    target = tmp_path / "call.mp4"
    server = Server(["--source", str(need(VLOG)), "--record", str(target), *selfie_args()], tmp_path)

    def start(camera, state):
        request = urllib.request.Request(server.base + "/api/v1/live/camera", method="POST",
                                         data=json.dumps({"camera": camera}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()
        server.wait_state((state,), timeout=60)

    try:
        server.wait_state(("ended",), timeout=120)
        first = target.read_bytes()
        start(str(VLOG), "running")
        server.wait_state(("ended",), timeout=120)
        start("97", "failed")
        start(str(VLOG), "running")
        server.wait_state(("ended",), timeout=120)
    finally:
        server.stop()
    assert target.read_bytes() == first
    for name in ("call-2.mp4", "call-3.mp4"):
        recording = cv2.VideoCapture(str(tmp_path / name))
        assert recording.get(cv2.CAP_PROP_FRAME_COUNT) > 30, (name, server.output())
        recording.release()
    assert sorted(p.name for p in tmp_path.glob("call*")) == ["call-2.mp4", "call-3.mp4", "call.mp4"]


def test_beyond_loopback_every_request_needs_the_token(tmp_path):
    server = Server(["--host", "0.0.0.0", "--token", "s3cret-token", "--camera", "97", *selfie_args()], tmp_path)
    try:
        server.wait_state(("failed",), headers={"Authorization": "Bearer s3cret-token"})
        code, body, _ = get(server.base + "/api/v1/sizes")
        assert code == 401 and "token" in json.loads(body)["error"]
        assert get(server.base + "/")[0] == 401
        assert get(server.base + "/api/v1/sizes", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(server.base + "/api/v1/sizes", {"X-Token": "s3cret-token"})[0] == 200
        code, _, headers = get(server.base + "/api/v1/sizes?token=s3cret-token")
        assert code == 200 and "modnet_live_token=s3cret-token" in headers.get("set-cookie", "")
        assert get(server.base + "/api/v1/sizes", {"Cookie": "modnet_live_token=s3cret-token"})[0] == 200
    finally:
        server.stop()
    out = server.output()
    assert "?token=s3cret-token" in out and "beyond this computer" in out


def test_a_token_is_generated_when_none_is_given(tmp_path):
    server = Server(["--host", "0.0.0.0", "--camera", "97", *selfie_args()], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "?token=" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        token = server.output().split("?token=")[1].split()[0]
        assert len(token) >= 16
        assert get(server.base + "/api/v1/sizes")[0] == 401
        assert get(server.base + f"/api/v1/sizes?token={token}")[0] == 200
    finally:
        server.stop()


@pytest.mark.parametrize("args, fragment", [
    (["--token", "x"], "--token is for the web server"),
    (["--id-size", "passport"], "for ID photos"),
    (["--web", "--id-size", "passport"], "for ID photos"),
    (["--image", "a.jpg", "--output", "b.jpg", "--max-kb", "20"], "add --id-size"),
    (["--image", "a.jpg", "--output", "b.jpg", "--dpi", "600"], "add --id-size"),
    (["--web", "--port", "0"], "--port"),
    (["--web", "--max-upload-mb", "-1"], "--max-upload-mb"),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", "99x"], "--id-size"),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", "passport", "--sheet", "napkin"], "--sheet"),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", "passport", "--sheet", ""], "--sheet: "),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", "passport", "--face-weights", "nope.onnx"],
     "--face-weights"),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", "passport", "--face-weights", "."],
     "--face-weights . is a folder: give the face model file in it"),
    (["--image", "a.jpg", "--output", "b.jpg", "--id-size", ""], "--id-size is empty"),  # (was: no ID size at all)
])
def test_bad_web_and_id_options_are_usage_errors(tmp_path, args, fragment):
    r = subprocess.run([sys.executable, str(ROOT / "live.py"), *args], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr and "Traceback" not in r.stderr


def test_a_taken_port_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        temp = tmp_path / "temp"
        temp.mkdir()
        r = subprocess.run([sys.executable, str(ROOT / "live.py"), "--web", "--port", str(port), "--no-window",
                            "--camera", "97", *selfie_args()], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60, env={**os.environ, "TMPDIR": str(temp)})
    assert r.returncode == 1 and f"{port}" in r.stderr and "--port" in r.stderr
    assert "Traceback" not in r.stderr
    assert not [p.name for p in temp.iterdir() if p.name.startswith("modnet-live-web-")]  # its upload folder went


def run_cli(tmp_path, *args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "live.py"), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, env={**os.environ, **(env or {})})


def test_id_photo_from_the_command_line(tmp_path):
    out = tmp_path / "passport.jpg"
    r = run_cli(tmp_path, "--image", str(need(PORTRAIT)), "--output", str(out), "--id-size", "passport",
                "--dpi", "300", "--max-kb", "50", "--background", "blue", *selfie_args(), *face_args())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    data = out.read_bytes()
    assert len(data) <= 50 * 1024
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (413, 531) and im.format == "JPEG"
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_an_upside_down_picture_is_refused_not_framed_upside_down(tmp_path):
    """A phone photo that lost its orientation tag: the ID photo would have the body on top."""
    upside = tmp_path / "upside.jpg"
    cv2.imwrite(str(upside), cv2.rotate(cv2.imread(str(need(PORTRAIT))), cv2.ROTATE_180))
    out = tmp_path / "passport.jpg"
    r = run_cli(tmp_path, "--image", str(upside), "--output", str(out), "--id-size", "passport",
                *selfie_args(), *face_args())
    assert r.returncode == 2, r.stderr
    assert "upside down" in r.stderr and "turn the picture upright" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_print_sheet_from_the_command_line(tmp_path):
    out = tmp_path / "sheet.png"
    r = run_cli(tmp_path, "--image", str(need(PORTRAIT)), "--output", str(out), "--id-size", "1inch",
                "--sheet", "4x6in", *selfie_args(), *face_args())
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert sorted(im.size) == [1200, 1800] and im.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    made = out.read_bytes()
    for extra in ([], ["--sheet", "4x6in"]):  # an existing ID photo or sheet is kept, before a model loads
        r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(out), "--id-size", "1inch", *extra,
                    *selfie_args(), *face_args())
        assert r.returncode == 2 and "--overwrite" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert out.read_bytes() == made
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(out), "--id-size", "1inch", "--overwrite",
                *selfie_args(), *face_args())
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.size == (295, 413)  # the single ID photo replaced the sheet
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(tmp_path / "passports.jpg"), "--id-size",
                "passport", "--sheet", "4x6in", *selfie_args(), *face_args())
    # a sheet's note names its picture, as a single photo's does (it said "WARNING: the picture ...")
    assert r.returncode == 0 and f"WARNING: {PORTRAIT.name}: the picture does not reach" in r.stderr, r.stderr


def test_a_sheet_of_a_folder_leaves_out_a_picture_without_a_face_and_names_it(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "me.jpg").write_bytes(PORTRAIT.read_bytes())
    (folder / "sky.jpg").write_bytes(need(NIGHT_SKY).read_bytes())
    (folder / "notes.jpg").write_text("not a picture")
    out = tmp_path / "sheet.jpg"
    r = run_cli(tmp_path, "--image", str(folder), "--output", str(tmp_path / "no-such-folder" / "sheet.jpg"),
                "--id-size", "passport", "--sheet", "4x6in", *selfie_args(), *face_args())
    assert r.returncode == 2 and "output folder does not exist" in r.stderr, r.stderr  # before any work
    r = run_cli(tmp_path, "--image", str(folder), "--output", str(out), "--id-size", "passport",
                "--sheet", "4x6in", *selfie_args(), *face_args())
    # as a batch of photos: exit code 1 when some pictures are missing (it was 0)
    assert r.returncode == 1 and "2 of 3 pictures are not on the sheet" in r.stderr, r.stderr
    assert "left out sky.jpg" in r.stderr and "left out notes.jpg" in r.stderr and out.is_file()
    assert "not on the sheet: notes.jpg, sky.jpg" in r.stderr, r.stderr
    (folder / "notes.jpg").unlink()
    (folder / "me.jpg").unlink()  # none left that can make a photo: refused, naming why
    r = run_cli(tmp_path, "--image", str(folder), "--output", str(tmp_path / "none.jpg"), "--id-size",
                "passport", "--sheet", "4x6in", *selfie_args(), *face_args())
    assert r.returncode == 2 and "face" in r.stderr and not (tmp_path / "none.jpg").exists(), r.stderr


def test_a_sheet_names_the_pictures_it_has_no_room_for_and_does_not_read_them(tmp_path):
    """Ten good pictures on a sheet of eight: the last two were silently missing (exit 0)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(need(PORTRAIT).read_bytes())
    (folder / "c.jpg").write_text("never read: there is no room for it")
    out = tmp_path / "sheet.jpg"
    r = run_cli(tmp_path, "--image", str(folder), "--output", str(out), "--id-size", "passport",
                "--sheet", "45x55mm", *selfie_args(), *face_args())  # room for one passport photo
    assert r.returncode == 1 and out.is_file(), r.stderr
    assert "the sheet holds 1 photo: left out b.jpg, c.jpg (no room" in r.stderr, r.stderr
    assert "2 of 3 pictures are not on the sheet: b.jpg, c.jpg" in r.stderr
    assert "readable" not in r.stderr  # c.jpg was not decoded


def test_a_sheet_into_a_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """It made the whole sheet, then failed to write it with exit 1 (a single photo: exit 2 at once)."""
    import app.photo_mode
    from app.cli import main

    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(app.photo_mode.os, "access", lambda path, mode: False if Path(path) == locked
                        else real(path, mode))
    assert main(["--image", str(need(PORTRAIT)), "--output", str(locked / "sheet.jpg"), "--id-size", "passport",
                 "--sheet", "4x6in", *selfie_args(), *face_args()]) == 2
    assert f"output folder is not writable: {locked}" in capsys.readouterr().err


def test_a_batch_where_every_picture_fails_says_why_and_leaves_no_empty_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_text("not a picture")
    (folder / "b.png").write_bytes(b"")
    for extra in ([], ["--id-size", "passport", *face_args()]):
        out = tmp_path / "results"
        r = run_cli(tmp_path, "--image", str(folder), "--output", str(out), *extra, *selfie_args())
        assert r.returncode == 1 and "2 of 2 pictures failed: a.jpg: " in r.stderr and "; b.png: " in r.stderr, \
            r.stderr
        assert not out.exists()  # made by the run, left empty: gone
        out.mkdir()
        r = run_cli(tmp_path, "--image", str(folder), "--output", str(out), *extra, *selfie_args())
        assert r.returncode == 1 and out.is_dir()  # the user's own folder stays
        out.rmdir()


def test_id_photo_on_a_picture_background_from_the_command_line(tmp_path):
    back = tmp_path / "beach.png"
    cv2.imwrite(str(back), np.full((400, 600, 3), (200, 30, 30), np.uint8))  # a deep blue picture
    out = tmp_path / "id.jpg"
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(out), "--id-size", "passport",
                "--background", str(back), *selfie_args(), *face_args())
    assert r.returncode == 0, r.stderr
    photo = cv2.imread(str(out))
    assert np.abs(photo[5, 5].astype(int) - (200, 30, 30)).max() < 40  # the picture behind the person
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(back), "--id-size", "passport",
                "--background", str(back), "--overwrite", *selfie_args(), *face_args())
    assert r.returncode == 2 and "overwrite" in r.stderr  # never over its own background picture
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(tmp_path / "x.jpg"), "--id-size", "passport",
                "--background", str(tmp_path / "nope.png"), *selfie_args(), *face_args())
    assert r.returncode == 2 and "nope.png" in r.stderr and "Traceback" not in r.stderr


def test_id_photo_errors_and_fallbacks(tmp_path):
    r = run_cli(tmp_path, "--image", str(need(TWO_PEOPLE)), "--output", str(tmp_path / "x.jpg"),
                "--id-size", "passport", *selfie_args(), *face_args())
    assert r.returncode == 2 and "face" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.jpg").exists()
    copy = tmp_path / "me.jpg"
    copy.write_bytes(PORTRAIT.read_bytes())
    r = run_cli(tmp_path, "--image", str(copy), "--output", str(copy), "--id-size", "passport", *selfie_args())
    assert r.returncode == 2 and "overwrite" in r.stderr and copy.read_bytes() == PORTRAIT.read_bytes()
    # no face model (offline, none downloaded, none given): framed from the matte alone, with a warning
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(tmp_path / "matte.jpg"), "--id-size",
                "passport", "--offline", "--weights-dir", str(tmp_path / "empty"), *selfie_args())
    assert r.returncode == 0, r.stderr
    assert "no face model" in r.stderr
    assert r.stderr.count("no face model") == 2, r.stderr  # why, once; how the photo was framed, once
    with Image.open(tmp_path / "matte.jpg") as im:
        assert im.size == (413, 531)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")
def test_terminal_keys_and_the_panel_share_the_run_and_q_stops_the_server(tmp_path):
    import pty

    from test_terminal_keys import read_until

    port = free_port()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--web", "--port", str(port), "--no-window",
                             "--source", str(need(VLOG)), "--loop", "--background", "white",
                             "--backgrounds-dir", str(tmp_path / "bg"), *selfie_args()],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=tmp_path,
                            env={**os.environ, "MODNET_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    os.close(slave)
    base = f"http://127.0.0.1:{port}"
    try:
        read_until(master, "Keys:")
        os.write(master, b"n")  # white -> gray, by the terminal key
        read_until(master, "background: gray")
        assert json.loads(get(base + "/api/v1/live/status")[1])["background"] == "gray"
        request = urllib.request.Request(base + "/api/v1/live/background", data=b'{"background": "blue"}',
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()
        os.write(master, b"n")  # the key goes on from where the panel left it: blue -> key green
        read_until(master, "background: key green")
        started = time.monotonic()
        os.write(master, b"q")
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 3
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_id_photos_of_a_folder_go_into_a_new_folder(tmp_path):
    pictures = tmp_path / "in"
    pictures.mkdir()
    (pictures / "me.jpg").write_bytes(need(PORTRAIT).read_bytes())
    out = tmp_path / "out" / "ids"
    r = run_cli(tmp_path, "--image", str(pictures), "--output", str(out), "--id-size", "35x45mm",
                *selfie_args(), *face_args())
    assert r.returncode == 0, r.stderr
    with Image.open(out / "me.jpg") as im:
        assert im.size == (413, 531)
    r = run_cli(tmp_path, "--image", str(PORTRAIT), "--output", str(tmp_path / "nowhere" / "x.jpg"),
                "--id-size", "passport", *selfie_args())
    assert r.returncode == 2 and "does not exist" in r.stderr


def _png_of_zeros(path, width: int, height: int) -> None:
    """A valid, tiny (about 150 KB) grey PNG of ``width`` x ``height`` black pixels: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(bytes((width + 1) * height), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_the_studio_refuses_a_huge_picture_from_its_header(tmp_path):
    """The studio's picture inputs (the webcam shot, the background picture) went through Gradio,
    which decoded a 144-megapixel picture (15 s, 1.4 GB) before the studio's own check refused it."""
    gradio_client = pytest.importorskip("gradio_client")
    bomb = tmp_path / "bomb.png"
    _png_of_zeros(bomb, 12000, 12000)
    server = Server(["--camera", "97", *selfie_args(), *face_args()], tmp_path)
    try:
        server.wait_state(("failed",))
        client = gradio_client.Client(server.base + "/", verbose=False)
        started = time.monotonic()
        _, _, message = client.predict(
            [gradio_client.handle_file(str(need(PORTRAIT)))], None, "ID photo", "picture", "#ffffff",
            gradio_client.handle_file(str(bomb)), "passport", "", 300, "jpg", 0, True, api_name="/make")
        took = time.monotonic() - started
        assert "picture too large" in message and "144 megapixels" in message, message
        assert took < 2, f"{took:.1f} s: the picture was decoded before it was checked (0.3 s when it is not)"
        _, _, message = client.predict(None, gradio_client.handle_file(str(bomb)), "ID photo", "white",
                                          "#ffffff", None, "passport", "", 300, "jpg", 0, True, api_name="/make")
        assert "webcam.jpg: picture too large" in message, message
    finally:
        server.stop()


def test_sigterm_while_the_live_run_starts_ends_the_server(reference_ckpt, tmp_path):
    """SIGTERM right after the server came up, while the live run was still being built (its model
    loading): it was ignored and the run went on until a second signal."""
    server = Server(["--source", str(need(VLOG)), "--loop", "--weights", str(reference_ckpt),
                     "--inference-size", "64", "--record", "call.mp4"], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "studio and live panel:" not in server.output() and time.monotonic() < deadline:
            assert server.proc.poll() is None, server.output()
            time.sleep(0.02)
        code, took = server.stop()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert code == 0 and took < 8, (code, took, server.output())
    assert "Traceback" not in server.output()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="named pipes are waited for on Linux")
def test_sigterm_stops_the_server_while_a_named_pipe_waits_for_its_writer(tmp_path):
    """``--web --source FIFO`` with nothing writing into the pipe: the studio works meanwhile, and
    SIGTERM stops the server (it went unheard: the pipe's wait watched for Ctrl-C alone)."""
    pipe = tmp_path / "feed"
    os.mkfifo(pipe)
    server = Server(["--source", str(pipe), *selfie_args()], tmp_path)
    try:
        deadline = time.monotonic() + 60
        while "waiting for something to write into the pipe" not in server.output():
            assert time.monotonic() < deadline and server.proc.poll() is None, server.output()
            time.sleep(0.2)
        code, body, _ = get(server.base + "/api/v1/sizes")
        assert code == 200 and any(s["id"] == "passport" for s in json.loads(body))
    finally:
        try:
            code, took = server.stop()
        finally:
            if server.proc.poll() is None:  # (a server deaf to SIGTERM is not left behind)
                server.proc.kill()
    assert code == 0 and took < 2, (code, took, server.output())
    assert "Traceback" not in server.output()
