"""keras_efficientnets 0.1.x's custom layers and initializers, for loading models saved in 2019.

0.1.x built its models from two custom layers, ``Swish`` and ``DropConnect``,
and two initializers, and ``.h5`` models saved then name them. Load such a model
with ``keras.saving.load_model(path, custom_objects=get_custom_objects())``.
Today's models use Keras's built-in layers only (``Activation("swish")`` and
``Dropout`` with a per-sample noise shape), so nothing here is needed for them,
and nothing is registered with Keras on import.
"""

from __future__ import annotations

import math

import keras

__all__ = [
    "DropConnect",
    "EfficientNetConvInitializer",
    "EfficientNetDenseInitializer",
    "Swish",
    "get_custom_objects",
]


class EfficientNetConvInitializer(keras.initializers.Initializer):
    """Normal(0, sqrt(2 / fan_out)) for conv kernels (kh, kw, in, out), as 0.1.x and tensorflow/tpu did."""

    def __call__(self, shape, dtype=None):
        kernel_height, kernel_width, _, out_filters = shape
        stddev = math.sqrt(2.0 / (kernel_height * kernel_width * out_filters))
        return keras.random.normal(shape, mean=0.0, stddev=stddev, dtype=dtype)


class EfficientNetDenseInitializer(keras.initializers.Initializer):
    """Uniform(-1 / sqrt(units), 1 / sqrt(units)) for dense kernels (in, units), as 0.1.x did."""

    def __call__(self, shape, dtype=None):
        limit = 1.0 / math.sqrt(shape[1])
        return keras.random.uniform(shape, -limit, limit, dtype=dtype)


class Swish(keras.layers.Layer):
    """x * sigmoid(x), 0.1.x's activation layer (today: ``Activation("swish")``)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return keras.activations.swish(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


class DropConnect(keras.layers.Layer):
    """Drops a whole sample's branch with probability `drop_connect_rate` in training.

    0.1.x's stochastic depth; today's models use ``Dropout`` with
    ``noise_shape=(None, 1, 1, 1)``, which computes the same.
    """

    def __init__(self, drop_connect_rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.drop_connect_rate = float(drop_connect_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.drop_connect_rate == 0:
            return inputs
        noise_shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        return keras.random.dropout(
            inputs, self.drop_connect_rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "drop_connect_rate": self.drop_connect_rate, "seed": self.seed}


def get_custom_objects() -> dict:
    """The ``custom_objects`` that loading a 0.1.x model needs, by the names 0.1.x saved.

    Example:
        >>> sorted(get_custom_objects())
        ['DropConnect', 'EfficientNetConvInitializer', 'EfficientNetDenseInitializer', 'Swish']
    """
    return {
        "EfficientNetConvInitializer": EfficientNetConvInitializer,
        "EfficientNetDenseInitializer": EfficientNetDenseInitializer,
        "DropConnect": DropConnect,
        "Swish": Swish,
    }
