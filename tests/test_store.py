"""Recording issued certificates."""

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from anchor.store import CertificateStore


def certificate(deployment):
    return deployment.ca_cert  # any certificate will do


def test_record_writes_pem_named_by_fingerprint(deployment):
    store = CertificateStore(deployment.output_dir)
    cert = certificate(deployment)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    path = store.record(cert, pem)
    assert os.path.basename(path) == cert.fingerprint(hashes.SHA256()).hex() + ".crt"
    with open(path, "rb") as handle:
        assert x509.load_pem_x509_certificate(handle.read()) == cert
    assert os.listdir(deployment.output_dir) == [os.path.basename(path)]


def test_failed_write_leaves_nothing(deployment, monkeypatch):
    store = CertificateStore(deployment.output_dir)
    cert = certificate(deployment)

    def failing_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("anchor.store.os.rename", failing_rename)
    with pytest.raises(OSError):
        store.record(cert, cert.public_bytes(serialization.Encoding.PEM))
    assert os.listdir(deployment.output_dir) == []


def test_output_path_must_be_a_directory(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        CertificateStore(str(tmp_path / "missing"))
