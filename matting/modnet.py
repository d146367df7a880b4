"""MODNet (Ke et al., AAAI 2022) as released upstream, module for module.

The module tree mirrors the official repository exactly so that the official
checkpoints (``modnet_webcam_portrait_matting.ckpt``,
``modnet_photographic_portrait_matting.ckpt``) load without renaming keys:
a MobileNetV2 backbone, a low-resolution branch with an SE block on the 1/32
features, a high-resolution branch and a fusion branch, all normalised with
IBNorm (half BatchNorm, half InstanceNorm).

Input: RGB normalised as ``(rgb / 255 - 0.5) / 0.5``, NCHW, with height and
width both multiples of 32. Output: ``(semantic, detail, matte)``; with
``inference=True`` only ``matte`` (N×1×H×W in [0, 1]) is computed and the other
two are ``None``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MODNet", "MobileNetV2", "IBNorm"]


# --------------------------------------------------------------------------
# MobileNetV2 backbone
# --------------------------------------------------------------------------

def _make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


def _conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expansion: float, dilation: int = 1):
        super().__init__()
        assert stride in (1, 2)
        hidden_dim = round(inp * expansion)
        self.use_res_connect = stride == 1 and inp == oup
        depthwise = [
            nn.Conv2d(hidden_dim, hidden_dim, 3, stride, 1, groups=hidden_dim, dilation=dilation, bias=False),
            nn.BatchNorm2d(hidden_dim),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        if expansion == 1:
            self.conv = nn.Sequential(*depthwise)
        else:
            pointwise = [
                nn.Conv2d(inp, hidden_dim, 1, 1, 0, bias=False),
                nn.BatchNorm2d(hidden_dim),
                nn.ReLU6(inplace=True),
            ]
            self.conv = nn.Sequential(*pointwise, *depthwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor (no classifier), as in MODNet's backbone."""

    def __init__(self, in_channels: int, alpha: float = 1.0, expansion: int = 6):
        super().__init__()
        settings = [
            # t, c, n, s
            [1, 16, 1, 1],
            [expansion, 24, 2, 2],
            [expansion, 32, 3, 2],
            [expansion, 64, 4, 2],
            [expansion, 96, 3, 1],
            [expansion, 160, 3, 2],
            [expansion, 320, 1, 1],
        ]
        input_channel = _make_divisible(32 * alpha, 8)
        last_channel = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
        features: list[nn.Module] = [_conv_bn(in_channels, input_channel, 2)]
        for t, c, n, s in settings:
            output_channel = _make_divisible(int(c * alpha), 8)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, expansion=t))
                input_channel = output_channel
        features.append(_conv_1x1_bn(input_channel, last_channel))
        self.features = nn.Sequential(*features)


class MobileNetV2Backbone(nn.Module):
    """Returns the encoder features at 1/2, 1/4, 1/8, 1/16 and 1/32 scale."""

    # Which feature block closes each scale (upstream's stage boundaries).
    _STAGE_ENDS = (2, 4, 7, 14, 19)

    def __init__(self, in_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.model = MobileNetV2(in_channels, alpha=1.0, expansion=6)
        self.enc_channels = [16, 24, 32, 96, 1280]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for end in self._STAGE_ENDS:
            for block in self.model.features[start:end]:
                x = block(x)
            outputs.append(x)
            start = end
        return outputs


# --------------------------------------------------------------------------
# MODNet building blocks
# --------------------------------------------------------------------------

class IBNorm(nn.Module):
    """Batch norm on the first half of the channels, instance norm on the rest."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.bnorm_channels = int(in_channels / 2)
        self.inorm_channels = in_channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(self.inorm_channels, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn_x = self.bnorm(x[:, : self.bnorm_channels, ...].contiguous())
        in_x = self.inorm(x[:, self.bnorm_channels :, ...].contiguous())
        return torch.cat((bn_x, in_x), 1)


class Conv2dIBNormRelu(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, with_ibn=True, with_relu=True):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bias)
        ]
        if with_ibn:
            layers.append(IBNorm(out_channels))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SEBlock(nn.Module):
    """Squeeze-and-excitation channel attention (the released model's 1/32 block)."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 1):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, int(in_channels // reduction), bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(int(in_channels // reduction), out_channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        w = self.pool(x).view(b, c)
        w = self.fc(w).view(b, c, 1, 1)
        return x * w.expand_as(x)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class LRBranch(nn.Module):
    """Low-resolution (semantic) branch."""

    def __init__(self, backbone: MobileNetV2Backbone):
        super().__init__()
        enc = backbone.enc_channels
        # Upstream keeps the backbone as a child here too, so its weights appear
        # twice in the state dict (backbone.* and lr_branch.backbone.*).
        self.backbone = backbone
        self.se_block = SEBlock(enc[4], enc[4], reduction=4)
        self.conv_lr16x = Conv2dIBNormRelu(enc[4], enc[3], 5, stride=1, padding=2)
        self.conv_lr8x = Conv2dIBNormRelu(enc[3], enc[2], 5, stride=1, padding=2)
        self.conv_lr = Conv2dIBNormRelu(enc[2], 1, kernel_size=3, stride=2, padding=1,
                                        with_ibn=False, with_relu=False)

    def forward(self, img: torch.Tensor, inference: bool):
        enc2x, enc4x, _, _, enc32x = self.backbone(img)
        enc32x = self.se_block(enc32x)
        lr16x = self.conv_lr16x(_up2(enc32x))
        lr8x = self.conv_lr8x(_up2(lr16x))
        pred_semantic = None
        if not inference:
            pred_semantic = torch.sigmoid(self.conv_lr(lr8x))
        return pred_semantic, lr8x, [enc2x, enc4x]


class HRBranch(nn.Module):
    """High-resolution (detail) branch."""

    def __init__(self, hr_channels: int, enc_channels: list[int]):
        super().__init__()
        hr = hr_channels
        self.tohr_enc2x = Conv2dIBNormRelu(enc_channels[0], hr, 1, stride=1, padding=0)
        self.conv_enc2x = Conv2dIBNormRelu(hr + 3, hr, 3, stride=2, padding=1)
        self.tohr_enc4x = Conv2dIBNormRelu(enc_channels[1], hr, 1, stride=1, padding=0)
        self.conv_enc4x = Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1)
        self.conv_hr4x = nn.Sequential(
            Conv2dIBNormRelu(3 * hr + 3, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1),
        )
        self.conv_hr2x = nn.Sequential(
            Conv2dIBNormRelu(2 * hr, 2 * hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr, hr, 3, stride=1, padding=1),
        )
        self.conv_hr = nn.Sequential(
            Conv2dIBNormRelu(hr + 3, hr, 3, stride=1, padding=1),
            Conv2dIBNormRelu(hr, 1, kernel_size=1, stride=1, padding=0, with_ibn=False, with_relu=False),
        )

    def forward(self, img, enc2x, enc4x, lr8x, inference: bool):
        img2x = F.interpolate(img, scale_factor=1 / 2, mode="bilinear", align_corners=False)
        img4x = F.interpolate(img, scale_factor=1 / 4, mode="bilinear", align_corners=False)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), dim=1))
        enc4x = self.tohr_enc4x(enc4x)
        hr4x = self.conv_enc4x(torch.cat((hr4x, enc4x), dim=1))
        lr4x = _up2(lr8x)
        hr4x = self.conv_hr4x(torch.cat((hr4x, lr4x, img4x), dim=1))
        hr2x = self.conv_hr2x(torch.cat((_up2(hr4x), enc2x), dim=1))
        pred_detail = None
        if not inference:
            hr = self.conv_hr(torch.cat((_up2(hr2x), img), dim=1))
            pred_detail = torch.sigmoid(hr)
        return pred_detail, hr2x


class FusionBranch(nn.Module):
    """Fuses the semantic and detail features into the final matte."""

    def __init__(self, hr_channels: int, enc_channels: list[int]):
        super().__init__()
        hr = hr_channels
        self.conv_lr4x = Conv2dIBNormRelu(enc_channels[2], hr, 5, stride=1, padding=2)
        self.conv_f2x = Conv2dIBNormRelu(2 * hr, hr, 3, stride=1, padding=1)
        self.conv_f = nn.Sequential(
            Conv2dIBNormRelu(hr + 3, int(hr / 2), 3, stride=1, padding=1),
            Conv2dIBNormRelu(int(hr / 2), 1, 1, stride=1, padding=0, with_ibn=False, with_relu=False),
        )

    def forward(self, img, lr8x, hr2x):
        lr4x = self.conv_lr4x(_up2(lr8x))
        f2x = self.conv_f2x(torch.cat((_up2(lr4x), hr2x), dim=1))
        f = self.conv_f(torch.cat((_up2(f2x), img), dim=1))
        return torch.sigmoid(f)


class MODNet(nn.Module):
    """MODNet portrait matting network.

    ``semantic, detail, matte = net(img, inference)``; see the module docstring
    for the input convention. ``backbone_pretrained`` is accepted for
    signature compatibility with upstream; ImageNet backbone weights are only
    needed for training, so ``True`` is rejected rather than silently ignored.
    """

    def __init__(self, in_channels: int = 3, hr_channels: int = 32,
                 backbone_arch: str = "mobilenetv2", backbone_pretrained: bool = False):
        super().__init__()
        if backbone_arch != "mobilenetv2":
            raise ValueError(f"unsupported MODNet backbone {backbone_arch!r}: only 'mobilenetv2' exists")
        if backbone_pretrained:
            raise ValueError("backbone_pretrained=True is for training; load a MODNet checkpoint instead")
        self.in_channels = in_channels
        self.hr_channels = hr_channels
        self.backbone_arch = backbone_arch
        self.backbone = MobileNetV2Backbone(in_channels)
        self.lr_branch = LRBranch(self.backbone)
        self.hr_branch = HRBranch(hr_channels, self.backbone.enc_channels)
        self.f_branch = FusionBranch(hr_channels, self.backbone.enc_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=0, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, img: torch.Tensor, inference: bool):
        pred_semantic, lr8x, (enc2x, enc4x) = self.lr_branch(img, inference)
        pred_detail, hr2x = self.hr_branch(img, enc2x, enc4x, lr8x, inference)
        pred_matte = self.f_branch(img, lr8x, hr2x)
        return pred_semantic, pred_detail, pred_matte
