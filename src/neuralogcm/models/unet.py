"""U-Net baseline (Ronneberger et al. 2015): encoder-decoder with skip connections.

Each level is two 3x3 convolutions with batch norm and ReLU; ``depth`` max-pool halvings double
the channels from ``width``; the decoder upsamples with 2x2 transposed convolutions and
concatenates the encoder's features of the same level. Convolutions are periodic in longitude
(:class:`~neuralogcm.models.padding.GlobeConv2d`). The grid is padded up to a multiple of
``2**depth`` (zero rows at the poles, periodic columns) and cropped back at the end, so any H x W
works. The network predicts the increment: next state = state + U-Net(inputs), land 0.
"""

from __future__ import annotations

import torch
from torch import nn

from neuralogcm.model_options import UNetOptions
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.padding import GlobeConv2d, crop_to, pad_to_multiple


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """(3x3 conv, batch norm, ReLU) twice."""
    return nn.Sequential(
        GlobeConv2d(in_channels, out_channels, 3, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        GlobeConv2d(out_channels, out_channels, 3, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(ForecastModel):
    def __init__(self, ctx: ModelContext, options: UNetOptions) -> None:
        super().__init__(ctx, options)
        widths = [options.width * 2**i for i in range(options.depth + 1)]
        self.stem = double_conv(ctx.n_inputs, widths[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(c_in, c_out))
            for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
            for c_in, c_out in zip(widths[:0:-1], widths[-2::-1], strict=True)
        )
        self.merge = nn.ModuleList(double_conv(2 * c, c) for c in widths[-2::-1])
        self.head = nn.Conv2d(widths[0], ctx.n_channels, 1)

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        height, width = state.shape[-2:]
        x = self.stem(pad_to_multiple(self.inputs(state, forcing), 2**self.options.depth))
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([skip, up(x)], dim=1))
        increment = crop_to(self.head(x), height, width)
        return self.apply_mask(state + increment), None
