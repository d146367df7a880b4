"""Key decoding for the window (OpenCV key codes) and the terminal (bytes with escape sequences)."""

import cv2
import numpy as np
import pytest

from compositing import BackgroundLibrary
from realtime.controls import Controls, KeyDecoder, ViewState, action_for_key, key_for_keycode


@pytest.mark.parametrize("code,action", [
    (ord("n"), "next"), (ord("N"), "next"), (0x10006E, "next"),      # 'n' with NumLock on GTK
    (65363, "next"), (2555904, "next"), (63235, "next"),             # Right: GTK/Qt, Windows, macOS
    (65361, "previous"), (27, "quit"), (ord(" "), "pause"),
    (65360, None), (65474, None), (65362, None),                    # Home, F5, Up: no hotkey
])
def test_window_keycodes(code, action):
    got = action_for_key(key_for_keycode(code))
    assert (got[0] if got else None) == action


def test_terminal_escape_sequences():
    decoder = KeyDecoder()
    assert decoder.feed(b"n\x1b[Cq\x1b[15~\x1b[H\x1bOP\x1bOD") == ["n", "Right", "q", "Left"]
    assert decoder.feed(b"\x1b") == [] and decoder.waiting   # maybe the start of a sequence
    assert decoder.feed(b"[") == [] and decoder.waiting
    assert decoder.feed(b"C") == ["Right"]
    assert decoder.feed(b"\x1b") == [] and decoder.flush() == ["Esc"]  # nothing followed: a lone Esc
    assert decoder.feed(b"\x1b\x1bq") == ["Esc"]                  # Esc, then Alt+q
    assert decoder.feed("é".encode()) == ["é"]
    assert decoder.feed(b"\x1b[[B\x1b[[D") == []                  # Linux console F2, F4: ignored
    assert decoder.feed(b"\x1b\x1b[C") == []                       # Alt+Right (rxvt): not Esc
    assert decoder.feed(b"\x1b\x1b") == [] and decoder.flush() == ["Esc"]


def test_b_turns_the_starting_blur_off():
    """Live starts on blur with nothing to go back to: b then goes to the next background (it did
    nothing before, so b looked broken), b again brings blur back, and b again returns there."""
    library = BackgroundLibrary(None)
    assert library.current_name == "blur"
    controls = Controls(library, ViewState(), on_quit=lambda: None, on_snapshot=lambda: None)
    controls.apply("blur")
    after = library.current_name
    assert after != "blur"
    controls.apply("blur")
    assert library.current_name == "blur"
    controls.apply("blur")
    assert library.current_name == after


def test_a_colour_picked_in_the_panel_keeps_the_number_keys_on_their_backgrounds(tmp_path):
    """The keys 1-9 pick by position in the cycle the README lists; a colour picked in the web
    panel (or a --background outside the folder) goes last, so key 1 is still blur."""
    from compositing import ColorBackground

    cv2.imwrite(str(tmp_path / "beach.jpg"), np.full((36, 64, 3), 200, np.uint8))
    library = BackgroundLibrary(tmp_path)
    before = [e.name for e in library.entries]
    library.use(ColorBackground((68, 34, 34), name="#224466"))
    assert [e.name for e in library.entries] == before + ["#224466"] and library.current_name == "#224466"
    controls = Controls(library, ViewState(), on_quit=lambda: None, on_snapshot=lambda: None)
    controls.apply("pick", 0)  # the key 1
    assert library.current_name == before[0] == "blur"
