"""The conftest guard that keeps tests independent of their order: a test that leaves the
process changed (environment, Keras' or TensorFlow's global configuration) fails, and the
tests after it see the process as it was."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

LEAKING_TESTS = textwrap.dedent("""
    import os
    import keras

    def test_sets_a_variable():
        os.environ["KERAS_EFFICIENTNETS_LEAK"] = "1"

    def test_changes_the_image_data_format():
        keras.config.set_image_data_format("channels_first")

    def test_after_them_sees_the_process_as_it_was():
        assert "KERAS_EFFICIENTNETS_LEAK" not in os.environ
        assert keras.config.image_data_format() == "channels_last"

    def test_undoes_its_change_with_monkeypatch(monkeypatch):
        monkeypatch.setenv("KERAS_EFFICIENTNETS_LEAK", "1")
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
""")


def test_a_test_that_leaves_the_process_changed_fails(tmp_path):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_leaks.py").write_text(LEAKING_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    report = result.stdout
    assert result.returncode == 1, report
    assert "4 passed, 2 errors" in report, report
    assert "test_sets_a_variable left the process changed" in report
    assert "os.environ['KERAS_EFFICIENTNETS_LEAK']: None -> '1'" in report
    assert "keras.config.image_data_format: 'channels_last' -> 'channels_first'" in report
