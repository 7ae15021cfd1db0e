"""The README's Python examples run and print what the README says they print.

Every ```python block that is followed by a ```text block is run as a script (in a
fresh folder, with ``import neurosim as ns`` available); each line of the text block
must appear in its output."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def examples_with_output() -> list[tuple[str, str]]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    pattern = re.compile(r"( *)```python\n((?:(?!```).)*?)\n *```\n(?:[^`]*?\n)?( *)```text\n(.*?)\n *```",
                         re.S)
    found = []
    for m in pattern.finditer(text):
        found.append((textwrap.dedent(m.group(2)), textwrap.dedent(m.group(4))))
    return found


EXAMPLES = examples_with_output()


def test_the_readme_has_examples_with_output():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code, expected", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_prints_what_the_readme_shows(code, expected, tmp_path):
    script = tmp_path / "example.py"
    script.write_text("import neurosim as ns\n" + code + "\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    printed = [line.strip() for line in proc.stdout.splitlines()]
    for line in expected.splitlines():
        assert line.strip() in printed, (line, proc.stdout)
