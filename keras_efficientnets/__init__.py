"""EfficientNets for Keras 3 (TensorFlow, JAX and PyTorch backends).

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, https://arxiv.org/abs/1905.11946.
"""

from keras_efficientnets.config import BlockArgs, get_default_block_list
from keras_efficientnets.model import (
    EfficientNet,
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetB4,
    EfficientNetB5,
    EfficientNetB6,
    EfficientNetB7,
    EfficientNetB8,
    EfficientNetL2,
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
    EfficientNetLite3,
    EfficientNetLite4,
)
from keras_efficientnets.preprocessing import decode_predictions, preprocess_input

__version__ = "1.0.0.dev0"

__all__ = [
    "BlockArgs",
    "EfficientNet",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "EfficientNetB8",
    "EfficientNetL2",
    "EfficientNetLite0",
    "EfficientNetLite1",
    "EfficientNetLite2",
    "EfficientNetLite3",
    "EfficientNetLite4",
    "decode_predictions",
    "get_default_block_list",
    "preprocess_input",
]
