"""The same CNN and UNet in PyTorch eager (the reference framework), for speed comparisons only.

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


def build(name: str, num_filters: int = 32, num_colours: int = 24,
          norm_before_upsample: bool = False) -> ColourNet:
    return ColourNet(num_filters, num_colours, skip=(name == "unet"),
                     norm_before_upsample=norm_before_upsample)


def image_tensor(images: np.ndarray, channels_last: bool) -> torch.Tensor:
    """One-channel NHWC float images (N, H, W, 1) as an (N, 1, H, W) tensor, NCHW or
    channels-last. With one channel NHWC memory is NCHW memory; the NCHW strides are set on
    purpose, since a permuted view would carry channels-last strides and silently switch
    PyTorch's convolutions to channels-last."""
    nchw = np.ascontiguousarray(images).reshape(len(images), 1, *images.shape[1:3])
    return torch.from_numpy(nchw).contiguous(memory_format=torch.channels_last if channels_last
                                             else torch.contiguous_format)
