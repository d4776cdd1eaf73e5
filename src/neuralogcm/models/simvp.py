"""SimVP v2 baseline (Tan et al. 2022, OpenSTL's SimVP + gSTA): spatial encoder, gated
spatiotemporal attention (gSTA) translator, spatial decoder.

- Encoder: ``spatial_blocks`` 3x3 conv + GroupNorm(2) + SiLU blocks, every second one with
  stride 2 (so the grid shrinks by ``2**(spatial_blocks // 2)``); the first block's output is
  kept as the skip.
- Translator: ``temporal_blocks`` gSTA blocks (batch norm, large-kernel attention made of a 5x5
  depthwise conv, a 7x7 depthwise conv with dilation 3 and a sigmoid-gated 1x1 conv; batch
  norm, MLP with a 3x3 depthwise conv; both branches layer-scaled residuals), the first mapping
  ``hidden_spatial`` -> ``hidden_temporal`` channels and the last back.
- Decoder: the mirror of the encoder with PixelShuffle upsampling, the skip added before its
  last block, then a 1x1 readout.

With one input day the time axis of SimVP folds away (T = 1). Convolutions are periodic in
longitude; the grid is padded to a multiple of the downsampling factor (zero rows at the poles,
periodic columns) and cropped back. The network predicts the increment: next state = state +
SimVP(inputs), land 0. OpenSTL's stochastic depth is left out (drop path 0).
"""

from __future__ import annotations

import torch
from torch import nn

from neuralogcm.model_options import SimVPOptions
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.padding import GlobeConv2d, crop_to, pad_to_multiple


class ConvBlock(nn.Sequential):
    """3x3 conv (stride 2 halves the grid, 4x channels + PixelShuffle doubles it), norm, SiLU."""

    def __init__(self, in_channels: int, out_channels: int, resample: str | None = None) -> None:
        if resample == "up":
            conv = [GlobeConv2d(in_channels, 4 * out_channels, 3), nn.PixelShuffle(2)]
        else:
            conv = [GlobeConv2d(in_channels, out_channels, 3, stride=2 if resample else 1)]
        super().__init__(*conv, nn.GroupNorm(2, out_channels), nn.SiLU())


def resampling(blocks: int) -> list[bool]:
    """Which encoder blocks halve the grid: every second one, the first never."""
    return [i % 2 == 1 for i in range(blocks)]


class LargeKernelAttention(nn.Module):
    """Gated large-kernel attention: a 21 x 21 receptive field from a 5x5 depthwise conv and a
    7x7 depthwise conv dilated by 3; a 1x1 conv gives value and gate, out = sigmoid(gate) * value.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.local = GlobeConv2d(dim, dim, 5, groups=dim)
        self.dilated = GlobeConv2d(dim, dim, 7, dilation=3, groups=dim)
        self.value_gate = nn.Conv2d(dim, 2 * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.value_gate(self.dilated(self.local(x))).chunk(2, dim=1)
        return torch.sigmoid(gate) * value


class GSTABlock(nn.Module):
    """gSTA block on (B, dim, h, w), then an optional 1x1 conv to ``out_dim`` channels."""

    def __init__(self, dim: int, out_dim: int, mlp_ratio: float, layer_scale: float = 1e-2) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.BatchNorm2d(dim)
        self.attention = nn.Sequential(
            nn.Conv2d(dim, dim, 1), nn.GELU(), LargeKernelAttention(dim), nn.Conv2d(dim, dim, 1)
        )
        self.norm2 = nn.BatchNorm2d(dim)
        self.mlp = nn.Sequential(
            nn.Conv2d(dim, hidden, 1),
            GlobeConv2d(hidden, hidden, 3, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1),
        )
        self.scale1 = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.scale2 = nn.Parameter(torch.full((dim, 1, 1), layer_scale))
        self.reduction = nn.Conv2d(dim, out_dim, 1) if out_dim != dim else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.norm1(x)
        x = x + self.scale1 * (z + self.attention(z))  # the attention branch has its own shortcut
        x = x + self.scale2 * self.mlp(self.norm2(x))
        return self.reduction(x)


class SimVP(ForecastModel):
    def __init__(self, ctx: ModelContext, options: SimVPOptions) -> None:
        super().__init__(ctx, options)
        hid_s, hid_t, n_t = options.hidden_spatial, options.hidden_temporal, options.temporal_blocks
        down = resampling(options.spatial_blocks)
        self.factor = 2 ** sum(down)
        self.encoder = nn.ModuleList(
            ConvBlock(ctx.n_inputs if i == 0 else hid_s, hid_s, "down" if d else None)
            for i, d in enumerate(down)
        )
        dims = [hid_s] + [hid_t] * (n_t - 1) + [hid_s]
        self.translator = nn.Sequential(
            *(GSTABlock(dims[i], dims[i + 1], options.mlp_ratio) for i in range(n_t))
        )
        self.decoder = nn.ModuleList(ConvBlock(hid_s, hid_s, "up" if d else None)
                                     for d in reversed(down))
        self.readout = nn.Conv2d(hid_s, ctx.n_channels, 1)

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        height, width = state.shape[-2:]
        x = pad_to_multiple(self.inputs(state, forcing), self.factor)
        skip = x = self.encoder[0](x)
        for block in self.encoder[1:]:
            x = block(x)
        x = self.translator(x)
        for block in self.decoder[:-1]:
            x = block(x)
        x = self.decoder[-1](x + skip)
        increment = crop_to(self.readout(x), height, width)
        return self.apply_mask(state + increment), None
