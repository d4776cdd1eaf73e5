"""The neural corrector of NeuralOGCM (paper Section 2.4): an encoder-decoder whose bottleneck is
the spatio-temporal evolution (STE) module, multi-head self-attention over the latent map.

Encoder: a stem of two 3 x 3 convolutions to ``width`` channels, then ``depth`` halvings (a
stride-2 convolution and two 3 x 3 convolutions, channels doubled), keeping the features of every
scale for the skip connections. STE: the latent map (width 2^depth channels) flattened into a
sequence of tokens with a learned position embedding, through ``attention_layers`` pre-norm
transformer blocks (self-attention and MLP, both residual). Decoder: transposed convolutions that
double the grid, concatenated with the skip features, two 3 x 3 convolutions each; a 1 x 1 head
gives the tendency of every ocean channel. Convolutions see the globe as a cylinder (periodic in
longitude); the grid is padded to a multiple of 2^depth and cropped back at the end.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neuralogcm.models.padding import GlobeConv2d, crop_to, pad_to_multiple


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


def _conv_norm_gelu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    """3 x 3 globe convolution (no bias: the norm removes it), GroupNorm, GELU."""
    return [GlobeConv2d(in_channels, out_channels, 3, stride=stride, bias=False),
            _norm(out_channels), nn.GELU()]


class ConvBlock(nn.Sequential):
    """Two 3 x 3 globe convolutions, each followed by GroupNorm and GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(*_conv_norm_gelu(in_channels, out_channels),
                         *_conv_norm_gelu(out_channels, out_channels))


class Down(nn.Sequential):
    """Halve the grid with a stride-2 convolution to ``out_channels``, then a :class:`ConvBlock`."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(*_conv_norm_gelu(in_channels, out_channels, stride=2),
                         ConvBlock(out_channels, out_channels))


class Up(nn.Module):
    """Double the grid with a transposed convolution, join the skip features, a ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.block = ConvBlock(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class SpatioTemporalEvolution(nn.Module):
    """STE: residual multi-head self-attention over the h * w tokens of a (B, D, h, w) map."""

    def __init__(self, dim: int, tokens: int, heads: int, layers: int, mlp_ratio: float) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        block = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=round(dim * mlp_ratio),
                                           dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, d, h, w = z.shape
        tokens = z.flatten(2).transpose(1, 2) + self.position  # (B, h * w, D)
        tokens = self.norm(self.blocks(tokens))
        return tokens.transpose(1, 2).reshape(b, d, h, w)


class Corrector(nn.Module):
    """Input (B, in_channels, H, W) -> tendency (B, out_channels, H, W), per day, normalised."""

    def __init__(self, in_channels: int, out_channels: int, grid_shape: tuple[int, int],
                 width: int, depth: int, heads: int, attention_layers: int,
                 mlp_ratio: float) -> None:
        super().__init__()
        widths = [width * 2**k for k in range(depth + 1)]
        if widths[-1] % heads:
            raise ValueError(f"heads={heads} must divide the bottleneck width "
                             f"width * 2**depth = {widths[-1]}")
        self.multiple = 2**depth
        tokens = math.prod(math.ceil(n / self.multiple) for n in grid_shape)
        self.stem = ConvBlock(in_channels, width)
        self.down = nn.ModuleList(Down(widths[k], widths[k + 1]) for k in range(depth))
        self.ste = SpatioTemporalEvolution(widths[-1], tokens, heads, attention_layers, mlp_ratio)
        self.up = nn.ModuleList(Up(widths[k + 1], widths[k]) for k in reversed(range(depth)))
        self.head = nn.Conv2d(width, out_channels, kernel_size=1)
        nn.init.zeros_(self.head.weight)  # a zero tendency at the start: the hybrid starts as
        nn.init.zeros_(self.head.bias)  # its physics, the corrector alone as persistence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = self.stem(pad_to_multiple(x, self.multiple))
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        x = self.ste(x)
        for up in self.up:
            x = up(x, skips.pop())
        return crop_to(self.head(x), height, width)
