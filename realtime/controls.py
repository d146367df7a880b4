"""Hotkeys: one table for the window and the terminal, key decoding, the view state and the actions.

Keys are named as single characters (``"n"``, ``" "``) or as ``"Right"``,
``"Left"`` and ``"Esc"``. The preview window reports OpenCV key codes; the
terminal (``--no-window``) reports bytes, where an arrow is the escape
sequence ``ESC [ C``: :class:`KeyDecoder` turns those back into key names, so
only a lone Esc quits and other sequences (F-keys, Home, ...) are ignored.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

from .console import say

log = logging.getLogger(__name__)


class Hotkey(NamedTuple):
    keys: tuple[str, ...]   # key names that trigger it
    action: str
    label: str              # how the help shows the keys
    text: str               # what it does


HOTKEYS: list[Hotkey] = [
    Hotkey(("n", "Right"), "next", "n/Right", "next background"),
    Hotkey(("p", "Left"), "previous", "p/Left", "previous background"),
    Hotkey(tuple("123456789"), "pick", "1-9", "pick a background by its number"),
    Hotkey(("b",), "blur", "b", "blur on/off"),
    Hotkey(("m",), "matte", "m", "show the matte"),
    Hotkey(("o",), "original", "o", "show the original"),
    Hotkey(("f",), "mirror", "f", "mirror the preview"),
    Hotkey(("s",), "snapshot", "s", "save a snapshot"),
    Hotkey((" ",), "pause", "space", "pause / resume"),
    Hotkey(("d",), "hud", "d", "HUD on/off"),
    Hotkey(("h", "?"), "help", "h/?", "this help"),
    Hotkey(("q", "Esc"), "quit", "q/Esc", "quit"),
]

# OpenCV waitKeyEx codes for arrows (GTK/Qt on Linux, Windows, macOS).
_KEYCODE_NAMES = {65363: "Right", 2555904: "Right", 63235: "Right",
                  65361: "Left", 2424832: "Left", 63234: "Left", 27: "Esc"}


def action_for_key(key: str | None) -> tuple[str, int] | None:
    """Map a key name to ``(action, argument)``; the argument is the 0-based pick index."""
    if not key:
        return None
    if len(key) == 1 and key.isalpha():
        key = key.lower()
    for hotkey in HOTKEYS:
        if key in hotkey.keys:
            return hotkey.action, (int(key) - 1 if hotkey.action == "pick" else 0)
    return None


def key_for_keycode(code: int | None) -> str | None:
    """An OpenCV ``waitKeyEx`` code as a key name (``None`` for keys without a hotkey).

    GTK puts modifier state (NumLock, CapsLock) above the low 16 bits; special keys
    (Home, F-keys) are codes above 255 and must not be read as their low byte.
    """
    if code is None or code < 0:
        return None
    if code in _KEYCODE_NAMES:
        return _KEYCODE_NAMES[code]
    base = code & 0xFFFF
    if base in _KEYCODE_NAMES:
        return _KEYCODE_NAMES[base]
    return chr(base) if 0 < base < 0x100 else None


class KeyDecoder:
    """Terminal bytes -> key names. Arrows arrive as ``ESC [ C`` (or ``ESC O C``), F-keys and Home as
    other escape sequences; a lone ESC is the Esc key.

    ``feed`` returns the keys completed by the new bytes; an ESC at the end of
    the input stays pending until more bytes arrive, or until :meth:`flush`
    (called when the terminal stayed quiet for a moment) reports it as Esc.
    """

    _ARROWS = {"A": "Up", "B": "Down", "C": "Right", "D": "Left"}

    def __init__(self) -> None:
        self._pending = ""

    @property
    def waiting(self) -> bool:
        """True while an ESC (or an unfinished sequence) waits for more bytes."""
        return bool(self._pending)

    def feed(self, data: bytes) -> list[str]:
        text = self._pending + data.decode("utf-8", errors="ignore")
        self._pending = ""
        keys, i = [], 0
        while i < len(text):
            ch = text[i]
            if ch != "\x1b":
                keys.append(ch)
                i += 1
                continue
            end = self._sequence_end(text, i)
            if end is None:  # incomplete: wait for the rest (or a quiet moment: a lone Esc)
                self._pending = text[i:]
                break
            sequence = text[i:end]
            if sequence == "\x1b\x1b":  # ESC ESC: the first one was a lone Esc
                keys.append("Esc")
                i += 1
                continue
            if len(sequence) == 3 and sequence[1] in "[O" and sequence[2] in self._ARROWS:
                keys.append(self._ARROWS[sequence[2]])
            i = end  # anything else (F-keys, Home, Alt+key, Alt+arrow) is ignored
        return keys

    def flush(self) -> list[str]:
        """Nothing more arrived: a pending lone ESC (or ESC ESC) is the Esc key."""
        pending, self._pending = self._pending, ""
        return ["Esc"] if pending and set(pending) == {"\x1b"} else []

    @staticmethod
    def _sequence_end(text: str, start: int) -> int | None:
        """Index just past the escape sequence starting at ``start``, or ``None`` if incomplete.

        ``ESC ESC`` followed by a sequence is that sequence with Alt (Meta) held: one
        sequence, ignored, not an Esc then an arrow.
        """
        if start + 1 >= len(text):
            return None
        kind = text[start + 1]
        if kind == "\x1b":
            if start + 2 >= len(text):
                return None  # ESC ESC: a lone Esc, or Alt + a sequence still arriving
            if text[start + 2] in "[O":
                inner = KeyDecoder._sequence_end(text, start + 1)
                return None if inner is None else inner
            return start + 2
        if kind == "[":  # CSI: parameters, then a final byte in @..~
            if start + 2 < len(text) and text[start + 2] == "[":  # Linux console F1-F5: ESC [ [ A..E
                return start + 4 if start + 3 < len(text) else None
            for j in range(start + 2, len(text)):
                if "\x40" <= text[j] <= "\x7e":
                    return j + 1
            return None
        if kind == "O":  # SS3: one more character (arrows in application mode, F1-F4)
            return start + 3 if start + 2 < len(text) else None
        return start + 2  # ESC + one character (Alt+key)


class TerminalKeys(threading.Thread):
    """Reads key presses from a terminal in cbreak mode; a no-op when stdin is not a TTY."""

    #: How long the terminal must stay quiet after an ESC for it to count as the Esc key.
    ESC_TIMEOUT_S = 0.05
    #: How often the terminal's mode is checked (and key mode set again after Ctrl-Z and ``fg``).
    MODE_CHECK_S = 0.5

    def __init__(self, stop: threading.Event, banner: str = ""):
        super().__init__(name="terminal-keys", daemon=True)
        self.stop_event = stop
        self.banner = banner
        self.keys: queue.Queue[str] = queue.Queue(maxsize=32)
        self.enabled = sys.stdin is not None and sys.stdin.isatty() and os.name == "posix"
        self._saved = None
        self._decoder = KeyDecoder()

    def start(self):
        if self.enabled:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            super().start()
            if self.banner:
                say(self.banner)

    def run(self):
        try:
            self._read_keys()
        except (OSError, ValueError) as exc:  # the terminal went away (closed: EIO)
            log.debug("terminal keys: %s", exc)

    def _read_keys(self):
        import select

        fd = sys.stdin.fileno()
        checked = time.monotonic()
        while not self.stop_event.is_set():
            if not _foreground(fd):  # after Ctrl-Z and bg: the keys are the shell's (reading would stop us)
                self.stop_event.wait(0.1)
                continue
            if time.monotonic() - checked > self.MODE_CHECK_S:
                checked = time.monotonic()
                self._keep_cbreak(fd)
            waiting_esc = self._decoder.waiting
            ready, _, _ = select.select([fd], [], [], self.ESC_TIMEOUT_S if waiting_esc else 0.1)
            if ready:
                try:
                    data = os.read(fd, 64)
                except OSError as exc:
                    if exc.errno == errno.EIO and not _foreground(fd):
                        continue  # sent to the background meanwhile: not the end of the terminal
                    raise
                if not data:  # end of input (the terminal went away)
                    return
                keys = self._decoder.feed(data)
            else:
                keys = self._decoder.flush() if waiting_esc else []
            for key in keys:  # a burst (pasted, scripted) waits for the render loop: no key is lost
                while not self.stop_event.is_set():
                    try:
                        self.keys.put(key, timeout=0.1)
                        break
                    except queue.Full:
                        continue

    @staticmethod
    def _keep_cbreak(fd: int) -> None:
        """Back in key mode after Ctrl-Z and ``fg`` (the shell gave the terminal its line mode
        back); only while this process is in the foreground (a background one would be stopped)."""
        import termios
        import tty

        try:
            if _foreground(fd) and termios.tcgetattr(fd)[3] & termios.ICANON:
                tty.setcbreak(fd)
        except (OSError, termios.error):  # not our controlling terminal (no job control): nothing to restore
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

            saved, self._saved = self._saved, None
            try:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
            except (termios.error, OSError, ValueError) as exc:  # the terminal is gone (closed window, ssh)
                log.debug("terminal not restored: %s", exc)


def _foreground(fd: int) -> bool:
    """Whether this process's group has the terminal ``fd`` (job control: after Ctrl-Z and ``bg``
    it has not); True for a terminal that is not our controlling one (no job control to follow)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True


@dataclass
class ViewState:
    """What the hotkeys change besides the background."""

    view: str = "composite"     # composite | matte | original
    paused: bool = False
    show_help: bool = False
    mirror: bool = True         # the preview only; never the virtual camera
    hud: bool = True


class Controls:
    """Carries out hotkey actions on the view state and the background cycle."""

    def __init__(self, library, state: ViewState, on_quit: Callable[[], None],
                 on_snapshot: Callable[[], object], on_help: Callable[[bool], None] | None = None):
        self.library, self.state = library, state
        self.on_quit, self.on_snapshot, self.on_help = on_quit, on_snapshot, on_help
        self._blur_return: str | None = None  # the background "b" goes back to (by name: the cycle can change)

    def apply(self, action: str, arg: int = 0) -> None:
        log.debug("hotkey: %s %s", action, arg)
        state, library = self.state, self.library
        if action == "quit":
            self.on_quit()
        elif action == "next":
            library.step(1)
        elif action == "previous":
            library.step(-1)
        elif action == "pick":
            if library.select(arg) is None:
                log.info("no background %d (there are %d)", arg + 1, len(library.entries))
        elif action == "blur":
            if library.current_name == "blur":
                # off: back to where "b" came from; blur from the start (the live default): the next one
                if self._blur_return is not None and library.select_name(self._blur_return):
                    library.step(0)
                else:  # (or it went from the folder meanwhile)
                    library.step(1)
                self._blur_return = None
            else:
                self._blur_return = library.current_name
                library.select_name("blur")
                library.step(0)
        elif action in ("matte", "original"):
            state.view = "composite" if state.view == action else action
            log.info("view: %s", state.view)
        elif action == "mirror":
            state.mirror = not state.mirror
            log.info("preview mirrored: %s", "on" if state.mirror else "off")
        elif action == "hud":
            state.hud = not state.hud
        elif action == "help":
            state.show_help = not state.show_help
            if self.on_help is not None:
                self.on_help(state.show_help)
        elif action == "pause":
            state.paused = not state.paused
            log.info("%s", "paused: the last frame keeps going out" if state.paused else "resumed")
        elif action == "snapshot":
            self.on_snapshot()
        else:
            raise ValueError(f"unknown action {action!r}")
