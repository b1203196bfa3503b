"""README's fastbp.sklearn example runs as written."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed")
import fastbp  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.skipif(not README.exists(), reason="README.md not beside the tests")
def test_readme_example_runs(tmp_path):
    blocks = [block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
              if "from fastbp.sklearn import" in block]
    assert len(blocks) == 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(fastbp.__file__).parents[1]), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    scores = [float(s) for s in re.findall(r"\d\.\d+", result.stdout)]
    assert len(scores) == 3 and min(scores) > 0.85, result.stdout
