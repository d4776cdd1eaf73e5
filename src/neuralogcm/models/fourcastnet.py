"""FourCastNet baseline (Pathak et al. 2022): a ViT whose token mixing is the Adaptive Fourier
Neural Operator (AFNO, Guibas et al. 2022).

- Patch embedding: the grid is padded to a multiple of ``patch`` (zero rows at the poles,
  periodic columns in longitude), cut into ``patch`` x ``patch`` patches and linearly embedded
  to ``embed_dim`` channels, plus a learned position embedding: tokens (B, h, w, D).
- ``depth`` AFNO blocks: x = x + AFNO(LayerNorm(x)); x = x + MLP(LayerNorm(x)) (FourCastNet's
  double skip). AFNO: real 2-D FFT over the token grid, a complex two-layer MLP with
  block-diagonal weights (``blocks`` blocks of D / blocks channels, ReLU between) on every
  Fourier mode, soft-thresholding (``sparsity``) of the result, inverse FFT, plus its input.
  When ``patch`` divides W (demo 60 / 3, paper 240 / 4) the token grid spans exactly 360 deg,
  so the mixing is periodic in longitude; otherwise the appended columns repeat the westernmost
  ones. Along latitude the FFT wraps from pole to pole, as in FourCastNet itself.
- Head: a linear map from each token to its patch of ``patch`` x ``patch`` x C values, cropped
  back to H x W. The network predicts the increment: next state = state + head, land 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neuralogcm.model_options import FourCastNetOptions
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.padding import crop_to, pad_to_multiple


class AFNO2D(nn.Module):
    """Adaptive Fourier mixing of tokens (B, h, w, D); returns (B, h, w, D)."""

    def __init__(self, dim: int, blocks: int, sparsity: float, scale: float = 0.02) -> None:
        super().__init__()
        self.blocks, self.block_size, self.sparsity = blocks, dim // blocks, sparsity
        size = (2, blocks, self.block_size, self.block_size)  # [real, imaginary] parts
        self.w1 = nn.Parameter(scale * torch.randn(size))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, self.block_size))
        self.w2 = nn.Parameter(scale * torch.randn(size))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.block_size))

    @staticmethod
    def complex_linear(re, im, w, b):
        """Block-diagonal complex matmul: (re + i im) @ (w[0] + i w[1]) + (b[0] + i b[1])."""
        mix = "...ki,kio->...ko"
        real = torch.einsum(mix, re, w[0]) - torch.einsum(mix, im, w[1]) + b[0]
        imag = torch.einsum(mix, im, w[0]) + torch.einsum(mix, re, w[1]) + b[1]
        return real, imag

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, h, w, dim = x.shape
        with torch.autocast(x.device.type, enabled=False):  # FFTs and complex parts in float32
            spectrum = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
            spectrum = spectrum.reshape(batch, h, w // 2 + 1, self.blocks, self.block_size)
            re, im = self.complex_linear(spectrum.real, spectrum.imag, self.w1, self.b1)
            re, im = self.complex_linear(F.relu(re), F.relu(im), self.w2, self.b2)
            mixed = torch.complex(F.softshrink(re, self.sparsity), F.softshrink(im, self.sparsity))
            mixed = mixed.reshape(batch, h, w // 2 + 1, dim)
            mixed = torch.fft.irfft2(mixed, s=(h, w), dim=(1, 2), norm="ortho")
        return mixed.to(x.dtype) + x


class AFNOBlock(nn.Module):
    """LayerNorm -> AFNO -> skip, LayerNorm -> MLP (GELU) -> skip, on tokens (B, h, w, D)."""

    def __init__(self, dim: int, blocks: int, sparsity: float, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.mixing = AFNO2D(dim, blocks, sparsity)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixing(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FourCastNet(ForecastModel):
    def __init__(self, ctx: ModelContext, options: FourCastNetOptions) -> None:
        super().__init__(ctx, options)
        p, dim = options.patch, options.embed_dim
        height, width = ctx.mask.shape[-2:]
        self.tokens = (math.ceil(height / p), math.ceil(width / p))
        self.embed = nn.Conv2d(ctx.n_inputs, dim, p, stride=p)
        self.position = nn.Parameter(torch.zeros(1, *self.tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.Sequential(
            *(AFNOBlock(dim, options.blocks, options.sparsity, options.mlp_ratio)
              for _ in range(options.depth))
        )
        self.head = nn.Linear(dim, ctx.n_channels * p * p, bias=False)

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        batch, channels, height, width = state.shape
        p = self.options.patch
        x = self.embed(pad_to_multiple(self.inputs(state, forcing), p))
        x = self.blocks(x.permute(0, 2, 3, 1) + self.position)
        h, w = self.tokens
        patches = self.head(x).reshape(batch, h, w, p, p, channels)
        increment = patches.permute(0, 5, 1, 3, 2, 4).reshape(batch, channels, h * p, w * p)
        return self.apply_mask(state + crop_to(increment, height, width)), None
