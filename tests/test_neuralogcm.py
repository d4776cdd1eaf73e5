"""The hybrid model: composition of the two branches, masking, float32 physics, gradients, fit."""

import pytest
import torch

from neuralogcm.channels import periodic_channel_index
from neuralogcm.checkpoint import build
from neuralogcm.config import ConfigError, load
from neuralogcm.data import WindowDataset
from neuralogcm.models.corrector import Corrector
from neuralogcm.train import WindowLoss

torch.set_num_threads(1)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models(tiny_data_dir):
    """name -> (model, normalizer, data) for the tiny config's three NeuralOGCM variants."""
    from conftest import TINY_CONFIG

    cfg = load(TINY_CONFIG)
    return {name: build(cfg, name, tiny_data_dir, CPU) for name in cfg.models}


@pytest.fixture(scope="module")
def batch(models):
    """Two one-day windows of 2018 (physical units, NaN on land)."""
    data = models["neuralogcm"][2]
    windows = WindowDataset(data, [2018])
    items = [windows[i] for i in (40, 200)]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def _inputs(normalizer, batch):
    state = normalizer.normalize_state(batch["state"][:, 0], batch["doy"][:, 0])
    forcing = normalizer.normalize_forcing(batch["forcing"][:, 0])
    return state, forcing, batch["doy"][:, 0], batch["doy"][:, 1]


def test_physics_branch_is_the_core_in_physical_space(models, batch):
    model, normalizer, _ = models["physics_only"]
    assert model.corrector is None and model.core is not None
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    with torch.no_grad():
        out, hidden = model(state, forcing, doy, doy_next)
        phys = normalizer.denormalize_state(state, doy)
        increment = model.core(phys)
        expected = normalizer.normalize_state(phys + increment, doy)
    assert hidden is None and out.shape == state.shape == (2, 9, 12, 24)
    assert increment.abs().amax() > 0  # the core does change the state
    # the physical round trip costs float32 round-off of S ~ 35 in its std's units (~1e-4);
    # the model adds the increment in normalised units, increment / std, exactly
    torch.testing.assert_close(out, expected, rtol=0, atol=3e-4)
    torch.testing.assert_close(out, state + increment / normalizer.state_std, rtol=0, atol=0)
    assert (out[:, ~normalizer.state_mask] == 0).all()


def test_zero_physics_persists_the_anomaly(models, batch, monkeypatch):
    """With a core that changes nothing, X(t+1) = X(t): the physics is not asked to carry the
    climatological tendency (the physical state moves with the climatology of t -> t + 1)."""
    model, normalizer, _ = models["physics_only"]
    monkeypatch.setattr(model.core, "forward", lambda phys: torch.zeros_like(phys))
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    with torch.no_grad():
        out, _ = model(state, forcing, doy, doy_next)
    torch.testing.assert_close(out, torch.where(normalizer.state_mask, state, 0.0), rtol=0,
                               atol=0)
    clim = normalizer.climatology[:, :-1] / normalizer.state_std[periodic_channel_index(2)]
    assert (clim[doy] - clim[doy_next]).abs().max() > 0.1  # the two days' climatologies differ


def test_an_untrained_hybrid_is_its_physics(models, batch):
    """The corrector's output layer starts at zero: at the start of training the hybrid is
    exactly as stable as its physics core."""
    model, normalizer, _ = models["neuralogcm"]
    assert (model.corrector.head.weight == 0).all() and (model.corrector.head.bias == 0).all()
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    with torch.no_grad():
        out, _ = model(state, forcing, doy, doy_next)
        physics = model.physics_step(state, doy)
    torch.testing.assert_close(out, physics, rtol=0, atol=0)


def _trained_head(tiny_data_dir):
    """A fresh tiny hybrid whose corrector output layer is random (as after training)."""
    from conftest import TINY_CONFIG

    model, normalizer, _ = build(load(TINY_CONFIG), "neuralogcm", tiny_data_dir, CPU)
    torch.nn.init.normal_(model.corrector.head.weight, std=0.1)
    return model, normalizer


def test_hybrid_adds_the_corrector_to_the_physics(models, batch, tiny_data_dir):
    model, normalizer = _trained_head(tiny_data_dir)
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    land = ~normalizer.state_mask
    garbage = state.masked_fill(land, 1e3)  # whatever sits on land, the output there is 0
    with torch.no_grad():
        out, _ = model(garbage, forcing, doy, doy_next)
        physics = model.physics_step(state, doy)
        correction = model.corrector(model.inputs(garbage, forcing))
    assert correction.abs().amax() > 0.01
    assert (out[:, land] == 0).all()
    torch.testing.assert_close(out, torch.where(~land, physics + correction, 0.0))
    corrector_only, _, _ = models["corrector_only"]
    assert corrector_only.core is None
    torch.nn.init.normal_(corrector_only.corrector.head.weight, std=0.1)
    with torch.no_grad():
        out, _ = corrector_only(state, forcing, doy, doy_next)
        expected = state + corrector_only.corrector(corrector_only.inputs(state, forcing))
    torch.testing.assert_close(out, torch.where(~land, expected, 0.0))


def test_physics_stays_float32_under_bf16_autocast(batch, tiny_data_dir):
    model, normalizer = _trained_head(tiny_data_dir)
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    with torch.no_grad():
        reference = model.physics_step(state, doy)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = model(state, forcing, doy, doy_next)
            physics = model.physics_step(state, doy)
            correction = model.corrector(model.inputs(state, forcing))
    assert correction.dtype == torch.bfloat16 and out.dtype == torch.float32
    torch.testing.assert_close(physics, reference, rtol=0, atol=0)


def test_gradients_reach_the_corrector_and_the_coefficients(batch, tiny_data_dir):
    model, normalizer = _trained_head(tiny_data_dir)
    model.zero_grad()
    WindowLoss(model, normalizer, amp=False, channels_last=False)(
        batch["state"], batch["forcing"], batch["doy"]).backward()
    for name, p in model.corrector.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    raw = model.core.raw
    assert raw.grad is not None and (raw.grad != 0).all()  # kappa and nu at every level
    assert set(model.physical_coefficients()) == {"kappa_00", "kappa_01", "viscosity_00",
                                                  "viscosity_01"}
    assert model.physical_coefficients()["kappa_00"] == pytest.approx(1e3, rel=1e-3)


def test_frozen_coefficients_are_not_trained(tiny_data_dir, tiny_config):
    tiny_config["models"]["frozen"] = {"arch": "neuralogcm", "corrector": False,
                                       "learnable_physics": False}
    model, _, _ = build(load(tiny_config), "frozen", tiny_data_dir, CPU)
    assert list(model.parameters()) == []
    assert "raw" in dict(model.core.named_buffers())


def test_a_model_overrides_the_physics_sections_coriolis_and_pressure_gradient(
        tiny_data_dir, tiny_config, batch):
    """models.<name>.coriolis / pressure_gradient override the physics section for that model
    alone (the ablation); None keeps the section's value; the rotation changes the day."""
    tiny_config["physics"].update(coriolis=False, pressure_gradient=False)
    tiny_config["models"]["plain"] = {"arch": "neuralogcm", "corrector": False}
    tiny_config["models"]["rotating"] = {"arch": "neuralogcm", "corrector": False,
                                         "coriolis": True}
    cfg = load(tiny_config)
    plain, normalizer, _ = build(cfg, "plain", tiny_data_dir, CPU)
    rotating, _, _ = build(cfg, "rotating", tiny_data_dir, CPU)
    assert not plain.core.settings.coriolis and not plain.core.settings.pressure_gradient
    assert rotating.core.settings.coriolis and not rotating.core.settings.pressure_gradient
    assert not cfg.physics.coriolis  # the section itself is untouched
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    with torch.no_grad():
        assert not torch.allclose(plain(state, forcing, doy, doy_next)[0],
                                  rotating(state, forcing, doy, doy_next)[0])


def test_a_tiny_hybrid_overfits_a_fixed_batch(models, batch, tiny_config, tiny_data_dir):
    tiny_config["physics"]["substeps"] = 1
    model, normalizer, _ = build(load(tiny_config), "neuralogcm", tiny_data_dir, CPU)
    loss_fn = WindowLoss(model, normalizer, amp=False, channels_last=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(100):
        loss = loss_fn(batch["state"], batch["forcing"], batch["doy"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


def test_options_that_cannot_build_a_model_are_config_errors(tiny_config):
    tiny_config["models"]["none"] = {"arch": "neuralogcm", "physics": False, "corrector": False}
    with pytest.raises(ConfigError, match="models.none"):
        load(tiny_config)
    del tiny_config["models"]["none"]
    tiny_config["models"]["neuralogcm"]["heads"] = 3
    with pytest.raises(ConfigError, match="models.neuralogcm.*heads"):
        load(tiny_config)


def test_corrector_on_an_odd_grid_keeps_its_shape():
    """30 x 60 (the demo's 6 degrees) is not a multiple of 2^depth: padded, then cropped."""
    net = Corrector(7, 5, (30, 60), width=4, depth=2, heads=2, attention_layers=1, mlp_ratio=2.0)
    assert net(torch.randn(3, 7, 30, 60)).shape == (3, 5, 30, 60)
    # longitude is periodic: rolling the input by whole cells rolls the output alike
    x = torch.randn(1, 7, 32, 64)
    net = Corrector(7, 5, (32, 64), width=4, depth=2, heads=2, attention_layers=1, mlp_ratio=2.0)
    torch.nn.init.normal_(net.head.weight)  # the output layer starts at zero
    net.ste.position.data.zero_()  # position embeddings break the symmetry on purpose
    torch.testing.assert_close(net(x.roll(4, -1)), net(x).roll(4, -1), rtol=1e-4, atol=1e-5)


def test_channels_last_gives_the_same_loss(models, batch):
    model, normalizer, _ = models["neuralogcm"]
    losses = [WindowLoss(model, normalizer, amp=False, channels_last=layout)(
        batch["state"], batch["forcing"], batch["doy"]).item() for layout in (False, True)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_the_hybrid_keeps_temperature_above_freezing(models, batch):
    """A state driven below freezing comes back at the freezing point of its salinity and depth;
    every other ocean value is untouched."""
    model, normalizer, _ = models["physics_only"]
    state, forcing, doy, doy_next = _inputs(normalizer, batch)
    temp = slice(6, 8)  # thetao of the 2 levels: channels S(2), U(2), V(2), T(2), SSH
    cold = state.clone()
    cold[:, temp] = cold[:, temp] - 10.0 / normalizer.state_std[temp]  # 10 degC colder
    raised = model.above_freezing(cold, doy_next)
    phys = normalizer.denormalize_state(raised, doy_next)
    salt = phys[:, 0:2]
    floor = -0.0575 * salt - 7.53e-4 * torch.tensor(model.ctx.depths)[:, None, None]
    ocean = normalizer.state_mask[temp]
    before = normalizer.denormalize_state(cold, doy_next)[:, temp]
    was_below = (before < floor) & ocean
    assert was_below.any() and (~was_below & ocean).any()
    torch.testing.assert_close(phys[:, temp][was_below], floor[was_below], rtol=0, atol=1e-4)
    kept = ~was_below & ocean  # (land is zeroed by the model's mask after)
    torch.testing.assert_close(raised[:, temp][kept], cold[:, temp][kept], rtol=0, atol=0)
    torch.testing.assert_close(raised[:, :6], cold[:, :6], rtol=0, atol=0)
