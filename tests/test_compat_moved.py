"""Earlier module paths keep importing, as the modules now at their new paths."""

import importlib
import subprocess
import sys

import pytest

import keras_efficientnets
from keras_efficientnets._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_earlier_path_is_the_module_at_its_new_one(old):
    moved = importlib.import_module(f"keras_efficientnets.{old}")
    assert moved is importlib.import_module(f"keras_efficientnets.{MOVED[old]}")
    assert getattr(keras_efficientnets, old) is moved
    assert sys.modules[f"keras_efficientnets.{old}"] is moved


def test_the_2019_imports_work_in_a_fresh_process():
    # As a 0.1.x script writes them, before anything else of the package is imported.
    code = (
        "from keras_efficientnets.config import BlockArgs, get_default_block_list\n"
        "from keras_efficientnets.efficientnet import EfficientNetB0, preprocess_input\n"
        "import keras_efficientnets.custom_objects as custom\n"
        "import keras_efficientnets.model\n"
        "print(EfficientNetB0.__module__, custom.__name__, len(get_default_block_list()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "keras_efficientnets.models.builder",
        "keras_efficientnets.compat.custom_objects",
        "7",
    ]


def test_an_unknown_module_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError, match="keras_efficientnets.no_such_module"):
        importlib.import_module("keras_efficientnets.no_such_module")


def test_the_weights_package_gives_loadings_public_names():
    import keras_efficientnets.weights as weights
    from keras_efficientnets.weights import loading

    assert weights.__all__ == loading.__all__
    assert all(getattr(weights, name) is getattr(loading, name) for name in weights.__all__)
