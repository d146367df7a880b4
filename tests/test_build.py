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
