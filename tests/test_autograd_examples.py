"""The examples of the README section on fastbp.autograd run as written there."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastbp as fb

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Your own functions, losses and layers: `fastbp.autograd`"


def section_blocks() -> list[str]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


@pytest.mark.skipif(not README.exists(), reason="README.md not beside the tests")
def test_the_readme_examples_run(tmp_path):
    blocks = section_blocks()
    assert len(blocks) == 3                    # the cubic, the focal loss, the custom layer
    assert "x.grad == 14.0" in blocks[0] and "FunctionLayer" in blocks[2]
    env = {**os.environ, "PYTHONPATH": str(Path(fb.__file__).resolve().parent.parent)}
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
