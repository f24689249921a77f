"""The certificate the local (``anchor``) backend signs, checked field by field."""

import datetime
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

import helpers
from conftest import make_deployment, webtest_app


def issue(client, csr):
    response = client.post("/v1/sign/default", {
        "user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
        "csr": helpers.csr_pem(csr).decode()}, expect_errors=True)
    assert response.status_int == 200, response.text
    return x509.load_pem_x509_certificate(response.body), response.body


def openssl_verify(ca_path, pem, tmp_path):
    cert_path = tmp_path / "issued.pem"
    cert_path.write_bytes(pem)
    return subprocess.run(["openssl", "verify", "-CAfile", ca_path, str(cert_path)],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("kind, signature_type", [
    ("rsa2048", rsa.RSAPublicKey),
    ("p256", ec.EllipticCurvePublicKey),
    ("p384", ec.EllipticCurvePublicKey),
    ("ed25519", ed25519.Ed25519PublicKey),
])
def test_certificate_field_by_field(tmp_path, kind, signature_type):
    deployment = make_deployment(str(tmp_path / "d"), kind)
    client = webtest_app(deployment)
    subject_key = helpers.private_key("rsa2048")
    csr = helpers.make_csr(
        "svc.example.com", dns=["svc.example.com", "alt.example.com"], key=subject_key,
        extensions=[
            (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
        ])
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    certificate, pem = issue(client, csr)
    after = datetime.datetime.now(datetime.timezone.utc)
    ca = deployment.ca_cert

    helpers.assert_certificate_form(certificate, ca, csr, subject_key, before, after)
    extensions = certificate.extensions
    san = extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["svc.example.com", "alt.example.com"]
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False

    assert isinstance(ca.public_key(), signature_type)
    certificate.verify_directly_issued_by(ca)
    if kind != "ed25519":
        assert certificate.signature_hash_algorithm.name == "sha256"
    result = openssl_verify(deployment.ca_cert_path, pem, tmp_path)
    assert result.returncode == 0 and ": OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("signing_hash", ["sha224", "sha384", "sha512"])
def test_signing_hash_is_used(tmp_path, signing_hash):
    deployment = make_deployment(str(tmp_path), "p256", signing_hash=signing_hash)
    certificate, _ = issue(webtest_app(deployment), helpers.make_csr())
    assert certificate.signature_hash_algorithm.name == signing_hash


def test_valid_hours_and_backdate_are_configurable(tmp_path):
    deployment = make_deployment(str(tmp_path), "p256", valid_hours=2.5, backdate_minutes=0)
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate, _ = issue(webtest_app(deployment), helpers.make_csr())
    assert abs(certificate.not_valid_before_utc - now) < datetime.timedelta(seconds=5)
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc
            == datetime.timedelta(hours=2, minutes=30))


def test_serials_are_distinct(client):
    serials = {issue(client, helpers.make_csr())[0].serial_number for _ in range(20)}
    assert len(serials) == 20


def test_aki_computed_from_ca_key_when_ca_has_no_ski(tmp_path):
    deployment = make_deployment(str(tmp_path), "p256")
    helpers.make_ca(os.path.dirname(deployment.ca_cert_path) + "-noski", "p256", with_ski=False)
    ca_dir = os.path.dirname(deployment.ca_cert_path) + "-noski"
    config = helpers.sample_config(ca_dir, deployment.output_dir)
    deployment.write_config(config)
    certificate, _ = issue(webtest_app(deployment), helpers.make_csr())
    with open(os.path.join(ca_dir, "root-ca.crt"), "rb") as handle:
        ca = x509.load_pem_x509_certificate(handle.read())
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki == x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())


def test_unknown_noncritical_extension_is_dropped(client):
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    csr = helpers.make_csr(extensions=[(unknown, False)])
    certificate, _ = issue(client, csr)
    oids = [ext.oid for ext in certificate.extensions]
    assert unknown.oid not in oids
    assert ExtensionOID.SUBJECT_KEY_IDENTIFIER in oids


def test_unknown_critical_extension_is_refused(client, deployment):
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    csr = helpers.make_csr(extensions=[(unknown, True)])
    response = client.post("/v1/sign/default", {
        "user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
        "csr": helpers.csr_pem(csr).decode()}, expect_errors=True)
    assert response.status_int == 400
    assert deployment.issued_files() == []


def test_request_key_identifiers_are_replaced(client):
    # A client cannot choose the AKI (which would point at another CA) or the SKI.
    bogus_ski = x509.SubjectKeyIdentifier(b"\x01" * 20)
    csr = helpers.make_csr(extensions=[(bogus_ski, False)])
    certificate, _ = issue(client, csr)
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski != bogus_ski
    assert len([e for e in certificate.extensions if e.oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER]) == 1


def test_ca_key_is_not_read_per_request(deployment, monkeypatch):
    client = webtest_app(deployment)
    real_open = open

    def guarded_open(path, *args, **kwargs):
        assert "root-ca" not in str(path), "CA file read on the request path: %s" % path
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    issue(client, helpers.make_csr())


def test_certificate_digest_names_the_file(client, deployment):
    certificate, pem = issue(client, helpers.make_csr())
    name = certificate.fingerprint(hashes.SHA256()).hex() + ".crt"
    assert deployment.issued_files() == [name]
    with open(os.path.join(deployment.output_dir, name), "rb") as handle:
        assert handle.read() == pem
