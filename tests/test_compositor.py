"""Compositor and backgrounds: every kind and fit, timing, blur halo, hot reload, outputs."""

import os
import time

import cv2
import numpy as np
import pytest

from conftest import NIGHT_SKY, PORTRAIT, need, textured_room
from compositing import BackgroundLibrary
from compositing import Compositor
from compositing.backgrounds import (BlurBackground, ColorBackground, ImageBackground, NoBackground,
                                     TransparentBackground, VideoBackground, fit_image, make_background, parse_color)
from compositing.refine import estimate_foreground, guided_upsample
from app.cli import main


def odd_frame(h=37, w=53):
    return np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_parse_color_presets_and_hex():
    assert parse_color("red") == (0, 0, 208)        # BGR of the ID-photo red (208, 0, 0)
    assert parse_color("blue") == (213, 143, 0)
    assert parse_color("green") == (134, 134, 0)
    assert parse_color("white") == (255, 255, 255)
    assert parse_color("#102030") == (0x30, 0x20, 0x10)
    assert parse_color("sky") is None and parse_color("102030") is None


@pytest.mark.parametrize("mode", ["cover", "contain", "stretch"])
@pytest.mark.parametrize("frame_hw", [(37, 53), (720, 1280), (101, 33)])
def test_fit_modes_any_size(mode, frame_hw):
    picture = np.zeros((1079, 1920, 3), np.uint8)
    picture[:, :, 2] = 200
    out = fit_image(picture, frame_hw, mode)
    assert out.shape == (*frame_hw, 3) and out.dtype == np.uint8


def test_cover_crops_centre_and_contain_letterboxes():
    picture = np.zeros((100, 400, 3), np.uint8)
    picture[:, 150:250] = 255  # white centre band
    cover = fit_image(picture, (100, 100), "cover")
    assert cover.min() == 255  # only the centre is kept
    contain = fit_image(picture, (100, 100), "contain")
    assert contain[:30].max() == 0 and contain[-30:].max() == 0  # bars above and below
    stretch = fit_image(picture, (100, 100), "stretch")
    assert stretch[:, :30].max() == 0 and stretch[:, 45:55].min() == 255


def test_night_sky_background_odd_height(tmp_path):
    bg = ImageBackground(need(NIGHT_SKY))
    assert bg.image.shape == (1079, 1920, 3)
    for hw in [(720, 1280), (1080, 1920), (481, 641)]:
        assert bg.render(np.zeros((*hw, 3), np.uint8), None, 0.0).shape == (*hw, 3)


@pytest.mark.parametrize("value", ["red", "#00ff00", "blur", "blur:5", "none", "transparent"])
def test_every_kind_composites_odd_sizes(value):
    frame = odd_frame()
    alpha = np.zeros((37, 53), np.float32)
    alpha[10:30, 15:40] = 1.0
    background = make_background(value)
    out = Compositor().composite(frame, alpha, background, now=0.0)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[10:30, 15:40] == frame[10:30, 15:40]).all()  # the person is untouched
    if isinstance(background, NoBackground):
        assert out is frame


def test_composite_matches_float_formula_with_rounding():
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (45, 77, 3), dtype=np.uint8)
    alpha = rng.random((45, 77), dtype=np.float32)
    color = (10, 200, 77)
    out = Compositor().composite(frame, alpha, ColorBackground(color), now=0.0)
    expected = alpha[..., None] * frame + (1 - alpha[..., None]) * np.array(color, np.float64)
    err = np.abs(out - expected)
    assert err.max() <= 0.51  # rounded to nearest, not truncated
    assert (np.abs(out.astype(int) - np.rint(expected)) <= 1).all()


def test_rgba_output_and_key_colour():
    frame = odd_frame()
    alpha = np.linspace(0, 1, 37 * 53, dtype=np.float32).reshape(37, 53)
    comp = Compositor()
    rgba = comp.composite(frame, alpha, TransparentBackground(), now=0.0, rgba=True)
    assert rgba.shape == (37, 53, 4)
    assert np.abs(rgba[:, :, 3].astype(int) - np.rint(alpha * 255)).max() <= 1
    keyed = comp.composite(frame, np.zeros_like(alpha), TransparentBackground(), now=0.0)
    assert (keyed == (0, 255, 0)).all()  # pure green where there is no person: OBS keys it out


def test_low_res_alpha_is_upsampled_aligned():
    frame = np.full((360, 640, 3), 255, np.uint8)
    small = np.zeros((72, 128), np.float32)
    small[:, 64:] = 1.0
    out = Compositor().composite(frame, small, ColorBackground((0, 0, 0)), now=0.0)
    row = out[180, :, 0].astype(int)
    assert row[319] < 128 < row[320]


def test_video_background_advances_with_wall_clock(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(20):  # 2 s at 10 fps, frame i has brightness 10*i
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    bg = VideoBackground(path)
    frame = np.zeros((30, 40, 3), np.uint8)
    level = lambda t: int(round(bg.render(frame, None, t).mean() / 10))
    assert level(100.0) == 0           # the clock starts at the first render
    assert level(100.55) == 5          # 0.55 s later: frame 5, however few renders happened
    assert level(101.95) == 19
    assert level(102.35) == 3          # looped: 2.35 s -> frame 23 -> 3
    assert level(102.36) == 3
    bg.close()


@pytest.mark.parametrize("frames, budget", [(1, None), (3, None), (3, 1000)])
def test_a_short_video_background_plays_from_memory(tmp_path, monkeypatch, frames, budget):
    """A 1-frame "video" (a picture named .mp4) was opened again or rewound on every frame: 9-53 ms
    a frame, the live output down to 4 fps. A clip whose frames fit in MEMORY_CLIP_BYTES is now
    read once more into memory at its end and never touched again; a longer one plays on from
    the file (``budget``: a limit it does not fit in). Either way each time shows its frame."""
    import compositing.backgrounds as backgrounds

    if budget is not None:
        monkeypatch.setattr(backgrounds, "MEMORY_CLIP_BYTES", budget)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * i + 20, np.uint8))
    writer.release()
    calls = []
    real = cv2.VideoCapture

    class Counted:
        def __init__(self, *args):
            self._cap = real(*args)
            calls.append("open")

        def __getattr__(self, name):
            method = getattr(self._cap, name)
            if name in ("grab", "read", "retrieve", "set"):
                return lambda *a: (calls.append(name), method(*a))[1]
            return method

    monkeypatch.setattr(cv2, "VideoCapture", Counted)
    bg = VideoBackground(path)
    frame = np.zeros((30, 40, 3), np.uint8)
    level = lambda t: int(round((bg.render(frame, None, t).mean() - 20) / 40))
    shown = [level(i / 10) for i in range(3 * frames + 2)]
    assert shown == [i % frames for i in range(3 * frames + 2)]
    before = len(calls)
    later = [level(i / 10) for i in range(100, 130)]
    assert later == [i % frames for i in range(100, 130)]
    assert (len(calls) == before) == (budget is None), calls[before:][:10]
    bg.close()


def test_a_short_video_background_keeps_its_fitted_frames_within_the_limit(tmp_path, monkeypatch):
    """The frames fitted to the output were kept for every frame of a clip in memory, whatever the
    output size: a 160x120 clip of 500 frames shown at 720p held 1.3 GB."""
    import compositing.backgrounds as backgrounds

    monkeypatch.setattr(backgrounds, "MEMORY_CLIP_BYTES", 100_000)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(10):  # 10 x 9 KB decoded: in memory
        writer.write(np.full((48, 64, 3), 20 * i + 10, np.uint8))
    writer.release()
    bg = VideoBackground(path)
    for start, size in ((0, (30, 40)), (5, (100, 120))):  # fitted: 10 x 3.6 KB (kept), 10 x 36 KB (not kept)
        frame = np.zeros((*size, 3), np.uint8)
        shown = [int(round((bg.render(frame, None, start + i / 10).mean() - 10) / 20)) for i in range(25)]
        assert shown == [(shown[0] + i) % 10 for i in range(25)] and bg._frames is not None, shown
        kept = sum(f.nbytes for fitted in bg._fitted_all.values() for f in fitted if f is not None)
        assert kept == (10 * frame.nbytes if size == (30, 40) else 0), kept
    bg.close()


def test_video_file_as_background_in_photo_mode(reference_ckpt, tmp_path):
    path = tmp_path / "bgclip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 90))
    for i in range(5):
        writer.write(np.full((90, 160, 3), (200, 50 * i, 0), np.uint8))
    writer.release()
    out = tmp_path / "vid.jpg"
    assert main(["--image", str(need(PORTRAIT)), "--weights", str(reference_ckpt), "--background", str(path),
                 "--output", str(out), "--inference-size", "128"]) == 0
    assert cv2.imread(str(out)).shape == (720, 1280, 3)


@pytest.mark.parametrize("background", ["night", "blur"])
def test_done_when_background_commands(reference_ckpt, tmp_path, background):
    value = str(need(NIGHT_SKY)) if background == "night" else "blur"
    out = tmp_path / "bg.jpg"
    assert main(["--image", str(need(PORTRAIT)), "--weights", str(reference_ckpt), "--background", value,
                 "--output", str(out), "--inference-size", "128"]) == 0
    assert cv2.imread(str(out)).shape == (720, 1280, 3)


def test_blur_does_not_spread_person_colour_into_background():
    h, w = 360, 640
    room = textured_room(h, w)  # red channel is 0 everywhere in the room
    frame = room.copy()
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (320, 220), (90, 150), 0, 0, 360, 1.0, -1)
    frame[mask > 0] = (30, 30, 250)  # a strongly red person
    background = BlurBackground(strength=20).render(frame, mask, 0.0)
    # compare with the naive approach, blurring the whole frame
    naive = cv2.GaussianBlur(frame, (0, 0), 20 * h / 720)
    dist = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
    far = dist > 4  # background pixels more than a few pixels from the person
    assert background[far][:, 2].max() < 25, "person colour bled into the blurred room"
    assert naive[far][:, 2].max() > 100  # the test would catch a naive blur
    # and the room really is blurred (texture contrast drops)
    assert background[far].std() < room[far].std()


@pytest.mark.parametrize("hw", [(720, 1280), (1080, 1920), (768, 1366), (563, 1000)])
def test_blur_on_a_small_working_image_matches_a_full_resolution_blur(hw):
    """The blur runs on an image 8x smaller at 720p (area halvings while the sides are even, then
    one area resize): the room must look as the full-resolution normalised blur does."""
    h, w = hw
    room = cv2.resize(textured_room(360, 640), (w, h), interpolation=cv2.INTER_NEAREST)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, h * 2 // 3), (w // 8, h // 2), 0, 0, 360, 1.0, -1)
    sigma = 12 * min(h, w) / 720
    weight = (1 - alpha) ** 2
    full = cv2.GaussianBlur(room.astype(np.float32) * weight[..., None], (0, 0), sigma) / \
        np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), 1e-6)[..., None]
    out = BlurBackground(strength=12).render(room, alpha, 0.0)
    far = cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 5) > 3 * sigma
    err = np.abs(out.astype(np.float32) - full)[far]
    assert err.mean() < 1.0 and np.percentile(err, 99) < 5.0, (err.mean(), np.percentile(err, 99))


def test_blur_of_a_still_scene_is_reused_and_redone_when_the_room_changes():
    """A still scene is blurred once (most of its CPU): sensor noise alone keeps the blurred room,
    anything that changes the room (or a new matte) makes a new one, equal to a fresh render."""
    h, w = 360, 640
    room = textured_room(h, w)
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (320, 220), (90, 150), 0, 0, 360, 1.0, -1)
    blur = BlurBackground(strength=12)
    first = blur.render(room, alpha, 0.0)
    noisy = np.clip(room + np.random.default_rng(3).normal(0, 2, room.shape), 0, 255).astype(np.uint8)
    assert blur.render(noisy, alpha, 0.04) is first  # the same scene: nothing recomputed
    # something moves in the room (a lamp switched on, a door): the blurred room follows
    changed = noisy.copy()
    changed[20:120, 20:140] = (250, 250, 250)
    redone = blur.render(changed, alpha, 0.08)
    assert redone is not first
    assert np.array_equal(redone, BlurBackground(strength=12).render(changed, alpha, 0.0))
    assert redone[60:80, 60:100].mean() > first[60:80, 60:100].mean() + 40
    # a new matte (even with the same values) is a new alpha array: rendered again
    again = blur.render(changed, alpha.copy(), 0.12)
    assert again is not redone and np.array_equal(again, redone)
    # the compositor's upsampled alpha is reused the same way, and only for the same array
    compositor = Compositor()
    small = cv2.resize(alpha, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    full = compositor.full_alpha(small, room)
    assert compositor.full_alpha(small, room) is full
    assert compositor.full_alpha(small.copy(), room) is not full
    # edge refinement follows the frame: reused on the same scene only
    refining = Compositor(refine=True)
    refined = refining.full_alpha(small, room)
    assert refining.full_alpha(small, noisy) is refined
    assert refining.full_alpha(small, changed) is not refined


def test_still_scene_blend_keeps_the_fixed_part_and_follows_every_new_frame():
    """The same alpha and background arrays again (a still scene): 8-bit weights with (1−α)·B kept.
    Every frame's own pixels still come through (eyes, lips move), within 2 grey levels of the float
    blend; fully opaque and fully transparent pixels are exact; a new alpha goes back to float."""
    rng = np.random.default_rng(5)
    h, w = 90, 160
    alpha = rng.random((h, w), dtype=np.float32)
    alpha[:, :20], alpha[:, -20:] = 0.0, 1.0
    background = ImageBackground(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    back = background.render(np.zeros((h, w, 3), np.uint8), alpha, 0.0)
    compositor = Compositor()
    errors = []
    for i in range(4):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # a new picture every frame
        before = frame.copy()
        out = compositor.composite(frame, alpha, background, now=i / 30)
        expected = alpha[..., None] * frame + (1 - alpha[..., None]) * back.astype(np.float64)
        err = np.abs(out - expected)
        if i == 0:
            assert err.max() <= 0.51  # the first frame of a matte: the float blend
        errors.append(err)
        assert np.array_equal(out[:, -20:], frame[:, -20:]) and np.array_equal(out[:, :20], back[:, :20])
        assert np.array_equal(frame, before)
    later = np.concatenate([e.ravel() for e in errors[1:]])
    # two roundings of at most 1/2 and alpha in 8 bits (at most 1/2 of 255/255): 1.5 from the exact value
    assert later.max() <= 1.5 + 1e-6 and later.mean() < 0.5, (later.max(), later.mean())
    assert later.max() > 0.51  # (the 8-bit path did run: it is not bit-exact)

    def exact(frame, a, back):
        return np.abs(compositor.composite(frame, a, background_of[id(back)], now=1.0)
                      - (a[..., None] * frame + (1 - a[..., None]) * back.astype(np.float64))).max()

    other = ImageBackground(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    other_back = other.render(np.zeros((h, w, 3), np.uint8), alpha, 0.0)
    background_of = {id(back): background, id(other_back): other}
    fresh = alpha.copy()  # a new matte, even with the same values: the float blend again
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(8)]
    assert exact(frames[0], fresh, back) <= 0.51
    assert exact(frames[1], fresh, other_back) <= 0.51  # the same matte over a new picture: float
    assert exact(frames[2], fresh, other_back) <= 1.5 + 1e-6  # ... and then 8-bit for that pair
    # A, B, A: the kept weights of A are not B's, and each answer is right
    assert exact(frames[3], alpha, back) <= 0.51
    assert exact(frames[4], alpha, back) <= 1.5 + 1e-6
    assert exact(frames[5], fresh, back) <= 0.51
    assert exact(frames[6], alpha, back) <= 0.51
    assert exact(frames[7], alpha, back) <= 1.5 + 1e-6
    compositor.release()  # nothing kept: the next frame is blended in float again
    assert exact(frames[0], alpha, back) <= 0.51


def test_live_blend_uses_8_bit_weights_on_every_frame_and_photos_stay_float():
    """Live video (``fast_blend``) blends every frame with 8-bit weights, a new matte and a new
    background each time included (a moving person over a blurred moving room): within 1.5 grey
    levels of the exact value, opaque and transparent pixels exact, nothing changed in place.
    The live build asks for it; photos blend in float."""
    from app.build import build_compositor
    from app.config import Settings

    rng = np.random.default_rng(8)
    h, w = 72, 128
    compositor = Compositor(fast_blend=True)
    worst = []
    for i in range(5):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        back = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        alpha = rng.random((h, w), dtype=np.float32)
        alpha[:, :10], alpha[:, -10:] = 0.0, 1.0
        inputs = (frame.copy(), back.copy(), alpha.copy())
        out = compositor.blend(frame, back, alpha)
        exact = alpha[..., None] * frame + (1 - alpha[..., None]) * back.astype(np.float64)
        worst.append(np.abs(out - exact).max())
        assert np.array_equal(out[:, -10:], frame[:, -10:]) and np.array_equal(out[:, :10], back[:, :10])
        assert all(np.array_equal(a, b) for a, b in zip(inputs, (frame, back, alpha)))
    assert max(worst) <= 1.5 + 1e-6 and min(worst) > 0.51, worst  # 8-bit from the first frame on

    class Engine:
        device, default_refine = "cpu", False

    assert build_compositor(Settings(), Engine(), photo=False).fast_blend
    assert not build_compositor(Settings(), Engine(), photo=True).fast_blend


def test_backgrounds_get_the_matte_as_made_and_blur_any_frame():
    """A background is handed the matte as the engine made it (the blur averages it down anyway:
    no full-size alpha to shrink again), the same array while it is reused; the blur takes
    BGRA frames too, and a negative alpha blends as 0, not as its absolute value."""
    seen = []

    class Recording(ColorBackground):
        def render(self, frame, alpha, now):
            seen.append(alpha)
            return super().render(frame, alpha, now)

    frame = odd_frame()
    small = np.zeros((18, 26), np.float32)
    small[4:14, 8:20] = 1.0
    compositor = Compositor(fast_blend=True)
    compositor.composite(frame, small, Recording((0, 0, 0)), now=0.0)
    compositor.composite(frame.copy(), small, Recording((0, 0, 0)), now=0.1)
    assert seen[0] is small and seen[1] is small
    room = textured_room(90, 160)
    alpha = np.zeros((36, 64), np.float32)
    alpha[10:30, 20:40] = 1.0
    bgra = np.dstack([room, np.full((90, 160), 255, np.uint8)])
    out = BlurBackground(strength=12).render(bgra, alpha, 0.0)
    plain = BlurBackground(strength=12).render(room, alpha, 0.0)
    assert out.shape == (90, 160, 4) and np.abs(out[:, :, :3].astype(int) - plain).max() <= 1
    negative = np.full((90, 160), -0.2, np.float32)  # a full-size alpha from outside: clipped, not folded
    white = np.full((90, 160, 3), 200, np.uint8)
    assert (Compositor(fast_blend=True).composite(white, negative, ColorBackground((10, 10, 10)), now=0.0) == 10).all()


def test_guided_upsample_follows_frame_edges():
    h, w = 240, 320
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, 161:] = 255  # the true edge is at x=161 at full resolution
    small = cv2.resize((frame[:, :, 0] > 0).astype(np.float32), (80, 60), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)  # a soft, coarse mask
    plain = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    guided = guided_upsample(small, frame)
    sharp_plain = np.abs(np.diff(plain[120])).max()
    sharp_guided = np.abs(np.diff(guided[120])).max()
    assert sharp_guided > 2 * sharp_plain
    assert guided[120, 150] < 0.3 and guided[120, 172] > 0.7


def test_decontamination_removes_old_background_tint():
    h, w = 360, 640
    person, room = np.array([40, 160, 60], np.float32), np.array([255, 0, 255], np.float32)
    alpha = np.zeros((h, w), np.float32)
    alpha[:, :280] = 1.0
    alpha[:, 280:320] = np.linspace(1, 0, 40)[None, :]  # a soft, hair-like edge
    frame = (alpha[..., None] * person + (1 - alpha[..., None]) * room + 0.5).astype(np.uint8)
    fg = estimate_foreground(frame, alpha)
    edge = (alpha > 0.2) & (alpha < 0.8)
    tint_before = np.abs(frame[edge].astype(float) - person).mean()
    tint_after = np.abs(fg[edge].astype(float) - person).mean()
    assert tint_after < 0.3 * tint_before
    assert (fg[alpha == 1] == frame[alpha == 1]).all()  # opaque pixels untouched


def test_library_hot_reload_add_and_delete(tmp_path):
    folder = tmp_path / "bgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_first.png"), np.full((20, 30, 3), 10, np.uint8))
    now = [0.0]
    lib = BackgroundLibrary(folder, clock=lambda: now[0])
    assert "a_first" in lib.names
    cv2.imwrite(str(folder / "b_second.jpg"), np.full((20, 30, 3), 200, np.uint8))
    (folder / "readme.txt").write_text("not media")
    now[0] += 0.2
    assert not lib.rescan()  # rate-limited
    now[0] += 2.0
    assert lib.rescan() and "b_second" in lib.names and "readme" not in lib.names
    lib.select_name("b_second")
    assert lib.current().render(np.zeros((4, 6, 3), np.uint8), None, 0).mean() > 150
    (folder / "b_second.jpg").unlink()
    now[0] += 2.0
    # the selected picture left the folder: it stays on screen (last in the cycle) until another is chosen
    assert lib.rescan() and lib.current_name == "b_second" and lib.names[-1] == "b_second"
    assert lib.current().render(np.zeros((4, 6, 3), np.uint8), None, 0).mean() > 150
    lib.select_name("a_first")
    cv2.imwrite(str(folder / "c_third.png"), np.full((20, 30, 3), 90, np.uint8))
    now[0] += 2.0
    assert lib.rescan() and "b_second" not in lib.names and lib.current_name == "a_first"


def test_a_vanished_folder_never_leaves_the_room_showing(tmp_path):
    """The folder renamed or deleted mid-call: the selection jumped to whatever took its place in the
    list, often ``none`` (the real room behind the user)."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    for name, value in (("a_office", 60), ("b_beach", 200)):
        cv2.imwrite(str(folder / f"{name}.png"), np.full((20, 30, 3), value, np.uint8))
    now = [0.0]
    lib = BackgroundLibrary(folder, clock=lambda: now[0])
    lib.select_name("b_beach")
    lib.current()  # loaded (shown)
    folder.rename(tmp_path / "moved")
    now[0] += 2.0
    assert lib.rescan() and lib.current_name == "b_beach"
    assert lib.current().render(np.zeros((4, 6, 3), np.uint8), None, 0).mean() > 150
    # one listed but never shown gives way to blur, not to the next name in the list
    (tmp_path / "moved").rename(folder)
    now[0] += 2.0
    lib.rescan()
    lib.select_name("a_office")
    folder.rename(tmp_path / "moved2")
    now[0] += 2.0
    lib.index = lib.names.index("a_office")  # selected, not yet drawn
    lib._loaded.pop("a_office", None)
    assert lib.rescan() and lib.current_name == "blur"


def test_a_change_elsewhere_in_the_folder_keeps_the_shown_background_loaded(tmp_path):
    """Adding any file decoded the shown picture again in the render loop (seconds for a big one)
    and restarted a background video from its first frame."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_shown.png"), np.full((20, 30, 3), 60, np.uint8))
    now = [0.0]
    lib = BackgroundLibrary(folder, clock=lambda: now[0])
    lib.select_name("a_shown")
    shown = lib.current()
    cv2.imwrite(str(folder / "b_new.png"), np.full((20, 30, 3), 90, np.uint8))
    now[0] += 2.0
    assert lib.rescan() and "b_new" in lib.names
    assert lib.current() is shown
    cv2.imwrite(str(folder / "a_shown.png"), np.full((20, 30, 3), 220, np.uint8))  # the shown file itself edited
    os.utime(folder / "a_shown.png", (time.time() + 5, time.time() + 5))
    now[0] += 2.0
    assert lib.rescan() and lib.current() is not shown
    assert lib.current().render(np.zeros((4, 6, 3), np.uint8), None, 0).mean() > 200


def test_library_skips_unreadable_file(tmp_path, caplog):
    folder = tmp_path / "bgs"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 nope")  # no readable header: never listed nor counted
    ok, enc = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = bytearray(enc.tobytes())
    data[100:300] = bytes(200)  # a good header and end, damaged pixel data: fails on load
    (folder / "cut.png").write_bytes(bytes(data))
    cv2.imwrite(str(folder / "good.png"), np.zeros((8, 8, 3), np.uint8))
    for path in folder.iterdir():  # written a minute ago, not being copied in right now
        os.utime(path, (time.time() - 60, time.time() - 60))
    lib = BackgroundLibrary(folder)
    assert "broken" not in lib.names and "skipping background broken.jpg" in caplog.text
    assert lib.names[-2:] == ["cut", "good"]
    lib.select_name("cut")
    background = lib.current()
    assert background.name == "good" and "skipping background cut" in caplog.text
    assert "cut" not in lib.names
    lib.rescan(force=True)  # (an upload, a colour picked in the panel): the failed file stays out
    assert "cut" not in lib.names


def test_a_jpeg_cut_short_is_not_counted_and_one_with_data_after_its_end_is(tmp_path):
    """A JPEG (or PNG) whose data is cut off has a good header: it was listed and counted (the keys 1-9,
    "there are 8") until it was first shown. One with data appended after its end (a phone's
    motion photo) decodes: it stays."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    whole = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (90, 160, 3), np.uint8))[1].tobytes()
    (folder / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    (folder / "noeoi.jpg").write_bytes(whole[:-2])
    png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (90, 160, 3), np.uint8))[1].tobytes()
    (folder / "cutpng.png").write_bytes(png[:len(png) // 2])
    (folder / "motion.jpg").write_bytes(whole + bytes(range(256)) * 40)  # no FF D9 in its last bytes
    (folder / "whole.jpg").write_bytes(whole)
    for path in folder.iterdir():
        os.utime(path, (time.time() - 60, time.time() - 60))
    lib = BackgroundLibrary(folder)
    assert [n for n in lib.names if n in ("cut", "noeoi", "cutpng", "motion", "whole")] == ["motion", "whole"]
    for name in ("motion", "whole"):
        lib.select_name(name)
        assert lib.current().name == name


def test_reload_count_leaves_out_unreadable_files(tmp_path, caplog):
    folder = tmp_path / "bgs"
    folder.mkdir()
    lib = BackgroundLibrary(folder, rescan_interval=0.0)
    builtins = len(lib.names)
    cv2.imwrite(str(folder / "good.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "notes.jpg").write_text("not a picture")
    os.utime(folder / "notes.jpg", (time.time() - 60, time.time() - 60))
    caplog.clear()
    with caplog.at_level("INFO"):
        assert lib.rescan()
    assert f"backgrounds reloaded: {builtins + 1} available" in caplog.text


def test_a_file_growing_in_the_folder_logs_no_reload_each_second(tmp_path, caplog):
    """Recording into the backgrounds folder logged "backgrounds reloaded: 6 available" every
    second, the list unchanged; a new file is still said."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    now = [0.0]
    lib = BackgroundLibrary(folder, clock=lambda: now[0])
    growing = folder / "rec.mp4"
    with caplog.at_level("INFO"):
        for second in range(1, 5):
            growing.write_bytes(b"\0" * 1000 * second)  # (not a video yet: no verdict while written)
            now[0] = float(second)
            lib.rescan()
        assert "backgrounds reloaded" not in caplog.text
        cv2.imwrite(str(folder / "new.png"), np.zeros((8, 8, 3), np.uint8))
        os.utime(folder / "new.png", (time.time() - 60, time.time() - 60))
        now[0] = 10.0
        assert lib.rescan()
    assert "backgrounds reloaded" in caplog.text and "new" in lib.names


def test_hot_reload_while_pipeline_runs(tmp_path):
    import threading

    from fakes import IndexEngine, SyntheticSource, make_pipeline, wait_until

    folder = tmp_path / "bgs"
    folder.mkdir()
    pipeline = make_pipeline(SyntheticSource(fps=30), IndexEngine(), mode="async")
    lib = pipeline.library = pipeline.controls.library = BackgroundLibrary(folder, rescan_interval=0.1)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: pipeline.stats.outputs >= 1, what="the first output")
        cv2.imwrite(str(folder / "zz_new.png"), np.full((10, 10, 3), 99, np.uint8))
        wait_until(lambda: "zz_new" in lib.names, timeout=10, what="the new background to be listed")
        (folder / "zz_new.png").unlink()
        wait_until(lambda: "zz_new" not in lib.names, timeout=10, what="the deleted background to go")
    finally:
        pipeline.stop()
        runner.join(5)


@pytest.mark.parametrize("value", ["blue", "image", "transparent", "blur"])
def test_device_compositor_matches_cpu_compositor(value, tmp_path):
    """The torch compositor (used when MODNet runs on CUDA) gives the CPU result; checked here on CPU."""
    from compositing.gpu_compositor import TorchCompositor

    if value == "image":
        path = tmp_path / "bg.png"
        cv2.imwrite(str(path), np.random.default_rng(5).integers(0, 255, (300, 500, 3), dtype=np.uint8))
        value = str(path)
    frame = np.random.default_rng(2).integers(0, 255, (181, 243, 3), dtype=np.uint8)
    alpha = np.random.default_rng(3).random((64, 96), dtype=np.float32)
    background = make_background(value)
    expected = Compositor().composite(frame, alpha, background, now=0.0)
    got = TorchCompositor(device="cpu").composite(frame, alpha, background, now=0.0)
    assert got.shape == expected.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected).max() <= 1


def test_a_file_being_copied_in_is_checked_once_done(tmp_path, caplog):
    """No warning while a file is still being written; its verdict comes once it stops changing."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    lib = BackgroundLibrary(folder, rescan_interval=0.0)
    partial = folder / "holiday.jpg"
    partial.write_bytes(b"\x89P")  # the first bytes of a picture being copied
    caplog.clear()
    lib.rescan()
    assert "holiday" not in lib.names and "skipping" not in caplog.text
    os.utime(partial, (time.time() - 60, time.time() - 60))  # the copy stopped (and failed)
    lib.rescan()
    assert "skipping background holiday.jpg" in caplog.text
    cv2.imwrite(str(partial), np.zeros((8, 8, 3), np.uint8))  # copied again, completely
    lib.rescan()
    assert "holiday" in lib.names


def test_only_the_recently_shown_folder_backgrounds_stay_loaded(tmp_path):
    """Every background ever shown stayed loaded: stepping through 20 phone photos and 6 videos
    took a run from 0.4 to 1.3 GB, each video with its decoder's threads and file."""
    from compositing import library

    MAX_LOADED_FILES = getattr(library, "MAX_LOADED_FILES", 3)
    folder = tmp_path / "bgs"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((20, 30, 3), 40 * i, np.uint8))
    clip = folder / "v.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 50 * i, np.uint8))
    writer.release()
    lib = BackgroundLibrary(folder)
    files = [n for n in lib.names if n.startswith(("p", "v"))]
    closed = []
    lib.select_name("v")
    video = lib.current()
    video.close = lambda: closed.append("v")
    for _ in range(2):  # twice round the whole cycle
        for _ in lib.names:
            lib.step(1)
            frame, alpha = np.zeros((24, 32, 3), np.uint8), np.ones((24, 32), np.float32)
            assert lib.current().render(frame, alpha, 0).shape == (24, 32, 3)
            loaded = [n for n in lib._loaded if n in files]
            assert len(loaded) <= MAX_LOADED_FILES, loaded
    assert closed == ["v"]  # the video's decoder was let go when it was shown longest ago
    lib.select_name("p1")
    lib.step(0)
    lib.select_name("p2")
    lib.step(0)
    lib.select_name("p1")
    lib.step(0)  # back and forth between two: both stay loaded
    shown = lib._loaded["p1"], lib._loaded["p2"]
    for name in ("p2", "p1", "p2"):
        lib.select_name(name)
        lib.step(0)
    assert (lib._loaded["p1"], lib._loaded["p2"]) == shown
    lib.close()


def test_a_background_picture_with_transparency_is_over_black(tmp_path):
    """A PNG's see-through part showed whatever colour the program that made it stored there
    (solid red in a user's file) behind the person; now it is black, half see-through half dark."""
    picture = np.zeros((40, 60, 4), np.uint8)
    picture[..., 2] = 255                           # red stored under alpha 0
    picture[10:30, 15:45] = (255, 0, 0, 255)        # an opaque blue box
    picture[0:5, 0:5] = (0, 0, 255, 128)            # half see-through red
    cv2.imwrite(str(tmp_path / "frame.png"), picture)
    for background in (ImageBackground(tmp_path / "frame.png"), make_background(str(tmp_path / "frame.png"))):
        shown = background.render(np.zeros((40, 60, 3), np.uint8), None, 0.0)
        assert tuple(shown[20, 30]) == (255, 0, 0) and tuple(shown[35, 5]) == (0, 0, 0)
        assert abs(int(shown[2, 2, 2]) - 128) <= 1 and shown[2, 2, :2].max() == 0


def test_pytorch_info_lines_are_not_the_cli_s():
    """Ctrl-C while the torch engine loaded printed "INFO: FakeTensor cache stats" and two more lines."""
    import logging

    from app.cli import setup_logging

    setup_logging(False)
    assert logging.getLogger("modnet").isEnabledFor(logging.INFO)
    assert not logging.getLogger("torch._subclasses.fake_tensor").isEnabledFor(logging.INFO)
