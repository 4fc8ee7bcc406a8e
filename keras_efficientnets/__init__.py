"""EfficientNets for Keras 3 (TensorFlow, JAX and PyTorch backends).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, https://arxiv.org/abs/1905.11946.

The model constructors load Keras on first use, so that the Keras-free parts
(`config`, `flops`, `optimize`) import quickly on their own.
"""

import importlib

from keras_efficientnets.config import VARIANTS, BlockArgs, get_default_block_list
from keras_efficientnets.feature_levels import FeatureLevel, feature_info
from keras_efficientnets.flops import FlopsReport, count_flops, count_variant_flops

__version__ = "1.0.0.dev0"

# Public names that need Keras, by the module that defines them; imported on first use.
_LAZY = {
    "model": ["EfficientNet", *(variant.constructor_name for variant in VARIANTS.values())],
    "preprocessing": ["decode_predictions", "preprocess_input"],
    "features": ["feature_extractor"],
    "inference": ["export_onnx", "fold_batch_norm"],
    "deploy": ["export"],
    "training": ["freeze_batch_norm", "train"],
    "predictors": [
        "load_predictor",
        "LiteRTPredictor",
        "OnnxPredictor",
        "OpenVINOPredictor",
        "SavedModelPredictor",
    ],
    "downloads": ["WeightsDownloadError"],
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
    module = _LAZY_MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_efficientnets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_efficientnets.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
