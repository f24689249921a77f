"""tools/bootstrap_ca.py, the test-CA maker of README command 1."""

import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers

SCRIPT = os.path.join(helpers.REPO, "tools", "bootstrap_ca.py")


def bootstrap(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_makes_a_ca_the_service_accepts(tmp_path, kind):
    result = bootstrap(str(tmp_path / "CA"), "--key-type", kind)
    assert result.returncode == 0, result.stderr
    key_path = tmp_path / "CA" / "root-ca-unwrapped.key"
    assert key_path.stat().st_mode & 0o777 == 0o400
    cert = x509.load_pem_x509_certificate((tmp_path / "CA" / "root-ca.crt").read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    cert.verify_directly_issued_by(cert)


def test_never_overwrites(tmp_path):
    assert bootstrap(str(tmp_path), "--key-type", "p256").returncode == 0
    before = (tmp_path / "root-ca.crt").read_bytes()
    result = bootstrap(str(tmp_path), "--key-type", "p256")
    assert result.returncode == 1 and "exists" in result.stderr
    assert bootstrap(str(tmp_path), "--key-type", "p256", "--if-missing").returncode == 0
    assert (tmp_path / "root-ca.crt").read_bytes() == before
