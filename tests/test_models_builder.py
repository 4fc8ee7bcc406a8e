"""The builder and the named variants: counts, numerics, shapes, saving, errors."""

import dataclasses
import inspect
import math

import keras
import numpy as np
import pytest
from helpers import (
    assert_depends_on_the_input,
    assert_same_network_outputs,
    channels_first_unsupported_reason,
    copy_weights_by_name,
    infer,
    outputs_after_reload_in_fresh_process,
    random_images,
    randomize_weights,
    set_true_imagenet_normalization,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import IMAGENET_MEAN, IMAGENET_STD, REFERENCE_PARAMS

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet, get_default_block_list
from keras_efficientnets.arch.variants import VARIANTS

PARAMS = REFERENCE_PARAMS
SLOW_VARIANTS = {"b5", "b6", "b7", "b8", "l2"}


def constructor(key):
    return getattr(ke, VARIANTS[key].constructor_name)


def trainable_count(model):
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def tiny_stages():
    return [BlockArgs(32, 16, 3, 1, 1, 0.25, 1), BlockArgs(16, 24, 5, 2, 2, 0.25, 6)]


@pytest.mark.parametrize(
    "key", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW_VARIANTS else k for k in PARAMS]
)
def test_parameter_counts_match_the_reference(key):
    total, trainable, notop = PARAMS[key]
    model = constructor(key)(weights=None)
    if total is not None:
        assert model.count_params() == total
    assert trainable_count(model) == trainable
    if notop is not None:
        assert constructor(key)(weights=None, include_top=False).count_params() == notop


def keras_applications_reference(key):
    """keras.applications' model with the true ImageNet normalization and random weights."""
    reference = getattr(keras.applications, f"EfficientNet{key.upper()}")(
        weights=None, classifier_activation=None
    )
    # Normalization first: the random BatchNorm statistics are measured on normalized images.
    set_true_imagenet_normalization(reference)
    return randomize_weights(reference, seed=int(key[1]))


@pytest.mark.parametrize(
    "key",
    # B5 and B6 are B4's and B7's blocks at other coefficients (their counts are checked above).
    ["b0", "b1", "b2", "b3"] + [pytest.param(k, marks=pytest.mark.slow) for k in ("b4", "b7")],
)
def test_outputs_match_keras_applications_on_the_same_weights(key):
    reference = keras_applications_reference(key)
    ours = constructor(key)(weights=None, classifier_activation=None)
    copied = copy_weights_by_name(reference, ours)
    assert len(copied) == sum(1 for layer in ours.layers if layer.weights)
    x = random_images(2, VARIANTS[key].resolution, seed=1)
    expected = infer(reference, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(infer(ours, x), expected, floor=1e-4)


@pytest.mark.parametrize("key", ["b0", pytest.param("b1", marks=pytest.mark.slow)])
def test_any_input_size_gives_ceil_of_size_over_32(key):
    dynamic = constructor(key)(weights=None, include_top=False, input_shape=(None, None, 3))
    randomize_weights(dynamic)
    for size in (224, 225, 260, 333, 600):
        static = constructor(key)(weights=None, include_top=False, input_shape=(size, size, 3))
        static.set_weights(dynamic.get_weights())
        x = random_images(1, size, seed=size)
        features = infer(dynamic, x)
        assert features.shape[1:3] == (math.ceil(size / 32), math.ceil(size / 32))
        assert_same_network_outputs(features, infer(static, x), floor=1e-4)


def test_non_square_inputs_and_pooling():
    model = EfficientNet((97, 130, 3), tiny_stages(), 1.0, 1.0, include_top=False)
    assert model.output_shape == (None, 25, 33, 1280)
    pooled = EfficientNet((97, 130, 3), tiny_stages(), 1.0, 1.0, include_top=False, pooling="max")
    assert pooled.output_shape == (None, 1280)
    assert pooled.get_layer("max_pool") is not None


def test_layer_names_follow_keras_applications():
    names = {layer.name for layer in ke.EfficientNetB0(weights=None).layers}
    expected = {
        "stem_conv",
        "stem_bn",
        "block1a_dwconv",
        "block1a_se_reduce",
        "block1a_se_expand",
        "block1a_project_conv",
        "block2a_expand_conv",
        "block2a_project_bn",
        "block2b_drop",
        "block2b_add",
        "block7a_project_bn",
        "top_conv",
        "top_bn",
        "avg_pool",
        "top_dropout",
        "predictions",
    }
    assert expected <= names
    assert "block1a_expand_conv" not in names  # expand_ratio 1: no expansion.


def test_lite_has_relu6_no_se_and_fixed_stem_and_head():
    model = ke.EfficientNetLite4(weights=None)
    names = [layer.name for layer in model.layers]
    assert not any("se_" in name for name in names)
    assert model.get_layer("stem_conv").filters == 32 and model.get_layer("top_conv").filters == 1280
    assert "block1b_dwconv" not in names and "block7b_dwconv" not in names
    assert model.get_layer("stem_activation").activation.__name__ == "relu6"


def test_drop_connect_rate_grows_linearly_over_all_blocks():
    model = ke.EfficientNetB0(weights=None)
    rates = {layer.name: layer.rate for layer in model.layers if layer.name.endswith("_drop")}
    # B0 has 16 blocks; block index i (0-based) gets 0.2 * i / 16.
    assert rates["block2b_drop"] == pytest.approx(0.2 * 2 / 16)
    assert rates["block6d_drop"] == pytest.approx(0.2 * 14 / 16)
    assert len(rates) == 9  # Only blocks with a residual connection drop it.


def test_preprocessing_inside_equals_normalizing_outside():
    inside = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    outside = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3), include_preprocessing=False)
    randomize_weights(inside)
    outside.set_weights(inside.get_weights())
    assert inside.count_params() == outside.count_params() == PARAMS["b0"][0]
    x = random_images(2, 64)
    mean, std = (np.asarray(c, dtype="float32") for c in (IMAGENET_MEAN, IMAGENET_STD))
    np.testing.assert_allclose(infer(inside, x), infer(outside, (x - mean) / std), atol=1e-6)


def test_lite_preprocessing_is_minus_127_over_128():
    model = ke.EfficientNetLite0(weights=None, input_shape=(32, 32, 3))
    layer = model.get_layer("preprocessing")
    x = np.array([[[[0.0, 127.0, 255.0]]]], dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), [[[[-127 / 128, 0.0, 1.0]]]])


def test_custom_normalization_pair():
    model = EfficientNet((32, 32, 3), tiny_stages(), 1.0, 1.0, normalization=(127.5, 127.5))
    x = np.full((1, 32, 32, 3), 255.0, dtype="float32")
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("preprocessing")(x)), 1.0)


def test_keras_file_loads_without_this_package(tmp_path):
    model = randomize_weights(ke.EfficientNetB0(weights=None, input_shape=(96, 96, 3)))
    x = random_images(2, 96)
    reloaded = outputs_after_reload_in_fresh_process(model, tmp_path, x)
    assert_same_network_outputs(reloaded, infer(model, x))


def test_get_config_from_config_round_trip():
    model = randomize_weights(EfficientNet((64, 64, 3), tiny_stages(), 1.2, 1.4, classes=7))
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    x = random_images(2, 64)
    np.testing.assert_array_equal(infer(clone, x), infer(model, x))


def test_weights_path_round_trip(tmp_path):
    model = randomize_weights(ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3)))
    model.save_weights(tmp_path / "lite0.weights.h5")
    model.save(tmp_path / "lite0.keras")
    x = random_images(1, 64)
    for path in (tmp_path / "lite0.weights.h5", str(tmp_path / "lite0.keras")):
        loaded = ke.EfficientNetLite0(weights=path, input_shape=(64, 64, 3))
        np.testing.assert_array_equal(infer(loaded, x), infer(model, x))


def test_builder_leaves_the_users_block_list_unchanged_and_builds_twice():
    stages = get_default_block_list()
    before = list(stages)
    first = EfficientNet((64, 64, 3), stages, 1.4, 1.8)
    second = EfficientNet((64, 64, 3), stages, 1.4, 1.8)
    assert stages == before == get_default_block_list()
    assert first.count_params() == second.count_params()


def test_input_tensor_is_used():
    image = keras.Input((80, 80, 3))
    model = ke.EfficientNetB0(weights=None, input_tensor=image, include_top=False, pooling="avg")
    assert model.inputs[0] is image and model.output_shape == (None, 1280)


def test_the_2019_readme_calls_work():
    model = ke.EfficientNetB0((224, 224, 3), classes=1000, include_top=True, weights=None)
    assert model.output_shape == (None, 1000)
    custom = EfficientNet((224, 224, 3), get_default_block_list(), 1.0, 1.0, classes=10)
    assert custom.output_shape == (None, 10)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_outputs_float32(policy):
    keras.config.set_dtype_policy(policy)
    model = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    predictions = model(random_images(2, 64))
    assert keras.backend.standardize_dtype(predictions.dtype) == "float32"
    predictions = keras.ops.convert_to_numpy(predictions)
    assert np.all(np.isfinite(predictions))
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-3)


# ---------------------------------------------------------------------------
# Errors name the argument and the value received: the builder's and the named constructors' rows
# are in the corpus (test_bad_inputs.py).


def test_imagenet_weights_are_refused_where_none_are_published():
    expected = r"No ImageNet weights ship for EfficientNet 'b8'.*by name \('advprop', 'randaugment'\)"
    with pytest.raises(ValueError, match=expected):
        ke.EfficientNetB8(input_shape=(32, 32, 3), include_top=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    input_shape=st.one_of(
        st.tuples(st.integers(-2, 80), st.integers(-2, 80), st.integers(0, 4)),
        st.tuples(st.none(), st.none(), st.sampled_from([3, None])),
        st.just((64, 64)),
        st.just("224"),
    ),
    width=st.one_of(st.floats(-1, 3) | st.just(float("nan")), st.integers(-1, 2)),
    depth=st.one_of(st.floats(-1, 3), st.just(float("inf"))),
    pooling=st.sampled_from([None, "avg", "max", "sum", 1]),
    classes=st.one_of(st.integers(-2, 20), st.just(2.5)),
    dropout_rate=st.floats(-0.5, 1.5),
    include_top=st.sampled_from([True, False, 1, None]),
)
def test_builder_fuzz_raises_only_value_and_type_errors(
    input_shape, width, depth, pooling, classes, dropout_rate, include_top
):
    stage = [BlockArgs(32, 8, 3, 2, 1, 0.25, 1)]
    try:
        model = EfficientNet(
            input_shape,
            stage,
            width,
            depth,
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            dropout_rate=dropout_rate,
        )
    except (ValueError, TypeError) as error:
        assert "Received" in str(error) or "got an unexpected" in str(error)
    else:
        assert model.count_params() > 0


def test_the_stem_feeds_the_first_stage_whatever_its_width():
    stages = [BlockArgs(16, 16, 3, 1, 1, 0.25, 1), BlockArgs(16, 24, 3, 2, 2, 0.25, 6)]
    model = EfficientNet((64, 64, 3), stages, 1.0, 1.0, classes=3)
    assert model.get_layer("stem_conv").filters == 16
    assert model.get_layer("block1a_add") is not None  # 16 -> 16 at stride 1 keeps the residual.
    assert infer(model, random_images(1, 64)).shape == (1, 3)


def test_channels_first_computes_what_channels_last_does():
    reason = channels_first_unsupported_reason()
    if reason:
        pytest.skip(reason)
    stages = tiny_stages()
    last = randomize_weights(EfficientNet((64, 64, 3), stages, 1.0, 1.0, classifier_activation=None))
    first = EfficientNet(
        (3, 64, 64), stages, 1.0, 1.0, classifier_activation=None, data_format="channels_first"
    )
    assert first.get_layer("stem_bn").axis in (1, [1])
    first.set_weights(last.get_weights())
    x = random_images(2, 64)
    expected = infer(last, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(infer(first, np.transpose(x, (0, 3, 1, 2))), expected, floor=1e-4)


def test_numpy_numbers_are_taken_as_python_ones():
    model = EfficientNet(
        (np.int64(32), 32, 3), tiny_stages(), np.float32(1.0), np.float64(1.0), classes=np.int64(10)
    )
    assert model.output_shape == (None, 10)


def test_the_builders_arguments_are_build_configs_fields():
    """EfficientNet spells its arguments out for users' tools; each is a BuildConfig field with the
    same default, and the named constructors' keywords are among them."""
    from keras_efficientnets.models.build_config import BuildConfig
    from keras_efficientnets.models.builder import _NOT_BUILD_CONFIG, _VARIANT_KEYWORDS

    parameters = dict(inspect.signature(EfficientNet).parameters)
    fields = {field.name: field for field in dataclasses.fields(BuildConfig)}
    building = {name: p for name, p in parameters.items() if name not in _NOT_BUILD_CONFIG}
    # depthwise_name: the layer naming of a family's weights, set by the variant table only.
    assert set(building) == set(fields) - {"depthwise_name"}
    for name, parameter in building.items():
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == fields[name].default, name
    assert _VARIANT_KEYWORDS.issubset(parameters)


def test_symmetric_padding_pads_each_strided_convolution_on_both_sides_and_reloads(tmp_path):
    same = ke.EfficientNetB0(weights=None, input_shape=(65, 65, 3))
    model = ke.EfficientNetB0(weights=None, input_shape=(65, 65, 3), padding="symmetric")

    pads = {
        layer.name: layer.padding for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)
    }
    # B0's stride-2 convolutions: the 3x3 stem and the depthwise ones opening stages 2, 3, 4, 6.
    assert pads == {
        "stem_conv_pad": ((1, 1), (1, 1)),
        "block2a_dwconv_pad": ((1, 1), (1, 1)),
        "block3a_dwconv_pad": ((2, 2), (2, 2)),
        "block4a_dwconv_pad": ((1, 1), (1, 1)),
        "block6a_dwconv_pad": ((2, 2), (2, 2)),
    }
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in same.layers)
    assert model.count_params() == same.count_params()
    path = tmp_path / "symmetric.keras"
    model.save(path)
    x = random_images(1, 65)
    np.testing.assert_array_equal(
        keras.saving.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0)
    )
