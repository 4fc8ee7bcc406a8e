"""BlockArgs, the block-string codec and the variant table."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_efficientnets.arch.variants import (
    DEFAULT_BLOCK_STRINGS,
    VARIANTS,
    BlockArgs,
    decode_block_string,
    encode_block_string,
    get_default_block_list,
    get_variant,
)


def test_blockargs_accepts_the_2019_readme_call():
    block = BlockArgs(32, 16, kernel_size=3, strides=(1, 1), num_repeat=1, se_ratio=0.25, expand_ratio=1)
    assert (block.input_filters, block.output_filters, block.identity_skip) == (32, 16, True)
    assert block.to_block_string() == "r1_k3_s11_e1_i32_o16_se0.25"


def test_blockargs_is_immutable_and_strides_become_pairs():
    block = BlockArgs(16, 24, 3, 2, 2, 0.25, 6)
    assert block.strides == (2, 2)
    assert BlockArgs(16, 24, 3, [1, 2], 2, 0.25, 6).strides == (1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        block.num_repeat = 3


@pytest.mark.parametrize(
    "block_string", DEFAULT_BLOCK_STRINGS + ("r1_k5_s22_e6_i16_o24_noskip", "r2_k3_s12_e1.5_i8_o8")
)
def test_block_strings_round_trip_exactly(block_string):
    block = BlockArgs.from_block_string(block_string)
    assert block.to_block_string() == block_string
    assert decode_block_string(encode_block_string(block)) == block


def test_block_string_keys_parse_to_the_right_fields():
    block = BlockArgs.from_block_string("r3_k5_s22_e6_i40_o80_se0.25_noskip")
    assert block == BlockArgs(
        40,
        80,
        kernel_size=5,
        strides=(2, 2),
        num_repeat=3,
        se_ratio=0.25,
        expand_ratio=6,
        identity_skip=False,
    )
    assert BlockArgs.from_block_string("r1_k3_s11_e1_i32_o16").se_ratio is None


def test_the_2019_spellings_still_work():
    block = BlockArgs.from_block_string(DEFAULT_BLOCK_STRINGS[1])
    assert block.encode_block_string(block) == DEFAULT_BLOCK_STRINGS[1]
    assert block.decode_block_string(DEFAULT_BLOCK_STRINGS[0]) == get_default_block_list()[0]


def test_default_block_list_is_the_b0_table_and_fresh_each_call():
    first = get_default_block_list()
    assert [b.to_block_string() for b in first] == list(DEFAULT_BLOCK_STRINGS)
    first.clear()
    assert len(get_default_block_list()) == 7


@pytest.mark.parametrize(
    ("block_string", "message"),
    [
        ("r1_k3_s11_e1_i32", "lacks the keys o (output_filters)"),
        ("r1_k3_s11_e1_i32_o16_x5", "Unknown block string key 'x5'"),
        ("r1_k3_s11_e1_i32_o16_noskipp", "Unknown block string key 'noskipp'"),
        ("r1_r2_k3_s11_e1_i32_o16", "appears twice"),
        ("rx_k3_s11_e1_i32_o16", "key `r` needs an integer"),
        ("r1_k3_s111_e1_i32_o16", "one or two digits"),
        ("r1_k3_s33_e1_i32_o16", "`strides` must be 1, 2"),
        ("r1_k4_s11_e1_i32_o16", "kernel_size=4"),
        ("r1_k0_s11_e1_i32_o16", "kernel_size=0"),
        ("r0_k3_s11_e1_i32_o16", "num_repeat=0"),
        ("r1_k3_s11_e1_i0_o16", "input_filters=0"),
        ("r1_k3_s11_e1_i32_o16_se1.5", "se_ratio=1.5"),
        ("r1_k3_s11_e1_i32_o16_se0", "se_ratio=0"),
        ("", "Unknown block string key ''"),
    ],
)
def test_malformed_block_strings_name_the_problem(block_string, message):
    with pytest.raises(ValueError, match="Received") as excinfo:
        BlockArgs.from_block_string(block_string)
    assert message in str(excinfo.value)


def test_non_string_block_string_is_a_type_error():
    with pytest.raises(TypeError, match="block_string=12"):
        decode_block_string(12)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"input_filters": -1}, ValueError, "input_filters=-1"),
        ({"output_filters": 2.5}, TypeError, "output_filters=2.5"),
        ({"kernel_size": 2}, ValueError, "kernel_size=2"),
        ({"strides": 3}, ValueError, "strides=3"),
        ({"strides": (1, 2, 1)}, ValueError, "strides=(1, 2, 1)"),
        ({"se_ratio": 0.0}, ValueError, "se_ratio=0.0"),
        ({"expand_ratio": 0.5}, ValueError, "expand_ratio=0.5"),
        ({"num_repeat": True}, TypeError, "num_repeat=True"),
    ],
)
def test_blockargs_validates_each_field(kwargs, error, message):
    fields = (
        dict(
            input_filters=16,
            output_filters=24,
            kernel_size=3,
            strides=1,
            num_repeat=1,
            se_ratio=0.25,
            expand_ratio=6,
        )
        | kwargs
    )
    with pytest.raises(error, match="Received") as excinfo:
        BlockArgs(**fields)
    assert message in str(excinfo.value)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="rksieo_n0123456789.ptx-", max_size=40) | st.text(max_size=30))
def test_decoder_fuzz_raises_only_value_errors(block_string):
    try:
        block = decode_block_string(block_string)
    except ValueError as error:
        assert "Received" in str(error)
    else:
        assert decode_block_string(block.to_block_string()) == block


def _valid_block(**fields):
    # A fused block has no depthwise convolution for CondConv to mix.
    if fields["fused"] and fields["condconv"]:
        fields["condconv"] = False
    return BlockArgs(**fields)


blocks = st.builds(
    _valid_block,
    input_filters=st.integers(1, 4096),
    output_filters=st.integers(1, 4096),
    kernel_size=st.sampled_from([1, 3, 5, 7, 9]),
    strides=st.sampled_from([1, 2, (1, 2), (2, 1)]),
    num_repeat=st.integers(1, 30),
    se_ratio=st.none() | st.floats(0.001, 1.0),
    expand_ratio=st.integers(1, 8) | st.floats(1.0, 8.0),
    identity_skip=st.booleans(),
    fused=st.booleans(),
    condconv=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(blocks)
def test_every_block_round_trips_through_its_string(block):
    assert BlockArgs.from_block_string(block.to_block_string()) == block


def test_variant_table_matches_the_reference():
    assert list(VARIANTS) == [
        *(f"b{n}" for n in range(9)),
        "l2",
        *(f"lite{n}" for n in range(5)),
        *("v2b0", "v2b1", "v2b2", "v2b3", "v2s", "v2m", "v2l", "v2xl"),
        *("edgetpus", "edgetpum", "edgetpul"),
        *("condconvb04e", "condconvb08e", "condconvb18e"),
    ]
    b7, l2, lite4 = VARIANTS["b7"], VARIANTS["l2"], VARIANTS["lite4"]
    assert (b7.width_coefficient, b7.depth_coefficient, b7.resolution, b7.dropout_rate) == (
        2.0,
        3.1,
        600,
        0.5,
    )
    assert (l2.width_coefficient, l2.depth_coefficient, l2.resolution) == (4.3, 5.3, 800)
    assert (lite4.width_coefficient, lite4.depth_coefficient, lite4.resolution, lite4.dropout_rate) == (
        1.4,
        1.8,
        300,
        0.3,
    )
    assert lite4.family_options["activation"] == "relu6" and not lite4.family_options["use_se"]


@pytest.mark.parametrize("name", ["b3", "B3", "EfficientNetB3", "efficientnet-b3"])
def test_get_variant_accepts_common_spellings(name):
    assert get_variant(name) is VARIANTS["b3"]


def test_get_variant_lists_valid_names():
    with pytest.raises(ValueError, match="Valid names: b0, b1.*Received: name='b9'"):
        get_variant("b9")


def test_numpy_numbers_become_python_numbers():
    import numpy as np

    block = BlockArgs(
        np.int64(16),
        np.int32(24),
        np.int64(3),
        (np.int64(2), 2),
        np.int64(2),
        np.float32(0.25),
        np.float32(6.5),
    )
    assert block.to_block_string() == "r2_k3_s22_e6.5_i16_o24_se0.25"
    assert type(block.input_filters) is int and type(block.expand_ratio) is float
