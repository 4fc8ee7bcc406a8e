"""The backup folder of a run: resumed only by the run that wrote it, refused in our words when damaged.

``keras.callbacks.BackupAndRestore`` keeps ``latest.weights.h5`` and ``training_metadata.json``
in the folder and loads them into whatever model starts next. `check_backup` runs before that:
it saves the run's options beside them (``run.json``), refuses a backup of other options (it
would be mixed into this run's weights) and names a damaged file, with the way to go on.
"""

from __future__ import annotations

import json
import os

from keras_efficientnets._common.fileio import write_json

__all__ = ["RUN_FILE", "check_backup"]

RUN_FILE = "run.json"
# What keras.callbacks.BackupAndRestore writes into its folder (Keras 3).
_KERAS_FILES = ("latest.weights.h5", "training_metadata.json")


_START_OVER = "Remove the folder to start the run over, or pass another backup_dir."


def check_backup(folder, options: dict) -> None:
    """Refuses a backup folder that this run cannot resume, then records the run's options there.

    Args:
        folder: The backup folder (created if missing).
        options: What decides the run's weights (model, image size, classes, ...), JSON values.

    Raises:
        ValueError: The folder holds the backup of a run with other options, one that this
            package did not write, or a damaged file; the message says how to go on.
    """
    folder = os.fspath(folder)
    run_file = os.path.join(folder, RUN_FILE)
    kept = [os.path.join(folder, name) for name in _KERAS_FILES if os.path.exists(os.path.join(folder, name))]
    if kept:  # a run to resume, if it is this one
        if not os.path.exists(run_file):
            raise ValueError(
                f"{folder!r} holds a training backup ({', '.join(map(os.path.basename, kept))}) without "
                f"the {RUN_FILE} this package writes, so whose it is cannot be told. {_START_OVER}"
            )
        _check_same_run(folder, _read_json(run_file, folder), options)
        for path in kept:
            if path.endswith(".json"):
                _read_json(path, folder)
            else:
                _open_h5(path, folder)
    os.makedirs(folder, exist_ok=True)
    write_json(run_file, options)


def _check_same_run(folder: str, recorded: dict, options: dict) -> None:
    changed = sorted(key for key in {*options, *recorded} if recorded.get(key) != options.get(key))
    if changed:
        key = changed[0]
        raise ValueError(
            f"The backup in {folder!r} is of another run: its {key} was {recorded.get(key)!r}, this "
            f"run's is {options.get(key)!r}. Start the run with its own arguments to resume it. "
            + _START_OVER
        )


def _damaged(folder: str, path: str, detail) -> ValueError:
    return ValueError(
        f"The backup in {folder!r} cannot be resumed: {path!r} is damaged ({detail}). {_START_OVER}"
    )


def _read_json(path: str, folder: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as error:
        raise _damaged(folder, path, error) from None
    if not isinstance(value, dict):
        raise _damaged(folder, path, "not a JSON object")
    return value


def _open_h5(path: str, folder: str) -> None:
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        raise _damaged(folder, path, error) from None
