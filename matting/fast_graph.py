"""MODNet's inference pass, rewritten to run faster in onnxruntime: the same maths, the same weights.

This is the graph that ``matting.onnx_engine`` exports. It computes
``MODNet(img, inference=True)[2]`` (checked in float64 by
``tests/test_fast_graph.py`` and through ONNX by the reference vectors), with
three exact rewrites:

* **Convolution after a 2x bilinear upsample, per tap.** Upsampling acts on
  each channel alone and is linear, so it commutes with mixing channels:
  ``conv_kxk(up(x)) = sum over taps t of shift_t(up(W_t x))``. The k*k 1x1
  products run on the small grid, a quarter of the pixels. For ``conv_lr16x``
  (5x5, 1280 -> 96 channels: a fifth of the network's multiply-adds at
  512x896) that is 4x fewer. Used for the two low-resolution 5x5 layers,
  where upsampling the k*k*C_out products is cheap.
* **Features as lists of parts, never concatenated.** A convolution of a
  concatenation is the sum of convolutions of its parts. onnxruntime's fast
  blocked (NCHWc) convolutions need channel counts that are multiples of 16,
  and every Concat/Split on the channel axis forces a layout round trip; the
  image's 3 channels made 35- and 99-channel inputs that ran at half speed.
* **IBNorm split by output channels.** IBNorm batch-normalises the first half
  of the channels and instance-normalises the rest. The first half becomes its
  own convolution with the batch norm folded into its weights (so the blocked
  convolution also applies the ReLU); only the second half leaves the fast
  layout for the instance norm.

With these, and a session fixed to the input size, ONNX Runtime ran MODNet
1.31-1.38x faster than the plain export single-threaded and 1.03-1.10x with
two threads on the 2-core test machine (``bench/engines.py``; README,
Performance). Inference only: batch-norm
layers must be in eval mode, and weights are copied at construction.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .modnet import Conv2dIBNormRelu, IBNorm, MODNet

__all__ = ["MattePass"]

# onnxruntime's NCHWc block is 16 channels with AVX-512 (8 with AVX2): IBNorm
# halves are split off only when they stay blocked.
_BLOCK = 16


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _zero_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``F.pad(x, (pad,) * 4)`` written with concatenations: exported that way, ONNX shape
    inference keeps the channel count, which the instance norms downstream need."""
    rows = torch.zeros_like(x[:, :, :pad, :])
    x = torch.cat((rows, x, rows), dim=2)
    cols = torch.zeros_like(x[:, :, :, :pad])
    return torch.cat((cols, x, cols), dim=3)


def _shift_sum(products: torch.Tensor, k: int, channels: int) -> torch.Tensor:
    """Sum of the k*k tap products (tap-major channels), each shifted to its tap's offset."""
    pad = k // 2
    products = _zero_pad(products, pad)
    out = None
    for ky in range(k):
        # end indices counted from the far edge keep the exported graph free of shape arithmetic
        y_end = ky - 2 * pad if ky < 2 * pad else None
        for kx in range(k):
            x_end = kx - 2 * pad if kx < 2 * pad else None
            t = ky * k + kx
            term = products[:, t * channels:(t + 1) * channels, ky:y_end, kx:x_end]
            out = term if out is None else out + term
    return out


class _Block(nn.Module):
    """A ``Conv2dIBNormRelu`` applied to a list of input parts; returns a list of output parts.

    ``in_parts`` are the channel counts of the parts, in the order the original
    layer saw them concatenated. With ``after_upsample`` the block computes
    ``block(up2(cat(parts)))`` per tap on the parts' own grid.
    """

    def __init__(self, block: Conv2dIBNormRelu, in_parts: list[int], after_upsample: bool = False):
        super().__init__()
        conv = block.layers[0]
        if conv.groups != 1 or conv.dilation != (1, 1) or sum(in_parts) != conv.in_channels:
            raise ValueError("rewrite needs an ungrouped, undilated convolution and parts that add up to its input")
        k = conv.kernel_size[0]
        if after_upsample and (conv.kernel_size != (k, k) or conv.stride != (1, 1) or conv.padding != (k // 2,) * 2):
            raise ValueError("per-tap rewrite needs a square, stride-1, same-padded convolution")
        self.k, self.stride, self.padding, self.after_upsample = k, conv.stride, conv.padding, after_upsample
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else weight.new_zeros(conv.out_channels)
        tail = list(block.layers)[1:]
        self.relu = any(isinstance(layer, nn.ReLU) for layer in tail)
        ibn = next((layer for layer in tail if isinstance(layer, IBNorm)), None)
        out_channels = conv.out_channels
        self.tail = None
        if ibn is not None and ibn.bnorm_channels % _BLOCK == 0:
            half, bn = ibn.bnorm_channels, ibn.bnorm
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            weight[:half] *= scale.view(-1, 1, 1, 1)
            bias[:half] = (bias[:half] - bn.running_mean) * scale + bn.bias.detach()
            # (first output channel, end, instance-normalised?)
            self.groups = [(0, half, False), (half, out_channels, True)]
            self.in_eps = ibn.inorm.eps
        else:
            self.groups = [(0, out_channels, False)]
            self.tail = nn.Sequential(*tail)  # unchanged normalisation and activation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for start, end, _ in self.groups:
            first = 0
            for channels in in_parts:
                w = weight[start:end, first:first + channels]
                if after_upsample:  # tap-major 1x1 kernels: channel t*C + o holds W[o, :, ky, kx]
                    w = w.permute(2, 3, 0, 1).reshape(k * k * (end - start), channels, 1, 1)
                self.weights.append(nn.Parameter(w.contiguous(), requires_grad=False))
                first += channels
            self.biases.append(nn.Parameter(bias[start:end].clone(), requires_grad=False))
        self.out_parts = [end - start for start, end, _ in self.groups]

    def forward(self, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = []
        weights = iter(self.weights)
        for (start, end, instance_norm), bias in zip(self.groups, self.biases):
            y = None
            for part in parts:
                if self.after_upsample:
                    term = F.conv2d(part, next(weights))
                else:
                    term = F.conv2d(part, next(weights), bias if y is None else None, self.stride, self.padding)
                y = term if y is None else y + term
            if self.after_upsample:
                y = _shift_sum(_up2(y), self.k, end - start) + bias.view(1, -1, 1, 1)
            if self.tail is not None:
                y = self.tail(y)
            else:
                if instance_norm:
                    y = F.instance_norm(y, eps=self.in_eps)
                if self.relu:
                    y = F.relu(y)
            outputs.append(y)
        return outputs


def _up_parts(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [_up2(part) for part in parts]


class MattePass(nn.Module):
    """``MODNet(img, inference=True)[2]`` with the rewrites above; input and output as MODNet's."""

    def __init__(self, net: MODNet):
        super().__init__()
        lr, hr, fb = net.lr_branch, net.hr_branch, net.f_branch
        enc = net.backbone.enc_channels
        self.backbone, self.se_block = lr.backbone, lr.se_block
        # low-resolution branch
        self.lr16x = _Block(lr.conv_lr16x, [enc[4]], after_upsample=True)
        self.lr8x = _Block(lr.conv_lr8x, self.lr16x.out_parts, after_upsample=True)
        lr8x = self.lr8x.out_parts
        # high-resolution branch
        self.tohr_enc2x = _Block(hr.tohr_enc2x, [enc[0]])
        self.tohr_enc4x = _Block(hr.tohr_enc4x, [enc[1]])
        enc2x, enc4x = self.tohr_enc2x.out_parts, self.tohr_enc4x.out_parts
        self.conv_enc2x = _Block(hr.conv_enc2x, [3] + enc2x)
        self.conv_enc4x = _Block(hr.conv_enc4x, self.conv_enc2x.out_parts + enc4x)
        hr4x = [_Block(hr.conv_hr4x[0], self.conv_enc4x.out_parts + lr8x + [3])]
        for block in list(hr.conv_hr4x)[1:]:
            hr4x.append(_Block(block, hr4x[-1].out_parts))
        self.conv_hr4x = nn.ModuleList(hr4x)
        hr2x = [_Block(hr.conv_hr2x[0], hr4x[-1].out_parts + enc2x)]
        for block in list(hr.conv_hr2x)[1:]:
            hr2x.append(_Block(block, hr2x[-1].out_parts))
        self.conv_hr2x = nn.ModuleList(hr2x)
        # fusion branch
        self.conv_lr4x = _Block(fb.conv_lr4x, lr8x)
        self.conv_f2x = _Block(fb.conv_f2x, self.conv_lr4x.out_parts + hr2x[-1].out_parts)
        self.conv_f = _Block(fb.conv_f[0], self.conv_f2x.out_parts + [3])
        self.conv_f_out = _Block(fb.conv_f[1], self.conv_f.out_parts)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        enc2x, enc4x, _, _, enc32x = self.backbone(img)
        lr16x = self.lr16x([self.se_block(enc32x)])
        lr8x = self.lr8x(lr16x)

        img2x = F.interpolate(img, scale_factor=1 / 2, mode="bilinear", align_corners=False)
        img4x = F.interpolate(img, scale_factor=1 / 4, mode="bilinear", align_corners=False)
        enc2x = self.tohr_enc2x([enc2x])
        hr4x = self.conv_enc2x([img2x] + enc2x)
        hr4x = self.conv_enc4x(hr4x + self.tohr_enc4x([enc4x]))
        hr4x = hr4x + _up_parts(lr8x) + [img4x]
        for block in self.conv_hr4x:
            hr4x = block(hr4x)
        hr2x = _up_parts(hr4x) + enc2x
        for block in self.conv_hr2x:
            hr2x = block(hr2x)

        lr4x = self.conv_lr4x(_up_parts(lr8x))
        f2x = self.conv_f2x(_up_parts(lr4x) + hr2x)
        f = self.conv_f_out(self.conv_f(_up_parts(f2x) + [img]))
        return torch.sigmoid(f[0])
