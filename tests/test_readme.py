"""Every Python snippet of README.md runs, as a newcomer would paste it.

Snippets run in order, each in a fresh namespace, in a temporary working
directory. A line ending in ``# needs network`` (ImageNet weights that are
downloaded) runs with ``weights=None`` instead; everything else, the offline
Lite0 weights included, runs as written.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
NETWORK_MARK = "# needs network"


def python_snippets(text):
    """The ```python blocks of a Markdown text, with the line each starts on."""
    snippets = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
        snippets.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return snippets


def offline(code):
    """Switches the marked network-only lines to random weights."""
    lines = []
    for line in code.splitlines():
        if NETWORK_MARK in line:
            # "imagenet" or a Hugging Face Hub name: weights that need a download.
            replaced = re.sub(r'weights="[^"]+"', "weights=None", line)
            if replaced == line:
                raise ValueError(f"A {NETWORK_MARK!r} line without a weights name: {line!r}")
            line = replaced
        lines.append(line)
    return "\n".join(lines) + "\n"


SNIPPETS = python_snippets(README.read_text(encoding="utf-8"))


def test_the_readme_has_snippets_and_the_quickstart_commands():
    assert len(SNIPPETS) >= 6
    text = README.read_text(encoding="utf-8")
    assert "```bash\nmake demo\nmake test\n```" in text
    assert "## Quickstart" in text.split("## Python usage")[0]


def test_offline_rewrites_only_marked_lines():
    code = 'a = f(weights="imagenet")  # needs network\nb = f(weights="imagenet")\n'
    assert offline(code) == 'a = f(weights=None)  # needs network\nb = f(weights="imagenet")\n'
    with pytest.raises(ValueError, match="without"):
        offline("x = 1  # needs network")


@pytest.mark.parametrize("line, code", SNIPPETS, ids=[f"README.md:{line}" for line, _ in SNIPPETS])
def test_snippet_runs(line, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"readme_line_{line}"}
    exec(compile(offline(code), f"README.md:{line}", "exec"), namespace)
    out = capsys.readouterr().out
    if "plot_candidates(" in code:
        assert (tmp_path / "candidates.png").stat().st_size > 1000
        assert "1.92 2.55" in out
    if "decode_predictions(" in code:
        assert "espresso" in out.splitlines()[-1].split(")")[0]
    if "tol=1e-10" in code:
        assert "Num unique configs =  1000" in out
