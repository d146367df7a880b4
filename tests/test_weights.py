"""Checkpoint loading: every accepted layout, and a one-line error for every bad file."""

import pickle

import pytest
import torch

from matting.modnet import MODNet
from matting import WeightsError
from matting.checkpoint import load_modnet, load_state_dict


@pytest.fixture(scope="module")
def plain_state():
    return MODNet(backbone_pretrained=False).state_dict()


def test_official_format_has_module_prefix_and_loads(reference_ckpt):
    raw = torch.load(reference_ckpt, map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in raw)
    state = load_state_dict(reference_ckpt)
    assert not any(k.startswith("module.") for k in state)
    net = load_modnet(reference_ckpt)
    assert not net.training
    key = "f_branch.conv_f.1.layers.0.bias"
    assert torch.equal(net.state_dict()[key], raw["module." + key])


@pytest.mark.parametrize("wrap", ["plain", "state_dict_entry", "dataparallel"])
def test_accepted_layouts(tmp_path, plain_state, wrap):
    obj = {"plain": plain_state, "state_dict_entry": {"state_dict": plain_state, "epoch": 3},
           "dataparallel": {"module." + k: v for k, v in plain_state.items()}}[wrap]
    path = tmp_path / "m.ckpt"
    torch.save(obj, path)
    net = load_modnet(path)
    assert torch.equal(net.state_dict()["lr_branch.se_block.fc.0.weight"], plain_state["lr_branch.se_block.fc.0.weight"])


def test_map_location_cpu(reference_ckpt):
    state = load_state_dict(reference_ckpt, map_location="cpu")
    assert all(t.device.type == "cpu" for t in state.values())


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_modnet(tmp_path / "nope.ckpt")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("this is not a checkpoint\n" * 10)
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        load_modnet(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        load_modnet(path)


def test_truncated_file(tmp_path, reference_ckpt):
    path = tmp_path / "cut.ckpt"
    path.write_bytes(reference_ckpt.read_bytes()[: 5_000_000])
    with pytest.raises(WeightsError, match="truncated or damaged"):
        load_modnet(path)


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as fh:
        pickle.dump({"x": Evil()}, fh)
    with pytest.raises(WeightsError) as err:
        load_modnet(path)
    assert "\n" not in str(err.value)


def test_state_dict_that_does_not_fit_names_keys(tmp_path, plain_state):
    broken = dict(plain_state)
    broken.pop("f_branch.conv_f.1.layers.0.bias")
    broken["extra.layer.weight"] = torch.zeros(3)
    path = tmp_path / "wrong.ckpt"
    torch.save(broken, path)
    with pytest.raises(WeightsError) as err:
        load_modnet(path)
    text = str(err.value)
    assert "f_branch.conv_f.1.layers.0.bias" in text and "extra.layer.weight" in text and "\n" not in text


def test_shape_mismatch_is_named(tmp_path, plain_state):
    broken = dict(plain_state)
    broken["lr_branch.conv_lr.layers.0.bias"] = torch.zeros(2)
    path = tmp_path / "shape.ckpt"
    torch.save(broken, path)
    with pytest.raises(WeightsError, match=r"lr_branch.conv_lr.layers.0.bias is \(2,\)"):
        load_modnet(path)


def test_tensor_dict_of_another_model(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="does not fit MODNet"):
        load_modnet(path)
