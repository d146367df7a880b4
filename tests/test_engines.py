"""ONNX export and engine, the selfie segmenter in both formats, and agreement between engines."""

import os
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

from conftest import MODELS, ROOT, SHARED, need
from matting.torch_engine import TorchModnetEngine
from matting import WeightsError

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(reference_ckpt, tmp_path_factory):
    from matting.onnx_export import export_modnet_onnx

    return export_modnet_onnx(reference_ckpt, tmp_path_factory.mktemp("onnx") / "modnet.onnx")


@pytest.mark.parametrize("case", ["case_vlog_288x512", "case_two_people_384x640"])
def test_onnx_engine_matches_reference_vectors(exported, case):
    from matting.onnx_engine import OnnxModnetEngine

    ref = np.load(need(SHARED / "reference" / f"{case}.npz"))
    h = ref["image_rgb"].shape[0]
    engine = OnnxModnetEngine(exported, inference_size=h)
    alpha = engine.infer(np.ascontiguousarray(ref["image_rgb"][:, :, ::-1]))
    assert alpha.shape == ref["matte"].shape
    assert np.abs(alpha - ref["matte"]).max() < 1e-4


def test_onnx_dynamic_sizes(exported):
    from matting.onnx_engine import OnnxModnetEngine

    engine = OnnxModnetEngine(exported, inference_size=64)
    for hw in [(64, 96), (96, 64), (720, 1280)]:
        alpha = engine.infer(np.zeros((*hw, 3), np.uint8))
        assert alpha.shape == engine.output_shape(hw)


def test_export_cli(reference_ckpt, tmp_path):
    out = tmp_path / "cli.onnx"
    r = subprocess.run([sys.executable, str(ROOT / "live.py"), "--export-onnx", str(out), "--weights",
                        str(reference_ckpt)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.shape[1] == 3 and isinstance(inp.shape[2], str) and isinstance(inp.shape[3], str)


def test_engine_onnx_flag_exports_once_into_weights_dir(reference_ckpt, tmp_path):
    from matting.factory import create_engine

    cache = tmp_path / "weights"
    engine = create_engine("modnet", "onnx", weights=str(reference_ckpt), weights_dir=str(cache),
                           inference_size=64, device="cpu")
    exports = list(cache.glob("modnet_reference-*.onnx"))
    assert engine.name == "modnet-onnx" and len(exports) == 1
    stamp = exports[0].stat().st_mtime_ns
    create_engine("modnet", "onnx", weights=str(reference_ckpt), weights_dir=str(cache), inference_size=64)
    assert exports[0].stat().st_mtime_ns == stamp  # reused, not exported again
    assert not list(reference_ckpt.parent.glob("*.onnx"))  # nothing written beside the checkpoint


def test_all_engines_agree_on_same_frame(reference_ckpt, exported, vlog_frames):
    """torch float32, torch float64 and ONNX Runtime give the same alpha on a real frame."""
    from matting.onnx_engine import OnnxModnetEngine

    frame = vlog_frames[10]
    torch32 = TorchModnetEngine(reference_ckpt, inference_size=160, device="cpu").infer(frame)
    torch64 = TorchModnetEngine(reference_ckpt, inference_size=160, device="cpu", dtype="float64").infer(frame)
    onnx = OnnxModnetEngine(exported, inference_size=160).infer(frame)
    assert torch32.shape == onnx.shape == (160, 288)
    assert np.abs(torch32 - torch64).max() < 2e-4
    assert np.abs(onnx - torch64).max() < 2e-4


# ---------------------------------------------------------------- selfie segmenter

SELFIE_FILES = ["selfie_segmentation.onnx", "selfie_segmentation.tflite",
                "selfie_segmentation_landscape.onnx", "selfie_segmentation_landscape.tflite"]


@pytest.mark.parametrize("name", SELFIE_FILES)
def test_selfie_models_on_vlog_frames(name, vlog_frames):
    from matting.selfie import SelfieEngine

    if name.endswith(".tflite"):
        pytest.importorskip("ai_edge_litert")
    engine = SelfieEngine(need(MODELS / name))
    for frame in vlog_frames[::8]:
        alpha = engine.infer(frame)
        h, w = alpha.shape
        assert alpha.dtype == np.float32 and 0 <= alpha.min() and alpha.max() <= 1
        centre = alpha[h // 3: 2 * h // 3, w // 3: 2 * w // 3].mean()
        corners = np.mean([alpha[: h // 8, : w // 8].mean(), alpha[: h // 8, -w // 8:].mean()])
        assert centre > 0.6 and corners < 0.1, (centre, corners)


def test_selfie_tflite_and_onnx_agree(vlog_frames):
    from matting.selfie import SelfieEngine

    pytest.importorskip("ai_edge_litert")
    tfl = SelfieEngine(need(MODELS / "selfie_segmentation_landscape.tflite"))
    onx = SelfieEngine(need(MODELS / "selfie_segmentation_landscape.onnx"))
    for frame in vlog_frames[::6]:
        a, b = tfl.infer(frame), onx.infer(frame)
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_selfie_rejects_wrong_models(tmp_path, exported):
    from matting.selfie import SelfieEngine

    with pytest.raises(WeightsError, match="not a person-segmentation model"):
        SelfieEngine(exported)  # MODNet ONNX: NCHW, not NHWC
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"garbage")
    pytest.importorskip("ai_edge_litert")
    with pytest.raises(WeightsError, match="not a loadable TFLite model"):
        SelfieEngine(bad)
    other = tmp_path / "model.pb"
    other.write_bytes(b"x")
    with pytest.raises(WeightsError, match="unsupported model format"):
        SelfieEngine(other)


def test_selfie_download_validation_and_offline(tmp_path, monkeypatch):
    """The downloader's validator accepts the real model and refuses others; offline never fetches."""
    from matting.selfie import SELFIE_LANDSCAPE, ensure_selfie_weights, validate_selfie_file

    pytest.importorskip("ai_edge_litert")
    validate_selfie_file(need(MODELS / "selfie_segmentation_landscape.tflite"))
    with pytest.raises(ValueError, match="unexpected shapes"):
        validate_selfie_file(MODELS / "selfie_segmentation.tflite")  # the square model
    with pytest.raises(WeightsError) as err:
        ensure_selfie_weights(tmp_path, offline=True)
    assert SELFIE_LANDSCAPE.filename in str(err.value) and "storage.googleapis.com" in str(err.value)


def test_selfie_live_command(vlog_path, tmp_path):
    """The issue's command: the person is kept and the room replaced."""
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "selfie.mp4"
    r = subprocess.run([sys.executable, str(ROOT / "live.py"), "--model", "selfie", "--weights",
                        str(need(MODELS / "selfie_segmentation_landscape.tflite")), "--source", str(vlog_path),
                        "--no-window", "--record", str(out), "--background", "#00ff00", "--max-frames", "30"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "MODNET_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 20)
    ok, frame = cap.read()
    assert ok
    h, w = frame.shape[:2]
    green = (frame[:, :, 1] > 200) & (frame[:, :, 0] < 60) & (frame[:, :, 2] < 60)
    assert green[: h // 6, : w // 6].mean() > 0.9  # room corner replaced
    assert green[h // 3: 2 * h // 3, 2 * w // 5: 3 * w // 5].mean() < 0.1  # person kept


def test_auto_keeps_modnet_when_it_keeps_up(reference_ckpt, caplog, tmp_path):
    from matting.factory import create_engine

    caplog.set_level("INFO")
    engine = create_engine("auto", weights=str(reference_ckpt), weights_dir=str(tmp_path), device="cpu",
                           inference_size=64, source_fps=0.5, offline=True)
    assert engine.name.startswith("modnet") and "--model auto: chose MODNet" in caplog.text


def test_auto_prefers_selfie_when_modnet_is_too_slow(reference_ckpt, caplog, tmp_path):
    from matting.factory import create_engine

    pytest.importorskip("ai_edge_litert")
    caplog.set_level("INFO")
    (tmp_path / "selfie_segmenter_landscape.tflite").write_bytes(
        need(MODELS / "selfie_segmentation_landscape.tflite").read_bytes())
    engine = create_engine("auto", weights=str(reference_ckpt), weights_dir=str(tmp_path), device="cpu",
                           inference_size=64, source_fps=10000, offline=True)
    assert engine.name == "selfie" and "chose the selfie segmenter" in caplog.text
    # without the selfie model (offline), MODNet stays, and the log says why
    (tmp_path / "selfie_segmenter_landscape.tflite").unlink()
    caplog.clear()
    engine = create_engine("auto", weights=str(reference_ckpt), weights_dir=str(tmp_path), device="cpu",
                           inference_size=64, source_fps=10000, offline=True)
    assert engine.name.startswith("modnet") and "selfie model is unavailable" in caplog.text


def test_size_specialised_sessions_match_the_dynamic_one(exported, vlog_frames):
    """The engine runs a session fixed to each input size; it computes what the dynamic export computes."""
    from matting.onnx_engine import MAX_SIZED_SESSIONS, OnnxModnetEngine

    engine = OnnxModnetEngine(exported, inference_size=96)
    frame = vlog_frames[5]
    blob = engine.preprocess(frame)
    dynamic = engine.session.run(None, {"input": blob})[0][0, 0]
    assert np.abs(engine.infer(frame) - dynamic).max() < 1e-5
    assert engine.session_for(*blob.shape[2:]) is not engine.session
    assert engine.session_for(*blob.shape[2:]) is engine.session_for(*blob.shape[2:])  # reused
    for side in range(64, 64 + 32 * (MAX_SIZED_SESSIONS + 1), 32):
        engine.session_for(side, side)
    assert len(engine._sized_sessions) == MAX_SIZED_SESSIONS  # bounded


def test_fixed_size_onnx_runs_as_is(reference_ckpt, tmp_path):
    """An export without dynamic dimensions is run by its own session (nothing to specialise)."""
    import torch

    from matting.fast_graph import MattePass
    from matting.onnx_engine import OnnxModnetEngine
    from matting.checkpoint import load_modnet

    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(MattePass(load_modnet(reference_ckpt, device="cpu").eval()).eval(),
                          (torch.zeros(1, 3, 64, 96),), str(path), input_names=["input"],
                          output_names=["matte"], opset_version=17, dynamo=False)
    engine = OnnxModnetEngine(path, inference_size=64)
    alpha = engine.infer(np.zeros((64, 96, 3), np.uint8))
    assert alpha.shape == (64, 96) and engine.session_for(64, 96) is engine.session


def test_specialisation_failure_falls_back_to_the_dynamic_session(exported, monkeypatch, caplog):
    import onnxruntime as ort

    from matting.onnx_engine import OnnxModnetEngine

    engine = OnnxModnetEngine(exported, inference_size=64)

    def refuse(*args, **kwargs):
        raise RuntimeError("no memory for another session")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    alpha = engine.infer(np.zeros((64, 96, 3), np.uint8))
    assert alpha.shape == (64, 96)
    assert engine.session_for(64, 96) is engine.session
    assert "using the dynamic session" in caplog.text
