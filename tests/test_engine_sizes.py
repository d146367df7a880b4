"""The inference size rule, rounding, upsampling alignment and device choice."""

import logging

import numpy as np
import pytest

from matting.engine import checked_inference_size, inference_shape, pick_device, upsample_alpha


@pytest.mark.parametrize("frame_hw,short,expected", [
    ((720, 1280), 288, (288, 512)),
    ((720, 1280), 512, (512, 896)),       # the naive webcam loop's size
    ((1080, 1920), 288, (288, 512)),
    ((661, 1126), 512, (512, 864)),       # two_people.jpg: 872 rounds to 864
    ((1280, 720), 288, (512, 288)),       # portrait orientation: the short side is the width
    ((100, 100), 64, (64, 64)),
    ((50, 4000), 32, (32, 128)),         # a thin strip: the long side at most 4x the size
    ((20, 4000), 512, (32, 2048)),        # (at 512 it would have run at 512x102400)
    ((4000, 20), 288, (1152, 32)),
    ((512, 2048), 512, (512, 2048)),      # a 4:1 panorama runs as it is
])
def test_inference_shape(frame_hw, short, expected):
    h, w = inference_shape(frame_hw, short)
    assert (h, w) == expected
    assert h % 32 == 0 and w % 32 == 0


def test_aspect_ratio_is_kept_not_squashed():
    for frame_hw in [(720, 1280), (1080, 1440), (661, 1126), (1920, 1080), (333, 777)]:
        h, w = inference_shape(frame_hw, 288)
        # rounding moves each side by at most 16 px
        assert abs(w - frame_hw[1] * 288 / min(frame_hw)) <= 16
        assert abs(h - frame_hw[0] * 288 / min(frame_hw)) <= 16


def test_checked_inference_size_rounds_with_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert checked_inference_size(300) == 288
    assert "multiple of 32" in caplog.text
    assert checked_inference_size(256) == 256
    for bad in (0, -32):
        with pytest.raises(ValueError):
            checked_inference_size(bad)


def test_upsample_alignment_edge_lands_on_same_pixel():
    """A vertical edge between inference columns 63|64 of 128 lands between 319|320 of 640."""
    small = np.zeros((72, 128), np.float32)
    small[:, 64:] = 1.0
    big = upsample_alpha(small, (360, 640))
    assert big.shape == (360, 640) and big.dtype == np.float32
    row = big[100]
    # the 0.5 crossing is exactly at the boundary, symmetric around it
    assert row[319] < 0.5 < row[320]
    assert np.isclose(row[319] + row[320], 1.0, atol=1e-6)
    assert row[:316].max() == 0.0 and row[323:].min() == 1.0


def test_upsample_is_smooth_not_blocky():
    small = np.zeros((18, 32), np.float32)
    small[:, 16:] = 1.0
    big = upsample_alpha(small, (180, 320))
    distinct = np.unique(np.round(big[50, 150:170], 4))
    assert len(distinct) > 4  # a ramp, not a single step


def test_pick_device_cpu_and_errors():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError):
        pick_device("tpu")
