"""MODNet reproduces upstream: module tree, official checkpoint format, reference vectors."""

import json

import numpy as np
import pytest
import torch

from conftest import SHARED, need
from matting.modnet import MODNet
from matting.checkpoint import load_modnet

CASES = ["case_vlog_288x512", "case_two_people_384x640"]


def test_constructor_signature_and_state_dict_layout():
    keys = json.loads(need(SHARED / "reference" / "state_dict_keys.json").read_text())
    net = MODNet(in_channels=3, hr_channels=32, backbone_arch="mobilenetv2", backbone_pretrained=False)
    state = net.state_dict()
    expected = {k.removeprefix("module."): v for k, v in keys.items()}
    assert list(state) == list(expected)
    assert {k: list(v.shape) for k, v in state.items()} == expected


def test_forward_contract_inference_true_skips_heads():
    net = MODNet(backbone_pretrained=False).eval()
    with torch.inference_mode():
        semantic, detail, matte = net(torch.zeros(1, 3, 64, 96), True)
        s2, d2, m2 = net(torch.zeros(1, 3, 64, 96), False)
    assert semantic is None and detail is None
    assert matte.shape == (1, 1, 64, 96) and s2.shape == (1, 1, 4, 6) and d2.shape == (1, 1, 64, 96)


@pytest.fixture(scope="module")
def reference_net(reference_ckpt):
    return load_modnet(reference_ckpt)


def _run(net, rgb, dtype):
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(dtype)
    x = (x / 255 - 0.5) / 0.5
    with torch.inference_mode():
        semantic, detail, _ = net.to(dtype)(x, False)
        _, _, matte = net(x, True)
    return {"matte": matte, "detail": detail, "semantic": semantic}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_reference_vectors(reference_net, case, dtype, tol):
    ref = np.load(need(SHARED / "reference" / f"{case}.npz"))
    out = _run(reference_net, ref["image_rgb"], dtype)
    for name in ("matte", "detail", "semantic"):
        got = out[name][0, 0].double().numpy()
        assert got.shape == ref[name].shape
        err = np.abs(got - ref[name]).max()
        assert err < tol, f"{name} {dtype}: max abs error {err:.3g} >= {tol}"


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-4)])
def test_engine_matches_reference_on_bgr_input(reference_ckpt, dtype, tol):
    """The engine's own preprocessing (BGR->RGB, normalisation in torch) is upstream's."""
    from matting.torch_engine import TorchModnetEngine

    ref = np.load(need(SHARED / "reference" / "case_vlog_288x512.npz"))
    engine = TorchModnetEngine(reference_ckpt, inference_size=288, device="cpu", dtype=dtype)
    alpha = engine.infer(np.ascontiguousarray(ref["image_rgb"][:, :, ::-1]))
    assert alpha.dtype == np.float32 and alpha.shape == (288, 512)
    assert np.abs(alpha.astype(np.float64) - ref["matte"]).max() < max(tol, 1e-6 if dtype == "float64" else tol)


def test_engine_float64_exact(reference_ckpt):
    """Without the float32 return cast the float64 path is exact to 1e-9."""
    from matting.torch_engine import TorchModnetEngine

    ref = np.load(need(SHARED / "reference" / "case_two_people_384x640.npz"))
    engine = TorchModnetEngine(reference_ckpt, inference_size=384, device="cpu", dtype="float64")
    matte = engine.infer_tensor(np.ascontiguousarray(ref["image_rgb"][:, :, ::-1]))
    assert np.abs(matte[0, 0].numpy() - ref["matte"]).max() < 1e-9
