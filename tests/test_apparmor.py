"""The AppArmor profile in tools/apparmor compiles (apparmor_parser, without
loading it into the kernel: these machines have no AppArmor in the kernel)."""

import glob
import os
import shutil
import subprocess

import pytest

import helpers

PROFILES = sorted(glob.glob(os.path.join(helpers.REPO, "tools", "apparmor", "*")))


def test_there_is_a_profile():
    assert PROFILES


@pytest.mark.parametrize("profile", PROFILES, ids=os.path.basename)
def test_profile_compiles(profile):
    parser = shutil.which("apparmor_parser") or "/usr/sbin/apparmor_parser"
    assert os.path.exists(parser), "apparmor_parser missing: apt-get install apparmor"
    result = subprocess.run([parser, "-Q", "-K", profile], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with open(profile) as handle:
        text = handle.read()
    # The CA key is read-only for the service, and certificates go only to certs/.
    assert "deny /opt/anchor/CA/* w," in text
    assert "/opt/anchor/certs/* rw," in text
