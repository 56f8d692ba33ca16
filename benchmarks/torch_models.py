"""The same nets in PyTorch eager (the reference framework), for speed comparisons only.

Mirrors ``jaxcolor.models``: blocks conv(k, same) → MaxPool 2 / Upsample ×2 → BatchNorm → ReLU;
five blocks and a final conv; the UNet concatenates block3‖2, block4‖1, block5‖input. With
``norm_before_upsample`` the up-blocks run conv → BatchNorm → ReLU → Upsample, the same values
computed as jaxcolor does (a quarter of the pixels normalised); default: the reference order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, resample: str,
                 norm_before_upsample: bool = False) -> None:
        super().__init__()
        self.upsample_last = norm_before_upsample and resample == "up"
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.resample = {"down": nn.MaxPool2d(2), "up": nn.Upsample(scale_factor=2),
                         "none": nn.Identity()}[resample]
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample_last:
            return self.resample(torch.relu(self.norm(self.conv(x))))
        return torch.relu(self.norm(self.resample(self.conv(x))))


class ColourNet(nn.Module):
    def __init__(self, num_filters: int = 32, num_colours: int = 24, kernel: int = 3,
                 in_channels: int = 1, skip: bool = False,
                 norm_before_upsample: bool = False) -> None:
        super().__init__()
        nf, nc, k, extra = num_filters, num_colours, kernel, int(skip)
        self.skip = skip
        self.block1 = Block(in_channels, nf, k, "down")
        self.block2 = Block(nf, 2 * nf, k, "down")
        self.block3 = Block(2 * nf, 2 * nf, k, "none")
        self.block4 = Block(2 * nf + extra * 2 * nf, nf, k, "up", norm_before_upsample)
        self.block5 = Block(nf + extra * nf, nc, k, "up", norm_before_upsample)
        self.final = nn.Conv2d(nc + extra * in_channels, nc, k, padding=k // 2)

    def join(self, features: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, skip], dim=1) if self.skip else features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.block1(x)
        b2 = self.block2(b1)
        b3 = self.block3(b2)
        b4 = self.block4(self.join(b3, b2))
        b5 = self.block5(self.join(b4, b1))
        return self.final(self.join(b5, x))


class TransposeNet(nn.Module):
    """The newer edition's ConvTransposeNet (and, with ``skip``, its UNet) as published:
    stride-2 convs down, stride-2 transposed convs up (padding k//2, output_padding 1), each
    then BatchNorm and ReLU, and a final conv; the UNet's second transposed conv takes
    block 3 ‖ block 1 and its final conv block 4 ‖ the input."""

    def __init__(self, num_filters: int = 32, num_colours: int = 24, kernel: int = 3,
                 in_channels: int = 1, skip: bool = False) -> None:
        super().__init__()
        nf, nc, k, p = num_filters, num_colours, kernel, kernel // 2
        self.skip = skip

        def block(layer: nn.Module, channels: int) -> nn.Sequential:
            return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.ReLU())

        self.block1 = block(nn.Conv2d(in_channels, nf, k, stride=2, padding=p), nf)
        self.block2 = block(nn.Conv2d(nf, 2 * nf, k, stride=2, padding=p), 2 * nf)
        self.block3 = block(nn.ConvTranspose2d(2 * nf, nf, k, stride=2, padding=p,
                                               output_padding=1), nf)
        self.block4 = block(nn.ConvTranspose2d(nf + skip * nf, nc, k, stride=2, padding=p,
                                               output_padding=1), nc)
        self.final = nn.Conv2d(nc + skip * in_channels, nc, k, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.block1(x)
        b3 = self.block3(self.block2(b1))
        b4 = self.block4(torch.cat([b3, b1], dim=1) if self.skip else b3)
        return self.final(torch.cat([b4, x], dim=1) if self.skip else b4)


def build(name: str, num_filters: int = 32, num_colours: int = 24,
          norm_before_upsample: bool = False) -> nn.Module:
    """The PyTorch net of jaxcolor's model ``name``."""
    if name in ("conv_transpose", "unet_transpose"):
        return TransposeNet(num_filters, num_colours, skip=name == "unet_transpose")
    net = ColourNet(num_filters, num_colours, skip=(name == "unet"),
                    norm_before_upsample=norm_before_upsample)
    if name == "pool_upsample":  # the newer edition's CNN: no middle block
        net.block3 = nn.Identity()
    return net


def image_tensor(images: np.ndarray, channels_last: bool) -> torch.Tensor:
    """One-channel NHWC float images (N, H, W, 1) as an (N, 1, H, W) tensor, NCHW or
    channels-last. With one channel NHWC memory is NCHW memory; the NCHW strides are set on
    purpose, since a permuted view would carry channels-last strides and silently switch
    PyTorch's convolutions to channels-last."""
    nchw = np.ascontiguousarray(images).reshape(len(images), 1, *images.shape[1:3])
    return torch.from_numpy(nchw).contiguous(memory_format=torch.channels_last if channels_last
                                             else torch.contiguous_format)
