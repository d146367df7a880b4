"""One-minute soak: resident memory and latency do not drift (bench/soak.py runs the long version)."""

import io
import sys

import pytest

from conftest import ROOT, need, VLOG

sys.path.insert(0, str(ROOT / "bench"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for resident memory")
def test_one_minute_soak(reference_ckpt):
    from soak import soak

    log = io.StringIO()
    summary = soak(need(VLOG), str(reference_ckpt), "modnet", minutes=1.0, every=10.0, inference_size=128, out=log)
    print(log.getvalue())
    assert summary["rss_growth"] < 0.05, log.getvalue()
    assert summary["p95_end"] < summary["p95_start"] * 1.5 + 20, log.getvalue()
    assert summary["fps_end"] > 15, log.getvalue()
