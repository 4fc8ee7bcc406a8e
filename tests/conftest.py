"""pytest set-up shared by every test module (helpers live in helpers.py, numbers in reference.py)."""

import contextlib
import ctypes
import os
import sys

# Before TensorFlow loads, here and in every subprocess the tests start: its C++
# start-up lines are noise in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402

# TensorFlow sets environment variables when first imported (TF2_BEHAVIOR, KMP_INIT_AT_FORK, ...).
# Keras imports it on its TensorFlow backend; on JAX and PyTorch the first test that needs it would
# import it and fail the guard below, and with test processes (pytest-xdist) which test comes first
# differs from run to run. Imported here, its settings are where every test starts.
import tensorflow  # noqa: E402, F401


def process_settings() -> dict:
    """What a test could change in this process that later tests and the subprocesses they start
    would inherit: the environment, Keras' global configuration and TensorFlow's global options."""
    settings = {
        # pytest's own variable, which names the phase it is in, is the one expected change.
        "os.environ": {key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"},
        "keras.config.dtype_policy": keras.config.dtype_policy().name,
        "keras.config.floatx": keras.config.floatx(),
        "keras.config.epsilon": keras.config.epsilon(),
        "keras.config.image_data_format": keras.config.image_data_format(),
    }
    tf = sys.modules.get("tensorflow")
    if tf is not None:  # never imported only to be looked at (the JAX and torch runs may not load it)
        settings.update({name: getter() for name, (getter, _) in _tensorflow_options(tf).items()})
    return settings


def restore_process_settings(settings: dict) -> None:
    for key in os.environ.keys() - settings["os.environ"].keys() - {"PYTEST_CURRENT_TEST"}:
        del os.environ[key]
    os.environ.update(settings["os.environ"])
    keras.config.set_dtype_policy(settings["keras.config.dtype_policy"])
    keras.config.set_floatx(settings["keras.config.floatx"])
    keras.config.set_epsilon(settings["keras.config.epsilon"])
    keras.config.set_image_data_format(settings["keras.config.image_data_format"])
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        for name, (_, setter) in _tensorflow_options(tf).items():
            if setter is not None and name in settings:
                setter(settings[name])


def _tensorflow_options(tf) -> dict:
    """TensorFlow's global options: name -> (getter, setter or None where it is fixed at start-up)."""
    return {
        "tf.config.functions_run_eagerly": (tf.config.functions_run_eagerly, tf.config.run_functions_eagerly),
        "tf.config.optimizer jit": (tf.config.optimizer.get_jit, tf.config.optimizer.set_jit),
        "tf.config.optimizer experimental options": (
            tf.config.optimizer.get_experimental_options,
            tf.config.optimizer.set_experimental_options,
        ),
        "tf.config soft device placement": (
            tf.config.get_soft_device_placement,
            tf.config.set_soft_device_placement,
        ),
        "tf.config.threading intra-op threads": (tf.config.threading.get_intra_op_parallelism_threads, None),
        "tf.config.threading inter-op threads": (tf.config.threading.get_inter_op_parallelism_threads, None),
    }


def _return_freed_heap_to_system() -> None:
    """glibc keeps freed heap pages mapped for reuse, so a process that once held a large model
    stays that large; malloc_trim unmaps them (other C libraries: nothing to do)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def changed_settings(before: dict, after: dict) -> list[str]:
    """One line per setting that differs (per variable, for the environment)."""
    lines = []
    for name in before.keys() & after.keys():
        if name == "os.environ":
            old, new = before[name], after[name]
            lines += [
                f"os.environ[{key!r}]: {old.get(key)!r} -> {new.get(key)!r}"
                for key in old.keys() | new.keys()
                if old.get(key) != new.get(key)
            ]
        elif before[name] != after[name]:
            lines.append(f"{name}: {before[name]!r} -> {after[name]!r}")
    return sorted(lines)


@pytest.fixture(autouse=True)
def _process_left_as_found(request):
    """Fails a test that leaves the process changed (after putting it back, so later tests don't
    inherit it): a library call must not change its caller's process, and a test that does makes
    the tests after it depend on the order they run in (a subprocess started later would run with
    other kernels than this process, say)."""
    before = process_settings()
    yield
    # The slow tests build the largest variants; two of their test processes share the machine
    # (make test-slow), so each hands the memory of a test's models back to the system after it.
    # Elsewhere collecting after each of ~1200 small tests would cost minutes and free little.
    slow = request.node.get_closest_marker("slow") is not None
    keras.utils.clear_session(free_memory=slow)
    if slow:
        _return_freed_heap_to_system()
    changes = changed_settings(before, process_settings())
    if changes:
        restore_process_settings(before)
        pytest.fail(
            f"{request.node.nodeid} left the process changed (use monkeypatch, or undo it):\n  "
            + "\n  ".join(changes),
            pytrace=False,
        )
