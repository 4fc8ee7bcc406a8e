"""pytest set-up shared by every test module (helpers live in helpers.py, numbers in reference.py)."""

import os

# Before TensorFlow loads, here and in every subprocess the tests start: its C++
# start-up lines are noise in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session(free_memory=False)
