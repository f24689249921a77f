"""public_key: key type and minimum size, for every key type Anchor knows."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ed448
from cryptography.x509.oid import NameOID

import helpers
from anchor.validators import ValidationError
from anchor.validators.keys import public_key
from anchor.x509.request import CertificateRequest

_REQUESTS = {}


def request_with_key(kind):
    """A request signed by a key of ``kind`` (cached per kind)."""
    if kind not in _REQUESTS:
        if kind == "dsa2048":
            csr = helpers.make_csr("a.example.com", key=dsa.generate_private_key(2048), hash_alg=hashes.SHA256())
        elif kind == "ed448":
            builder = x509.CertificateSigningRequestBuilder().subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com")]))
            csr = builder.sign(ed448.Ed448PrivateKey.generate(), None)
        else:
            csr = helpers.make_csr("a.example.com", key=helpers.private_key(kind))
        _REQUESTS[kind] = CertificateRequest(csr)
    return _REQUESTS[kind]


def run(request, allowed_keys):
    prepared = public_key.prepare_options(allowed_keys=allowed_keys)
    return public_key(csr=request, auth_result=None, conf=None, request=None, **prepared)


@pytest.mark.parametrize("kind, key_type, size", [
    ("rsa2048", "RSA", 2048),
    ("dsa2048", "DSA", 2048),
    ("p256", "EC", 256),
    ("p384", "EC", 384),
    ("ed25519", "Ed25519", 255),
    ("ed448", "Ed448", 448),
])
def test_request_reports_type_and_size(kind, key_type, size):
    request = request_with_key(kind)
    assert (request.public_key_type, request.public_key_size) == (key_type, size)


@pytest.mark.parametrize("kind, allowed", [
    ("rsa2048", {"RSA": 2048}),
    ("rsa2048", {"RSA": 1024, "EC": 384}),
    ("rsa2048", {"RSA": 0}),
    ("dsa2048", {"DSA": 2048}),
    ("dsa2048", {"DSA": 0, "RSA": 4096}),
    ("p256", {"EC": 256}),
    ("p256", {"EC": 0}),
    ("p384", {"EC": 384}),
    ("p384", {"EC": 256, "RSA": 2048}),
    ("ed25519", {"Ed25519": 255}),
    ("ed25519", {"Ed25519": 0}),
    ("ed448", {"Ed448": 448}),
    ("ed448", {"Ed448": 0, "Ed25519": 0}),
])
def test_public_key_accepts(kind, allowed):
    assert run(request_with_key(kind), allowed) is None


@pytest.mark.parametrize("kind, allowed, reason", [
    ("rsa2048", {"RSA": 2049}, "below"),
    ("rsa2048", {"RSA": 4096}, "below"),
    ("rsa2048", {"EC": 0, "DSA": 0}, "not allowed"),
    ("dsa2048", {"DSA": 3072}, "below"),
    ("dsa2048", {"RSA": 0}, "not allowed"),
    ("p256", {"EC": 384}, "below"),
    ("p256", {"RSA": 256}, "not allowed"),
    ("p384", {"EC": 521}, "below"),
    ("ed25519", {"Ed25519": 256}, "below"),
    ("ed25519", {"Ed448": 0, "EC": 0}, "not allowed"),
    ("ed448", {"Ed448": 449}, "below"),
    ("ed448", {"Ed25519": 0}, "not allowed"),
])
def test_public_key_refuses(kind, allowed, reason):
    with pytest.raises(ValidationError, match=reason):
        run(request_with_key(kind), allowed)


@pytest.mark.parametrize("allowed", [
    None,
    {},
    [],
    ["RSA"],
    {"rsa": 2048},
    {"ECDSA": 256},
    {"RSA": -1},
    {"RSA": "2048"},
    {"RSA": 2048.0},
    {"RSA": True},
    {"RSA": None},
    {"RSA": 2048, "EC": -256},
])
def test_public_key_bad_config(allowed):
    with pytest.raises(ValueError):
        public_key.prepare_options(allowed_keys=allowed)


def test_public_key_missing_option_is_a_config_error():
    with pytest.raises(ValueError):
        public_key.prepare_options()
