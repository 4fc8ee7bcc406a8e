"""FLOPs and parameter counts without Keras, against the reference numbers and built models."""

import math

import pytest
from reference import PAPER_B0_GMACS, REFERENCE_GMACS, REFERENCE_PARAMS

from keras_efficientnets.arch.flops import count_flops, count_variant_flops
from keras_efficientnets.arch.variants import BlockArgs, get_default_block_list, get_variant


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_counts_match_reference(name):
    total, trainable, notop = REFERENCE_PARAMS[name]
    report = count_variant_flops(name)
    if total is not None:
        assert report.params == total
    assert report.trainable_params == trainable
    assert report.non_trainable_params == report.params - trainable
    if notop is not None:
        assert count_variant_flops(name, include_top=False).params == notop


@pytest.mark.parametrize("name", sorted(REFERENCE_GMACS))
def test_macs_within_three_percent_of_reference(name):
    report = count_variant_flops(name)
    assert report.gmacs == pytest.approx(REFERENCE_GMACS[name], rel=0.03)
    # The weighted layers alone are the bulk but not all of it.
    assert 0.95 * report.macs < report.conv_macs < report.macs


def test_b0_convolution_macs_match_the_paper():
    # The paper's 0.39B FLOPs for B0 counts convolutions and the classifier.
    assert count_variant_flops("b0").conv_macs / 1e9 == pytest.approx(PAPER_B0_GMACS, rel=0.02)


def test_hand_counted_tiny_model():
    # One block without expansion or squeeze-excite, on a 3 x 3 image (stem -> 2 x 2).
    blocks = [BlockArgs(32, 16, 3, (1, 1), 1, None, 1)]
    report = count_flops(blocks, 1.0, 1.0, 3, classes=10)
    stem, depthwise, project, head, dense = 4 * 9 * 3 * 32, 4 * 9 * 32, 4 * 32 * 16, 4 * 16 * 1280, 1280 * 10
    assert report.conv_macs == stem + depthwise + project + head + dense
    # BatchNorm + activation per element after stem, depthwise and head; BatchNorm only after project.
    assert report.macs - report.conv_macs == 4 * (32 * 2 + 32 * 2 + 16 + 1280 * 2)
    trainable = (864 + 2 * 32) + (288 + 2 * 32) + (512 + 2 * 16) + (20480 + 2 * 1280) + (12800 + 10)
    assert report.trainable_params == trainable
    assert report.params == trainable + 2 * (32 + 32 + 16 + 1280)
    assert report.flops == 2 * report.macs
    assert report.resolution == (3, 3)


def test_same_padding_rounds_up_and_pairs_are_accepted():
    blocks = get_default_block_list()
    # With 'same' padding every stride rounds up, so 225 and 224 differ, and
    # 225 x 224 lies between the two squares.
    small = count_flops(blocks, 1.0, 1.0, 224)
    odd = count_flops(blocks, 1.0, 1.0, 225)
    pair = count_flops(blocks, 1.0, 1.0, (225, 224))
    assert small.macs < pair.macs < odd.macs
    assert small.params == odd.params == pair.params
    assert pair.resolution == (225, 224)


def test_resolution_argument_overrides_native_size():
    assert count_variant_flops("b0", resolution=448).conv_macs > 3.9 * count_variant_flops("b0").conv_macs
    assert count_flops(None, 1.0, 1.0, 224).macs == count_variant_flops("b0").macs


def test_classes_change_only_the_classifier():
    base = count_variant_flops("b0")
    ten = count_variant_flops("b0", classes=10)
    assert base.params - ten.params == 1280 * 990 + 990
    assert base.macs - ten.macs == 1280 * 990


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"resolution": 0}, ValueError, "Received: resolution=0"),
        ({"resolution": (224,)}, TypeError, "Received: resolution=(224,)"),
        ({"resolution": 22.5}, TypeError, "Received: resolution=22.5"),
        ({"classes": 0}, ValueError, "Received: classes=0"),
        ({"width_coefficient": -1.0}, ValueError, "Received: width_coefficient=-1.0"),
        ({"depth_coefficient": "2"}, TypeError, "Received: depth_coefficient='2'"),
    ],
)
def test_bad_arguments_are_reported(kwargs, error, fragment):
    arguments = {"width_coefficient": 1.0, "depth_coefficient": 1.0, "resolution": 224}
    arguments.update(kwargs)
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        count_flops(get_default_block_list(), **arguments)


def test_unknown_variant_is_reported():
    with pytest.raises(ValueError, match="Received: name='b9'"):
        count_variant_flops("b9")


def _built_params(name, include_top=True):
    from keras_efficientnets.models.builder import EfficientNet

    variant = get_variant(name)
    model = EfficientNet(
        (variant.resolution, variant.resolution, 3),
        get_default_block_list(),
        variant.width_coefficient,
        variant.depth_coefficient,
        include_top=include_top,
        weights=None,
        **variant.family_options,
    )
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return model.count_params(), trainable


@pytest.mark.parametrize(
    "name",
    [
        "b0",
        "lite0",
        pytest.param("b3", marks=pytest.mark.slow),
        pytest.param("lite3", marks=pytest.mark.slow),
        pytest.param("b5", marks=pytest.mark.slow),
    ],
)
def test_counts_equal_built_model(name):
    report = count_variant_flops(name)
    assert _built_params(name) == (report.params, report.trainable_params)


def test_counts_equal_built_model_without_top():
    assert _built_params("b0", include_top=False)[0] == count_variant_flops("b0", include_top=False).params


def _built_conv_macs(model) -> int:
    """Multiply-adds of a built model's convolutions and dense layers, read off its layers' shapes."""
    import keras

    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, height, width, channels = layer.output.shape
            macs += height * width * channels * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            macs += height * width * filters * math.prod(layer.kernel.shape[:3])
        elif isinstance(layer, keras.layers.Dense):
            macs += math.prod(layer.kernel.shape)
    return macs


@pytest.mark.parametrize(
    "output_stride", [pytest.param(None, marks=pytest.mark.slow), pytest.param(16, marks=pytest.mark.slow), 8]
)
def test_dilated_macs_equal_the_built_models(output_stride):
    from keras_efficientnets import EfficientNetB0

    model = EfficientNetB0(weights=None, output_stride=output_stride)
    report = count_variant_flops("b0", output_stride=output_stride)
    assert report.conv_macs == _built_conv_macs(model)
    assert report.params == model.count_params()


def test_a_smaller_output_stride_costs_more_on_the_same_parameters():
    reports = {os: count_variant_flops("b0", output_stride=os) for os in (32, 16, 8)}
    assert reports[32] == count_variant_flops("b0")
    assert reports[32].params == reports[16].params == reports[8].params
    assert reports[32].gmacs < reports[16].gmacs < reports[8].gmacs
