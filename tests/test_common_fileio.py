"""Files are replaced whole or not at all: an interruption leaves the old file as it was."""

import os

import pytest

from keras_efficientnets._common.fileio import atomic_path, write_json


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the good model")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        with open(temporary, "wb") as f:
            f.write(b"half of a new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"the good model"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_a_completed_write_replaces_the_file_with_a_plain_files_mode(tmp_path):
    target = tmp_path / "classes.json"
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_train_keeps_the_old_model_when_saving_is_interrupted(tmp_path):
    from keras_efficientnets.cli import train

    class Interrupted:
        def save(self, path):
            with open(path, "wb") as f:
                f.write(b"metadata only")
            raise KeyboardInterrupt

    target = tmp_path / "model.keras"
    target.write_bytes(b"the good model")
    with pytest.raises(KeyboardInterrupt):
        train._save(Interrupted(), str(target), ["a", "b"], 32, "b0")
    assert target.read_bytes() == b"the good model"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]
