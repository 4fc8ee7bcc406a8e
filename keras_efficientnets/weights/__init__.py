"""Pretrained weights: the `weights=` argument and where weights come from.

- `loading`: the `weights=` argument (checked and resolved once), sidecars, loading;
- `sources`: where ``weights="imagenet"`` comes from, one registry of sources of one shape;
- `files`: weight tables read from Keras weight files, and assigned to a model by name;
- `downloads`: published files fetched into the Keras cache, checked and atomic;
- `checkpoints`: the official checkpoints' names and kernel layouts, and timm's;
- `state_dicts`: PyTorch state dicts (timm's, efficientnet_pytorch's) as ``weights=``;
- `torch_pickle`: ``torch.save`` files read without torch and without running code.

``from keras_efficientnets.weights import ...`` gives `loading`'s public names, as the
``keras_efficientnets.weights`` module of earlier releases did.
"""

import importlib

# `loading`'s public names, loaded on first use: importing a submodule (torch_pickle, say) then
# runs nothing else, and `loading`, which imports its siblings, never imports this package back.
__all__ = [
    "KERAS_APPLICATIONS_BASE_URL",
    "KERAS_APPLICATIONS_V2_BASE_URL",
    "KERAS_APPLICATIONS_WEIGHTS",
    "KerasApplicationsFiles",
    "LITE_PACKAGES",
    "LitePackage",
    "SIDECAR_FORMAT",
    "WeightSource",
    "WeightsChoice",
    "WeightsDownloadError",
    "adapt_input_channels",
    "assign_weights",
    "imagenet_source",
    "imagenet_sources",
    "load_weights_into",
    "normalization_for_weights",
    "read_sidecar",
    "read_weights_file",
    "resolve_weights",
    "sidecar_path",
    "validate_weights_argument",
    "write_weights",
]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("keras_efficientnets.weights.loading"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
