"""Drop-in compatibility: keras_efficientnets 0.1.x code and models, and keras.applications' conventions."""

import json

import h5py
import keras
import numpy as np
import pytest
from helpers import infer, random_images, randomize_weights
from reference import IMAGENET_MEAN, IMAGENET_STD

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet, decode_predictions, get_default_block_list

B0_STRINGS = [b.to_block_string() for b in get_default_block_list()]


# --------------------------------------------------------------------------- #
# keras_efficientnets 0.1.x
# --------------------------------------------------------------------------- #
def test_the_2019_modules_import_and_give_todays_objects():
    from keras_efficientnets.custom_objects import DropConnect, Swish
    from keras_efficientnets.efficientnet import (
        EfficientNet as Builder,
    )
    from keras_efficientnets.efficientnet import (
        EfficientNetB0,
        preprocess_input,
        round_filters,
        round_repeats,
    )

    assert Builder is EfficientNet and EfficientNetB0 is ke.EfficientNetB0
    assert preprocess_input is ke.preprocess_input
    assert (round_filters(16, 1.2, 8, None), round_repeats(4, 3.1)) == (24, 13)
    assert issubclass(Swish, keras.layers.Layer) and issubclass(DropConnect, keras.layers.Layer)


def test_the_2019_blockargs_flow_fills_an_empty_blockargs():
    blocks = []
    for block_string in B0_STRINGS:
        block = BlockArgs()  # 0.1.x: an empty instance, then filled from a string
        block.decode_block_string(block_string)
        blocks.append(block)
    assert blocks == get_default_block_list()
    # Filled, it is immutable; decoding on it gives a new BlockArgs.
    with pytest.raises(AttributeError):
        blocks[0].num_repeat = 3
    assert blocks[0].decode_block_string(B0_STRINGS[1]) == get_default_block_list()[1]
    assert blocks[0] == get_default_block_list()[0]


def test_an_empty_blockargs_cannot_be_built():
    with pytest.raises(ValueError, match="empty BlockArgs"):
        EfficientNet((32, 32, 3), [BlockArgs()], 1.0, 1.0)


def test_block_args_list_none_means_b0s_stages():
    model = EfficientNet((64, 64, 3), None, 1.0, 1.0)
    assert model.count_params() == ke.EfficientNetB0(weights=None).count_params()


def test_the_2019_builder_without_an_input_shape_makes_a_224_classifier():
    # 0.1.x's default_size was 224; without the top any size goes, as keras.applications does.
    assert EfficientNet(None, None, 1.0, 1.0, include_top=True).input_shape == (None, 224, 224, 3)
    assert EfficientNet(None, None, 1.0, 1.0, include_top=False).input_shape == (None, None, None, 3)
    assert EfficientNet(None, None, 1.0, 1.0, default_size=96).input_shape == (None, 96, 96, 3)


def _write_2019_model(path, kernel, dense_kernel, dense_bias):
    """A Keras 2.2.4 .h5 model as 0.1.x saved them: Swish, DropConnect and its initializers by name."""

    def layer(name, class_name, config, inbound):
        return {
            "name": name,
            "class_name": class_name,
            "config": {"name": name, "trainable": True, **config},
            "inbound_nodes": [[[inbound, 0, 0, {}]]] if inbound else [],
        }

    conv = {
        "filters": 4,
        "kernel_size": [3, 3],
        "strides": [1, 1],
        "padding": "same",
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
        "activation": "linear",
        "use_bias": False,
        "kernel_initializer": {"class_name": "EfficientNetConvInitializer", "config": {}},
    }
    dense = {
        "units": 2,
        "activation": "softmax",
        "use_bias": True,
        "kernel_initializer": {"class_name": "EfficientNetDenseInitializer", "config": {}},
    }
    layers = [
        {
            "name": "input_1",
            "class_name": "InputLayer",
            "config": {
                "batch_input_shape": [None, 8, 8, 3],
                "dtype": "float32",
                "sparse": False,
                "name": "input_1",
            },
            "inbound_nodes": [],
        },
        layer("conv2d_1", "Conv2D", conv, "input_1"),
        layer("swish_1", "Swish", {}, "conv2d_1"),
        layer("drop_connect_1", "DropConnect", {"drop_connect_rate": 0.2}, "swish_1"),
        layer(
            "global_average_pooling2d_1",
            "GlobalAveragePooling2D",
            {"data_format": "channels_last"},
            "drop_connect_1",
        ),
        layer("dense_1", "Dense", dense, "global_average_pooling2d_1"),
    ]
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_1", 0, 0]],
        },
    }
    values = {
        "conv2d_1": [("kernel:0", kernel)],
        "dense_1": [("kernel:0", dense_kernel), ("bias:0", dense_bias)],
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([item["name"].encode() for item in layers])
        for item in layers:
            weights = [(f"{item['name']}/{name}", value) for name, value in values.get(item["name"], [])]
            layer_group = group.create_group(item["name"])
            layer_group.attrs["weight_names"] = np.array([name.encode() for name, _ in weights])
            for name, value in weights:
                layer_group.create_dataset(name, data=value)


def test_a_2019_model_with_swish_and_dropconnect_loads_and_computes(tmp_path):
    from keras_efficientnets.custom_objects import get_custom_objects

    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype("float32")
    dense_kernel, dense_bias = rng.normal(size=(4, 2)).astype("float32"), rng.normal(size=2).astype("float32")
    _write_2019_model(tmp_path / "old.h5", kernel, dense_kernel, dense_bias)
    model = keras.saving.load_model(tmp_path / "old.h5", custom_objects=get_custom_objects(), compile=False)
    assert [type(layer).__name__ for layer in model.layers][2:4] == ["Swish", "DropConnect"]

    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    # The same network in NumPy: 'same' 3x3 conv, swish, mean, dense, softmax.
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = sum(padded[:, i : i + 8, j : j + 8, :] @ kernel[i, j] for i in range(3) for j in range(3))
    features = (conv / (1 + np.exp(-conv))).mean(axis=(1, 2))
    logits = features @ dense_kernel + dense_bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_dropconnect_drops_whole_samples_in_training_only():
    from keras_efficientnets.custom_objects import DropConnect

    layer = DropConnect(0.5, seed=1)
    x = np.ones((64, 4, 4, 3), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    dropped = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = dropped.reshape(64, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}  # each sample all dropped or all kept, scaled by 1/0.5
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    assert 10 < (per_sample[:, 0] == 0).sum() < 54


def test_the_2019_initializers_have_the_reference_scales():
    from keras_efficientnets.custom_objects import EfficientNetConvInitializer, EfficientNetDenseInitializer

    conv = keras.ops.convert_to_numpy(EfficientNetConvInitializer()((3, 3, 64, 128)))
    assert conv.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 128)), rel=0.05)
    dense = keras.ops.convert_to_numpy(EfficientNetDenseInitializer()((1280, 1000)))
    assert np.abs(dense).max() <= 1 / np.sqrt(1000) and dense.std() == pytest.approx(
        1 / np.sqrt(3000), rel=0.05
    )


# --------------------------------------------------------------------------- #
# keras.applications' conventions
# --------------------------------------------------------------------------- #
def test_without_the_top_the_input_takes_any_size_as_keras_applications_does():
    assert ke.EfficientNetB0(weights=None, include_top=False).input_shape == (None, None, None, 3)
    assert ke.EfficientNetB0(weights=None).input_shape == (None, 224, 224, 3)
    assert ke.EfficientNetB0(weights=None, include_top=False, input_shape=(96, 96, 3)).input_shape == (
        None,
        96,
        96,
        3,
    )


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_other_channel_counts_build_and_normalize_by_the_stated_rule(channels):
    model = ke.EfficientNetB0(weights=None, include_top=False, input_shape=(None, None, channels))
    assert model.output_shape == (None, None, None, 1280)
    # The rule: a named normalization on an input without 3 channels uses, for one channel,
    # the mean of its per-channel constants, and for more, its constants in turn (R, G, B, R...).
    x = random_images(1, 32, channels=channels)
    normalized = keras.ops.convert_to_numpy(model.get_layer("preprocessing")(x))
    if channels == 1:
        mean, std = np.mean(IMAGENET_MEAN), np.mean(IMAGENET_STD)
    else:
        mean, std = (np.resize(np.asarray(c), channels) for c in (IMAGENET_MEAN, IMAGENET_STD))
    np.testing.assert_allclose(normalized, (x - mean) / std, rtol=1e-5, atol=1e-5)
    randomize_weights(model)
    assert infer(model, random_images(2, 64, channels=channels)).shape == (2, 2, 2, 1280)


def test_decode_predictions_spells_classes_as_keras_applications():
    scores = np.zeros((1, 1000))
    scores[0, [282, 386, 619, 765]] = [4, 3, 2, 1]
    # keras.applications' imagenet_class_index.json: 282 tiger_cat, 386 African_elephant,
    # 619 lampshade, 765 rocking_chair.
    assert [(wnid, name) for wnid, name, _ in decode_predictions(scores, top=4)[0]] == [
        ("n02123159", "tiger_cat"),
        ("n02504458", "African_elephant"),
        ("n03637318", "lampshade"),
        ("n04099969", "rocking_chair"),
    ]


# --------------------------------------------------------------------------- #
# keras-hub's per-model dtype
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", ["mixed_float16", "bfloat16"])
def test_a_model_can_have_its_own_dtype_policy(dtype):
    model = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3), dtype=dtype)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    compute = "float16" if dtype == "mixed_float16" else "bfloat16"
    assert model.get_layer("stem_conv").compute_dtype == compute
    assert model.get_layer("stem_conv").variable_dtype == (
        "float32" if dtype.startswith("mixed") else "bfloat16"
    )
    predictions = keras.ops.convert_to_numpy(model(random_images(2, 64)))
    # Mixed: the classifier computes in float32, as under a global mixed policy.
    if dtype == "mixed_float16":
        assert model.get_layer("predictions").compute_dtype == "float32"
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-3)
    assert np.all(np.isfinite(predictions.astype("float32")))
