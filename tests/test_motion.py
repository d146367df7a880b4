"""Motion compensation: a reused matte follows a moving person between mattes."""

import threading
import time
import weakref

import cv2
import numpy as np
import pytest
from fakes import make_pipeline
from matting import MattingEngine
from matting.motion import MotionCompensator, thumbnail
from realtime.sources import FrameSource, Pacer

H, W, SIZE, SPEED = 144, 256, 48, 3  # a textured square moving SPEED px per frame over a textured room


def scene(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t (BGR uint8) and its true alpha: a textured square whose left edge is at 40 + SPEED*t."""
    rng = np.random.default_rng(0)  # textures smooth over a couple of pixels, like camera images
    room = cv2.GaussianBlur(rng.integers(0, 120, (H, W, 3), dtype=np.uint8), (0, 0), 1.5)
    person = cv2.GaussianBlur(np.random.default_rng(1).integers(130, 255, (SIZE, SIZE, 3), dtype=np.uint8),
                              (0, 0), 1.5)
    x = (40 + SPEED * t) % (W - SIZE)
    frame = room.copy()
    frame[40:40 + SIZE, x:x + SIZE] = person
    alpha = np.zeros((H, W), np.float32)
    alpha[40:40 + SIZE, x:x + SIZE] = 1.0
    return frame, alpha


def test_warp_moves_the_matte_onto_the_later_frame():
    frame0, alpha0 = scene(0)
    frame4, alpha4 = scene(4)
    warped = MotionCompensator().warp(alpha0, frame0, frame4)
    assert np.abs(warped - alpha4).mean() < 0.4 * np.abs(alpha0 - alpha4).mean()


def test_warp_scales_the_flow_to_a_matte_of_another_size():
    """A 720p frame with a 512x288 matte (MODNet's size): the flow, found at 256 px, must be
    rescaled to the matte's pixels, pixel centres aligned, or the edges land off by a fraction."""
    (frame0, _), (frame4, _) = scene(0), scene(4)
    big = [cv2.resize(f, (5 * W, 5 * H), interpolation=cv2.INTER_CUBIC) for f in (frame0, frame4)]
    alpha0, alpha4 = (np.zeros((2 * H, 2 * W), np.float32) for _ in range(2))
    alpha0[80:80 + 2 * SIZE, 80:80 + 2 * SIZE] = 1.0
    alpha4[80:80 + 2 * SIZE, 80 + 8 * SPEED:80 + 8 * SPEED + 2 * SIZE] = 1.0
    warped = MotionCompensator().warp(alpha0, big[0], big[1])
    assert warped.shape == alpha0.shape and warped.dtype == np.float32
    assert np.abs(warped - alpha4).mean() < 0.3 * np.abs(alpha0 - alpha4).mean()
    # the moved square's centre of mass is where the true one is, to half a matte pixel
    cols = np.arange(2 * W, dtype=np.float32)
    centre = lambda a: float((a.sum(axis=0) * cols).sum() / a.sum())  # noqa: E731
    assert abs(centre(warped) - centre(alpha4)) < 0.5


def test_flow_frames_have_the_same_pixel_count_in_any_orientation_and_never_grow():
    """Sized by width, a 16x1200 frame made a 256x19200 flow frame (400 ms a flow, 2 fps live) and a
    portrait one 3.2 times the pixels of a landscape one; a 64x48 frame was scaled up for nothing."""
    motion = MotionCompensator()
    flow_size = lambda h, w: motion._gray(np.zeros((h, w, 3), np.uint8)).shape  # noqa: E731
    assert flow_size(720, 1280) == (144, 256)  # (the vlog's: the lag figures stand)
    assert flow_size(1280, 720) == (256, 144)
    assert flow_size(1920, 1080) == (256, 144)
    tall = flow_size(1200, 16)
    assert tall[0] * tall[1] <= 256 * 144 and tall[0] / tall[1] == pytest.approx(1200 / 16, rel=0.15)
    assert flow_size(48, 64) == (48, 64) and flow_size(100, 160) == (100, 160)


def test_a_portrait_frame_warps_as_a_landscape_one():
    """The synthetic scene turned on its side: the matte follows the square down the frame."""
    (frame0, alpha0), (frame4, alpha4) = scene(0), scene(4)
    turn = lambda a: np.ascontiguousarray(np.rot90(a))  # noqa: E731
    big = [cv2.resize(turn(f), (3 * H, 3 * W), interpolation=cv2.INTER_CUBIC) for f in (frame0, frame4)]
    warped = MotionCompensator().warp(turn(alpha0), *big)
    assert np.abs(warped - turn(alpha4)).mean() < 0.4 * np.abs(turn(alpha0) - turn(alpha4)).mean()


def test_frames_too_small_to_follow_motion_in_keep_the_matte_as_it_is():
    (frame0, alpha0), (frame4, _) = scene(0), scene(4)
    small = [cv2.resize(f, (64, 36), interpolation=cv2.INTER_AREA) for f in (frame0, frame4)]
    motion = MotionCompensator()
    assert not motion.prepare(*small)
    assert motion.warp(alpha0, *small) is alpha0
    # nor frames whose flow frame would be a few pixels high (DIS failed on a 10x1000 frame: the run ended)
    rng = np.random.default_rng(0)
    for h, w in [(10, 1000), (8, 600), (24, 5000), (1000, 10)]:
        frame = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        alpha = rng.random((h, w), dtype=np.float32)
        assert motion.warp(alpha, frame, np.roll(frame, 2, axis=1)) is alpha


def test_relative_maps_are_used_only_where_they_sample_exactly_as_grid_plus_flow(monkeypatch):
    """OpenCV's relative maps (no pixel grid added each frame) are used only where they give the
    very values grid + flow maps give: on random sub-pixel flows over uint8 and float32 images,
    and through the warp of a matte at the flow's size and at twice it (MODNet's on 720p). An
    OpenCV whose relative maps sample differently (4.10-4.12, by up to 8 grey levels on ~0.1 % of
    pixels) is caught at import and gets grid + flow."""
    import matting.motion as motion

    rng = np.random.default_rng(7)
    flow = rng.uniform(-9, 9, (90, 160, 2)).astype(np.float32)
    images = (rng.integers(0, 256, (90, 160), dtype=np.uint8), rng.random((90, 160), dtype=np.float32))
    (frame0, alpha0), (frame4, _) = scene(0), scene(4)
    big0 = cv2.resize(alpha0, (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR)
    compensator = MotionCompensator()
    followed = [compensator._follow(image, flow) for image in images]
    warped = [MotionCompensator().warp(a, frame0, frame4) for a in (alpha0, big0)]
    monkeypatch.setattr(motion, "RELATIVE_MAP", 0)
    for image, result in zip(images, followed):
        assert np.array_equal(result, compensator._follow(image, flow))
    for a, result in zip((alpha0, big0), warped):
        assert np.array_equal(result, MotionCompensator().warp(a, frame0, frame4)) and not np.array_equal(result, a)
    if hasattr(cv2, "WARP_RELATIVE_MAP"):  # the import-time check refuses relative maps that are off
        remap = cv2.remap

        def off_by_a_bit(image, map1, map2, interpolation, **kw):
            out = remap(image, map1, map2, interpolation, **kw)
            if interpolation & cv2.WARP_RELATIVE_MAP:
                out.flat[123] += 1
            return out

        monkeypatch.setattr(cv2, "remap", off_by_a_bit)
        assert motion._exact_relative_map() == 0


def test_a_still_noisy_jpeg_scene_is_not_warped():
    """Sensor noise and JPEG ringing on a sharp 720p scene (a webcam's MJPEG) are not motion: the
    matte comes back as is, so the compositor can reuse its work for a still scene."""
    yy, xx = np.mgrid[0:720, 0:1280]
    room = np.repeat((((yy // 9 + xx // 13) % 2) * 160 + 40)[..., None], 3, axis=2).astype(np.uint8)

    def shot(seed):
        noisy = np.clip(room + np.random.default_rng(seed).normal(0, 2, room.shape), 0, 255).astype(np.uint8)
        return cv2.imdecode(cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)

    alpha = np.random.default_rng(0).random((288, 512), dtype=np.float32)
    compensator, first = MotionCompensator(), shot(1)
    assert all(compensator.warp(alpha, first, shot(seed)) is alpha for seed in range(2, 8))
    moved = np.roll(shot(9), 6, axis=1)  # while a real move is followed
    assert compensator.warp(alpha, first, moved) is not alpha


def test_unreliable_flow_keeps_the_matte_as_it_is():
    """A cut to an unrelated picture: the flow cannot be trusted, so the matte must not be smeared."""
    frame0, alpha0 = scene(0)
    other = np.random.default_rng(7).integers(0, 255, (H, W, 3), dtype=np.uint8)
    warped = MotionCompensator().warp(alpha0, frame0, other)
    assert np.abs(warped - alpha0).mean() < 0.25 * np.abs(alpha0).mean()


def test_a_still_person_in_front_of_a_moving_room_keeps_the_matte():
    """The room pans behind a person who stands still: the flow, smooth across the outline, drags
    the person's edge along with the room; where the unmoved old frame matches the new one at least
    as well as the warped one, the matte must stay where it is."""
    room = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 120, (H, 3 * W, 3), dtype=np.uint8), (0, 0), 1.5)
    person = cv2.GaussianBlur(np.random.default_rng(1).integers(130, 255, (80, 60, 3), dtype=np.uint8), (0, 0), 1.5)

    def shot(t):
        frame = np.ascontiguousarray(room[:, 6 * t:6 * t + W])  # 6 px a frame, right to left
        frame[40:120, 100:160] = person
        return frame

    alpha = np.zeros((H, W), np.float32)
    alpha[40:120, 100:160] = 1.0
    for t in (1, 2, 4):
        warped = MotionCompensator().warp(alpha, shot(0), shot(t))
        assert np.abs(warped - alpha).max() < 0.25, (t, np.abs(warped - alpha).max())


class MovingSquare(FrameSource):
    name, live = "moving square", False

    def __init__(self, frames=60, fps=30.0):
        self.frames, self.fps = frames, fps
        self.pacer = Pacer(fps)

    def open(self):
        self.pacer.restart()

    def wait(self, stop):
        self.pacer.wait(stop)

    def resync(self):
        self.pacer.resync()

    def read(self):
        if self.pacer.count >= self.frames:
            return None
        frame, _ = scene(self.pacer.count)
        frame[0, 0, 0] = self.pacer.count  # the frame's number, for the spy
        self.pacer.count += 1
        return frame


class SlowTruth(MattingEngine):
    """The true alpha of the frame, after a delay: a slow but perfect engine."""

    name = "slow truth"

    def output_shape(self, frame_hw):
        return (H, W)

    def infer(self, frame):
        time.sleep(0.15)
        return scene(int(frame[0, 0, 0]))[1]


def edge_errors(motion_comp: bool) -> tuple[float, object]:
    """Mean |alpha - truth| of every output of an async run over the moving square."""
    pipeline = make_pipeline(MovingSquare(), SlowTruth(), mode="async", motion_comp=motion_comp)
    errors = []
    original = pipeline._emit

    def emit(packet, alpha):
        truth = scene(int(packet.image[0, 0, 0]))[1]
        errors.append(float(np.abs(alpha - truth).mean()))
        original(packet, alpha)

    pipeline._emit = emit
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    runner.join(30)
    assert not runner.is_alive() and len(errors) > 30
    return float(np.mean(errors)), pipeline


def test_async_pipeline_edges_follow_motion_between_mattes():
    """... with the flow made on the capture thread ahead of the render loop, which applies it."""
    without, plain = edge_errors(motion_comp=False)
    with_, compensated = edge_errors(motion_comp=True)
    assert with_ < 0.6 * without, (with_, without)
    assert "motion" in compensated.stats.stages and "motion" not in plain.stats.stages
    assert "flow" in compensated.stats.stages and "flow" not in plain.stats.stages
    warps = len(compensated.stats.stages["motion"])
    assert compensated.motion.prepared >= 0.8 * warps, (compensated.motion.prepared, warps)


def test_a_flow_made_ahead_on_another_thread_warps_exactly_as_one_made_on_the_spot():
    """prepare() on one thread while warp() runs on another: the same mattes, bit for bit, as
    warps alone; a prepared pair is not made again; the kept flow is never changed by a warp (a
    matte at twice the flow's size rescales a copy)."""
    frames = [scene(t)[0] for t in range(12)]
    alphas = [scene(0)[1], cv2.resize(scene(0)[1], (2 * W, 2 * H), interpolation=cv2.INTER_LINEAR)]
    alone = MotionCompensator()
    expected = [[alone.warp(a, frames[0], f) for f in frames[1:]] for a in alphas]
    ahead = MotionCompensator()
    done = threading.Event()

    def prepare():
        for f in frames[1:]:
            ahead.prepare(frames[0], f)
        done.set()

    helper = threading.Thread(target=prepare)
    helper.start()
    got = [[ahead.warp(a, frames[0], f) for f in frames[1:]] for a in alphas]
    helper.join(10)
    assert done.is_set()
    for want_rows, got_rows in zip(expected, got):
        for want, have in zip(want_rows, got_rows):
            assert np.array_equal(want, have)
    # made ahead (and finished), then applied: found every time, never made again, unchanged
    ahead = MotionCompensator()
    helper = threading.Thread(target=lambda: [ahead.prepare(frames[0], f) for f in frames[1:4]])
    helper.start()
    helper.join(10)
    calls = []
    original = ahead.flows
    ahead.flows = lambda *a: calls.append(1) or original(*a)  # noqa: E731
    for a, want_rows in reversed(list(zip(alphas, expected))):  # the big matte first: a scaled flow kept would show
        for f, want in zip(frames[1:4], want_rows):
            assert np.array_equal(ahead.warp(a, frames[0], f), want)
    assert ahead.prepared == 6 and not calls


def test_a_kept_flow_serves_only_its_own_pair_of_frames():
    """A flow made from matte frame A to shown frame N is not used for a matte of frame B on N,
    nor for a frame that merely has A's old address (an id reused after A died: simulated here by
    filing A's flow under B's id); and the kept arrays cannot be changed."""
    import weakref

    a, b, shown = scene(0)[0], scene(5)[0], scene(3)[0]
    alpha = scene(0)[1]
    fresh = MotionCompensator().warp(alpha, b, shown)
    compensator = MotionCompensator()
    compensator.prepare(a, shown)
    assert np.array_equal(compensator.warp(alpha, b, shown), fresh) and compensator.prepared == 0
    kept = MotionCompensator()
    kept.prepare(a, shown)
    pairs = kept._flows.get(shown)
    pairs[id(b)] = (weakref.ref(a), pairs[id(a)][1])  # what an id reused by b would look like
    assert np.array_equal(kept.warp(alpha, b, shown), fresh) and kept.prepared == 0
    backward, reliable = kept.flow(a, shown)
    assert not backward.flags.writeable and not reliable.flags.writeable


def test_a_failing_flow_ahead_leaves_the_run_to_the_render_loop(monkeypatch):
    """If making the flow on the capture thread fails, the capture goes on and the render loop
    makes (and reports) its own."""
    def broken(self, from_frame, to_frame):
        raise RuntimeError("flow ahead broke")

    monkeypatch.setattr(MotionCompensator, "prepare", broken)
    with_, pipeline = edge_errors(motion_comp=True)
    assert "flow" not in pipeline.stats.stages and "motion" in pipeline.stats.stages
    assert pipeline.motion.prepared == 0 and pipeline.capture.error is None


def test_shared_thumbnails_are_made_once_per_frame_and_equal_the_plain_ones(monkeypatch):
    """The still-scene check (64 px, inference thread) and the blur (160 px, render thread) look
    at the same live frames: their halvings are made once, from any thread, and give what a
    thumbnail of its own would; a new frame (even at a reused address) gets its own."""
    rng = np.random.default_rng(4)
    real_resize = cv2.resize
    resized = []  # the sizes cv2.resize was given while counting

    def counting_resize(image, *args, **kwargs):
        resized.append(image.shape[:2])
        return real_resize(image, *args, **kwargs)

    for _ in range(12):  # more frames than are kept: old entries go, addresses may be reused
        frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
        resized.clear()
        monkeypatch.setattr(cv2, "resize", counting_resize)
        small = thumbnail(frame, 160, 90, shared=True)
        assert resized == [(720, 1280), (360, 640), (180, 320)]  # three halvings: a new frame
        resized.clear()
        out = {}
        worker = threading.Thread(target=lambda: out.update(tiny=thumbnail(frame, 64, 36, shared=True)))
        worker.start()
        worker.join()
        assert resized == [(90, 160), (45, 80)]  # from another thread: only the steps below 160 px
        monkeypatch.setattr(cv2, "resize", real_resize)
        assert np.array_equal(small, thumbnail(frame, 160, 90))
        assert np.array_equal(out["tiny"], thumbnail(frame, 64, 36))
        del frame  # its address is free for the next one
    # a frame at the address of one that is gone never gets that frame's halvings
    import matting.motion as motion

    class Gone:
        pass

    gone = Gone()
    dead = weakref.ref(gone)
    del gone
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    motion._shared[id(frame)] = (dead, [np.zeros((360, 640, 3), np.uint8)])
    assert np.array_equal(thumbnail(frame, 160, 90, shared=True), thumbnail(frame, 160, 90))


def test_shared_thumbnails_from_racing_threads_and_gone_with_their_frame():
    """Two threads thumbnailing the same frames at once get what a thumbnail of its own gives;
    a frame's halvings are dropped when the frame is (photos are big)."""
    import matting.motion as motion

    rng = np.random.default_rng(6)
    frames = [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(6)]
    expected = {(i, w): thumbnail(f, w, w * 9 // 16) for i, f in enumerate(frames) for w in (64, 160)}
    start = threading.Barrier(2)
    wrong = []

    def look(width, frames):
        start.wait()
        for _ in range(20):
            for i, f in enumerate(frames):
                if not np.array_equal(thumbnail(f, width, width * 9 // 16, shared=True), expected[(i, width)]):
                    wrong.append((i, width))

    workers = [threading.Thread(target=look, args=(w, frames)) for w in (64, 160)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not wrong
    keys = [id(f) for f in frames[-motion.SHARED_FRAMES:]]
    assert all(k in motion._shared for k in keys)
    del frames
    assert not any(k in motion._shared for k in keys)  # gone with the frames, not held for later


def test_a_frame_dying_runs_no_python_code():
    """A frame's halvings go when it dies, without running Python code there: the render loop
    drops frames all the time, and a Ctrl-C landing in a Python weakref callback would be
    swallowed (their exceptions are ignored), leaving the run going."""
    import sys

    import matting.motion as motion

    frame = np.zeros((72, 128, 3), np.uint8)
    thumbnail(frame, 16, 9, shared=True)
    key = id(frame)
    assert key in motion._shared
    calls = []
    sys.setprofile(lambda f, event, arg: calls.append(f.f_code.co_name) if event == "call" else None)
    try:
        del frame
    finally:
        sys.setprofile(None)
    assert key not in motion._shared and not calls, calls


def test_scene_change_ignores_sensor_noise_and_sees_motion():
    from matting.motion import SceneChange

    frame, _ = scene(0)
    rng = np.random.default_rng(3)
    check = SceneChange(refresh_s=2.0)
    assert check.changed(frame, now=0.0)  # nothing to compare with yet
    for i in range(1, 20):  # the same scene with sensor noise of +-6 levels
        noisy = np.clip(frame.astype(np.int16) + rng.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
        assert not check.changed(noisy, now=0.05 * i)
    assert check.changed(scene(3)[0], now=1.1)       # the person moved 9 px
    assert not check.changed(scene(3)[0], now=1.2)
    assert check.changed(scene(3)[0], now=3.2)       # still, but 2 s since the last matte: refresh


def test_still_scene_skips_inference_in_a_live_run():
    class Still(MovingSquare):
        def read(self):
            frame = super().read()
            if frame is not None:
                frame[:] = scene(0)[0]
                frame[0, 0, 0] = 0
            return frame

    class Counting(SlowTruth):
        calls = 0

        def infer(self, frame):
            Counting.calls += 1
            return scene(0)[1]

    pipeline = make_pipeline(Still(frames=90, fps=30), Counting(), mode="async", skip_still=True)
    stats = pipeline.run()
    assert stats.outputs >= 60
    assert Counting.calls <= 3  # the first matte, and a refresh every 2 s of a 3-s clip


def other_scene(t: int) -> np.ndarray:
    """Frame t of another scene (a cut): another room, brighter, the square elsewhere."""
    frame, _ = scene(t)
    return cv2.add(np.ascontiguousarray(frame[::-1, ::-1]), np.full_like(frame, 60))


def test_matte_every_n_gives_a_new_scene_its_own_matte_at_once():
    """--matte-every 4 with a cut before frame 6: frames 0 and 4 in turn, 6 at once (no warp can
    carry a matte across a cut), then 10, 14 counted from it. The square moving 3 px a frame over
    4 frames, and sensor noise, are not a new scene; strict mode ignores cuts. Live mode's time
    limits let a cut come early too, and keep their rate over time."""
    from realtime.capture import FramePacket
    from realtime.inference import MatteCadence

    rng = np.random.default_rng(5)

    def frame(t):
        image = scene(t)[0] if t < 6 else other_scene(t)
        return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)

    frames = [frame(t) for t in range(16)]

    def inferred(cadence, times=None):
        return [t for t, image in enumerate(frames)
                if cadence.due(FramePacket(t, image, 0.0), now=float(t) if times is None else times[t])]

    cadence = MatteCadence(every=4)
    assert inferred(cadence) == [0, 4, 6, 10, 14] and cadence.early == 1
    assert inferred(MatteCadence(every=4, new_scenes=False)) == [0, 4, 8, 12]
    # a camera panning 8 px a frame (32 px between mattes, an eighth of the width) is the same scene
    panning, cadence = [np.roll(frames[0], 8 * t, axis=1) for t in range(16)], MatteCadence(every=4)
    assert [t for t, image in enumerate(panning) if cadence.due(FramePacket(t, image, 0.0), float(t))] == [0, 4, 8, 12]
    # a picture of another shape (a camera reopened at another resolution) is a new scene too
    reshaped = MatteCadence(every=4)
    assert reshaped.due(FramePacket(0, frames[0], 0.0), 0.0)
    assert reshaped.due(FramePacket(1, np.ascontiguousarray(frames[1][:, :H]), 0.0), 1.0) and reshaped.early == 1
    # live mode's time limits (--max-matte-rate, --inference-share): the cut at frame 6 comes early
    # too, and the next in turn then waits two intervals from the one before it (0.5 s here)
    times = [0.1 * t for t in range(16)]
    assert inferred(MatteCadence(every=4, max_rate=2.0), times) == [0, 5, 6, 15]
    assert inferred(MatteCadence(max_rate=2.0), times) == [0, 5, 6, 15]
    assert inferred(MatteCadence(max_rate=2.0, new_scenes=False), times) == [0, 5, 10, 15]
    shared = MatteCadence(every=4, share=0.5)
    shared.last_infer_s = 0.25  # a 250-ms matte at most half the time: 0.5 s apart, frames 0.1 s apart
    assert inferred(shared, times) == [0, 5, 6, 15]
    # without a cut nothing comes early
    same, capped = [scene(t)[0] for t in range(16)], MatteCadence(max_rate=2.0)
    assert [t for t, image in enumerate(same) if capped.due(FramePacket(t, image, 0.0), times[t])] == [0, 5, 10, 15]
    assert capped.early == 0
    # a strobe (two scenes in turn, every frame a cut): at most one early matte between two in turn
    strobe, cadence = [frames[0] if t % 2 == 0 else frames[6] for t in range(48)], MatteCadence(every=12)
    assert [t for t, image in enumerate(strobe) if cadence.due(FramePacket(t, image, 0.0), float(t))] \
        == [0, 1, 13, 14, 26, 27, 39, 40] and cadence.early == 4
    # ... and under a time limit it gets the limited rate: 2 mattes a second
    capped = MatteCadence(max_rate=2.0)
    assert [t for t, image in enumerate(strobe) if capped.due(FramePacket(t, image, 0.0), 0.1 * t)] \
        == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41] and capped.early == 5
    # two cuts in quick succession: two intervals (1 s) may hold three mattes, never four
    cuts = [frames[0] if t < 6 else frames[6] if t < 21 else frames[0] for t in range(60)]
    capped = MatteCadence(max_rate=2.0)
    starts = [0.05 * t for t, image in enumerate(cuts) if capped.due(FramePacket(t, image, 0.0), 0.05 * t)]
    assert starts[:4] == pytest.approx([0.0, 0.3, 1.0, 1.05]) and starts[4] == pytest.approx(2.0), starts
    assert all(sum(s <= t < s + 1.0 for t in starts) <= 3 for s in starts)


def test_a_cut_in_a_live_run_gets_its_matte_at_once():
    """Live mode at one matte a second: the cut half a second in is cut out with the new scene's
    own matte at once, not with the old scene's until the next matte in turn."""

    class Cut(MovingSquare):
        def read(self):
            count = self.pacer.count
            frame = super().read()
            if frame is not None and count >= 15:
                frame = other_scene(count)
                frame[0, 0, 0], frame[0, 0, 1] = count, 1
            return frame

    class Truth(SlowTruth):
        def infer(self, frame):
            time.sleep(0.05)
            alpha = scene(int(frame[0, 0, 0]))[1]
            return np.ascontiguousarray(alpha[::-1, ::-1]) if frame[0, 0, 1] == 1 else alpha

    pipeline = make_pipeline(Cut(frames=45, fps=30), Truth(), mode="async", max_matte_rate=1.0)
    errors, original = {}, pipeline._emit

    def emit(packet, alpha):
        count = int(packet.image[0, 0, 0])
        truth = scene(count)[1]
        errors[count] = float(np.abs(alpha - (truth[::-1, ::-1] if count >= 15 else truth)).mean())
        original(packet, alpha)

    pipeline._emit = emit
    pipeline.run()
    after = [errors[t] for t in range(20, 30) if t in errors]  # 0.17-0.33 s after the cut
    assert len(after) >= 5 and max(after) < 0.05, after
    assert pipeline.inference.cadence.early == 1


def test_the_vlog_clips_one_cut_is_its_only_new_scene(vlog_path):
    """Real footage: over a second between mattes (N = 24) talking, turning and the hand-held
    camera are the same scene; the cut at frame 34 is a new one."""
    from realtime.capture import FramePacket
    from realtime.inference import MatteCadence

    cap, cadence, inferred, t = cv2.VideoCapture(str(vlog_path)), MatteCadence(every=24), [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if cadence.due(FramePacket(t, frame, 0.0), float(t)):
            inferred.append(t)
        t += 1
    cap.release()
    assert t == 122 and inferred == [0, 24, 34, 58, 82, 106] and cadence.early == 1


def test_between_two_mattes_of_different_sizes_keeps_the_earlier_one():
    """The picture changed size between two mattes (the same aspect, so not a new scene by shape
    alone): the later matte cannot be weighed in; the earlier one, moved, is the answer."""
    from matting.motion import MotionCompensator, scene_thumbnail

    frame = np.full((72, 128, 3), 100, np.uint8)
    earlier = np.full((36, 64), 0.25, np.float32)
    later = np.full((72, 128), 0.75, np.float32)
    out = MotionCompensator().between(frame, 1, (0, frame, earlier), (2, frame, later, scene_thumbnail(frame)))
    assert out.shape == (36, 64) and np.allclose(out, 0.25)
    same = MotionCompensator().between(frame, 1, (0, frame, earlier),
                                       (2, frame, np.full((36, 64), 0.75, np.float32), scene_thumbnail(frame)))
    assert np.allclose(same, 0.5)  # halfway between two mattes of one size
