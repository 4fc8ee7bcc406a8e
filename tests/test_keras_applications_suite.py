"""keras.applications' own test suite, run on our models: a drop-in must pass what its original passes.

The suite is Keras's ``keras/src/applications/applications_test.py`` as installed,
executed unchanged except for its model list (and a per-test tearDown), which names our B0 and
Lite0, and in the slow suite B7 and Lite2 (with their last feature width, and
`keras_efficientnets.efficientnet` as the module of ``preprocess_input`` and
``decode_predictions``). Its
``test_application_base`` cases download ImageNet weights and ``elephant.jpg``,
which tests here may not: they are skipped, and only they.
"""

import pathlib
import types
import unittest

import keras
import pytest

import keras_efficientnets as ke
from keras_efficientnets import efficientnet as module_2019

SUITE = pathlib.Path(keras.__file__).parent / "src" / "applications" / "applications_test.py"
# The last feature width of each variant the suite runs (its pooling test checks it).
FEATURES = {"b0": 1280, "b7": 2560, "lite0": 1280, "lite2": 1280}
QUICK = ("b0", "lite0")
# The slow suite adds the largest of each table. B1-B6 and Lite1 are the same constructors' code at
# other coefficients, whose feature widths and counts test_models_builder.py holds (their 56 cases
# here would cost the slow suite minutes and check no other code).
LARGEST = ("b7", "lite2")


def suite_class(variants, class_name):
    """The suite's test class, with MODEL_LIST replaced by our `variants`."""
    source = SUITE.read_text()
    start = source.index("MODEL_LIST = [")
    end = source.index("\n]\n", start) + len("\n]\n")
    source = source[:start] + "MODEL_LIST = OUR_MODEL_LIST\n" + source[end:]
    module = types.ModuleType(f"keras_applications_suite_{class_name}")
    module.OUR_MODEL_LIST = [
        (getattr(ke, ke.config.VARIANTS[v].constructor_name), FEATURES[v], module_2019) for v in variants
    ]
    exec(compile(source, str(SUITE), "exec"), module.__dict__)
    # The suite puts the image data format back once per class; here after each test, as the
    # conftest guard asks of every test.
    suite = type(class_name, (module.ApplicationsTest,), {"tearDown": _restore_image_data_format})
    for name in dir(suite):
        if name.startswith("test_application_base"):
            setattr(
                suite,
                name,
                unittest.skip("downloads ImageNet weights and elephant.jpg")(getattr(suite, name)),
            )
    return suite


def _restore_image_data_format(test_case):
    keras.config.set_image_data_format(test_case.original_image_data_format)


KerasApplicationsSuiteQuick = suite_class(QUICK, "KerasApplicationsSuiteQuick")
KerasApplicationsSuiteLargest = pytest.mark.slow(suite_class(LARGEST, "KerasApplicationsSuiteLargest"))
