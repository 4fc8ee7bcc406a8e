"""Faster convolutions for the backend at hand: a rewrite of a model that shares its weights.

On JAX's CPU (XLA:CPU), a grouped convolution is an order of magnitude slower than the same
arithmetic written out: a 3x3 depthwise convolution of a (32, 56, 56, 144) batch takes about
410 ms through ``lax.conv_general_dilated(..., feature_group_count=C)`` and about 35 ms as nine
shifted multiply-adds, and a 1x1 convolution is faster as a matrix product. Keras's layers take
the slow path there on every CPU; on GPUs and TPUs, and on the other backends, the built-in
ops are the fast ones.

`optimize_for_backend` is an explicit rewrite, like `fold_batch_norm`, rather than a change
inside this package's layers: the models stay plain Keras layers, so that their ``.keras``
files load without this package. The rewritten model reuses the original's layers and
variables (the convolutions are wrapped, not copied), so training it trains the original,
which is the one to save.
"""

from __future__ import annotations

import keras

from keras_efficientnets._common.validation import received

__all__ = ["MatmulPointwiseConv2D", "ShiftedDepthwiseConv2D", "optimize_for_backend"]


def optimize_for_backend(model: keras.Model) -> keras.Model:
    """`model` with the convolutions that the current backend runs slowly written its fast way.

    On JAX with the CPU as its device, depthwise convolutions (depth multiplier 1) become
    shifted multiply-adds (`ShiftedDepthwiseConv2D`) and 1x1 stride-1 convolutions matrix
    products (`MatmulPointwiseConv2D`); the outputs and gradients are the same within float32
    round-off. Elsewhere `model` itself is returned: its layers are the fast path there.

    Args:
        model: A Keras model, e.g. any model of this package. A functional model is
            rewritten; others are returned as they are, and the blocks of a ``remat=True``
            model, nested models, keep their kernels.

    Returns:
        A model on new inputs that shares `model`'s layers and weights (fit it, then save
        `model`), or `model` itself.

    Example:
        >>> from keras_efficientnets import EfficientNetB0
        >>> model = EfficientNetB0(weights=None, input_shape=(64, 64, 3))
        >>> fast = optimize_for_backend(model)
        >>> fast.count_params() == model.count_params()
        True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', model)}")
    if not _grouped_convolution_is_slow() or not hasattr(model, "_operations"):
        return model  # nothing is faster here, or no functional graph to rewrite
    return keras.models.clone_model(model, clone_function=_fast_layer)


def _grouped_convolution_is_slow() -> bool:
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def _fast_layer(layer):
    """The fast stand-in for a layer that has one, else the layer itself (shared)."""
    if type(layer) is keras.layers.DepthwiseConv2D and layer.depth_multiplier == 1:
        return ShiftedDepthwiseConv2D(layer)
    if (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (1, 1)
        and tuple(layer.strides) == (1, 1)
        and layer.groups == 1
    ):
        return MatmulPointwiseConv2D(layer)
    return layer


class _WrappedConvolution(keras.layers.Layer):
    """A convolution computed another way, with the wrapped layer's variables and activation."""

    def __init__(self, conv, **kwargs):
        super().__init__(name=conv.name, dtype=conv.dtype_policy, **kwargs)
        self.conv = conv
        self.channels_last = conv.data_format == "channels_last"

    def finish(self, outputs):
        """Bias and activation, as the wrapped layer applies them."""
        conv = self.conv
        if conv.use_bias:
            bias = keras.ops.cast(conv.bias, outputs.dtype)
            outputs = outputs + (bias if self.channels_last else keras.ops.reshape(bias, (-1, 1, 1)))
        return conv.activation(outputs) if conv.activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


class ShiftedDepthwiseConv2D(_WrappedConvolution):
    """A `keras.layers.DepthwiseConv2D` (depth multiplier 1) as shifted multiply-adds.

    Each of the kernel's k*k taps multiplies a strided slice of the padded input by its
    per-channel weights; the sum is the convolution, with Keras's (TensorFlow's) "same"
    padding, any stride and dilation.
    """

    def call(self, inputs):
        conv = self.conv
        spatial_axes = (1, 2) if self.channels_last else (2, 3)
        padding, out_sizes = [(0, 0)] * 4, []
        for axis, kernel, stride, dilation in zip(
            spatial_axes, conv.kernel_size, conv.strides, conv.dilation_rate, strict=True
        ):
            size, reach = inputs.shape[axis], (kernel - 1) * dilation + 1
            if conv.padding == "same":
                out_size = -(-size // stride)
                total = max((out_size - 1) * stride + reach - size, 0)
                padding[axis] = (total // 2, total - total // 2)
            else:
                out_size = (size - reach) // stride + 1
            out_sizes.append(out_size)
        padded = keras.ops.pad(inputs, padding)
        kernel = keras.ops.cast(conv.kernel[:, :, :, 0], inputs.dtype)  # (kh, kw, channels)
        if not self.channels_last:
            kernel = keras.ops.expand_dims(keras.ops.expand_dims(kernel, -1), -1)
        outputs = None
        for i in range(conv.kernel_size[0]):
            for j in range(conv.kernel_size[1]):
                window = [slice(None)] * 4
                for axis, tap, stride, dilation, out_size in zip(
                    spatial_axes, (i, j), conv.strides, conv.dilation_rate, out_sizes, strict=True
                ):
                    start = tap * dilation
                    window[axis] = slice(start, start + (out_size - 1) * stride + 1, stride)
                term = padded[tuple(window)] * kernel[i, j]
                outputs = term if outputs is None else outputs + term
        return self.finish(outputs)


class MatmulPointwiseConv2D(_WrappedConvolution):
    """A 1x1, stride-1 `keras.layers.Conv2D` as a matrix product over the channels."""

    def call(self, inputs):
        kernel = keras.ops.cast(self.conv.kernel[0, 0], inputs.dtype)  # (in, out)
        if self.channels_last:
            outputs = keras.ops.matmul(inputs, kernel)
        else:
            outputs = keras.ops.einsum("bchw,cd->bdhw", inputs, kernel)
        return self.finish(outputs)
