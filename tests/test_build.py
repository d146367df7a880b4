"""The defaults decided from settings in app/build.py (one home for each)."""

import pytest

from app.build import choose_mode, choose_workers, threads_per_worker
from app.config import Settings


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr("app.build.os.cpu_count", lambda: 4)


def settings(**values):
    return Settings(device="cpu", window=False, **values).validate()


def test_live_async_leaves_a_core_free(four_cores):
    live = settings(source="clip.mp4")
    assert choose_workers(live) == 1 and threads_per_worker(live, 1) == 3
    assert threads_per_worker(settings(source="clip.mp4", threads=2), 1) == 2  # the user decides
    assert threads_per_worker(settings(source="clip.mp4", mode="sync"), 1) is None  # every core


def test_every_frame_runs_two_single_threaded_workers(four_cores):
    offline = settings(source="clip.mp4", every_frame=True)
    assert choose_workers(offline) == 2 and threads_per_worker(offline, 2) == 2
    assert choose_mode(offline, "cpu") == "sync"


def test_mode_follows_the_device():
    assert choose_mode(settings(), "cpu") == "async"
    assert choose_mode(settings(), "cuda") == "sync"
    assert choose_mode(settings(mode="sync"), "cpu") == "sync"


class _Engine:
    def __init__(self, name, device="cpu"):
        self.name, self.device = name, device


def test_modnet_on_a_cpu_infers_about_a_third_of_the_time_by_default():
    from app.build import DEFAULT_CPU_SHARE, choose_inference_share

    live = settings(source="clip.mp4")
    assert choose_inference_share(live, _Engine("modnet-onnx"), "async") == DEFAULT_CPU_SHARE == 0.35
    assert choose_inference_share(live, _Engine("modnet"), "async") == 0.35
    assert choose_inference_share(live, _Engine("selfie"), "async") is None        # cheap: no limit
    assert choose_inference_share(live, _Engine("modnet", "cuda"), "sync") is None  # a GPU keeps up
    assert choose_inference_share(live, _Engine("modnet"), "sync") is None
    assert choose_inference_share(settings(source="clip.mp4", every_frame=True), _Engine("modnet"), "sync") is None
    assert choose_inference_share(settings(source="clip.mp4", inference_share=1.0), _Engine("modnet"),
                                  "async") is None                                   # the user's "no limit"
    assert choose_inference_share(settings(source="clip.mp4", inference_share=0.3), _Engine("selfie"),
                                  "async") == 0.3
    # without motion compensation nothing carries a matte across the frames between: no limit unless asked
    assert choose_inference_share(settings(source="clip.mp4", motion_comp=False), _Engine("modnet"), "async") is None
    assert choose_inference_share(settings(source="clip.mp4", motion_comp=False, inference_share=0.5),
                                  _Engine("modnet"), "async") == 0.5


def test_inference_share_spaces_mattes_by_their_own_duration():
    from realtime.capture import FramePacket
    from realtime.inference import MatteCadence

    import numpy as np

    cadence = MatteCadence(share=0.5)
    frame = np.zeros((4, 4, 3), np.uint8)
    assert cadence.limited and cadence.due(FramePacket(0, frame, 0.0), now=0.0)
    cadence.inferred(0.2)  # a 200-ms matte: the next may start 400 ms after this one started
    assert not cadence.due(FramePacket(1, frame, 0.1), now=0.1)
    assert not cadence.due(FramePacket(9, frame, 0.39), now=0.39)
    assert cadence.due(FramePacket(10, frame, 0.41), now=0.41)
    cadence.inferred(0.05)
    assert cadence.due(FramePacket(11, frame, 0.52), now=0.52)  # faster mattes: closer together
    assert not MatteCadence(share=1.0).limited  # 1 = no limit
    capped = MatteCadence(max_rate=2.0, share=0.5)
    capped.due(FramePacket(0, frame, 0.0), now=0.0)
    capped.inferred(0.1)
    assert capped.interval() == 0.5  # the stricter of the two


@pytest.mark.parametrize("values, fragment", [
    ({"inference_share": 0.0}, "--inference-share must be at least 0.01"),
    ({"inference_share": 1.5}, "--inference-share must be at most 1"),
    ({"inference_share": 0.5, "every_frame": True}, "--inference-share is for live mode"),
])
def test_inference_share_is_checked(values, fragment):
    from app.errors import UsageError

    with pytest.raises(UsageError, match=fragment):
        Settings(source="clip.mp4", **values).validate()
