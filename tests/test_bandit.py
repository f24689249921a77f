"""bandit finds nothing in the package (each accepted finding is justified
inline with a ``# nosec`` comment saying why)."""

import os
import subprocess
import sys

import helpers


def test_bandit_is_clean():
    bandit = os.path.join(os.path.dirname(sys.executable), "bandit")
    assert os.path.exists(bandit), "bandit missing: pip install -e '.[test]'"
    result = subprocess.run([bandit, "-q", "-r", os.path.join(helpers.REPO, "anchor")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
