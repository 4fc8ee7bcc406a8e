"""EfficientNets for Keras 3 (TensorFlow, JAX and PyTorch backends).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, https://arxiv.org/abs/1905.11946.

The model constructors load Keras on first use, so that the Keras-free parts
(`arch`, `optimize`) import quickly on their own.
"""

import importlib

from keras_efficientnets import _moved
from keras_efficientnets.arch.feature_levels import FeatureLevel, feature_info
from keras_efficientnets.arch.flops import FlopsReport, count_flops, count_variant_flops
from keras_efficientnets.arch.variants import VARIANTS, BlockArgs, get_default_block_list

# Earlier module paths (keras_efficientnets.config, .model, .efficientnet, ...) keep importing.
_moved.install()

__version__ = "1.0.0.dev0"

# Public names that need Keras, by the module that defines them; imported on first use.
_LAZY = {
    "models.builder": ["EfficientNet", *(variant.constructor_name for variant in VARIANTS.values())],
    "arch.preprocessing": ["decode_predictions", "preprocess_input"],
    "models.features": ["feature_extractor"],
    "models.pyramid": ["PyramidBackbone", "pyramid_backbone"],
    "models.keras_hub_tasks": ["deeplab_v3_backbone"],
    "models.fast_kernels": ["optimize_for_backend"],
    "deploy.inference": ["export_onnx", "fold_batch_norm"],
    "deploy.exporter": ["export"],
    "training": ["freeze_batch_norm", "train"],
    "deploy.predictors": [
        "load_predictor",
        "LiteRTPredictor",
        "OnnxPredictor",
        "OpenVINOPredictor",
        "SavedModelPredictor",
    ],
    "weights.downloads": ["WeightsDownloadError"],
}
_LAZY_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "BlockArgs",
    "FeatureLevel",
    "FlopsReport",
    "count_flops",
    "count_variant_flops",
    "feature_info",
    "get_default_block_list",
    *_LAZY_MODULE_OF,
]


def __getattr__(name):
    if name in _moved.MOVED:  # keras_efficientnets.config and the other earlier module paths
        return importlib.import_module(f"keras_efficientnets.{name}")
    module = _LAZY_MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_efficientnets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_efficientnets.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
