"""Hotkeys: one table for the preview window and the terminal, plus the HUD drawing.

Without a window, a small thread reads single key presses from the terminal
(when standard input is one) into a bounded queue the render loop drains.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading

import cv2
import numpy as np

log = logging.getLogger(__name__)

# (keys, action, help text). Keys are characters; arrows come from the window only.
HOTKEYS: list[tuple[str, str, str]] = [
    ("n", "next", "next background"),
    ("p", "previous", "previous background"),
    ("123456789", "pick", "pick background 1-9"),
    ("b", "blur", "blur on/off"),
    ("m", "matte", "show the matte"),
    ("o", "original", "show the original"),
    ("f", "mirror", "mirror the preview"),
    ("s", "snapshot", "save a snapshot"),
    (" ", "pause", "pause / resume (space)"),
    ("d", "hud", "HUD on/off"),
    ("h?", "help", "this help"),
    ("q\x1b", "quit", "quit (q or Esc)"),
]

# OpenCV waitKeyEx codes for arrows (GTK/Qt on Linux, Windows, macOS).
_ARROWS = {65363: "next", 2555904: "next", 63235: "next", 65361: "previous", 2424832: "previous",
           63234: "previous"}


def action_for_char(ch: str) -> tuple[str, int] | None:
    """Map a typed character to ``(action, argument)``; argument is the 0-based pick index."""
    if not ch:
        return None
    for keys, action, _ in HOTKEYS:
        if ch in keys or (ch.isalpha() and ch.lower() in keys and action != "pick"):
            return action, (int(ch) - 1 if action == "pick" else 0)
    return None


def action_for_keycode(code: int) -> tuple[str, int] | None:
    if code is None or code < 0:
        return None
    if code in _ARROWS:
        return _ARROWS[code], 0
    low = code & 0xFF
    if code > 0xFFFF and low not in (27,):  # other special keys
        return None
    return action_for_char(chr(low))


def help_lines() -> list[str]:
    shown = {" ": "space", "\x1b": "Esc"}
    lines = []
    for keys, _, text in HOTKEYS:
        label = "1-9" if keys == "123456789" else "/".join(shown.get(k, k) for k in keys)
        if keys == "n":
            label = "n/Right"
        elif keys == "p":
            label = "p/Left"
        lines.append(f"{label:8s} {text}")
    return lines


class TerminalKeys(threading.Thread):
    """Reads key presses from a terminal in cbreak mode; a no-op when stdin is not a TTY."""

    def __init__(self, stop: threading.Event):
        super().__init__(name="terminal-keys", daemon=True)
        self.stop_event = stop
        self.keys: queue.Queue[str] = queue.Queue(maxsize=32)
        self.enabled = sys.stdin is not None and sys.stdin.isatty() and os.name == "posix"
        self._saved = None

    def start(self):
        if self.enabled:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            super().start()
            print("Keys: " + ", ".join(f"{k.split()[0]}={' '.join(k.split()[1:])}" for k in help_lines()),
                  file=sys.stderr)

    def run(self):
        import select

        fd = sys.stdin.fileno()
        while not self.stop_event.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                ch = os.read(fd, 1).decode(errors="ignore")
                try:
                    self.keys.put_nowait(ch)
                except queue.Full:
                    pass

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.keys.get_nowait())
            except queue.Empty:
                return out

    def restore(self):
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


def draw_panel(image: np.ndarray, lines: list[str], origin=(10, 10), scale: float | None = None) -> None:
    """Text lines on a translucent dark box, in place (BGR uint8)."""
    if not lines:
        return
    h = image.shape[0]
    scale = scale or max(0.4, h / 1400)
    thickness = 1 if scale < 0.8 else 2
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0] for t in lines]
    line_h = int(max(s[1] for s in sizes) * 1.8) + 2
    box_w = max(s[0] for s in sizes) + 16
    box_h = line_h * len(lines) + 10
    x0, y0 = origin
    x1, y1 = min(image.shape[1], x0 + box_w), min(h, y0 + box_h)
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for i, text in enumerate(lines):
        y = y0 + 6 + line_h * (i + 1) - line_h // 4
        cv2.putText(image, text, (x0 + 8, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)


def draw_notice(image: np.ndarray, text: str) -> np.ndarray:
    """A banner at the bottom of a copy of ``image`` (e.g. "camera lost - reconnecting")."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.5, h / 900)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    y1 = h - 10
    y0 = max(0, y1 - th - 20)
    x0 = max(0, (w - tw) // 2 - 12)
    x1 = min(w, x0 + tw + 24)
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1].astype(np.uint16) * 2 // 5).astype(np.uint8)
    cv2.putText(out, text, (x0 + 12, y1 - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 200, 255), 2, cv2.LINE_AA)
    return out
