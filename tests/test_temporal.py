"""Temporal smoothing: EMA calms still regions without ghosting; OFD fixes one-frame flips."""

import numpy as np
import pytest

from matting.metrics import flicker
from matting.temporal import Chain, MotionAwareEMA, OneFrameDelay, make_smoother


def still_frames(n, h=90, w=160):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return [base.copy() for _ in range(n)]


def noisy_alphas(n, h=90, w=160, noise=0.15):
    rng = np.random.default_rng(1)
    truth = np.zeros((h, w), np.float32)
    truth[20:70, 50:110] = 1.0
    return [np.clip(truth + rng.normal(0, noise, truth.shape), 0, 1).astype(np.float32) for _ in range(n)]


def run(smoother, frames, alphas):
    out = []
    for i, (f, a) in enumerate(zip(frames, alphas)):
        out.extend(smoother.push(i, a, f))
    out.extend(smoother.flush())
    return out


def test_ema_reduces_flicker_on_still_input():
    frames, alphas = still_frames(20), noisy_alphas(20)
    smoothed = [a for _, a, _ in run(MotionAwareEMA(), frames, alphas)]
    raw = flicker(frames, alphas)
    after = flicker(frames, smoothed)
    assert after < 0.5 * raw


def test_ema_follows_motion_without_ghosting():
    h, w = 90, 160
    frames, alphas = [], []
    for i in range(10):
        frame = np.full((h, w, 3), 40, np.uint8)
        alpha = np.zeros((h, w), np.float32)
        x = 10 + 12 * i  # a bright person moving right
        frame[20:70, x:x + 30] = 220
        alpha[20:70, x:x + 30] = 1.0
        frames.append(frame)
        alphas.append(alpha)
    out = run(MotionAwareEMA(), frames, alphas)
    last = out[-1][1]
    assert np.abs(last - alphas[-1]).max() < 0.05  # no trail where the person was


def test_ofd_fixes_single_frame_flip_with_one_frame_delay():
    frames = still_frames(5)
    a = np.zeros((90, 160), np.float32)
    flipped = a.copy()
    flipped[30:40, 30:40] = 1.0  # appears for exactly one frame
    alphas = [a, a, flipped, a, a]
    ofd = OneFrameDelay()
    first = ofd.push(0, alphas[0], frames[0])
    assert first == []  # one frame of delay
    out = first + [x for i in range(1, 5) for x in ofd.push(i, alphas[i], frames[i])] + ofd.flush()
    assert [t for t, _, _ in out] == [0, 1, 2, 3, 4]
    assert out[2][1].max() == 0.0  # the flip is gone
    assert ofd.delay_frames == 1


def test_ofd_keeps_real_changes():
    frames = still_frames(4)
    a, b = np.zeros((90, 160), np.float32), np.ones((90, 160), np.float32)
    ofd = OneFrameDelay()
    out = [x for i, al in enumerate([a, b, b, b]) for x in ofd.push(i, al, frames[i])] + ofd.flush()
    assert out[1][1].min() == 1.0  # a lasting change is not undone


def test_chain_and_factory():
    smoother = make_smoother("ofd+ema")
    assert isinstance(smoother, Chain) and smoother.delay_frames == 1
    frames, alphas = still_frames(6), noisy_alphas(6)
    out = run(smoother, frames, alphas)
    assert [t for t, _, _ in out] == list(range(6))
    with pytest.raises(ValueError):
        make_smoother("kalman")


def test_flicker_metric_counts_only_static_pixels():
    frames = still_frames(3)
    moving = [f.copy() for f in frames]
    moving[1][:] = 0  # everything changes between frames 0 and 1, then stays
    moving[2][:] = 0
    alphas = [np.zeros((90, 160), np.float32), np.ones((90, 160), np.float32), np.ones((90, 160), np.float32)]
    assert flicker(frames, alphas) == pytest.approx(0.5)  # 1.0 then 0.0
    assert flicker(moving, alphas) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", ["ema", "ofd", "ofd+ema"])
def test_device_smoother_matches_the_host_one(name):
    """The torch smoother (the GPU path's) does the host smoother's arithmetic: on a CPU device the
    two agree to float rounding, frame by frame, on moving frames and flipping alphas."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(3)]
    frames = [frames[i % 3] if i % 4 else frames[0] for i in range(12)]  # still runs and jumps
    alphas = noisy_alphas(12, noise=0.3)
    host = run(make_smoother(name), frames, [a.copy() for a in alphas])
    # numpy alphas in (as the first matte or a motion-compensated reuse come), and tensors; the
    # inputs are never changed in place (the compositor's caches rely on it)
    inputs = [torch.from_numpy(a.copy()) if i % 2 else a.copy() for i, a in enumerate(alphas)]
    device = run(make_smoother(name, device="cpu"), frames, inputs)
    for given, original in zip(inputs, alphas):
        assert np.array_equal(np.asarray(given), original)
    assert [tag for tag, _, _ in device] == [tag for tag, _, _ in host]
    for (_, h, _), (_, d, _) in zip(host, device):
        assert isinstance(d, torch.Tensor) and d.dtype == torch.float32 and tuple(d.shape) == h.shape
        np.testing.assert_allclose(d.numpy(), h, atol=1e-5)
