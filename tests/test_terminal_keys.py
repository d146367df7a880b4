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


def test_terminal_hotkeys_switch_background_and_quit(reference_ckpt, vlog_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--source", str(vlog_path), "--loop",
                             "--weights", str(reference_ckpt), "--inference-size", "64", "--no-window",
                             "--background", "white", "--backgrounds-dir", str(ROOT / "backgrounds")],
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    os.close(slave)
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
        if proc.poll() is None:
            proc.kill()
        os.close(master)
