"""Architecture name -> model class, so that rules can say {model} and configs say ``arch:``."""

from __future__ import annotations

import importlib

from neuralogcm.models.base import ForecastModel, ModelContext
from neuralogcm.models.options import model_options

ARCHITECTURES = {
    "neuralogcm": "neuralogcm.models.neuralogcm:NeuralOGCM",
    "unet": "neuralogcm.models.unet:UNet",
    "convlstm": "neuralogcm.models.convlstm:ConvLSTM",
    "simvp": "neuralogcm.models.simvp:SimVP",
    "fourcastnet": "neuralogcm.models.fourcastnet:FourCastNet",
}


def model_class(arch: str) -> type[ForecastModel]:
    module, cls = ARCHITECTURES[arch].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(spec: dict, ctx: ModelContext) -> ForecastModel:
    """Instantiate the model described by a validated ``models.<name>`` config entry."""
    options = model_options(spec)
    return model_class(options.arch)(ctx, options)
