"""Hotkeys from the terminal when there is no window (a real pseudo-terminal)."""

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")


def read_until(fd, text, timeout=60):
    buffer = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096).decode(errors="replace")
            except OSError:
                break
            buffer += chunk
            if text in buffer:
                return buffer
    raise AssertionError(f"{text!r} not seen in:\n{buffer[-3000:]}")


def live_in_terminal(reference_ckpt, vlog_path):
    """``live.py --no-window`` on a real pseudo-terminal: ``(process, master fd)``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                             "--weights", str(reference_ckpt), "--inference-size", "64", "--no-window",
                             "--background", "white", "--backgrounds-dir", str(ROOT / "backgrounds")],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    os.close(slave)
    return proc, master


def finish(proc, master):
    if proc.poll() is None:
        proc.kill()
    os.close(master)


def test_terminal_hotkeys_switch_background_and_quit(reference_ckpt, vlog_path):
    proc, master = live_in_terminal(reference_ckpt, vlog_path)
    try:
        read_until(master, "Keys:")
        os.write(master, b"n")
        read_until(master, "background: gray")
        os.write(master, b"3")
        read_until(master, "background:")
        os.write(master, b"q")
        proc.wait(timeout=10)
        assert proc.returncode == 0
    finally:
        finish(proc, master)


def test_arrow_keys_switch_and_only_a_lone_esc_quits(reference_ckpt, vlog_path):
    """Arrows arrive as ESC [ C: they must switch backgrounds, not end the call; F5 and Home do nothing."""
    proc, master = live_in_terminal(reference_ckpt, vlog_path)
    try:
        read_until(master, "Keys:")
        os.write(master, b"\x1b[C")              # Right
        read_until(master, "background: gray")
        os.write(master, b"\x1b[D")              # Left
        read_until(master, "background: white")
        os.write(master, b"\x1b[15~\x1b[H\x1bOP")  # F5, Home, F1: ignored
        time.sleep(0.5)
        assert proc.poll() is None, "an escape sequence ended the run"
        os.write(master, b"\x1bOC")              # Right in application-cursor mode
        read_until(master, "background: gray")
        os.write(master, b"\x1b")                # a lone Esc quits
        proc.wait(timeout=10)
        assert proc.returncode == 0
    finally:
        finish(proc, master)


def test_ctrl_c_again_while_stopping_leaves_a_playable_recording_and_a_sane_terminal(reference_ckpt, vlog_path,
                                                                                     tmp_path):
    """An impatient user presses Ctrl-C again and again: the stop still finalises the recording and gives
    the terminal its echo and line mode back (a KeyboardInterrupt in the middle of closing did neither)."""
    import signal
    import termios

    import cv2

    out = tmp_path / "call.mp4"
    master, slave = pty.openpty()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # the child must get Ctrl-C's default
    try:
        proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                                 "--weights", str(reference_ckpt), "--inference-size", "64", "--no-window",
                                 "--background", "white", "--record", str(out)],
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                env={**os.environ, "MODNET_OFFLINE": "1"})
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        read_until(master, "Keys:")
        assert not termios.tcgetattr(slave)[3] & termios.ECHO, "the run should have taken the terminal's echo"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 100_000):
            time.sleep(0.2)
        for _ in range(150):  # Ctrl-C every 10 ms until it has ended
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGINT)
            time.sleep(0.01)
        proc.wait(timeout=20)
        lflag = termios.tcgetattr(slave)[3]
        assert lflag & termios.ECHO and lflag & termios.ICANON, "the terminal was left without echo or line mode"
        cap = cv2.VideoCapture(str(out))
        assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 10, "the recording is not playable"
        assert cap.read()[0]
    finally:
        finish(proc, master)
        os.close(slave)


def live_on_its_own_terminal(reference_ckpt, vlog_path, *extra):
    """``live.py --no-window`` in a session of its own whose controlling terminal is a pseudo-terminal,
    as a shell's window runs it: closing the window hangs the terminal up; Ctrl-Z and Ctrl-\\ signal
    the foreground group. ``(process, master fd, the terminal's path)``."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    path = os.ttyname(slave)

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                             "--weights", str(reference_ckpt), "--inference-size", "64", "--no-window",
                             "--background", "white", "--backgrounds-dir", str(ROOT / "backgrounds"), *map(str, extra)],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True, preexec_fn=own_terminal,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    os.close(slave)
    return proc, master, path


def assert_playable(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) > 5, "the recording is not playable"


def wait_for_recording(path, size=50_000, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not path.exists() or path.stat().st_size < size):
        time.sleep(0.2)


def test_closing_the_terminal_finishes_the_recording(reference_ckpt, vlog_path, tmp_path):
    """The terminal window closed mid-call: restoring its mode failed (EIO) in the middle of the stop,
    the process aborted and the recording had no index."""
    out = tmp_path / "call.mp4"
    proc, master, _ = live_on_its_own_terminal(reference_ckpt, vlog_path, "--record", out)
    try:
        read_until(master, "Keys:")
        wait_for_recording(out)
        os.close(master)  # the window closes: SIGHUP, and the terminal reads and writes fail from now on
        master = None
        assert proc.wait(timeout=30) == 0
        assert_playable(out)
    finally:
        if proc.poll() is None:
            proc.kill()
        if master is not None:
            os.close(master)


def test_ctrl_backslash_stops_like_ctrl_c(reference_ckpt, vlog_path, tmp_path):
    import termios

    out = tmp_path / "call.mp4"
    proc, master, path = live_on_its_own_terminal(reference_ckpt, vlog_path, "--record", out)
    try:
        read_until(master, "Keys:")
        wait_for_recording(out)
        os.write(master, b"\x1c")  # Ctrl-\: SIGQUIT (it lost the recording and left the terminal without echo)
        assert proc.wait(timeout=30) == 0
        assert_playable(out)
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            lflag = termios.tcgetattr(fd)[3]
        finally:
            os.close(fd)
        assert lflag & termios.ECHO and lflag & termios.ICANON
    finally:
        finish(proc, master)


def test_keys_work_again_after_ctrl_z_and_fg(reference_ckpt, vlog_path):
    """Ctrl-Z, then ``fg``: the shell gives the terminal its line mode back while the run is stopped;
    the keys were then echoed and kept until Enter instead of acting."""
    import signal
    import termios

    proc, master, path = live_on_its_own_terminal(reference_ckpt, vlog_path)
    try:
        read_until(master, "Keys:")
        os.write(master, b"\x1a")  # Ctrl-Z: the run stops
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and open(f"/proc/{proc.pid}/stat").read().split(")")[1].split()[0] != "T":
            time.sleep(0.05)
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)  # what a shell does when a job stops: line mode and echo
        try:
            attrs = termios.tcgetattr(fd)
            attrs[3] |= termios.ICANON | termios.ECHO
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
        finally:
            os.close(fd)
        proc.send_signal(signal.SIGCONT)  # fg
        time.sleep(1.0)
        os.write(master, b"n")
        read_until(master, "background: gray", timeout=15)
        os.write(master, b"q")
        assert proc.wait(timeout=20) == 0
    finally:
        finish(proc, master)


def test_the_key_reader_waits_in_the_background_and_survives_it(monkeypatch):
    """Ctrl-Z, bg, fg: reading the terminal from the background failed (EIO) and the key reader
    ended for good; now it leaves the keys to the shell while in the background and reads again after."""
    import errno
    import threading

    import realtime.controls as controls

    master, slave = pty.openpty()
    foreground = threading.Event()
    foreground.set()
    monkeypatch.setattr(controls, "_foreground", lambda fd: foreground.is_set())
    real_read, failed = os.read, []

    def read(fd, n):
        if not foreground.is_set():  # what a read from the background gets when it is not stopped
            failed.append(fd)
            raise OSError(errno.EIO, "Input/output error")
        return real_read(fd, n)

    monkeypatch.setattr(controls.os, "read", read)
    stdin = open(slave, closefd=False)
    monkeypatch.setattr(controls.sys, "stdin", stdin)
    stop = threading.Event()
    keys = controls.TerminalKeys(stop)
    keys.enabled = True
    keys.start()
    try:
        os.write(master, b"n")
        deadline = time.monotonic() + 5
        while not keys.keys.qsize() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keys.drain() == ["n"]
        foreground.clear()  # bg: the shell reads the terminal now
        os.write(master, b"x")
        time.sleep(0.5)
        assert keys.is_alive() and keys.drain() == []  # (a read caught in the switch failed: survived)
        real_read(slave, 64)  # (the shell took the x)
        foreground.set()  # fg
        os.write(master, b"p")
        deadline = time.monotonic() + 5
        while not keys.keys.qsize() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert keys.drain() == ["p"]
    finally:
        stop.set()
        keys.join(5)
        keys.restore()
        os.close(master)
        os.close(slave)


def test_a_burst_of_keys_is_carried_out_whole(reference_ckpt, vlog_path):
    """Keys beyond 32 in one burst (pasted, or tmux send-keys) were dropped without a word."""
    proc, master = live_in_terminal(reference_ckpt, vlog_path)
    try:
        read_until(master, "Keys:")
        os.write(master, b"n" * 60)
        seen, deadline = "", time.monotonic() + 60
        while seen.count("background:") < 60 and time.monotonic() < deadline:
            seen += read_until(master, "background:")
        assert seen.count("background:") == 60, seen.count("background:")
        os.write(master, b"q")
        proc.wait(timeout=10)
    finally:
        finish(proc, master)


@pytest.mark.parametrize("key", [b"q", b"\x1b"], ids=["q", "Esc"])
def test_q_stops_the_web_server_while_no_live_run_goes(tmp_path, key):
    """No camera (the default `--web` on a machine without one), or the source ended: q and Esc
    only echoed, and the server ran on until Ctrl-C, although the README says they stop it."""
    import socket

    from conftest import MODELS, need

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--web", "--no-window", "--camera", "97",
                             "--port", str(port), "--model", "selfie", "--weights",
                             str(need(MODELS / "selfie_segmentation.onnx"))],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True, cwd=tmp_path,
                            env={**os.environ, "MODNET_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    os.close(slave)
    try:
        read_until(master, "q or Esc here (or Ctrl-C) stops the server", timeout=120)
        os.write(master, key)
        proc.wait(timeout=15)
        assert proc.returncode == 0
    finally:
        finish(proc, master)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="named pipes are waited for on Linux")
def test_ctrl_c_stops_a_run_waiting_for_a_named_pipe_and_a_writer_is_read(reference_ckpt, tmp_path):
    """A named pipe with nothing writing into it as --source: OpenCV's open blocked, silent and
    deaf to Ctrl-C (only SIGTERM ended it). The run now says it waits, and Ctrl-C stops it.
    Once something writes into the pipe its video is read, also when the writer has gone before
    OpenCV opens it; a writer that leaves a few bytes that are no video is one error line, not a
    hang; --loop is refused (a pipe cannot be played again)."""
    import fcntl
    import signal
    import termios

    import cv2
    import numpy as np

    pipe = tmp_path / "feed"
    os.mkfifo(pipe)
    args = [sys.executable, str(ROOT / "live.py"), "--source", str(pipe), "--weights", str(reference_ckpt),
            "--inference-size", "64", "--no-window"]
    env = {**os.environ, "MODNET_OFFLINE": "1"}
    master, slave = pty.openpty()

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # the child must get Ctrl-C's default
    try:
        proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                preexec_fn=own_terminal, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
        os.close(slave)
    try:
        read_until(master, "waiting for something to write into the pipe", timeout=30)
        os.write(master, b"\x03")  # Ctrl-C
        assert proc.wait(timeout=20) == 130
    finally:
        finish(proc, master)

    def fed(data: bytes, *extra):
        proc = subprocess.Popen([*args, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            time.sleep(1)
            with open(pipe, "wb") as feed:  # (waits for the run's reader)
                feed.write(data)
            _, err = proc.communicate(timeout=120)
            return proc.returncode, err
        finally:
            if proc.poll() is None:
                proc.kill()

    small = tmp_path / "small.avi"  # smaller than a pipe's buffer: its writer is gone before OpenCV opens it
    writer = cv2.VideoWriter(str(small), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for level in range(0, 240, 30):
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.release()
    code, err = fed(small.read_bytes(), "--every-frame", "--record", str(tmp_path / "out.mp4"))
    assert code == 0 and "recording saved" in err and "(8 frames)" in err, err
    code, err = fed(os.urandom(100), "--every-frame", "--record", str(tmp_path / "out2.mp4"))
    assert code == 2 and "cannot open video" in err and "Traceback" not in err, err
    r = subprocess.run([*args, "--loop"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "is a pipe: it cannot be played again (--loop)" in r.stderr, r.stderr
