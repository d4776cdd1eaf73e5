"""Padding on the global latitude-longitude grid: periodic in longitude, zeros beyond the poles.

The baselines share these so that every convolution, downsampling and patch embedding sees the
globe as a cylinder: column ``W`` is column ``0`` again, while rows beyond the first and last
latitude are zeros (land 0 is what the models see on land too). Tensors are (..., H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_globe(x: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    """Add ``rows`` = (south, north) rows of zeros and ``cols`` = (west, east) columns taken
    periodically from the other side of the globe; any width, even wider than W."""
    west, east = cols
    width = x.shape[-1]
    if west > width or east > width:  # a halo wider than the globe (tiny grids): wrap by index
        index = torch.arange(-west, width + east, device=x.device) % width
        x = x.index_select(-1, index)
    elif west or east:
        x = torch.cat([x[..., width - west :], x, x[..., :east]], dim=-1)
    if rows[0] or rows[1]:
        x = F.pad(x, (0, 0, rows[0], rows[1]))
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (..., H, W) up to multiples of ``multiple``: zero rows split evenly between the poles,
    extra columns appended periodically in the east. :func:`crop_to` undoes it."""
    height, width = x.shape[-2:]
    extra_rows = -height % multiple
    return pad_globe(x, (extra_rows // 2, extra_rows - extra_rows // 2), (0, -width % multiple))


def crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cut the (H, W) grid back out of a tensor padded by :func:`pad_to_multiple`."""
    south = (x.shape[-2] - height) // 2
    return x[..., south : south + height, :width]


class GlobeConv2d(nn.Conv2d):
    """A 'same' convolution (stride 1) or a halving one (stride 2) on the globe: periodic in
    longitude, zero-padded beyond the poles, for any odd kernel and dilation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True) -> None:
        if kernel_size % 2 == 0:
            raise ValueError(f"GlobeConv2d needs an odd kernel, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         dilation=dilation, groups=groups, bias=bias)
        self.halo = dilation * (kernel_size - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.halo
        # a stride-2 convolution keeps ceil(n / 2) cells with the same halo on both sides
        return super().forward(pad_globe(x, (h, h), (h, h)))
