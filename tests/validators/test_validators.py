"""The validators this release ships: common_name, source_cidrs,
standards_compliance and the always-on ca_status, each passing and failing."""

import ipaddress
import subprocess

import pytest
import webob
from cryptography import x509
from cryptography.x509.oid import NameOID

import helpers
from anchor.validators import ValidationError
from anchor.validators.extensions import ca_status, critical_extensions_understood
from anchor.validators.names import common_name
from anchor.validators.network import source_cidrs
from anchor.validators.standards import standards_compliance
from anchor.x509.request import CertificateRequest


def request_for(*args, **kwargs):
    return CertificateRequest(helpers.make_csr(*args, **kwargs))


def prepared(validator, **options):
    return validator.prepare_options(**options)


NAME_OPTIONS = {"allowed_domains": [".example.com", ".Example.ORG."], "allowed_networks": ["10.0.0.0/8"]}


@pytest.mark.parametrize("cn", ["a.example.com", "A.B.EXAMPLE.COM", "SERVER1.EXAMPLE.COM.", "x.example.org",
                                "10.1.2.3"])
def test_common_name_accepts(cn):
    common_name(csr=request_for(cn), **prepared(common_name, **NAME_OPTIONS))


@pytest.mark.parametrize("cn", ["example.com", "evilexample.com", "a.example.net", "10.0.0.0.example.net",
                                "192.168.1.1", "a.example.com.evil.net"])
def test_common_name_refuses(cn):
    with pytest.raises(ValidationError):
        common_name(csr=request_for(cn), **prepared(common_name, **NAME_OPTIONS))


def test_common_name_requires_one_cn_without_san():
    options = prepared(common_name, **NAME_OPTIONS)
    with pytest.raises(ValidationError, match="no common name"):
        common_name(csr=request_for(cn=None), **options)
    common_name(csr=request_for(cn=None, dns=["a.example.com"]), **options)
    two = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "b.example.com")])
    with pytest.raises(ValidationError, match="2 common names"):
        common_name(csr=request_for(subject=two), **options)


def test_common_name_allow_any():
    options = prepared(common_name, allow_any=True)
    common_name(csr=request_for("anything.example.net"), **options)
    with pytest.raises(ValidationError):  # addresses still need a network
        common_name(csr=request_for("10.1.1.1"), **options)


def test_prepared_options_are_not_the_config_lists():
    config = {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]}
    options = prepared(common_name, **config)
    common_name(csr=request_for("a.example.com"), **options)
    assert config == {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]}


def fake_request(address, forwarded=None):
    environ = {"REMOTE_ADDR": address}
    if forwarded:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return webob.Request.blank("/", environ)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "10.20.30.40"])
def test_source_cidrs_accepts(address):
    options = prepared(source_cidrs, cidrs=["127.0.0.0/8", "::1/128", "10.20.0.0/16"])
    source_cidrs(csr=None, request=fake_request(address), **options)


@pytest.mark.parametrize("address, forwarded", [("192.0.2.1", None), ("192.0.2.1", "127.0.0.1"),
                                                ("", None), ("not-an-ip", None), ("::2", None)])
def test_source_cidrs_refuses(address, forwarded):
    options = prepared(source_cidrs, cidrs=["127.0.0.0/8", "::1/128"])
    with pytest.raises(ValidationError):
        source_cidrs(csr=None, request=fake_request(address, forwarded), **options)


STANDARDS = prepared(standards_compliance)


def test_standards_accepts_a_plain_request():
    standards_compliance(csr=request_for("a.example.com", dns=["a.example.com", "*.b.example.com"]),
                         **STANDARDS)


@pytest.mark.parametrize("dns", ["bad_label.example.com", "-lead.example.com", "trail-.example.com",
                                 "a." + "x" * 64 + ".com", "a.*.example.com", "*", "w*.example.com",
                                 "a..example.com"])
def test_standards_refuses_bad_dns_labels(dns):
    with pytest.raises(ValidationError):
        standards_compliance(csr=request_for("a.example.com", dns=[dns]), **STANDARDS)


def test_standards_label_re_is_configurable():
    options = prepared(standards_compliance, label_re=r"^[a-z0-9_-]{1,63}$")
    standards_compliance(csr=request_for("a.example.com", dns=["bad_label.example.com"]), **options)


def test_standards_requires_critical_san_with_empty_subject():
    empty = x509.Name([])
    with pytest.raises(ValidationError, match="no subjectAltName"):
        standards_compliance(csr=request_for(subject=empty), **STANDARDS)
    with pytest.raises(ValidationError, match="critical"):
        standards_compliance(csr=request_for(subject=empty, dns=["a.example.com"]), **STANDARDS)
    san = x509.SubjectAlternativeName([x509.DNSName("a.example.com")])
    standards_compliance(csr=request_for(subject=empty, extensions=[(san, True)]), **STANDARDS)


def test_standards_requires_critical_basic_constraints():
    bc = x509.BasicConstraints(ca=False, path_length=None)
    with pytest.raises(ValidationError, match="basicConstraints"):
        standards_compliance(csr=request_for(extensions=[(bc, False)]), **STANDARDS)
    standards_compliance(csr=request_for(extensions=[(bc, True)]), **STANDARDS)


def test_standards_refuses_duplicate_extensions_added_by_a_fixup():
    request = request_for(dns=["a.example.com"])
    doubled = request.replace(extensions=list(request.extensions) * 2)
    with pytest.raises(ValidationError, match="twice"):
        standards_compliance(csr=doubled, **STANDARDS)


@pytest.mark.parametrize("digest", ["sha1", "md5"])
def test_standards_refuses_weak_signed_requests(tmp_path, digest):
    # cryptography no longer signs with these, so the request comes from openssl.
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(helpers.key_pem(helpers.private_key("rsa2048")))
    pem = subprocess.run(["openssl", "req", "-new", "-key", str(key_path), "-" + digest,
                          "-subj", "/CN=a.example.com"], capture_output=True, check=True, timeout=30).stdout
    request = CertificateRequest(x509.load_pem_x509_csr(pem))
    with pytest.raises(ValidationError, match=digest):
        standards_compliance(csr=request, **STANDARDS)


def test_standards_refuses_a_broken_signature():
    der = bytearray(helpers.csr_der(helpers.make_csr("a.example.com")))
    der[-5] ^= 0x01  # flip a bit of the signature
    request = CertificateRequest(x509.load_der_x509_csr(bytes(der)))
    with pytest.raises(ValidationError, match="signature"):
        standards_compliance(csr=request, **STANDARDS)


@pytest.mark.parametrize("extension", [
    x509.BasicConstraints(ca=True, path_length=None),
    x509.KeyUsage(False, False, False, False, False, True, False, False, False),
    x509.KeyUsage(False, False, False, False, False, False, True, False, False),
])
def test_ca_status_refuses_ca_requests(extension):
    with pytest.raises(ValidationError):
        ca_status(csr=request_for(extensions=[(extension, True)]))


def test_ca_status_accepts_end_entity_requests():
    ca_status(csr=request_for(extensions=[(x509.BasicConstraints(ca=False, path_length=None), True)]))
    ca_status(csr=request_for())


def test_ca_status_refuses_ca_requested_true_in_config():
    with pytest.raises(ValueError):
        ca_status.prepare_options(ca_requested=True)
    assert ca_status.prepare_options(ca_requested=False) == {}


def test_critical_unknown_extension_refused_known_accepted():
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00")
    with pytest.raises(ValidationError):
        critical_extensions_understood(csr=request_for(extensions=[(unknown, True)]))
    critical_extensions_understood(csr=request_for(extensions=[(unknown, False)]))
    critical_extensions_understood(
        csr=request_for(extensions=[(x509.BasicConstraints(ca=False, path_length=None), True)]))


def test_request_model_exposes_names_and_key():
    key = helpers.private_key("p384")
    request = request_for("a.example.com", dns=["a.example.com"], ips=[ipaddress.ip_address("10.0.0.1")],
                          key=key)
    assert request.common_names == ["a.example.com"]
    assert request.dns_names == ["a.example.com"]
    assert request.ip_addresses == [ipaddress.ip_address("10.0.0.1")]
    assert request.public_key_type == "EC" and request.public_key_size == 384
    assert request.signature_hash_name == "sha256" and request.signature_valid
    assert request.extension("subjectAltName") is not None
    assert request.extension("2.5.29.17") is not None
    assert request.extension("keyUsage") is None
