"""ConvLSTM baseline (Shi et al. 2015): stacked convolutional LSTM cells at full grid resolution.

Cell: gates i, f, o, g = conv([x, h]); c' = f * c + i * g; h' = o * tanh(c'), with a
``kernel`` x ``kernel`` convolution periodic in longitude. ``layers`` cells of ``hidden``
channels are stacked (layer 1 reads the model inputs, layer k the h of layer k - 1); a 1x1
convolution maps the top h to the increment: next state = state + head(h), land 0.

The recurrent memory is the model's ``hidden``: a tensor (B, layers, 2, hidden, H, W) holding
(h, c) of every layer, zeros when a rollout starts (``hidden=None``) and handed back at every
step, so a rollout carries it from day to day (``stateful = True``).
"""

from __future__ import annotations

import torch
from torch import nn

from neuralogcm.model_options import ConvLSTMOptions
from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.padding import GlobeConv2d


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer: (x (B, in, H, W), h, c (B, hidden, H, W)) -> (h', c')."""

    def __init__(self, in_channels: int, hidden: int, kernel: int) -> None:
        super().__init__()
        self.gates = GlobeConv2d(in_channels + hidden, 4 * hidden, kernel)
        with torch.no_grad():  # forget gate open at the start: the memory is kept, not erased
            self.gates.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(ForecastModel):
    stateful = True

    def __init__(self, ctx: ModelContext, options: ConvLSTMOptions) -> None:
        super().__init__(ctx, options)
        sizes = [ctx.n_inputs] + [options.hidden] * options.layers
        self.cells = nn.ModuleList(
            ConvLSTMCell(c_in, options.hidden, options.kernel) for c_in in sizes[:-1]
        )
        self.head = nn.Conv2d(options.hidden, ctx.n_channels, 1)

    def initial_hidden(self, state: torch.Tensor) -> torch.Tensor:
        """Zero memory for a batch like ``state``: (B, layers, 2, hidden, H, W)."""
        batch, _, height, width = state.shape
        shape = (batch, len(self.cells), 2, self.options.hidden, height, width)
        return state.new_zeros(shape)

    def forward(self, state, forcing, doy, doy_next, hidden=None):
        if hidden is None:
            hidden = self.initial_hidden(state)
        x = self.inputs(state, forcing)
        memory = []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, hidden[:, layer, 0], hidden[:, layer, 1])
            memory.append(torch.stack([h, c], dim=1))
            x = h
        next_state = self.apply_mask(state + self.head(x))
        return next_state, torch.stack(memory, dim=1)
