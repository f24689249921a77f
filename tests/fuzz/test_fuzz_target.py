"""The atheris fuzz target runs over its seed corpus and a few hundred
mutations without finding a 5xx (the long run is tools/fuzz)."""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_fuzz_target_runs_clean(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(HERE, "corpus"), corpus)
    result = subprocess.run([sys.executable, os.path.join(HERE, "fuzz_sign.py"), str(corpus), "-runs=500",
                             "-timeout=10"], capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 500 runs" in result.stderr, result.stderr[-3000:]
    assert not [name for name in os.listdir(tmp_path) if name.startswith("crash-")]
