"""A real preview window under Xvfb, driven with real key presses (xdotool) and screenshots."""

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")
TITLE = "MODNet Live"


@pytest.fixture(scope="module")
def display():
    for number in range(90, 110):
        if not os.path.exists(f"/tmp/.X11-unix/X{number}") and not os.path.exists(f"/tmp/.X{number}-lock"):
            break
    name = f":{number}"
    xvfb = subprocess.Popen(["Xvfb", name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield name
    xvfb.terminate()
    xvfb.wait(5)


def screenshot(display):
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def find_window(env, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["xdotool", "search", "--name", TITLE], env=env, capture_output=True, text=True)
        if r.stdout.strip():
            return r.stdout.split()[0]
        time.sleep(0.3)
    raise AssertionError("the preview window never appeared")


def key(env, window, *keys):
    subprocess.run(["xdotool", "key", "--window", window, *keys], env=env, check=True)


def start(display, reference_ckpt, vlog_path, tmp_path, *extra):
    env = {**os.environ, "DISPLAY": display, "MODNET_OFFLINE": "1"}
    log = open(tmp_path / "live.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                             "--weights", str(reference_ckpt), "--inference-size", "128",
                             "--backgrounds-dir", str(ROOT / "backgrounds"), *extra],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    return env, proc


def wait_for(path, text, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.1)
    return False


def test_window_hotkeys_hud_and_quit(display, reference_ckpt, vlog_path, tmp_path):
    env, proc = start(display, reference_ckpt, vlog_path, tmp_path, "--background", "white")
    log = tmp_path / "live.log"
    try:
        window = find_window(env)
        time.sleep(3)
        shot = screenshot(display)
        # HUD: a darkened box in the top-left corner with white text in it
        hud = shot[10:70, 10:250]
        assert (hud.max(axis=2) > 240).mean() > 0.01 and np.median(hud) < 120
        key(env, window, "n")
        assert wait_for(log, "background: gray"), log.read_text()[-2000:]
        key(env, window, "n")
        assert wait_for(log, "background: blue")
        key(env, window, "m")  # matte view: the picture turns gray
        time.sleep(1.5)
        matte = screenshot(display)[100:700, 300:1200].astype(int)
        assert np.abs(matte[:, :, 0] - matte[:, :, 1]).mean() < 2 and np.abs(matte[:, :, 1] - matte[:, :, 2]).mean() < 2
        key(env, window, "m", "h")
        time.sleep(1.5)
        helped = screenshot(display)
        assert (helped[250:600, 10:240].max(axis=2) > 240).mean() > 0.01  # the help panel's text
        sent = time.monotonic()
        key(env, window, "q")
        proc.wait(timeout=10)
        assert time.monotonic() - sent < 2.5
        assert proc.returncode == 0
        assert "stopped: quit" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_close_button_and_escape(display, reference_ckpt, vlog_path, tmp_path):
    env, proc = start(display, reference_ckpt, vlog_path, tmp_path, "--record", str(tmp_path / "rec.mp4"))
    try:
        window = find_window(env)
        time.sleep(2)
        subprocess.run([sys.executable, str(ROOT / "tests" / "xclose.py"), window], env=env, check=True)
        proc.wait(timeout=10)
        assert proc.returncode == 0 and "stopped: window closed" in (tmp_path / "live.log").read_text()
        import cv2

        assert cv2.VideoCapture(str(tmp_path / "rec.mp4")).read()[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    env, proc = start(display, reference_ckpt, vlog_path, tmp_path)
    try:
        window = find_window(env)
        time.sleep(2)
        key(env, window, "Escape")
        proc.wait(timeout=10)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
