"""The paper's step 1: train every candidate briefly and rank them (KerasTuner).

Keras and KerasTuner are imported when `search_coefficients` runs, so that the
rest of `optimize` stays Keras-free.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile

import numpy as np

from keras_efficientnets._common.optional import require
from keras_efficientnets._common.validation import check_int
from keras_efficientnets.arch.variants import get_default_block_list
from keras_efficientnets.optimize.candidates import Candidate, candidate_table

__all__ = ["search_coefficients"]


def search_coefficients(
    candidates,
    train_data=None,
    validation_data=None,
    *,
    build_and_evaluate=None,
    phi: float = 1.0,
    block_args_list=None,
    base_width: float = 1.0,
    base_depth: float = 1.0,
    base_resolution: int = 224,
    classes: int | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    model_kwargs: dict | None = None,
    compile_kwargs: dict | None = None,
    directory=None,
    project_name: str = "efficientnet_coefficients",
    overwrite: bool = True,
    verbose: int = 0,
) -> list[Candidate]:
    """Trains every candidate briefly and ranks them by validation accuracy.

    This is the paper's step 1: with phi = 1, scale the base model by each
    candidate's (alpha, beta, gamma), train it for a short budget, keep the most
    accurate. Each candidate is one trial of a KerasTuner grid search, so the
    trials can run on several machines with KerasTuner's distributed mode: start
    the same script on every machine with the same `directory` (a shared file
    system) and the environment variables ``KERASTUNER_ORACLE_IP`` and
    ``KERASTUNER_ORACLE_PORT`` (the chief's address), plus
    ``KERASTUNER_TUNER_ID=chief`` on one machine and ``tuner0``, ``tuner1``, ...
    on the others; the chief's call returns the full ranking.

    The default training: the images are resized to each candidate's resolution
    inside the model, an `EfficientNet` with ``weights=None`` is trained with
    Adam and sparse categorical cross-entropy for `epochs`, and the score is the
    last epoch's validation accuracy.

    Args:
        candidates: `Candidate`s (from `candidate_table`) or rows of
            (alpha, beta, gamma), which are passed through `candidate_table` with
            the base settings below.
        train_data: ``(images, labels)`` arrays, or a batched dataset of such pairs.
        validation_data: The same, for the score.
        build_and_evaluate: Instead of the default training, a function of one
            `Candidate` returning its validation accuracy.
        phi: The compound coefficient (the paper: 1).
        block_args_list, base_width, base_depth, base_resolution: The base model.
        classes: Number of classes; None infers it from integer labels.
        epochs, batch_size: The training budget per candidate.
        model_kwargs: More `EfficientNet` arguments (e.g. ``dropout_rate``).
        compile_kwargs: `Model.compile` arguments replacing the defaults.
        directory, project_name, overwrite: Where KerasTuner keeps its trials;
            None for a temporary directory removed afterwards.
        verbose: Keras training verbosity.

    Returns:
        The candidates with `accuracy` filled in, most accurate first.

    Example:
        >>> ranked = search_coefficients(
        ...     [[1.2, 1.1, 1.15], [1.0, 1.0, 1.414]],
        ...     build_and_evaluate=lambda c: 1.0 / c.flops_ratio)  # a stand-in score
        >>> [round(c.gamma, 3) for c in ranked]
        [1.414, 1.15]
    """
    if build_and_evaluate is None and (train_data is None or validation_data is None):
        raise ValueError(
            "`search_coefficients` needs `train_data` and `validation_data`, or a "
            f"`build_and_evaluate` function. Received: train_data={type(train_data).__name__}, "
            f"validation_data={type(validation_data).__name__}"
        )
    if build_and_evaluate is not None and not callable(build_and_evaluate):
        raise TypeError(
            f"`build_and_evaluate` must be callable. Received: build_and_evaluate={build_and_evaluate!r}"
        )
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    blocks = get_default_block_list() if block_args_list is None else list(block_args_list)
    table_options = dict(
        block_args_list=blocks, base_width=base_width, base_depth=base_depth, base_resolution=base_resolution
    )
    if classes is not None:
        table_options["classes"] = check_int("classes", classes, minimum=1)
    candidates = list(candidates)
    if not candidates:
        raise ValueError(f"`candidates` is empty. Received: candidates={candidates!r}")
    if not all(isinstance(c, Candidate) for c in candidates):
        candidates = candidate_table(candidates, phi, **table_options)

    if build_and_evaluate is None:
        build_and_evaluate = _default_trainer(
            train_data,
            validation_data,
            blocks,
            classes,
            epochs,
            batch_size,
            model_kwargs or {},
            compile_kwargs,
            verbose,
        )

    keras_tuner = require("keras_tuner", "search_coefficients (its trials run in KerasTuner)")

    class CandidateTuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            index = trial.hyperparameters.get("candidate")
            score = float(build_and_evaluate(candidates[index]))
            return {"val_accuracy": score}

    hyperparameters = keras_tuner.HyperParameters()
    hyperparameters.Choice("candidate", list(range(len(candidates))))
    oracle = keras_tuner.oracles.GridSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=len(candidates),
        hyperparameters=hyperparameters,
    )
    with tempfile.TemporaryDirectory(prefix="kt_coefficients_") as scratch:
        tuner = CandidateTuner(
            oracle=oracle,
            directory=os.fspath(directory) if directory is not None else scratch,
            project_name=project_name,
            overwrite=overwrite,
        )
        tuner.search(verbose=bool(verbose))
        scores = {}
        for trial in tuner.oracle.trials.values():
            if trial.score is not None:
                scores[trial.hyperparameters.get("candidate")] = float(trial.score)
    ranked = [dataclasses.replace(c, accuracy=scores.get(i)) for i, c in enumerate(candidates)]
    ranked.sort(key=lambda c: -math.inf if c.accuracy is None else c.accuracy, reverse=True)
    return ranked


def _default_trainer(
    train_data, validation_data, blocks, classes, epochs, batch_size, model_kwargs, compile_kwargs, verbose
):
    """A `build_and_evaluate` that trains an EfficientNet on the given data."""
    import keras

    from keras_efficientnets.models.builder import EfficientNet

    def split(data, name):
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    f"`{name}` must be an (images, labels) pair or a dataset. "
                    f"Received: {name} with {len(data)} items"
                )
            return np.asarray(data[0]), np.asarray(data[1])
        return data, None

    train_x, train_y = split(train_data, "train_data")
    val_x, val_y = split(validation_data, "validation_data")
    if train_y is not None:
        image_shape = tuple(train_x.shape[1:])
    else:
        image_shape = tuple(train_data.element_spec[0].shape[1:])
    if classes is None:
        if train_y is None:
            raise ValueError("`classes` is needed when `train_data` is a dataset. Received: classes=None")
        classes = int(max(np.max(train_y), np.max(val_y))) + 1

    def build_and_evaluate(candidate):
        inputs = keras.Input(shape=image_shape)
        size = candidate.resolution
        resized = keras.layers.Resizing(size, size, name="resize_to_candidate")(inputs)
        network = EfficientNet(
            (size, size, image_shape[-1]),
            blocks,
            candidate.width_coefficient,
            candidate.depth_coefficient,
            include_top=True,
            weights=None,
            classes=classes,
            **model_kwargs,
        )
        model = keras.Model(inputs, network(resized))
        model.compile(
            **(
                compile_kwargs
                or {
                    "optimizer": "adam",
                    "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"],
                }
            )
        )
        if train_y is not None:
            history = model.fit(
                train_x,
                train_y,
                validation_data=(val_x, val_y),
                epochs=epochs,
                batch_size=batch_size,
                verbose=verbose,
            )
        else:
            history = model.fit(train_data, validation_data=validation_data, epochs=epochs, verbose=verbose)
        return history.history["val_accuracy"][-1]

    return build_and_evaluate
