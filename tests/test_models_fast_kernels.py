"""optimize_for_backend: the written-out convolutions compute what Keras's layers compute, on
every backend (the layers directly), and the rewrite of every family on JAX's CPU shares the
model's weights and gives the same outputs and gradients."""

import keras
import numpy as np
import pytest
from helpers import (
    FLOAT32_ROUND_OFF,
    assert_depends_on_the_input,
    assert_same_network_outputs,
    random_images,
    randomize_weights,
)

import keras_efficientnets as ke
from keras_efficientnets.models.fast_kernels import (
    MatmulPointwiseConv2D,
    ShiftedDepthwiseConv2D,
    optimize_for_backend,
)

pytestmark = pytest.mark.backends

SIZE = 64
# Squeeze-excite and swish, ReLU6 without SE, fused early stages, CondConv's experts.
FAMILY_MEMBERS = ["EfficientNetB0", "EfficientNetLite0", "EfficientNetV2B0", "EfficientNetCondConvB0_4e"]
ONLY_ON_JAX_CPU = "the rewrite applies on JAX's CPU (CI's JAX stage); the layers are checked on every backend"


def _on_jax_cpu() -> bool:
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.default_backend() == "cpu"


def _channels_last_reference(layer_class, config, weights, x, data_format):
    """The built-in layer's output, computed channels-last (TensorFlow's CPU kernels have no
    channels-first depthwise convolution) and laid out as `data_format`."""
    reference = layer_class(**{**config, "data_format": "channels_last"})
    if data_format == "channels_first":
        x = np.transpose(x, (0, 2, 3, 1))
    reference.build(x.shape)
    reference.set_weights(weights)
    out = keras.ops.convert_to_numpy(reference(x))
    return np.transpose(out, (0, 3, 1, 2)) if data_format == "channels_first" else out


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3, "strides": 1, "padding": "same"},
        {"kernel_size": 3, "strides": 2, "padding": "same"},
        {"kernel_size": 5, "strides": 2, "padding": "same", "use_bias": True, "activation": "relu"},
        {"kernel_size": 5, "strides": 1, "padding": "same", "dilation_rate": 2},
        {"kernel_size": 3, "strides": 2, "padding": "valid"},
    ],
    ids=["k3s1", "k3s2", "k5s2-bias-relu", "k5-dilated", "k3s2-valid"],
)
def test_shifted_depthwise_computes_what_the_layer_does(options, data_format):
    # Odd and even sizes: TensorFlow's "same" pads one more pixel after than before when uneven.
    x = np.random.default_rng(0).normal(size=(2, 4, 15, 12)).astype("float32")
    if data_format == "channels_last":
        x = np.transpose(x, (0, 2, 3, 1))
    conv = keras.layers.DepthwiseConv2D(**options, data_format=data_format)
    conv.build(x.shape)
    conv.set_weights([np.random.default_rng(1).normal(size=w.shape).astype("float32") for w in conv.weights])
    expected = _channels_last_reference(
        keras.layers.DepthwiseConv2D, options, conv.get_weights(), x, data_format
    )
    actual = keras.ops.convert_to_numpy(ShiftedDepthwiseConv2D(conv)(x))
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=FLOAT32_ROUND_OFF * np.abs(expected).max(), rtol=0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_matmul_pointwise_computes_what_the_layer_does(data_format):
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 7)).astype("float32")
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2))
    options = {"filters": 9, "kernel_size": 1, "use_bias": True, "activation": "swish"}
    conv = keras.layers.Conv2D(**options, data_format=data_format)
    conv.build(x.shape)
    conv.set_weights([np.random.default_rng(1).normal(size=w.shape).astype("float32") for w in conv.weights])
    expected = _channels_last_reference(keras.layers.Conv2D, options, conv.get_weights(), x, data_format)
    actual = keras.ops.convert_to_numpy(MatmulPointwiseConv2D(conv)(x))
    np.testing.assert_allclose(actual, expected, atol=FLOAT32_ROUND_OFF * np.abs(expected).max(), rtol=0)


def _jitted_outputs(model, x):
    """Inference outputs through one jitted call: JAX runs an eager call op by op, slowly."""
    import jax

    call = jax.jit(lambda trainable, frozen, x: model.stateless_call(trainable, frozen, x)[0])
    values = [
        [v.value for v in variables]
        for variables in (model.trainable_variables, model.non_trainable_variables)
    ]
    return np.asarray(call(*values, x))


@pytest.mark.parametrize(
    "name, output_stride",
    [(name, None) for name in FAMILY_MEMBERS] + [("EfficientNetB0", 8)],  # dilated kernels too
)
def test_every_family_computes_the_same_with_the_backends_fast_kernels(name, output_stride):
    if not _on_jax_cpu():
        pytest.skip(ONLY_ON_JAX_CPU)
    model = getattr(ke, name)(
        weights=None, input_shape=(SIZE, SIZE, 3), classifier_activation=None, output_stride=output_stride
    )
    fast = optimize_for_backend(model)
    kinds = {type(layer) for layer in fast.layers}
    assert {
        ShiftedDepthwiseConv2D,
        MatmulPointwiseConv2D,
    } <= kinds  # V2's fused stages have none, its others do
    assert {id(v) for v in fast.weights} == {id(v) for v in model.weights}  # shared, not copied
    x = random_images(2, SIZE, seed=1)
    expected = _jitted_outputs(model, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(_jitted_outputs(fast, x), expected, floor=1e-5)


def test_the_fast_kernels_train_the_models_own_weights_with_the_same_gradients():
    if not _on_jax_cpu():
        pytest.skip(ONLY_ON_JAX_CPU)
    import jax

    # B0's first three stages: kernels 3 and 5, strides 1 and 2, squeeze-excite (fast to differentiate).
    stages = ke.get_default_block_list()[:3]
    model = randomize_weights(ke.EfficientNet((32, 32, 3), stages, 1.0, 1.0, classes=5))
    fast = optimize_for_backend(model)
    x, y = random_images(4, 32, seed=2), np.arange(4) % 5

    def gradients(network):
        trainable = [v.value for v in network.trainable_variables]
        frozen = [v.value for v in network.non_trainable_variables]

        def loss(trainable):
            probabilities, _ = network.stateless_call(trainable, frozen, x, training=True)
            return keras.losses.sparse_categorical_crossentropy(y, probabilities).mean()

        return [np.asarray(g) for g in jax.jit(jax.grad(loss))(trainable)]

    names = [v.path for v in model.trainable_variables]
    assert [v.path for v in fast.trainable_variables] == names
    expected_gradients = gradients(model)
    # Against the largest gradient: some are zero but for round-off (a BatchNorm's shift followed
    # by another BatchNorm in training mode), and no relative tolerance holds there.
    scale = max(np.abs(g).max() for g in expected_gradients)
    for name, actual, expected in zip(names, gradients(fast), expected_gradients, strict=True):
        np.testing.assert_allclose(actual, expected, atol=FLOAT32_ROUND_OFF * scale, rtol=0, err_msg=name)


def test_elsewhere_the_model_itself_is_returned():
    if _on_jax_cpu():
        pytest.skip("on JAX's CPU the rewrite applies (checked above)")
    model = ke.EfficientNet((32, 32, 3), ke.get_default_block_list()[:2], 1.0, 1.0)
    assert optimize_for_backend(model) is model  # the built-in layers are the fast path here


def test_optimize_for_backend_takes_keras_models_only():
    with pytest.raises(TypeError, match="must be a keras.Model.*Received: model='m.keras'"):
        optimize_for_backend("m.keras")
