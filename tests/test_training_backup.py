"""A run's backup folder: resumed only by the run that wrote it; damaged or foreign ones refused."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_efficientnets import training
from keras_efficientnets.training.backup import RUN_FILE, check_backup

OPTIONS = {"model": "lite0", "image_size": 32, "class_names": ["blue", "red"], "learning_rate": 1e-4}


def _backup_of(folder, options=OPTIONS, weights=None):
    """A folder as BackupAndRestore leaves it after an epoch, with this package's run file."""
    check_backup(folder, options)
    (folder / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": 0}))
    if weights is None:
        import h5py

        with h5py.File(folder / "latest.weights.h5", "w") as f:
            f.create_dataset("w", data=np.zeros(3))
    else:
        (folder / "latest.weights.h5").write_bytes(weights)
    return folder


def test_the_run_that_wrote_a_backup_resumes_it(tmp_path):
    folder = _backup_of(tmp_path / "backup")
    check_backup(folder, dict(OPTIONS))
    assert json.loads((folder / RUN_FILE).read_text()) == OPTIONS


def test_a_backup_of_other_options_is_refused_by_name(tmp_path):
    folder = _backup_of(tmp_path / "backup")
    with pytest.raises(
        ValueError, match=r"is of another run: its image_size was 32, this run's is 48.*Remove"
    ):
        check_backup(folder, {**OPTIONS, "image_size": 48})


def test_a_run_killed_before_its_first_backup_leaves_nothing_to_refuse(tmp_path):
    folder = tmp_path / "backup"
    check_backup(folder, OPTIONS)  # killed before the first epoch ended: only run.json
    check_backup(folder, {**OPTIONS, "image_size": 48})
    assert json.loads((folder / RUN_FILE).read_text())["image_size"] == 48


@pytest.mark.parametrize(
    "damage, file",
    [
        (lambda folder: (folder / "latest.weights.h5").write_bytes(b"crashed"), "latest.weights.h5"),
        (lambda folder: (folder / "training_metadata.json").write_text("{"), "training_metadata.json"),
        (lambda folder: (folder / RUN_FILE).write_text("[]"), RUN_FILE),
    ],
    ids=["weights", "metadata", "run-file"],
)
def test_a_damaged_backup_names_its_file_and_the_way_on(damage, file, tmp_path):
    folder = _backup_of(tmp_path / "backup")
    damage(folder)
    with pytest.raises(
        ValueError, match=rf"backup in .* cannot be resumed: '.*{file}' is damaged.*Remove the folder"
    ):
        check_backup(folder, OPTIONS)


def test_train_refuses_a_backup_it_did_not_write_before_fitting(tmp_path):
    data = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("blue", "red"):
        (data / name).mkdir(parents=True)
        for index in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype="uint8")).save(
                data / name / f"{index}.png"
            )
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "latest.weights.h5").write_bytes(b"crashed")  # a Keras backup, no run file
    with pytest.raises(
        ValueError, match=r"holds a training backup \(latest.weights.h5\) without the run.json"
    ):
        training.train(
            data, model="lite0", weights=None, epochs=1, batch_size=4, image_size=32,
            freeze_backbone=True, backup_dir=backup, verbose=0,
        )  # fmt: skip
    assert (backup / "latest.weights.h5").read_bytes() == b"crashed"
