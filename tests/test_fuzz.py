"""Arguments drawn at random (seeded: the same draws on every run): whatever comes in, the
package answers with a result or with its own error types, never a foreign exception or NaN."""

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_efficientnets import BlockArgs
from keras_efficientnets.arch.block_args import decode_block_string, encode_block_string
from keras_efficientnets.models.build_config import BuildConfig
from keras_efficientnets.optimize import optimize_coefficients

OUR_ERRORS = (ValueError, TypeError)
SEEDED = settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

# Values of every kind an argument might be given by mistake, and extreme numbers.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
)
SMALL_INT = st.integers(min_value=-2, max_value=8)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6))


def answers_in_our_words(call):
    """Runs `call`; returns its result, or None when it raised one of our error types."""
    try:
        return call()
    except OUR_ERRORS:
        return None


@SEEDED
@given(
    st.fixed_dictionaries(
        {
            "input_filters": st.one_of(SMALL_INT, ANYTHING),
            "output_filters": st.one_of(SMALL_INT, ANYTHING),
            "kernel_size": st.one_of(SMALL_INT, ANYTHING),
            "strides": st.one_of(SMALL_INT, ANYTHING),
            "num_repeat": st.one_of(SMALL_INT, ANYTHING),
            "se_ratio": st.one_of(NUMBER, ANYTHING),
            "expand_ratio": st.one_of(NUMBER, ANYTHING),
        }
    )
)
def test_block_args_of_any_values(fields):
    block = answers_in_our_words(lambda: BlockArgs(**fields))
    if block is not None:  # a valid stage writes and reads back as itself
        assert decode_block_string(encode_block_string(block)) == block


@SEEDED
@given(st.text(alphabet="rkseio_.-0123456789xX", max_size=32))
def test_block_strings_of_any_characters(text):
    block = answers_in_our_words(lambda: decode_block_string(text))
    if block is not None:
        assert decode_block_string(encode_block_string(block)) == block


@SEEDED
@given(
    width=st.one_of(NUMBER, ANYTHING),
    depth=st.one_of(NUMBER, ANYTHING),
    size=st.one_of(st.integers(-4, 4096), ANYTHING),
    classes=st.one_of(st.integers(-2, 10**12), ANYTHING),
    dropout=st.one_of(NUMBER, ANYTHING),
    divisor=st.one_of(st.integers(-2, 64), ANYTHING),
)
def test_builder_arguments_of_any_values(width, depth, size, classes, dropout, divisor):
    stage = BlockArgs(16, 24, 3, 2, 1, 0.25, 6)
    answers_in_our_words(
        lambda: BuildConfig(
            block_args_list=(stage,),
            width_coefficient=width,
            depth_coefficient=depth,
            input_shape=(size, size, 3),
            classes=classes,
            dropout_rate=dropout,
            depth_divisor=divisor,
        )
    )


@settings(derandomize=True, max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    phi=st.one_of(NUMBER, ANYTHING),
    max_cost=st.one_of(NUMBER, ANYTHING),
    num_coeff=st.one_of(st.integers(-1, 4), ANYTHING),
    search_per_coeff=st.one_of(st.integers(-1, 6), ANYTHING),
    exponents=st.one_of(st.none(), st.lists(NUMBER, max_size=4), ANYTHING),
)
def test_coefficient_search_of_any_values(phi, max_cost, num_coeff, search_per_coeff, exponents):
    results = answers_in_our_words(
        lambda: optimize_coefficients(
            num_coeff=num_coeff,
            phi=phi,
            max_cost=max_cost,
            search_per_coeff=search_per_coeff,
            exponents=exponents,
            verbose=False,
        )
    )
    if results is not None:
        assert np.isfinite(results).all() and (results >= 1 - 1e-9).all()
        assert results.shape[1] == num_coeff and not math.isnan(float(results.sum()))
