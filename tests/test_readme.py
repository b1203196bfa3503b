"""The README's quickstart runs as written."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastbp as fb

README = Path(__file__).resolve().parent.parent / "README.md"
PACKAGE_ROOT = str(Path(fb.__file__).resolve().parent.parent)


@pytest.mark.skipif(not README.exists(), reason="README.md not beside the tests")
def test_quickstart_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python block"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "gradcheck passed" in result.stdout
    assert (tmp_path / "digits.npz").exists()
