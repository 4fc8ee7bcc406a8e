"""Pretrained weights: the `weights=` argument and where weights come from.

- `loading`: the `weights=` argument, the weight sources of ``"imagenet"``, sidecars, loading;
- `files`: weight tables read from Keras weight files, and assigned to a model by name;
- `downloads`: published files fetched into the Keras cache, checked and atomic;
- `checkpoints`: the official checkpoints' names and kernel layouts;
- `torch_pickle`: ``torch.save`` files read without torch and without running code.

``from keras_efficientnets.weights import ...`` gives `loading`'s public names, as the
``keras_efficientnets.weights`` module of earlier releases did.
"""

from keras_efficientnets.weights import loading as _loading
from keras_efficientnets.weights.loading import *  # noqa: F403

__all__ = list(_loading.__all__)
