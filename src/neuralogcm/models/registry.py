"""Architecture name -> model class, so that rules can say {model} and configs say ``arch:``.

The names are those of the options classes (:data:`neuralogcm.model_options.ARCH_OPTIONS`, the
config layer); tests/test_baselines.py checks that both tables name the same architectures.
"""

from __future__ import annotations

import importlib

from neuralogcm.model_options import ArchOptions, model_options
from neuralogcm.models.base import ForecastModel, ModelContext

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


def build_model(spec: ArchOptions | dict, ctx: ModelContext) -> ForecastModel:
    """Instantiate the model described by a ``models.<name>`` config entry (its typed options,
    or the mapping they validate from)."""
    options = model_options(spec)
    return model_class(options.arch)(ctx, options)
