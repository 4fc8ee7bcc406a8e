"""A corpus of bad inputs to every public function, constructor argument and CLI subcommand.

One policy everywhere: a value of the wrong type raises TypeError, a value of the
right type that is out of range (NaN, infinity, empty, oversized) raises
ValueError (FileNotFoundError for a missing file), and the message names the
argument. On the command line every such mistake exits with status 2 and one
line that names the option, never a traceback.

Each library case is (name, call, exception type, fragment the message must
contain); `call` gets the `files` fixture, a folder of broken files.
"""

import json
import struct
import types

import keras
import numpy as np
import pytest

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet, cli, images, training
from keras_efficientnets.arch.flops import count_flops, count_variant_flops
from keras_efficientnets.arch.preprocessing import decode_predictions, resolve_normalization
from keras_efficientnets.arch.scaling import plan_model
from keras_efficientnets.arch.variants import decode_block_string, get_default_block_list, get_variant
from keras_efficientnets.convert import convert_checkpoint
from keras_efficientnets.deploy.exporter import export
from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx, fold_batch_norm
from keras_efficientnets.deploy.predictors import (
    LiteRTPredictor,
    OpenVINOPredictor,
    SavedModelPredictor,
    load_predictor,
)
from keras_efficientnets.optimize import (
    candidate_table,
    compound_scaling,
    get_compound_coeff_func,
    optimize_coefficients,
    plot_candidates,
    search_coefficients,
)
from keras_efficientnets.weights.checkpoints import table_from_tf_checkpoint
from keras_efficientnets.weights.loading import read_weights_file, validate_weights_argument
from keras_efficientnets.weights.torch_pickle import UnsafePickleError, load_state_dict

NAN, INF = float("nan"), float("inf")
B0 = get_default_block_list()
STAGE = dict(
    input_filters=16, output_filters=24, kernel_size=3, strides=1, num_repeat=1, se_ratio=0.25, expand_ratio=6
)


def stage(**changes):
    return BlockArgs(**{**STAGE, **changes})


def build(**changes):
    """The builder with one argument changed from a small valid call."""
    arguments = dict(
        input_shape=(32, 32, 3),
        block_args_list=[BlockArgs(32, 16, 3, 1, 1, 0.25, 1)],
        width_coefficient=1.0,
        depth_coefficient=1.0,
    )
    return EfficientNet(**{**arguments, **changes})


def b0(**changes):
    return ke.EfficientNetB0(**{"weights": None, "input_shape": (32, 32, 3), **changes})


def flops(**changes):
    return count_flops(
        **{
            "block_args_list": B0,
            "width_coefficient": 1.0,
            "depth_coefficient": 1.0,
            "resolution": 224,
            **changes,
        }
    )


def optimize(**changes):
    return optimize_coefficients(**{"search_per_coeff": 3, **changes})


# --------------------------------------------------------------------------- #
# The library
# --------------------------------------------------------------------------- #
LIBRARY = [
    # BlockArgs and block strings
    ("BlockArgs input_filters=0", lambda f: stage(input_filters=0), ValueError, "input_filters"),
    ("BlockArgs input_filters=-3", lambda f: stage(input_filters=-3), ValueError, "input_filters"),
    ("BlockArgs input_filters=2.5", lambda f: stage(input_filters=2.5), TypeError, "input_filters"),
    ("BlockArgs input_filters='16'", lambda f: stage(input_filters="16"), TypeError, "input_filters"),
    ("BlockArgs output_filters=nan", lambda f: stage(output_filters=NAN), TypeError, "output_filters"),
    ("BlockArgs output_filters=True", lambda f: stage(output_filters=True), TypeError, "output_filters"),
    ("BlockArgs kernel_size=4", lambda f: stage(kernel_size=4), ValueError, "kernel_size"),
    ("BlockArgs kernel_size=0", lambda f: stage(kernel_size=0), ValueError, "kernel_size"),
    ("BlockArgs kernel_size=3.0", lambda f: stage(kernel_size=3.0), TypeError, "kernel_size"),
    ("BlockArgs strides=3", lambda f: stage(strides=3), ValueError, "strides"),
    ("BlockArgs strides=(1, 2, 1)", lambda f: stage(strides=(1, 2, 1)), ValueError, "strides"),
    ("BlockArgs strides=2.0", lambda f: stage(strides=2.0), TypeError, "strides"),
    ("BlockArgs strides='22'", lambda f: stage(strides="22"), ValueError, "strides"),
    ("BlockArgs num_repeat=0", lambda f: stage(num_repeat=0), ValueError, "num_repeat"),
    (
        "BlockArgs num_repeat=np.float32(2)",
        lambda f: stage(num_repeat=np.float32(2)),
        TypeError,
        "num_repeat",
    ),
    ("BlockArgs se_ratio=0", lambda f: stage(se_ratio=0.0), ValueError, "se_ratio"),
    ("BlockArgs se_ratio=1.5", lambda f: stage(se_ratio=1.5), ValueError, "se_ratio"),
    ("BlockArgs se_ratio=nan", lambda f: stage(se_ratio=NAN), ValueError, "se_ratio"),
    ("BlockArgs se_ratio='0.25'", lambda f: stage(se_ratio="0.25"), TypeError, "se_ratio"),
    ("BlockArgs expand_ratio=0.5", lambda f: stage(expand_ratio=0.5), ValueError, "expand_ratio"),
    ("BlockArgs expand_ratio=inf", lambda f: stage(expand_ratio=INF), ValueError, "expand_ratio"),
    ("BlockArgs expand_ratio=None", lambda f: stage(expand_ratio=None), ValueError, "expand_ratio"),
    ("BlockArgs identity_skip=1", lambda f: stage(identity_skip=1), TypeError, "identity_skip"),
    ("BlockArgs partly given", lambda f: BlockArgs(32, 16), ValueError, "kernel_size"),
    ("block string of another type", lambda f: decode_block_string(12), TypeError, "block_string"),
    ("block string empty", lambda f: decode_block_string(""), ValueError, "block_string"),
    ("block string unknown key", lambda f: decode_block_string("r1_k3_s11_e1_i32_o16_x5"), ValueError, "x5"),
    ("block string key twice", lambda f: decode_block_string("r1_r2_k3_s11_e1_i32_o16"), ValueError, "twice"),
    (
        "block string missing key",
        lambda f: decode_block_string("r1_k3_s11_e1_i32"),
        ValueError,
        "output_filters",
    ),
    (
        "block string Arabic-Indic digits",
        lambda f: decode_block_string("r\u0661_k3_s11_e1_i32_o16"),
        ValueError,
        "`r`",
    ),
    (
        "block string three stride digits",
        lambda f: decode_block_string("r1_k3_s111_e1_i32_o16"),
        ValueError,
        "`s`",
    ),
    (
        "block string huge se",
        lambda f: decode_block_string("r1_k3_s11_e1_i32_o16_se9"),
        ValueError,
        "se_ratio",
    ),
    # The builder
    (
        "EfficientNet input_shape=(64.7, 64, 3)",
        lambda f: build(input_shape=(64.7, 64, 3)),
        TypeError,
        "input_shape",
    ),
    ("EfficientNet input_shape='224'", lambda f: build(input_shape="224"), TypeError, "input_shape"),
    ("EfficientNet input_shape=(64, 64)", lambda f: build(input_shape=(64, 64)), ValueError, "input_shape"),
    (
        "EfficientNet input_shape 4 dims",
        lambda f: build(input_shape=(1, 64, 64, 3)),
        ValueError,
        "input_shape",
    ),
    (
        "EfficientNet input_shape=(31, 64, 3)",
        lambda f: build(input_shape=(31, 64, 3)),
        ValueError,
        "input_shape",
    ),
    (
        "EfficientNet input_shape=(64, 64, 0)",
        lambda f: build(input_shape=(64, 64, 0)),
        ValueError,
        "input_shape",
    ),
    (
        "EfficientNet input_shape=(64, 64, None)",
        lambda f: build(input_shape=(64, 64, None)),
        ValueError,
        "input_shape",
    ),
    ("EfficientNet input_shape=5", lambda f: build(input_shape=5), TypeError, "input_shape"),
    (
        "EfficientNet block_args_list='r1...'",
        lambda f: build(block_args_list="r1_k3_s11_e1_i32_o16"),
        TypeError,
        "block_args_list",
    ),
    ("EfficientNet block_args_list=[]", lambda f: build(block_args_list=[]), ValueError, "block_args_list"),
    (
        "EfficientNet block_args_list of str",
        lambda f: build(block_args_list=["r1_k3_s11_e1_i32_o16"]),
        TypeError,
        "block_args_list",
    ),
    (
        "EfficientNet block_args_list=[BlockArgs()]",
        lambda f: build(block_args_list=[BlockArgs()]),
        ValueError,
        "block_args_list",
    ),
    (
        "EfficientNet stages that do not chain",
        lambda f: build(
            block_args_list=[BlockArgs(32, 16, 3, 1, 1, None, 1), BlockArgs(24, 40, 3, 2, 1, None, 6)]
        ),
        ValueError,
        "block_args_list",
    ),
    (
        "EfficientNet unequal strides",
        lambda f: build(block_args_list=[BlockArgs(32, 16, 3, (1, 2), 1, None, 1)]),
        ValueError,
        "strides",
    ),
    (
        "EfficientNet width_coefficient=0",
        lambda f: build(width_coefficient=0.0),
        ValueError,
        "width_coefficient",
    ),
    (
        "EfficientNet width_coefficient=nan",
        lambda f: build(width_coefficient=NAN),
        ValueError,
        "width_coefficient",
    ),
    (
        "EfficientNet width_coefficient=1e6",
        lambda f: build(width_coefficient=1e6),
        ValueError,
        "width_coefficient",
    ),
    (
        "EfficientNet width_coefficient='1'",
        lambda f: build(width_coefficient="1"),
        TypeError,
        "width_coefficient",
    ),
    (
        "EfficientNet depth_coefficient=inf",
        lambda f: build(depth_coefficient=INF),
        ValueError,
        "depth_coefficient",
    ),
    (
        "EfficientNet depth_coefficient=-1",
        lambda f: build(depth_coefficient=-1),
        ValueError,
        "depth_coefficient",
    ),
    (
        "EfficientNet with 3000 blocks",
        lambda f: build(depth_coefficient=30.0, block_args_list=[BlockArgs(32, 32, 3, 1, 100, None, 1)]),
        ValueError,
        "depth_coefficient",
    ),
    (
        "EfficientNet depth_coefficient=None",
        lambda f: build(depth_coefficient=None),
        TypeError,
        "depth_coefficient",
    ),
    ("EfficientNet include_top='yes'", lambda f: build(include_top="yes"), TypeError, "include_top"),
    ("EfficientNet include_top=1", lambda f: build(include_top=1), TypeError, "include_top"),
    ("EfficientNet weights=3", lambda f: build(weights=3), TypeError, "weights"),
    ("EfficientNet weights='imagenet'", lambda f: build(weights="imagenet"), ValueError, "weights"),
    ("EfficientNet weights='x.txt'", lambda f: build(weights="x.txt"), ValueError, "weights"),
    (
        "EfficientNet weights missing file",
        lambda f: build(weights=str(f.path / "none.weights.h5")),
        FileNotFoundError,
        "weights",
    ),
    ("EfficientNet weights corrupt file", lambda f: build(weights=str(f.corrupt_h5)), ValueError, "corrupt"),
    (
        "EfficientNet weights corrupt .safetensors",
        lambda f: build(weights=str(f.text_safetensors)),
        ValueError,
        "notes.safetensors' as a PyTorch state dict",
    ),
    (
        "EfficientNet weights corrupt .pth",
        lambda f: build(weights=str(f.text_pth)),
        ValueError,
        "notes.pth' as a PyTorch state dict",
    ),
    ("EfficientNet input_tensor='x'", lambda f: build(input_tensor="x"), TypeError, "input_tensor"),
    (
        "EfficientNet input_tensor=3",
        lambda f: build(input_tensor=3, input_shape=None),
        TypeError,
        "input_tensor",
    ),
    ("EfficientNet pooling='sum'", lambda f: build(include_top=False, pooling="sum"), ValueError, "pooling"),
    ("EfficientNet padding='reflect'", lambda f: build(padding="reflect"), ValueError, "padding"),
    ("EfficientNet output_stride=4", lambda f: build(output_stride=4), ValueError, "output_stride"),
    ("EfficientNet output_stride=12", lambda f: build(output_stride=12), ValueError, "output_stride"),
    ("EfficientNet output_stride='16'", lambda f: build(output_stride="16"), ValueError, "output_stride"),
    ("EfficientNet output_stride=64", lambda f: build(output_stride=64), ValueError, "output_stride"),
    ("EfficientNet output_stride=16.0", lambda f: build(output_stride=16.0), ValueError, "output_stride"),
    ("EfficientNet output_stride=True", lambda f: build(output_stride=True), ValueError, "output_stride"),
    ("EfficientNet pooling=1", lambda f: build(include_top=False, pooling=1), TypeError, "pooling"),
    ("EfficientNet classes=0", lambda f: build(classes=0), ValueError, "classes"),
    ("EfficientNet classes=2.5", lambda f: build(classes=2.5), TypeError, "classes"),
    ("EfficientNet classes=True", lambda f: build(classes=True), TypeError, "classes"),
    ("EfficientNet classes=10**9", lambda f: build(classes=10**9), ValueError, "classes"),
    ("EfficientNet dropout_rate=1.0", lambda f: build(dropout_rate=1.0), ValueError, "dropout_rate"),
    ("EfficientNet dropout_rate=-0.1", lambda f: build(dropout_rate=-0.1), ValueError, "dropout_rate"),
    ("EfficientNet dropout_rate=nan", lambda f: build(dropout_rate=NAN), ValueError, "dropout_rate"),
    ("EfficientNet dropout_rate='0.2'", lambda f: build(dropout_rate="0.2"), TypeError, "dropout_rate"),
    (
        "EfficientNet drop_connect_rate=1",
        lambda f: build(drop_connect_rate=1.0),
        ValueError,
        "drop_connect_rate",
    ),
    (
        "EfficientNet batch_norm_momentum=2",
        lambda f: build(batch_norm_momentum=2.0),
        ValueError,
        "batch_norm_momentum",
    ),
    (
        "EfficientNet batch_norm_epsilon=0",
        lambda f: build(batch_norm_epsilon=0.0),
        ValueError,
        "batch_norm_epsilon",
    ),
    (
        "EfficientNet batch_norm_epsilon=inf",
        lambda f: build(batch_norm_epsilon=INF),
        ValueError,
        "batch_norm_epsilon",
    ),
    ("EfficientNet depth_divisor=0", lambda f: build(depth_divisor=0), ValueError, "depth_divisor"),
    ("EfficientNet depth_divisor=2.5", lambda f: build(depth_divisor=2.5), TypeError, "depth_divisor"),
    ("EfficientNet min_depth=0", lambda f: build(min_depth=0), ValueError, "min_depth"),
    ("EfficientNet data_format='NHWC'", lambda f: build(data_format="NHWC"), ValueError, "data_format"),
    ("EfficientNet data_format=1", lambda f: build(data_format=1), TypeError, "data_format"),
    (
        "EfficientNet default_size=16",
        lambda f: build(input_shape=None, default_size=16),
        ValueError,
        "default_size",
    ),
    (
        "EfficientNet default_size=224.0",
        lambda f: build(input_shape=None, default_size=224.0),
        TypeError,
        "default_size",
    ),
    ("EfficientNet activation='swishh'", lambda f: build(activation="swishh"), ValueError, "activation"),
    ("EfficientNet activation=3", lambda f: build(activation=3), TypeError, "activation"),
    ("EfficientNet use_se='no'", lambda f: build(use_se="no"), TypeError, "use_se"),
    (
        "EfficientNet fix_stem_and_head=0",
        lambda f: build(fix_stem_and_head=0),
        TypeError,
        "fix_stem_and_head",
    ),
    (
        "EfficientNet classifier_activation='softmaxx'",
        lambda f: build(classifier_activation="softmaxx"),
        ValueError,
        "classifier_activation",
    ),
    (
        "EfficientNet include_preprocessing=1",
        lambda f: build(include_preprocessing=1),
        TypeError,
        "include_preprocessing",
    ),
    ("EfficientNet normalization='bgr'", lambda f: build(normalization="bgr"), ValueError, "normalization"),
    (
        "EfficientNet normalization=(0, inf)",
        lambda f: build(normalization=(0.0, INF)),
        ValueError,
        "normalization",
    ),
    (
        "EfficientNet normalization=(0, 0)",
        lambda f: build(normalization=(0.0, 0.0)),
        ValueError,
        "normalization",
    ),
    (
        "EfficientNet normalization=(nan, 1)",
        lambda f: build(normalization=(NAN, 1.0)),
        ValueError,
        "normalization",
    ),
    ("EfficientNet normalization=3", lambda f: build(normalization=3), TypeError, "normalization"),
    (
        "EfficientNet normalization for 3 channels on 1",
        lambda f: build(normalization=((1.0, 2.0, 3.0), (1.0, 1.0, 1.0)), input_shape=(32, 32, 1)),
        ValueError,
        "normalization",
    ),
    ("EfficientNet skip_mismatch='yes'", lambda f: build(skip_mismatch="yes"), TypeError, "skip_mismatch"),
    ("EfficientNet remat=1", lambda f: build(remat=1), TypeError, "remat"),
    ("EfficientNet dtype='float33'", lambda f: build(dtype="float33"), ValueError, "float33"),
    ("EfficientNet name=''", lambda f: build(name=""), ValueError, "name"),
    ("EfficientNet name=3", lambda f: build(name=3), TypeError, "name"),
    ("EfficientNet unknown keyword", lambda f: build(stem=3), TypeError, "stem"),
    # Named constructors
    ("EfficientNetB0 unknown keyword", lambda f: b0(block_args_list=B0), TypeError, "block_args_list"),
    (
        "EfficientNetB0 imagenet with classes=10",
        lambda f: b0(weights="imagenet", classes=10),
        ValueError,
        "classes",
    ),
    ("EfficientNetB8 imagenet", lambda f: ke.EfficientNetB8(input_shape=(32, 32, 3)), ValueError, "weights"),
    (
        "EfficientNetB0 weights of another variant",
        lambda f: b0(weights=str(f.lite0_weights), include_top=False),
        ValueError,
        "weights",
    ),
    ("EfficientNetB0 sidecar without std", lambda f: b0(weights=str(f.no_std_weights)), ValueError, "std"),
    ("EfficientNetB0 sidecar not JSON", lambda f: b0(weights=str(f.bad_json_weights)), ValueError, "JSON"),
    ("EfficientNetB0 classes=np.int64(0)", lambda f: b0(classes=np.int64(0)), ValueError, "classes"),
    (
        "EfficientNetLite0 drop_connect_rate=-1",
        lambda f: ke.EfficientNetLite0(weights=None, drop_connect_rate=-1.0),
        ValueError,
        "drop_connect_rate",
    ),
    # Counting
    ("count_flops resolution=0", lambda f: flops(resolution=0), ValueError, "resolution"),
    ("count_flops resolution=22.5", lambda f: flops(resolution=22.5), TypeError, "resolution"),
    ("count_flops resolution=(224,)", lambda f: flops(resolution=(224,)), TypeError, "resolution"),
    ("count_flops resolution='224'", lambda f: flops(resolution="224"), TypeError, "resolution"),
    ("count_flops classes=0", lambda f: flops(classes=0), ValueError, "classes"),
    (
        "count_flops width_coefficient=1e7",
        lambda f: flops(width_coefficient=1e7),
        ValueError,
        "width_coefficient",
    ),
    (
        "count_flops depth_coefficient=1e7",
        lambda f: flops(depth_coefficient=1e7),
        ValueError,
        "depth_coefficient",
    ),
    (
        "count_flops depth_coefficient='2'",
        lambda f: flops(depth_coefficient="2"),
        TypeError,
        "depth_coefficient",
    ),
    ("count_flops block_args_list=[]", lambda f: flops(block_args_list=[]), ValueError, "block_args_list"),
    ("count_flops depth_divisor=0", lambda f: flops(depth_divisor=0), ValueError, "depth_divisor"),
    ("count_flops include_top='yes'", lambda f: flops(include_top="yes"), TypeError, "include_top"),
    ("count_variant_flops name='b9'", lambda f: count_variant_flops("b9"), ValueError, "name"),
    ("count_variant_flops name=3", lambda f: count_variant_flops(3), TypeError, "name"),
    (
        "count_variant_flops resolution=-1",
        lambda f: count_variant_flops("b0", resolution=-1),
        ValueError,
        "resolution",
    ),
    ("get_variant name=None", lambda f: get_variant(None), TypeError, "name"),
    ("plan_model min_depth=-1", lambda f: plan_model(B0, 1.0, 1.0, min_depth=-1), ValueError, "min_depth"),
    ("plan_model use_se='yes'", lambda f: plan_model(B0, 1.0, 1.0, use_se="yes"), TypeError, "use_se"),
    # The coefficient search
    ("optimize_coefficients phi=0", lambda f: optimize(phi=0), ValueError, "Received: phi=0"),
    ("optimize_coefficients phi=-1", lambda f: optimize(phi=-1.0), ValueError, "Received: phi=-1.0"),
    ("optimize_coefficients phi=inf", lambda f: optimize(phi=INF), ValueError, "phi"),
    ("optimize_coefficients phi='1'", lambda f: optimize(phi="1"), TypeError, "Received: phi='1'"),
    (
        "optimize_coefficients max_cost=1",
        lambda f: optimize(max_cost=1.0),
        ValueError,
        "Received: max_cost=1.0",
    ),
    (
        "optimize_coefficients max_cost=nan",
        lambda f: optimize(max_cost=NAN),
        ValueError,
        "Received: max_cost=nan",
    ),
    ("optimize_coefficients max_cost=inf", lambda f: optimize(max_cost=INF), ValueError, "max_cost"),
    (
        "optimize_coefficients search_per_coeff=0",
        lambda f: optimize(search_per_coeff=0),
        ValueError,
        "Received: search_per_coeff=0",
    ),
    (
        "optimize_coefficients search_per_coeff=2.5",
        lambda f: optimize(search_per_coeff=2.5),
        TypeError,
        "Received: search_per_coeff=2.5",
    ),
    (
        "optimize_coefficients search_per_coeff=400",
        lambda f: optimize(search_per_coeff=400),
        ValueError,
        "search_per_coeff ** num_coeff = 64,000,000 rows",
    ),
    (
        "optimize_coefficients num_coeff=26 search_per_coeff=2",
        lambda f: optimize(num_coeff=26, search_per_coeff=2),
        ValueError,
        "search_per_coeff ** num_coeff = 67,108,864 rows",
    ),
    (
        "optimize_coefficients num_coeff=0",
        lambda f: optimize(num_coeff=0),
        ValueError,
        "Received: num_coeff=0",
    ),
    ("optimize_coefficients tol=-1", lambda f: optimize(tol=-1.0), ValueError, "Received: tol=-1.0"),
    ("optimize_coefficients tol=nan", lambda f: optimize(tol=NAN), ValueError, "tol"),
    (
        "optimize_coefficients exponents=(1, 2)",
        lambda f: optimize(exponents=(1, 2)),
        ValueError,
        "`exponents` needs one entry per coefficient (3)",
    ),
    (
        "optimize_coefficients exponents=(1, -2, 2)",
        lambda f: optimize(exponents=(1, -2, 2)),
        ValueError,
        "Received: exponents=(1, -2, 2)",
    ),
    ("optimize_coefficients exponents='abc'", lambda f: optimize(exponents="abc"), ValueError, "exponents"),
    (
        "optimize_coefficients max_iter=0",
        lambda f: optimize(cost_func=lambda x: 0.0, max_iter=0),
        ValueError,
        "max_iter",
    ),
    (
        "optimize_coefficients cost_func=3",
        lambda f: optimize(cost_func=3),
        TypeError,
        "Received: cost_func=3",
    ),
    (
        "optimize_coefficients cost_func indexes by name",
        lambda f: optimize(cost_func=lambda x: x["alpha"]),
        TypeError,
        "`cost_func` must take a vector of 3 coefficients",
    ),
    (
        "optimize_coefficients cost_func -> 5 numbers",
        lambda f: optimize(cost_func=lambda x: np.ones(5)),
        TypeError,
        "returned shape (5,), not a single number",
    ),
    (
        "optimize_coefficients cost_func -> None",
        lambda f: optimize(cost_func=lambda x: None),
        TypeError,
        "cost_func",
    ),
    (
        "optimize_coefficients cost_func -> NaN",
        lambda f: optimize(cost_func=lambda x: NAN),
        ValueError,
        "cost_func",
    ),
    (
        "optimize_coefficients cost_func -> 'a'",
        lambda f: optimize(cost_func=lambda x: "a"),
        TypeError,
        "cost_func",
    ),
    (
        "optimize_coefficients cost_func -> inf",
        lambda f: optimize(cost_func=lambda x: INF),
        ValueError,
        "cost_func",
    ),
    (
        "optimize_coefficients cost and loss",
        lambda f: optimize(cost_func=len, loss_func=len),
        ValueError,
        "loss_func",
    ),
    ("get_compound_coeff_func phi=0", lambda f: get_compound_coeff_func(phi=0), ValueError, "phi"),
    (
        "get_compound_coeff_func max_cost=-1",
        lambda f: get_compound_coeff_func(max_cost=-1.0),
        ValueError,
        "max_cost",
    ),
    (
        "get_compound_coeff_func exponents=[]",
        lambda f: get_compound_coeff_func(exponents=[]),
        ValueError,
        "exponents",
    ),
    (
        "compound cost of a wrong shape",
        lambda f: get_compound_coeff_func()([1.0, 2.0]),
        ValueError,
        "x of shape",
    ),
    ("compound_scaling phi=-1", lambda f: compound_scaling(-1, 1.2, 1.1, 1.15), ValueError, "phi"),
    ("compound_scaling gamma=0.9", lambda f: compound_scaling(1, 1.2, 1.1, 0.9), ValueError, "gamma"),
    (
        "compound_scaling base_resolution=2.5",
        lambda f: compound_scaling(1, 1.2, 1.1, 1.15, 2.5),
        TypeError,
        "base_resolution",
    ),
    (
        "candidate_table shape (2, 2)",
        lambda f: candidate_table([[1.0, 1.0], [1.0, 1.0]]),
        ValueError,
        "coefficients",
    ),
    (
        "candidate_table sort_by='accuracy'",
        lambda f: candidate_table([[1.2, 1.1, 1.15]], sort_by="accuracy"),
        ValueError,
        "sort_by",
    ),
    ("candidate_table alpha=1e6", lambda f: candidate_table([[1e6, 1.0, 1.0]]), ValueError, "alpha"),
    (
        "search_coefficients without data",
        lambda f: search_coefficients([[1.2, 1.1, 1.15]]),
        ValueError,
        "train_data",
    ),
    (
        "search_coefficients candidates=[]",
        lambda f: search_coefficients([], build_and_evaluate=len),
        ValueError,
        "candidates",
    ),
    (
        "search_coefficients build_and_evaluate=3",
        lambda f: search_coefficients([[1.2, 1.1, 1.15]], build_and_evaluate=3),
        TypeError,
        "build_and_evaluate",
    ),
    (
        "search_coefficients epochs=0",
        lambda f: search_coefficients([[1.2, 1.1, 1.15]], build_and_evaluate=len, epochs=0),
        ValueError,
        "epochs",
    ),
    ("plot_candidates results=[]", lambda f: plot_candidates([]), ValueError, "results"),
    # Preprocessing and decoding
    (
        "decode_predictions preds of shape (1, 10)",
        lambda f: decode_predictions(np.zeros((1, 10))),
        ValueError,
        "preds",
    ),
    ("decode_predictions top=0", lambda f: decode_predictions(np.zeros((1, 1000)), top=0), ValueError, "top"),
    (
        "decode_predictions top=1001",
        lambda f: decode_predictions(np.zeros((1, 1000)), top=1001),
        ValueError,
        "top",
    ),
    (
        "decode_predictions top=2.5",
        lambda f: decode_predictions(np.zeros((1, 1000)), top=2.5),
        TypeError,
        "top",
    ),
    (
        "resolve_normalization three parts",
        lambda f: resolve_normalization((1, 2, 3)),
        TypeError,
        "normalization",
    ),
    (
        "resolve_normalization std=-1",
        lambda f: resolve_normalization((0.0, -1.0)),
        ValueError,
        "normalization",
    ),
    # Weight files, checkpoints, conversion
    (
        "validate_weights_argument weights=[]",
        lambda f: validate_weights_argument([], "b0", True, 1000),
        TypeError,
        "weights",
    ),
    (
        "read_weights_file of a text file",
        lambda f: read_weights_file(f.text_h5),
        ValueError,
        "not a Keras weights file",
    ),
    (
        "load_state_dict of a text file",
        lambda f: load_state_dict(f.text_pth),
        UnsafePickleError,
        "neither a zip nor",
    ),
    (
        "table_from_tf_checkpoint without a stem",
        lambda f: table_from_tf_checkpoint({"x/y": np.zeros(1)}, []),
        ValueError,
        "stem/conv2d/kernel",
    ),
    (
        "convert_checkpoint source_format='onnx'",
        lambda f: convert_checkpoint(f.text_pth, "onnx", "b0", f.out),
        ValueError,
        "source_format",
    ),
    (
        "convert_checkpoint variant='b9'",
        lambda f: convert_checkpoint(f.text_pth, "pytorch", "b9", f.out),
        ValueError,
        "name",
    ),
    (
        "convert_checkpoint output='x.h5'",
        lambda f: convert_checkpoint(f.text_pth, "pytorch", "b0", f.path / "x.h5"),
        ValueError,
        "output",
    ),
    (
        "convert_checkpoint output folder missing",
        lambda f: convert_checkpoint(f.text_pth, "pytorch", "b0", f.path / "no" / "x.weights.h5"),
        FileNotFoundError,
        "output",
    ),
    (
        "convert_checkpoint missing source",
        lambda f: convert_checkpoint(f.path / "none.pth", "pytorch", "b0", f.out),
        FileNotFoundError,
        "source",
    ),
    (
        "convert_checkpoint corrupt .pth",
        lambda f: convert_checkpoint(f.text_pth, "pytorch", "b0", f.out),
        ValueError,
        "PyTorch state dict",
    ),
    (
        "convert_checkpoint timm, corrupt .safetensors",
        lambda f: convert_checkpoint(f.text_safetensors, "timm", "v2b0", f.out),
        ValueError,
        "PyTorch state dict",
    ),
    (
        "convert_checkpoint V2 from tensorflow/tpu",
        lambda f: convert_checkpoint(f.bad_ckpt, "tf-checkpoint", "v2b0", f.out),
        ValueError,
        "EfficientNetV2B0's tf-checkpoint checkpoints",
    ),
    (
        "convert_checkpoint missing checkpoint",
        lambda f: convert_checkpoint(f.path / "ckpt", "tf-checkpoint", "b0", f.out),
        FileNotFoundError,
        "source",
    ),
    (
        "convert_checkpoint corrupt checkpoint",
        lambda f: convert_checkpoint(f.bad_ckpt, "tf-checkpoint", "b0", f.out),
        ValueError,
        "TensorFlow checkpoint",
    ),
    (
        "convert_checkpoint a Keras 3 file as keras-applications",
        lambda f: convert_checkpoint(f.keras3_weights, "keras-applications", "lite0", f.out),
        ValueError,
        "Keras 3 weights file",
    ),
    # Inference helpers, images
    (
        "fold_batch_norm of a Sequential",
        lambda f: fold_batch_norm(keras.Sequential([keras.layers.Dense(2)])),
        TypeError,
        "model",
    ),
    ("fold_batch_norm of a str", lambda f: fold_batch_norm("model.keras"), TypeError, "model"),
    ("export_onnx model='m.keras'", lambda f: export_onnx("m.keras", f.path / "m.onnx"), TypeError, "model"),
    ("export_onnx path=3", lambda f: export_onnx(f.tiny_model, 3), TypeError, "path"),
    (
        "export_onnx opset=0",
        lambda f: export_onnx(f.tiny_model, f.path / "m.onnx", opset=0),
        ValueError,
        "opset",
    ),
    ("export model='m.keras'", lambda f: export("m.keras", f.path / "m.tflite"), TypeError, "model"),
    (
        "export over a folder of the user's files",
        lambda f: export(f.tiny_model, f.path),
        FileExistsError,
        "holds no SavedModel",
    ),
    ("export path=''", lambda f: export(f.tiny_model, ""), ValueError, "must name the file or folder"),
    ("export path='m.pt'", lambda f: export(f.tiny_model, f.path / "m.pt"), ValueError, "must end in"),
    ("load_predictor path=3", lambda f: load_predictor(3), TypeError, "Received: path=3"),
    (
        "load_predictor of a missing file",
        lambda f: load_predictor(f.path / "none.tflite"),
        FileNotFoundError,
        "No such file",
    ),
    ("LiteRTPredictor path=None", lambda f: LiteRTPredictor(None), TypeError, "Received: path=None"),
    (
        "OpenVINOPredictor of a missing file",
        lambda f: OpenVINOPredictor(f.path / "none.xml"),
        FileNotFoundError,
        "path",
    ),
    (
        "SavedModelPredictor of a missing folder",
        lambda f: SavedModelPredictor(f.path / "none"),
        FileNotFoundError,
        "path",
    ),
    (
        "optimize_for_backend model='m.keras'",
        lambda f: ke.optimize_for_backend("m.keras"),
        TypeError,
        "Received: model='m.keras'",
    ),
    (
        "freeze_batch_norm model='m.keras'",
        lambda f: ke.freeze_batch_norm("m.keras"),
        TypeError,
        "Received: model='m.keras'",
    ),
    (
        "weights file with HDF5 external storage",
        lambda f: ke.EfficientNetLite0(
            weights=str(f.external_storage_weights), include_top=False, input_shape=(32, 32, 3)
        ),
        ValueError,
        "external storage refused",
    ),
    (
        "weights file with an HDF5 external link",
        lambda f: read_weights_file(f.external_link_weights),
        ValueError,
        "external link refused",
    ),
    (
        "weights file declaring a (100000, 100000, 10) weight",
        lambda f: read_weights_file(f.huge_weights),
        ValueError,
        "refused before reading",
    ),
    (
        "weights file with NaN weights",
        lambda f: ke.EfficientNetLite0(
            weights=str(f.nan_weights), include_top=False, input_shape=(32, 32, 3)
        ),
        ValueError,
        "(NaN or infinite)",
    ),
    (
        "weights file with a name that is not UTF-8",
        lambda f: read_weights_file(f.non_utf8_name_weights),
        ValueError,
        "non_utf8_name_weights.weights.h5': the file is truncated, corrupt",
    ),
    (
        "OnnxPredictor of a broken .onnx",
        lambda f: OnnxPredictor(f.broken_onnx),
        ValueError,
        "broken.onnx could not be loaded by ONNX Runtime",
    ),
    (
        "LiteRTPredictor of a broken .tflite",
        lambda f: LiteRTPredictor(f.broken_tflite),
        ValueError,
        "broken.tflite could not be loaded by LiteRT",
    ),
    (
        "OpenVINOPredictor of a broken .xml",
        lambda f: OpenVINOPredictor(f.broken_xml),
        ValueError,
        "broken.xml could not be loaded by OpenVINO",
    ),
    (
        "load_predictor of a broken .onnx",
        lambda f: load_predictor(f.broken_onnx),
        ValueError,
        "could not be loaded by ONNX Runtime",
    ),
    (
        "load_predictor of an empty .tflite",
        lambda f: load_predictor(f.path / "empty.tflite"),
        ValueError,
        "does not hold the kind of model its .tflite name says",
    ),
    (
        "load_predictor of a .tflite cut short",
        lambda f: load_predictor(f.path / "cut.tflite"),
        ValueError,
        "cut.tflite could not be loaded by LiteRT",
    ),
    (
        "load_predictor of an empty .onnx",
        lambda f: load_predictor(f.path / "empty.onnx"),
        ValueError,
        "does not hold the kind of model its .onnx name says",
    ),
    (
        "load_predictor of a .onnx cut short",
        lambda f: load_predictor(f.path / "cut.onnx"),
        ValueError,
        "cut.onnx could not be loaded by ONNX Runtime",
    ),
    (
        "load_predictor of an empty .xml",
        lambda f: load_predictor(f.path / "empty.xml"),
        ValueError,
        "does not hold the kind of model its .xml name says",
    ),
    (
        "load_predictor of a .xml cut short",
        lambda f: load_predictor(f.path / "cut.xml"),
        ValueError,
        "cut.xml could not be loaded by OpenVINO",
    ),
    (
        "OpenVINOPredictor of an .xml without its .bin",
        lambda f: OpenVINOPredictor(f.path / "no_bin.xml"),
        FileNotFoundError,
        "no_bin.xml needs its weights beside it",
    ),
    (
        "OpenVINOPredictor of an .xml whose .bin is cut short",
        lambda f: OpenVINOPredictor(f.path / "short_bin.xml"),
        ValueError,
        "short_bin.xml could not be loaded by OpenVINO",
    ),
    (
        "SavedModelPredictor of a SavedModel without a serving signature",
        lambda f: SavedModelPredictor(f.unsigned_saved_model),
        ValueError,
        "has no serving_default signature",
    ),
    (
        "SavedModelPredictor of a folder with a garbage saved_model.pb",
        lambda f: SavedModelPredictor(f.garbage_saved_model),
        ValueError,
        "garbage_saved_model could not be loaded by TensorFlow",
    ),
    (
        "OnnxPredictor of an .onnx whose weights lie outside its folder",
        lambda f: OnnxPredictor(f.outside_onnx),
        ValueError,
        "External data path escapes model directory",
    ),
    (
        "OnnxPredictor of a missing file",
        lambda f: OnnxPredictor(f.path / "none.onnx"),
        FileNotFoundError,
        "path",
    ),
    (
        "load_image of a missing file",
        lambda f: images.load_image(f.path / "none.png"),
        images.ImageError,
        "none.png",
    ),
    ("load_image of a text file", lambda f: images.load_image(f.text_h5), images.ImageError, "Cannot read"),
    (
        "load_image of a decompression bomb",
        lambda f: images.load_image(f.bomb_png),
        images.ImageError,
        "too large",
    ),
    # Training
    (
        "train distribute='tpu'",
        lambda f: training.train(f.path, distribute="tpu"),
        ValueError,
        "distribute='tpu'",
    ),
    (
        "train distribute='jax-data-parallel' on TensorFlow",
        lambda f: training.train(f.path, distribute="jax-data-parallel"),
        ValueError,
        "needs the jax backend",
    ),
    ("train multiworker without TF_CONFIG", lambda f: _without_tf_config(f), ValueError, "TF_CONFIG"),
    ("train epochs=0", lambda f: training.train(f.path, epochs=0), ValueError, "epochs"),
    ("train batch_size=2.5", lambda f: training.train(f.path, batch_size=2.5), TypeError, "batch_size"),
    ("train image_size=16", lambda f: training.train(f.path, image_size=16), ValueError, "image_size"),
    # The data, checked before anything is built.
    (
        "train an ImageFolder with a label out of range",
        lambda f: training.train(training.ImageFolder(["a", "b"], [str(f.path / "ok.png")], [5], [], [])),
        ValueError,
        "class indices in [0, 2)",
    ),
    (
        "train an ImageFolder of 2 images and 1 label",
        lambda f: training.train(training.ImageFolder(["a", "b"], [str(f.path / "ok.png")] * 2, [0], [], [])),
        ValueError,
        "2 train images but 1 train labels",
    ),
    (
        "train with every image held out for validation",
        lambda f: training.train(training.ImageFolder(["a", "b"], [], [], [str(f.path / "ok.png")], [1])),
        ValueError,
        "No images are left for training",
    ),
    (
        "train on a file that is no image",
        lambda f: training.train(training.ImageFolder(["a", "b"], [str(f.text_h5)], [0], [], [])),
        images.ImageError,
        "notes.h5",
    ),
    # Sizes and counts checked before anything is allocated or computed.
    ("train image_size=30000", lambda f: training.train(f.path, image_size=30000), ValueError, "image_size"),
    (
        "load_image size=10**5",
        lambda f: images.load_image(f.path / "ok.png", size=10**5),
        ValueError,
        "`size`",
    ),
    (
        "optimize_coefficients num_coeff=10**8 (3**10**8 rows)",
        lambda f: optimize(num_coeff=10**8),
        ValueError,
        "3**100000000 rows, over the limit",
    ),
    ("optimize_coefficients phi=1e-300", lambda f: optimize(phi=1e-300), ValueError, "use a larger `phi`"),
    (
        "optimize_coefficients exponents=(1e308, 2, 2)",
        lambda f: optimize(exponents=(1e308, 2, 2)),
        ValueError,
        "exponents",
    ),
    ("BlockArgs expand_ratio=1e308", lambda f: stage(expand_ratio=1e308), ValueError, "expand_ratio"),
    ("train learning_rate=0", lambda f: training.train(f.path, learning_rate=0), ValueError, "learning_rate"),
    ("train model='b99'", lambda f: training.train(f.path, model="b99"), ValueError, "b99"),
    ("train of a missing folder", lambda f: training.train(f.path / "none"), FileNotFoundError, "none"),
    (
        "EfficientNet sync_batch_norm='yes'",
        lambda f: build(sync_batch_norm="yes"),
        TypeError,
        "sync_batch_norm",
    ),
    # Backbones (the tiny model has one level, P1)
    (
        "features out_indices=(1,)",
        lambda f: build(features_only=True, out_indices=(1,)),
        ValueError,
        "0 to 0",
    ),
    (
        "features out_indices=(0, 0)",
        lambda f: build(features_only=True, out_indices=(0, 0)),
        ValueError,
        "out_indices",
    ),
    (
        "features out_indices=[]",
        lambda f: build(features_only=True, out_indices=[]),
        ValueError,
        "out_indices",
    ),
    ("features out_indices=0", lambda f: build(features_only=True, out_indices=0), TypeError, "out_indices"),
    (
        "features out_indices=[0.0]",
        lambda f: build(features_only=True, out_indices=[0.0]),
        TypeError,
        "out_indices",
    ),
    (
        "features out_indices without features_only",
        lambda f: build(out_indices=[0]),
        ValueError,
        "features_only",
    ),
    ("features p5=None", lambda f: build(features_only=True, p5=None), TypeError, "p5"),
    ("features p5='top'", lambda f: build(features_only=True, p5="top"), ValueError, "p5"),
    ("features pooling='max'", lambda f: build(features_only=True, pooling="max"), ValueError, "pooling"),
    ("features_only=1", lambda f: build(features_only=1), TypeError, "features_only"),
    (
        "feature_extractor levels='P9'",
        lambda f: ke.feature_extractor(build(), levels="P9"),
        ValueError,
        "among ['P1']. Received: levels='P9'",
    ),
    (
        "feature_extractor levels=3",
        lambda f: ke.feature_extractor(build(), levels=3),
        TypeError,
        "levels",
    ),
    (
        "feature_extractor of a Dense model",
        lambda f: ke.feature_extractor(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])),
        ValueError,
        "stem_conv",
    ),
    ("feature_info model=None", lambda f: ke.feature_info(None), TypeError, "model"),
    ("feature_info model='b99'", lambda f: ke.feature_info("b99"), ValueError, "b99"),
    ("pyramid_backbone model='b0'", lambda f: ke.pyramid_backbone("b0"), TypeError, "Received: model='b0'"),
    (
        "pyramid_backbone of a Dense model",
        lambda f: ke.pyramid_backbone(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])),
        ValueError,
        "stem_conv",
    ),
    (
        "PyramidBackbone outputs keyed 'C3'",
        lambda f: ke.PyramidBackbone(build().input, {"C3": build().output}),
        ValueError,
        "Received: outputs=['C3']",
    ),
    (
        "deeplab_v3_backbone spatial_pyramid_pooling_key='P5' of a one-level model",
        lambda f: ke.deeplab_v3_backbone(build(), spatial_pyramid_pooling_key="P5"),
        ValueError,
        "`spatial_pyramid_pooling_key` is 'P5', which 'efficientnet_pyramid' lacks: its pyramid_outputs "
        "are ['P1']",
    ),
    (
        "deeplab_v3_backbone low_level_feature_key='P0'",
        lambda f: ke.deeplab_v3_backbone(build(), low_level_feature_key="P0"),
        ValueError,
        "`low_level_feature_key` is 'P0'",
    ),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Broken and misleading files, made once."""
    from PIL import Image

    from keras_efficientnets.weights.loading import write_weights

    path = tmp_path_factory.mktemp("bad_inputs")
    found = types.SimpleNamespace(path=path, out=path / "out.weights.h5")
    found.text_h5 = path / "notes.h5"
    found.text_h5.write_text("not an HDF5 file")
    found.corrupt_h5 = path / "corrupt.weights.h5"
    found.corrupt_h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    found.text_pth = path / "notes.pth"
    found.text_pth.write_text("not a checkpoint")
    found.text_safetensors = path / "notes.safetensors"
    found.text_safetensors.write_text("not a checkpoint")
    found.bad_ckpt = path / "model.ckpt"
    (path / "model.ckpt.index").write_bytes(b"garbage index")
    lite0 = ke.EfficientNetLite0(weights=None, include_top=False, input_shape=(32, 32, 3))
    found.lite0_weights = path / "lite0.weights.h5"
    write_weights(lite0, found.lite0_weights, variant="lite0", normalization="lite", source={"kind": "test"})
    found.keras3_weights = path / "plain.weights.h5"
    lite0.save_weights(found.keras3_weights)
    b0 = ke.EfficientNetB0(weights=None, input_shape=(32, 32, 3))
    found.no_std_weights = path / "no_std.weights.h5"
    write_weights(b0, found.no_std_weights, variant="b0", normalization="imagenet", source={"kind": "test"})
    sidecar = json.loads((path / "no_std.weights.json").read_text())
    sidecar["normalization"] = {"mean": 127.0}
    (path / "no_std.weights.json").write_text(json.dumps(sidecar))
    found.bad_json_weights = path / "bad_json.weights.h5"
    b0.save_weights(found.bad_json_weights)
    (path / "bad_json.weights.json").write_text("{not json")
    found.bomb_png = path / "bomb.png"
    _write_png_header_only(found.bomb_png, 20000, 20000)
    Image.fromarray(np.zeros((4, 4, 3), "uint8")).save(path / "ok.png")
    found.tiny_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    _write_hostile_weights(found)
    # Files of the right names and first bytes whose insides are broken (as a crashed copy leaves them).
    found.broken_onnx = path / "broken.onnx"
    found.broken_onnx.write_bytes(b"\x08\x07\x12\x07tf2onnx" + bytes(range(256)) * 4)
    found.broken_tflite = path / "broken.tflite"
    found.broken_tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4)
    found.broken_xml = path / "broken.xml"
    found.broken_xml.write_text("<?xml version='1.0'?>\n<net name='x' version='11'><layers><layer id='0'")
    (path / "broken.bin").write_bytes(bytes(64))
    _write_damaged_exports(found)
    return found


def _write_damaged_exports(found):
    """A tiny model's exports, then damaged: emptied, cut short, the OpenVINO weights missing or cut
    short; a SavedModel that is not an export; an .onnx whose weights lie outside its folder."""
    import onnx
    import tensorflow as tf

    from keras_efficientnets.deploy.exporter import export

    for suffix in (".tflite", ".onnx", ".xml"):
        data = export(found.tiny_model, found.path / f"whole{suffix}", verbose=False).read_bytes()
        (found.path / f"empty{suffix}").write_bytes(b"")
        (found.path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    weights = (found.path / "whole.bin").read_bytes()
    (found.path / "cut.bin").write_bytes(weights)
    (found.path / "empty.bin").write_bytes(weights)
    (found.path / "short_bin.xml").write_bytes((found.path / "whole.xml").read_bytes())
    (found.path / "short_bin.bin").write_bytes(weights[: len(weights) // 2])
    (found.path / "no_bin.xml").write_bytes((found.path / "whole.xml").read_bytes())
    found.unsigned_saved_model = found.path / "unsigned_saved_model"
    tf.saved_model.save(tf.Module(), str(found.unsigned_saved_model))
    found.garbage_saved_model = found.path / "garbage_saved_model"
    found.garbage_saved_model.mkdir()
    (found.garbage_saved_model / "saved_model.pb").write_bytes(bytes(range(256)))
    # The weights of an .onnx stored beside it (ONNX external data), named by a path that leaves its folder.
    model = onnx.load(found.path / "whole.onnx")
    (found.path / "outside").mkdir()
    found.outside_onnx = found.path / "outside" / "model.onnx"
    onnx.save_model(
        model, found.outside_onnx, save_as_external_data=True, location="weights.data", size_threshold=0
    )
    model = onnx.load(found.outside_onnx, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.txt"
    onnx.save_model(model, found.outside_onnx)


def _write_hostile_weights(found):
    """Copies of a valid .weights.h5 whose first weight reads another file, is NaN, or is declared
    far larger than the file: each must be refused before any value is read."""
    import shutil

    import h5py

    secret = found.path / "secret.txt"
    secret.write_bytes(bytes(range(256)) * 64)
    edits = {
        "external_storage_weights": lambda f, name, d: f.create_dataset(
            name, d.shape, d.dtype, external=[(str(secret), 0, h5py.h5f.UNLIMITED)]
        ),
        "external_link_weights": lambda f, name, d: f.__setitem__(name, h5py.ExternalLink(str(secret), "/x")),
        "huge_weights": lambda f, name, d: f.create_dataset(
            name, (100000, 100000, 10), "float32", chunks=True
        ),
        "nan_weights": lambda f, name, d: f.create_dataset(name, data=np.full(d.shape, np.nan, d.dtype)),
        # A damaged name: h5py's visitor turns the UnicodeDecodeError into a SystemError.
        "non_utf8_name_weights": lambda f, name, d: f.create_dataset(
            name.encode() + b"\xc3\x28", d.shape, d.dtype
        ),
    }
    for label, edit in edits.items():
        path = found.path / f"{label}.weights.h5"
        shutil.copy(found.keras3_weights, path)
        with h5py.File(path, "a") as f:
            first = f.visititems(lambda name, item: name if isinstance(item, h5py.Dataset) else None)
            shape_and_dtype = types.SimpleNamespace(shape=f[first].shape, dtype=f[first].dtype)
            del f[first]
            edit(f, first, shape_and_dtype)
        setattr(found, label, path)


def _without_tf_config(files):
    import os

    saved = os.environ.pop("TF_CONFIG", None)
    try:
        return training.train(files.path, distribute="multiworker")
    finally:
        if saved is not None:
            os.environ["TF_CONFIG"] = saved


def _write_png_header_only(path, width, height):
    """A PNG that claims width x height pixels: a decompression bomb for a decoder that trusts it."""
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 2)  # two rows of data; the rest is missing
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("name", "call", "error", "fragment"), LIBRARY, ids=[case[0] for case in LIBRARY])
def test_library_rejects_bad_input_with_the_policy(name, call, error, fragment, files):
    with pytest.raises(error) as info:
        call(files)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert fragment in str(info.value), str(info.value)


# --------------------------------------------------------------------------- #
# The command line, run in this process (main() returns the exit status)
# --------------------------------------------------------------------------- #
CLI = [
    ("info --plot x.txt", ["info", "--plot", "{d}/x.txt"], "--plot"),
    ("info --plot in a missing folder", ["info", "--plot", "{d}/no/x.png"], "--plot"),
    ("predict a missing image", ["predict", "{d}/none.png"], "none.png"),
    ("predict a text file", ["predict", "{d}/notes.h5"], "notes.h5"),
    ("predict a decompression bomb", ["predict", "{d}/bomb.png"], "bomb.png"),
    ("predict --model b99", ["predict", "{d}/ok.png", "--model", "b99"], "b99"),
    ("predict --top 0", ["predict", "{d}/ok.png", "--top", "0"], "--top"),
    ("predict --top 1001", ["predict", "{d}/ok.png", "--top", "1001"], "--top"),
    ("predict --top x", ["predict", "{d}/ok.png", "--top", "x"], "--top"),
    ("predict --weights none", ["predict", "{d}/ok.png", "--weights", "none"], "--weights"),
    (
        "predict --weights a missing file",
        ["predict", "{d}/ok.png", "--weights", "{d}/none.weights.h5"],
        "none.weights.h5",
    ),
    (
        "predict --weights a missing model",
        ["predict", "{d}/ok.png", "--weights", "{d}/none.keras"],
        "none.keras",
    ),
    (
        "predict --weights a broken .keras",
        ["predict", "{d}/ok.png", "--weights", "{d}/broken.keras"],
        "broken.keras",
    ),
    ("predict --plot x.jpg", ["predict", "{d}/ok.png", "--plot", "{d}/x.jpg"], "--plot"),
    (
        "predict on a sidecar without std",
        ["predict", "{d}/ok.png", "--model", "b0", "--weights", "{d}/no_std.weights.h5"],
        "std",
    ),
    ("train a missing folder", ["train", "{d}/no_folder"], "no_folder"),
    ("train one class", ["train", "{d}/one_class"], "at least 2"),
    ("train a class without images", ["train", "{d}/empty_class"], "holds no images"),
    ("train a corrupt image", ["train", "{d}/corrupt_folder", "--image-size", "32"], "broken.png"),
    ("train --epochs 0", ["train", "{d}/one_class", "--epochs", "0"], "--epochs"),
    ("train --batch-size -1", ["train", "{d}/one_class", "--batch-size", "-1"], "--batch-size"),
    ("train --learning-rate inf", ["train", "{d}/one_class", "--learning-rate", "inf"], "--learning-rate"),
    ("train --learning-rate nan", ["train", "{d}/one_class", "--learning-rate", "nan"], "--learning-rate"),
    ("train --learning-rate 0", ["train", "{d}/one_class", "--learning-rate", "0"], "--learning-rate"),
    (
        "train --validation-split 1",
        ["train", "{d}/one_class", "--validation-split", "1"],
        "--validation-split",
    ),
    (
        "train --validation-split nan",
        ["train", "{d}/one_class", "--validation-split", "nan"],
        "--validation-split",
    ),
    ("train --image-size 16", ["train", "{d}/one_class", "--image-size", "16"], "--image-size"),
    ("train --image-size 30000", ["train", "{d}/one_class", "--image-size", "30000"], "--image-size"),
    ("train --out x.h5", ["train", "{d}/one_class", "--out", "{d}/x.h5"], "--out"),
    ("train --out in a missing folder", ["train", "{d}/one_class", "--out", "{d}/no/m.keras"], "--out"),
    ("train --model lite9", ["train", "{d}/one_class", "--model", "lite9"], "lite9"),
    ("train --weights a missing file", ["train", "{d}/one_class", "--weights", "{d}/none.h5"], "none.h5"),
    ("train --verbose 3", ["train", "{d}/one_class", "--verbose", "3"], "--verbose"),
    ("optimize --phi inf", ["optimize", "--phi", "inf"], "--phi"),
    ("optimize --phi 0", ["optimize", "--phi", "0"], "--phi"),
    ("optimize --max-cost inf", ["optimize", "--max-cost", "inf"], "--max-cost"),
    ("optimize --max-cost nan", ["optimize", "--max-cost", "nan"], "--max-cost"),
    ("optimize --max-cost 0.5", ["optimize", "--max-cost", "0.5"], "--max-cost"),
    ("optimize --max-cost 1e6", ["optimize", "--max-cost", "1e6"], "alpha"),
    ("optimize --search-per-coeff 100", ["optimize", "--search-per-coeff", "100"], "--search-per-coeff"),
    ("optimize --search-per-coeff 0", ["optimize", "--search-per-coeff", "0"], "--search-per-coeff"),
    ("optimize --tol -1", ["optimize", "--tol", "-1"], "--tol"),
    ("optimize --tol nan", ["optimize", "--tol", "nan"], "--tol"),
    ("optimize --top -1", ["optimize", "--top", "-1"], "--top"),
    ("optimize --sort accuracy", ["optimize", "--sort", "accuracy"], "--sort"),
    ("optimize --csv x.txt", ["optimize", "--csv", "{d}/x.txt"], "--csv"),
    (
        "convert --from onnx",
        ["convert", "{d}/notes.pth", "--from", "onnx", "--model", "b0", "--out", "{d}/o.weights.h5"],
        "--from",
    ),
    (
        "convert --out x.h5",
        ["convert", "{d}/notes.pth", "--from", "pytorch", "--model", "b0", "--out", "{d}/x.h5"],
        "--out",
    ),
    (
        "convert --model b99",
        ["convert", "{d}/notes.pth", "--from", "pytorch", "--model", "b99", "--out", "{d}/o.weights.h5"],
        "b99",
    ),
    (
        "convert a missing source",
        ["convert", "{d}/none.pth", "--from", "pytorch", "--model", "b0", "--out", "{d}/o.weights.h5"],
        "none.pth",
    ),
    (
        "convert a corrupt .pth",
        ["convert", "{d}/notes.pth", "--from", "pytorch", "--model", "b0", "--out", "{d}/o.weights.h5"],
        "notes.pth",
    ),
    (
        "convert a corrupt checkpoint",
        [
            "convert",
            "{d}/model.ckpt",
            "--from",
            "tf-checkpoint",
            "--model",
            "b0",
            "--out",
            "{d}/o.weights.h5",
        ],
        "model.ckpt",
    ),
    (
        "convert a Keras 3 file as keras-applications",
        [
            "convert",
            "{d}/plain.weights.h5",
            "--from",
            "keras-applications",
            "--model",
            "lite0",
            "--out",
            "{d}/o.weights.h5",
        ],
        "plain.weights.h5",
    ),
    (
        "convert without --model",
        ["convert", "{d}/notes.pth", "--from", "pytorch", "--out", "{d}/o.weights.h5"],
        "--model",
    ),
    ("an unknown command", ["frobnicate"], "frobnicate"),
    ("an unknown option", ["info", "--frobnicate"], "--frobnicate"),
    ("train --distribute tpu", ["train", "{d}/corrupt_folder", "--distribute", "tpu"], "tpu"),
    ("train --cpu-replicas 0", ["train", "{d}/corrupt_folder", "--cpu-replicas", "0"], "--cpu-replicas"),
    (
        "export int8 without --calibration",
        ["export", "{d}/m.tflite", "--quantize", "int8"],
        "--calibration DIR",
    ),
    (
        "export --calibration without int8",
        ["export", "{d}/m.tflite", "--calibration", "{d}"],
        "--quantize int8",
    ),
    (
        "export --calibration of a file",
        ["export", "{d}/m.tflite", "--quantize", "int8", "--calibration", "{d}/ok.png"],
        "must be a folder of images",
    ),
    ("export into a missing folder", ["export", "{d}/no/m.tflite"], "does not exist"),
    ("export --quantize int4", ["export", "{d}/m.tflite", "--quantize", "int4"], "int4"),
    ("export --format tflite", ["export", "{d}/m.tflite", "--format", "tflite"], "tflite"),
    ("export --model b99", ["export", "{d}/m.tflite", "--model", "b99"], "Unknown model 'b99'"),
    (
        "export --calibration-images 0",
        ["export", "{d}/m.tflite", "--calibration-images", "0"],
        "--calibration-images",
    ),
    ("export --keep-float gates", ["export", "{d}/m.tflite", "--keep-float", "gates"], "gates"),
    ("export a missing .keras", ["export", "{d}/m.tflite", "--weights", "{d}/none.keras"], "No model file"),
    (
        "predict --model-file missing",
        ["predict", "{d}/ok.png", "--model-file", "{d}/none.tflite"],
        "No exported model",
    ),
    (
        "predict --model-file of a PNG",
        ["predict", "{d}/ok.png", "--model-file", "{d}/ok.png"],
        ".tflite, .onnx",
    ),
    (
        "predict --model-file of text",
        ["predict", "{d}/ok.png", "--model-file", "{d}/notes.h5"],
        ".tflite, .onnx",
    ),
]


@pytest.fixture(scope="module")
def cli_files(files):
    from PIL import Image

    root = files.path
    (root / "one_class" / "only").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(root / "one_class" / "only" / "a.png")
    for name in ("a", "b"):
        (root / "empty_class" / name).mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(root / "empty_class" / "a" / "a.png")
    for name in ("a", "b"):
        (root / "corrupt_folder" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), "uint8")).save(root / "corrupt_folder" / name / "ok.png")
    (root / "corrupt_folder" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (root / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    return root


@pytest.mark.parametrize(("name", "argv", "fragment"), CLI, ids=[case[0] for case in CLI])
def test_command_line_rejects_bad_input_on_one_line(name, argv, fragment, cli_files, capsys, monkeypatch):
    monkeypatch.delenv("KERAS_EFFICIENTNETS_TRACEBACK", raising=False)
    arguments = [arg.format(d=cli_files) for arg in argv]
    try:
        status = cli.main(arguments)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment.format(d=cli_files) in err, err


def _names_used(call) -> set[str]:
    """The names a corpus case's call refers to, through this module's helpers (`stage`, `build`)."""
    names = set(call.__code__.co_names)
    for name in list(names):
        helper = globals().get(name)
        if isinstance(helper, types.FunctionType) and helper.__module__ == __name__:
            names |= set(helper.__code__.co_names)
    return names


def test_every_public_function_has_cases():
    constructors = {variant.constructor_name for variant in ke.VARIANTS.values()}
    # Result types, an exception, and functions that take no argument or any (0.1.x's pass-through).
    exempt = {
        "FeatureLevel",
        "FlopsReport",
        "WeightsDownloadError",
        "get_default_block_list",
        "preprocess_input",
    }
    public = {name for name in ke.__all__ if callable(getattr(ke, name))} - constructors - exempt
    public |= {"EfficientNetB0", "optimize_coefficients", "search_coefficients", "candidate_table"}
    used = set().union(*(_names_used(case[1]) for case in LIBRARY))
    assert not public - used, f"no bad-input case calls {sorted(public - used)}"
