"""The exported inference graph (matting.fast_graph) computes exactly what MODNet computes."""

import pytest
import torch

from matting.fast_graph import MattePass, _Block
from matting.modnet import Conv2dIBNormRelu, MODNet


@pytest.fixture(scope="module")
def random_modnet():
    """A MODNet in float64: random convolutions (its own init) and random biases and batch-norm statistics."""
    torch.manual_seed(0)
    net = MODNet().double().eval()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.dtype.is_floating_point and not name.endswith("weight"):
                if name.endswith("running_var"):
                    tensor.uniform_(0.5, 2.0)
                else:
                    tensor.normal_(0.0, 0.1)
    return net


@pytest.mark.parametrize("hw", [(32, 32), (64, 96), (96, 64), (160, 288)])
def test_matte_pass_equals_modnet(random_modnet, hw):
    x = torch.randn(1, 3, *hw, dtype=torch.float64, generator=torch.Generator().manual_seed(hw[0]))
    with torch.inference_mode():
        expected = random_modnet(x, True)[2]
        got = MattePass(random_modnet).eval()(x)
    assert got.shape == expected.shape
    # float64: the rewrites only reorder sums; instance norms over the tiny low-resolution maps
    # magnify that rounding to ~1e-9 with random weights (a wrong rewrite is off by ~1e-1)
    assert (got - expected).abs().max().item() < 1e-7
    assert expected.std() > 1e-3  # the comparison is not between two constant mattes


def _randomised(block):
    """A Conv2dIBNormRelu in float64 eval mode with random batch-norm statistics."""
    block = block.double().eval()
    with torch.no_grad():
        for name, tensor in block.state_dict().items():
            if tensor.dtype.is_floating_point and not name.endswith("layers.0.weight"):
                tensor.uniform_(0.5, 1.5) if name.endswith("running_var") else tensor.normal_(0.0, 0.3)
    return block


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("out_channels", [32, 20])  # IBNorm split into two convolutions, and kept whole
def test_block_after_upsample_per_tap(k, out_channels):
    torch.manual_seed(k)
    block = _randomised(Conv2dIBNormRelu(7, out_channels, k, padding=k // 2))
    x = torch.randn(2, 7, 6, 9, dtype=torch.float64)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    rewritten = _Block(block, [7], after_upsample=True)
    assert len(rewritten.out_parts) == (2 if out_channels == 32 else 1)
    with torch.inference_mode():
        assert torch.allclose(torch.cat(rewritten([x]), 1), block(up), atol=1e-10)


def test_block_over_parts_with_stride():
    torch.manual_seed(1)
    block = _randomised(Conv2dIBNormRelu(35, 32, 3, stride=2, padding=1))
    a, b = torch.randn(1, 3, 10, 12, dtype=torch.float64), torch.randn(1, 32, 10, 12, dtype=torch.float64)
    with torch.inference_mode():
        got = torch.cat(_Block(block, [3, 32])([a, b]), 1)
        assert torch.allclose(got, block(torch.cat((a, b), 1)), atol=1e-10)


def test_rewrites_refuse_layers_they_do_not_cover():
    with pytest.raises(ValueError):
        _Block(Conv2dIBNormRelu(4, 4, 3, stride=2, padding=1), [4], after_upsample=True)
    with pytest.raises(ValueError):
        _Block(Conv2dIBNormRelu(8, 4, 3), [3, 4])
