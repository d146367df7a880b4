"""The benchmarks users and CI run still run: the GPU-readiness check as its CPU smoke test."""

import os
import subprocess
import sys

from conftest import ROOT, SHARED, need


def test_gpu_check_runs_on_a_cpu_as_a_smoke_test():
    """``bench/gpu_check.py --device cpu --quick``: every section on a CPU, and its verdict."""
    need(SHARED / "reference")
    need(SHARED / "media" / "vlog_720p.mp4")
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--quick"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env={**os.environ, "MODNET_OFFLINE": "1"})
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    for section in ("1. reference vectors", "2. MODNet alone", "2b. the engine on a 1080p frame", "3. full pipeline",
                    "against the same stages run serially", "4. device compositor", "5. device temporal smoother"):
        assert section in out, out
    assert out.strip().splitlines()[-1] == "gpu_check=ok", out
