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


def _picture(path, value):
    cv2.imwrite(str(path), np.full((36, 64, 3), value, np.uint8))
    import os
    os.utime(path, (1e9, 1e9))  # long since written: not "still being copied in"


def test_a_background_from_elsewhere_keeps_its_place_when_a_folder_file_shares_its_name(tmp_path):
    """--background other/03_soft_office.jpg while backgrounds/ has its own 03_soft_office.jpg: the
    user's picture stays on screen through reloads of the folder (it silently became the folder's)."""
    from compositing.backgrounds import load_background_file

    folder, other = tmp_path / "bgs", tmp_path / "other"
    folder.mkdir(), other.mkdir()
    _picture(folder / "03_soft_office.jpg", 220)
    _picture(other / "03_soft_office.jpg", 20)
    now = [0.0]
    library = BackgroundLibrary(folder, initial=load_background_file(other / "03_soft_office.jpg"),
                                clock=lambda: now[0])
    frame = np.zeros((36, 64, 3), np.uint8)
    assert library.current().render(frame, None, 0).mean() < 40
    _picture(folder / "00_new.jpg", 120)  # a picture dropped into the folder: a reload
    now[0] += 5
    assert library.rescan()
    assert library.current_name == "03_soft_office" and library.current().render(frame, None, 0).mean() < 40
    assert "03_soft_office.jpg" in library.names  # the folder's own is still there, by its file name
    library.select_name("03_soft_office.jpg")
    assert library.current().render(frame, None, 0).mean() > 200


def test_b_goes_back_to_the_same_background_after_the_folder_changed(tmp_path):
    folder = tmp_path / "bgs"
    folder.mkdir()
    for name in ("02_night.jpg", "03_office.jpg"):
        _picture(folder / name, 100)
    now = [0.0]
    library = BackgroundLibrary(folder, clock=lambda: now[0])
    controls = Controls(library, ViewState(), on_quit=lambda: None, on_snapshot=lambda: None)
    library.select_name("03_office")
    controls.apply("blur")
    assert library.current_name == "blur"
    _picture(folder / "00_new.jpg", 100)  # sorts before: every folder entry moves one place on
    now[0] += 5
    assert library.rescan()
    controls.apply("blur")
    assert library.current_name == "03_office"


def test_a_picture_named_like_a_built_in_is_the_picture(tmp_path):
    """--background ~/Pictures/white.jpg showed plain white: the picture went by the built-in's name."""
    from compositing.backgrounds import load_background_file

    _picture(tmp_path / "white.jpg", 30)  # a dark picture called white
    library = BackgroundLibrary(None, initial=load_background_file(tmp_path / "white.jpg"))
    frame = np.zeros((36, 64, 3), np.uint8)
    assert library.current_name == "white.jpg" and library.current().render(frame, None, 0).mean() < 60
    assert library.select_name("white") and library.current().render(frame, None, 0).mean() > 250


def test_a_folder_file_never_takes_the_name_of_the_picture_from_elsewhere(tmp_path):
    """~/Pictures/white.jpg goes by white.jpg; a white.jpg in the folder fell back to the same name
    and replaced it on screen at the next reload."""
    from compositing.backgrounds import load_background_file

    folder, other = tmp_path / "bgs", tmp_path / "other"
    folder.mkdir(), other.mkdir()
    _picture(other / "white.jpg", 30)
    _picture(folder / "white.jpg", 200)
    now = [0.0]
    library = BackgroundLibrary(folder, initial=load_background_file(other / "white.jpg"), clock=lambda: now[0])
    frame = np.zeros((36, 64, 3), np.uint8)
    _picture(folder / "zz_new.jpg", 120)
    now[0] += 5
    assert library.rescan()
    names = library.names
    assert len(names) == len(set(names)) and "white-2.jpg" in names, names
    assert library.current_name == "white.jpg" and library.current().render(frame, None, 0).mean() < 60
    assert library.select_name("white-2.jpg") and library.current().render(frame, None, 0).mean() > 150


def test_folder_files_named_like_a_colour_or_transparent_go_by_their_file_names(tmp_path):
    """An upload called transparent.png, keygreen.jpg or red.jpg took that word over in the live
    API: "transparent" showed the picture instead of the key green, "red" a picture where
    --background red gives the colour. They now go by their file names; key.jpg and alpha.png
    stay those pictures (as documented)."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    for name in ("transparent.png", "keygreen.jpg", "red.jpg", "Grey.png", "none.jpg", "key.jpg", "sky.jpg"):
        _picture(folder / name, 30)
    library = BackgroundLibrary(folder)
    folder_names = library.names[6:]  # after blur, white, gray, blue, key green, none
    assert folder_names == ["Grey.png", "key", "keygreen.jpg", "none.jpg", "red.jpg", "sky", "transparent.png"]
    frame = np.zeros((36, 64, 3), np.uint8)
    for asked, chosen, bgr in (("transparent", "key green", (0, 255, 0)), ("red", "red", (0, 0, 208)),
                               ("keygreen", "key green", (0, 255, 0)), ("grey", "gray", (128, 128, 128)),
                               ("red.jpg", "red.jpg", (30, 30, 30)), ("key", "key", (30, 30, 30))):
        assert library.choose(asked) == chosen, asked
        shown = library.current().render(frame, None, 0).reshape(-1, 3).mean(axis=0)
        assert np.allclose(shown, bgr, atol=3), (asked, shown)
    # ... and so does a --background picture from outside the folder named like a colour
    from compositing.backgrounds import load_background_file

    other = tmp_path / "other"
    other.mkdir()
    _picture(other / "red.jpg", 30)
    outside = BackgroundLibrary(None, initial=load_background_file(other / "red.jpg"))
    assert outside.current_name == "red.jpg"
    assert outside.choose("red") == "red" and outside.current().render(frame, None, 0)[0, 0].tolist() == [0, 0, 208]


@pytest.mark.parametrize("size", [(320, 240), (640, 360), (1280, 720), (240, 320), (360, 640)])
def test_the_help_overlay_fits_on_a_small_frame_below_the_hud(monkeypatch, size):
    """On a 640x360 preview the help ended at "d HUD on/off" (h/? and q/Esc below the frame's
    edge); at 320x240 only six keys showed. Every line is now drawn whole inside the frame, below
    the HUD, in one column or two."""
    from realtime import overlay

    drawn = []
    real = cv2.putText
    monkeypatch.setattr(overlay.cv2, "putText",
                        lambda img, text, org, *a: (drawn.append((text, org, a)), real(img, text, org, *a))[1])
    w, h = size
    image = np.full((h, w, 3), 128, np.uint8)
    below = overlay.draw_panel(image, ["30.0 fps  5.0 mattes/s  latency 40 ms  cpu 1.0", "bg: blur"])
    drawn.clear()
    overlay.draw_panel(image, ["Hotkeys:"] + overlay.help_lines(), origin=(10, h // 3), top=below + 6)
    assert {"Hotkeys:", "q/Esc", "quit", "h/?", "this help"} <= {text for text, _, _ in drawn}
    assert len(drawn) == 1 + 2 * len(overlay.help_lines())
    for text, (x, y), (font, scale, _, thickness, *_) in drawn:
        (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
        assert below < y - height and y <= h - 2 and 0 <= x and x + width <= w, (text, x, y, width, height)
