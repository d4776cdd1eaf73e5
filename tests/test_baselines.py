"""The four baselines (U-Net, ConvLSTM, SimVP, FourCastNet), their grid padding and the
`neuralogcm models` table."""

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from neuralogcm import cli
from neuralogcm.config import ConfigError, load
from neuralogcm.grid import Grid
from neuralogcm.model_options import ARCH_OPTIONS, model_options
from neuralogcm.models.base import ModelContext
from neuralogcm.models.convlstm import ConvLSTMCell
from neuralogcm.models.fourcastnet import AFNO2D
from neuralogcm.models.padding import GlobeConv2d, crop_to, pad_globe, pad_to_multiple
from neuralogcm.models.registry import ARCHITECTURES, build_model
from neuralogcm.models.summary import flops_per_step, model_context

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "config/config.yaml").read_text())
BASELINES = ["unet", "convlstm", "simvp", "fourcastnet"]

# Tiny instances. On the 10 x 20 grid below the U-Net (factor 8) pads in latitude and longitude,
# SimVP (factor 4) in latitude, FourCastNet (patch 3) in both.
TINY = {
    "unet": {"arch": "unet", "width": 12, "depth": 3},
    "convlstm": {"arch": "convlstm", "hidden": 12, "layers": 2},
    "simvp": {"arch": "simvp", "hidden_spatial": 12, "hidden_temporal": 16, "spatial_blocks": 4,
              "temporal_blocks": 2, "mlp_ratio": 2.0},
    "fourcastnet": {"arch": "fourcastnet", "patch": 3, "embed_dim": 96, "depth": 2, "blocks": 4},
}


def context(resolution: float, n_levels: int, band_land: bool = False) -> ModelContext:
    """A grid with land: a continent that deepens with depth, or (``band_land``) polar land
    rows only, which leaves the globe unchanged by a rotation in longitude."""
    grid = Grid(resolution)
    height, width = grid.shape
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    levels = []
    for k in range(n_levels):
        if band_land:
            land = np.abs(lat) > 90 - 2 * resolution
        else:
            land = (np.abs(lat - 20) < 25 + 5 * k) & (np.abs(lon - 120) < 40 + 10 * k)
        levels.append(~land)
    level_mask = torch.as_tensor(np.stack(levels))
    channel_level = [k for _ in range(4) for k in range(n_levels)] + [0]
    return ModelContext(grid=grid, depths=[10.0 * (k + 1) for k in range(n_levels)],
                        mask=level_mask[channel_level])


def build(spec: dict, ctx: ModelContext, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(spec, ctx)


def batch(ctx: ModelContext, size: int = 2, seed: int = 1):
    """A normalised state (land 0), forcing and day indices."""
    gen = torch.Generator().manual_seed(seed)
    shape = ctx.mask.shape[-2:]
    state = torch.randn(size, ctx.n_channels, *shape, generator=gen) * ctx.mask
    forcing = torch.randn(size, ctx.n_forcing, *shape, generator=gen)
    doy = torch.arange(size, dtype=torch.long)
    return state, forcing, doy, doy + 1


def rollout(model, state, forcings, doy, hidden=None):
    """Step ``model`` through ``forcings`` (steps, B, F, H, W); return the states and hidden."""
    states = []
    for forcing in forcings:
        state, hidden = model(state, forcing, doy, doy + 1, hidden)
        states.append(state)
        doy = doy + 1
    return torch.stack(states), hidden


# --- grid padding ---------------------------------------------------------------------------


def test_pad_globe_wraps_longitude_and_zeros_beyond_the_poles():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    padded = pad_globe(x, (1, 2), (2, 3))
    assert padded.shape == (2, 6, 10)
    assert torch.equal(padded[:, 1:4, 2:7], x)
    assert torch.equal(padded[:, 1:4, :2], x[..., 3:])  # west halo = the easternmost columns
    assert torch.equal(padded[:, 1:4, 7:], x[..., :3])
    assert padded[:, 0].abs().sum() == 0 and padded[:, 4:].abs().sum() == 0
    wide = pad_globe(x, (0, 0), (7, 6))  # wider than the globe itself
    assert torch.equal(wide, x[..., torch.arange(-7, 11) % 5])


@pytest.mark.parametrize(("height", "width", "multiple"), [(10, 20, 8), (30, 60, 4), (7, 9, 3)])
def test_pad_to_multiple_then_crop_is_the_identity(height, width, multiple):
    x = torch.randn(1, 2, height, width)
    padded = pad_to_multiple(x, multiple)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - height < multiple and padded.shape[-1] - width < multiple
    assert torch.equal(crop_to(padded, height, width), x)


def on_cylinder(x: torch.Tensor, conv: nn.Conv2d, halo: int) -> torch.Tensor:
    """Reference: convolve copies of the globe laid side by side and keep the middle one."""
    width = x.shape[-1]
    copies = math.ceil(halo / width)
    tiled = torch.cat([x] * (2 * copies + 1), dim=-1)
    out = F.conv2d(tiled, conv.weight, conv.bias, padding=(halo, 0), dilation=conv.dilation,
                   groups=conv.groups)
    start = copies * width - halo  # output column j is centred on tiled column j + halo
    return out[..., start : start + width]


@pytest.mark.parametrize(("kernel", "dilation", "groups", "width"),
                         [(3, 1, 1, 12), (5, 1, 3, 12), (7, 3, 3, 12), (7, 3, 1, 4)])
def test_globe_conv_is_a_convolution_on_a_cylinder(kernel, dilation, groups, width):
    torch.manual_seed(0)
    conv = GlobeConv2d(3, 6, kernel, dilation=dilation, groups=groups)
    x = torch.randn(2, 3, 8, width)
    reference = on_cylinder(x, conv, conv.halo)
    torch.testing.assert_close(conv(x), reference)
    halving = GlobeConv2d(3, 6, kernel, stride=2, dilation=dilation, groups=groups)
    halving.load_state_dict(conv.state_dict())
    torch.testing.assert_close(halving(x), reference[..., ::2, ::2])


# --- every baseline -------------------------------------------------------------------------


@pytest.mark.parametrize("arch", BASELINES)
def test_next_state_has_the_grid_shape_and_land_is_exactly_zero(arch):
    ctx = context(18.0, 2)  # 10 x 20: not a multiple of any downsampling factor above
    model = build(TINY[arch], ctx)
    state, forcing, doy, doy_next = batch(ctx)
    next_state, hidden = model(state, forcing, doy, doy_next)
    assert next_state.shape == state.shape
    assert torch.all(next_state[:, ~ctx.mask] == 0)
    ocean = next_state[:, ctx.mask]
    assert torch.isfinite(ocean).all() and not torch.equal(ocean, state[:, ctx.mask])
    assert (hidden is not None) == model.stateful


@pytest.mark.parametrize("arch", BASELINES)
def test_gradients_reach_every_parameter(arch):
    """Two steps, so that the recurrent weights of ConvLSTM are used as well."""
    ctx = context(18.0, 2)
    model = build(TINY[arch], ctx)
    state, forcing, doy, _ = batch(ctx)
    states, _ = rollout(model, state, torch.stack([forcing, forcing.flip(0)]), doy)
    weights = torch.randn(states.shape, generator=torch.Generator().manual_seed(3))
    (states * weights).sum().backward()
    silent = [name for name, p in model.named_parameters()
              if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not silent, f"no gradient reaches {silent}"


@pytest.mark.parametrize("arch", BASELINES)
def test_a_tiny_instance_overfits_a_fixed_batch(arch):
    """The target is a local function of the inputs (an eastward shift plus wind forcing); the
    loss must fall to 10 % of both its first value and the loss of persistence (no increment)."""
    ctx = context(15.0, 2)  # 12 x 24
    model = build(TINY[arch], ctx)
    state, forcing, doy, doy_next = batch(ctx, size=4)
    target = model.apply_mask(state + 0.5 * (state.roll(1, dims=-1) - state) + 0.5 * forcing[:, :1])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    goal = None
    for _ in range(400):
        next_state, _ = model(state, forcing, doy, doy_next)
        loss = F.mse_loss(next_state, target)
        if goal is None:
            goal = 0.1 * min(loss.item(), F.mse_loss(state, target).item())
        if loss.item() <= goal:
            break
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() <= goal, f"loss {loss.item():.3g} after 400 steps, goal {goal:.3g}"


@pytest.mark.parametrize("arch", BASELINES)
def test_a_30_day_rollout_of_the_demo_model_stays_finite(arch):
    """The demo config's sizes on the demo grid (30 x 60, 4 levels), untrained, in eval mode."""
    cfg = load(DEMO)
    ctx = context(cfg.grid.resolution, len(cfg.data.depths))
    model = build(cfg.models[arch], ctx).eval()
    state, forcing, doy, _ = batch(ctx)
    forcings = forcing.expand(30, *forcing.shape) + 0.1 * torch.randn(30, *forcing.shape)
    with torch.no_grad():
        states, _ = rollout(model, state, forcings, doy)
    assert torch.isfinite(states).all()
    assert torch.all(states[:, :, ~ctx.mask] == 0)


@pytest.mark.parametrize("arch", ["unet", "convlstm", "simvp"])
def test_convolutional_baselines_are_periodic_in_longitude(arch):
    """On a globe that looks the same after a rotation, rotating the inputs by a multiple of the
    downsampling factor rotates the next state: column 0 and column W - 1 are neighbours."""
    ctx = context(15.0, 2, band_land=True)  # 12 x 24
    model = build(TINY[arch], ctx)
    state, forcing, doy, doy_next = batch(ctx)
    shift = 8
    rotated, _ = model(state.roll(shift, -1), forcing.roll(shift, -1), doy, doy_next)
    torch.testing.assert_close(rotated, model(state, forcing, doy, doy_next)[0].roll(shift, -1))


# --- ConvLSTM memory ------------------------------------------------------------------------


def test_convlstm_cell_follows_the_lstm_equations():
    torch.manual_seed(0)
    cell = ConvLSTMCell(2, 3, 3)
    x, h, c = torch.randn(1, 2, 5, 8), torch.randn(1, 3, 5, 8), torch.randn(1, 3, 5, 8)
    h_new, c_new = cell(x, h, c)
    # the gates at one interior cell (row 2, column 0 whose west neighbour is column 7)
    stencil = torch.cat([x, h], 1)[0][:, 1:4][:, :, [7, 0, 1]]
    gates = (cell.gates.weight * stencil).sum(dim=(1, 2, 3)) + cell.gates.bias
    i, f, o, g = gates.reshape(4, 3)
    c_ref = torch.sigmoid(f) * c[0, :, 2, 0] + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c_new[0, :, 2, 0], c_ref)
    torch.testing.assert_close(h_new[0, :, 2, 0], torch.sigmoid(o) * torch.tanh(c_ref))


def test_convlstm_carries_its_memory_through_a_rollout():
    ctx = context(15.0, 2)
    model = build(TINY["convlstm"], ctx).eval()
    assert model.stateful
    state, forcing, doy, _ = batch(ctx)
    forcings = torch.randn(6, *forcing.shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        whole, memory = rollout(model, state, forcings, doy)
        hidden_size = TINY["convlstm"]["hidden"]
        assert memory.shape == (2, 2, 2, hidden_size, *ctx.mask.shape[-2:])  # B, layers, h|c, ...
        # days 1-3, then days 4-6 by a fresh copy of the model handed the memory: the same days
        first, hidden = rollout(model, state, forcings[:3], doy)
        twin = build(TINY["convlstm"], ctx, seed=1).eval()
        twin.load_state_dict(model.state_dict())
        second, _ = rollout(twin, first[-1], forcings[3:], doy + 3, hidden)
        torch.testing.assert_close(torch.cat([first, second]), whole)
        # the same day from the same state, after two different histories, is a different day
        _, other = rollout(model, state.flip(0), forcings[:3].flip(1), doy)
        after_a, _ = model(first[-1], forcings[3], doy + 3, doy + 4, hidden)
        after_b, _ = model(first[-1], forcings[3], doy + 3, doy + 4, other)
        assert (after_a - after_b).abs().max() > 1e-3
        assert torch.equal(after_a, second[0])


# --- FourCastNet's Fourier mixing -----------------------------------------------------------


def afno_tokens(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 6, 10, 16, generator=torch.Generator().manual_seed(seed))


def test_afno_mixing_is_block_diagonal_over_channels():
    torch.manual_seed(0)
    afno = AFNO2D(16, blocks=4, sparsity=0.0)
    x = afno_tokens()
    y = x.clone()
    y[..., 4:8] += torch.randn(2, 6, 10, 4)  # perturb block 1 only
    change = (afno(y) - afno(x)).abs().amax(dim=(0, 1, 2))
    assert torch.all(change[4:8] > 1e-3)
    assert torch.all(change[:4] < 1e-6) and torch.all(change[8:] < 1e-6)


def test_afno_soft_threshold_silences_small_modes():
    torch.manual_seed(0)
    x = afno_tokens()
    assert torch.equal(AFNO2D(16, blocks=4, sparsity=1e6)(x), x)  # all modes shrunk to 0
    assert not torch.allclose(AFNO2D(16, blocks=4, sparsity=0.0)(x), x)


def test_afno_is_the_complex_block_mlp_in_fourier_space():
    """Reference in complex arithmetic: y = x + irfft2(S(W2 relu(W1 rfft2(x) + b1) + b2)),
    relu and the soft threshold S acting on real and imaginary parts, one block at a time."""
    torch.manual_seed(0)
    afno = AFNO2D(16, blocks=4, sparsity=0.01)
    x = afno_tokens()

    def relu(z):
        return torch.complex(z.real.relu(), z.imag.relu())

    def shrink(z):
        return torch.complex(F.softshrink(z.real, 0.01), F.softshrink(z.imag, 0.01))

    w1, b1 = torch.complex(afno.w1[0], afno.w1[1]), torch.complex(afno.b1[0], afno.b1[1])
    w2, b2 = torch.complex(afno.w2[0], afno.w2[1]), torch.complex(afno.b2[0], afno.b2[1])
    spectrum = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
    out = []
    for k in range(4):
        z = spectrum[..., 4 * k : 4 * k + 4]
        out.append(shrink(relu(z @ w1[k] + b1[k]) @ w2[k] + b2[k]))
    mixed = torch.fft.irfft2(torch.cat(out, -1), s=(6, 10), dim=(1, 2), norm="ortho")
    with torch.no_grad():
        torch.testing.assert_close(afno(x), x + mixed)


# --- options and the models table -----------------------------------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    ({"arch": "convlstm", "kernel": 4}, "models.m.kernel': Value error, must be odd"),
    ({"arch": "fourcastnet", "embed_dim": 30, "blocks": 4}, "models.m.blocks"),
    ({"arch": "simvp", "hidden_spatial": 5}, "models.m.hidden_spatial"),
    ({"arch": "simvp", "temporal_blocks": 1}, "models.m.temporal_blocks"),
])
def test_bad_options_name_the_key(spec, message):
    raw = dict(DEMO, models={"m": spec})
    with pytest.raises(ConfigError, match=message):
        load(raw)


def test_every_architecture_has_its_options_class():
    """One set of arch names: the registry's model classes and the config layer's options."""
    assert set(ARCHITECTURES) == set(ARCH_OPTIONS)
    assert all(model_options({"arch": arch}).arch == arch for arch in ARCHITECTURES)


def convlstm_flops(ctx: ModelContext, hidden: int, layers: int, kernel: int, **_) -> int:
    """2 FLOPs per multiply-add of the gate convolutions and the 1x1 head, per grid cell."""
    cells = math.prod(ctx.mask.shape[-2:])
    inputs = [ctx.n_inputs] + [hidden] * (layers - 1)
    gates = sum(2 * (c + hidden) * kernel**2 * 4 * hidden for c in inputs)
    return cells * (gates + 2 * hidden * ctx.n_channels)


def fourcastnet_flops(ctx: ModelContext, patch: int, embed_dim: int, depth: int, blocks: int,
                      mlp_ratio: float, **_) -> float:
    """Patch embedding, per block (2 FFTs at 2.5 N log2 N, 8 real block-diagonal products on
    the h x (w // 2 + 1) modes, the MLP) and the head."""
    height, width = ctx.mask.shape[-2:]
    h, w = math.ceil(height / patch), math.ceil(width / patch)
    tokens, modes, hidden = h * w, h * (w // 2 + 1), int(embed_dim * mlp_ratio)
    embed = 2 * tokens * embed_dim * ctx.n_inputs * patch**2
    fft = 2 * int(2.5 * tokens * embed_dim * math.log2(tokens))
    spectral = 8 * 2 * modes * embed_dim * (embed_dim // blocks)
    mlp = 2 * 2 * tokens * embed_dim * hidden
    head = 2 * tokens * embed_dim * ctx.n_channels * patch**2
    return embed + depth * (fft + spectral + mlp) + head


def test_flops_match_an_independent_count():
    ctx = model_context(load(DEMO))
    for spec in (TINY["convlstm"], {**TINY["convlstm"], "layers": 1, "kernel": 5}):
        spec = model_options(spec).model_dump()
        assert flops_per_step(build(spec, ctx)) == convlstm_flops(ctx, **spec)
    for spec in (TINY["fourcastnet"], {**TINY["fourcastnet"], "patch": 2, "blocks": 8}):
        spec = model_options(spec).model_dump()
        assert flops_per_step(build(spec, ctx)) == fourcastnet_flops(ctx, **spec)


def test_models_verb_writes_csv_and_markdown(tmp_path):
    raw = copy.deepcopy(DEMO)
    raw["models"] = {name: raw["models"][name] for name in BASELINES}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "tables" / "models.csv"
    assert cli.main(["models", "--config", str(config), "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("model")
    assert list(table.index) == BASELINES
    ctx = model_context(load(raw))
    for name in BASELINES:
        model = build(load(raw).models[name], ctx)
        assert table.loc[name, "parameters"] == sum(p.numel() for p in model.parameters())
        assert table.loc[name, "grid"] == "30x60x4"
    flops = convlstm_flops(ctx, **load(raw).models["convlstm"])
    assert table.loc["convlstm", "gflops_per_step"] == pytest.approx(flops / 1e9, rel=1e-5)
    assert "| unet" in out.with_suffix(".md").read_text()


def test_models_verb_rejects_a_bad_config_and_writes_nothing(tmp_path, capsys):
    raw = copy.deepcopy(DEMO)
    raw["models"]["simvp"]["temporal_blocks"] = 1
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "models.csv"
    assert cli.main(["models", "--config", str(config), "--out", str(out)]) == 1
    assert "models.simvp.temporal_blocks" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [config]
