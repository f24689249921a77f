"""Tests for anchor.x509.cmc: unwrapping PKCS#10 requests from CMC."""

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_modules import rfc5652, rfc6402

from anchor.x509.cmc import CMCError, looks_like_cmc, unwrap_cmc
from cmc_wrappers import (_content_info, _crm, _orm, _pkidata, _signed_data, _tcr, shape1,
                          shape2, shape3)

DER = serialization.Encoding.DER


def _make_csr(key):
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server.example.com")])
    ).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("server.example.com"),
                                     x509.DNSName("www.example.com")]),
        critical=False,
    )
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def rsa_csr():
    return _make_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_csr():
    return _make_csr(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(params=["rsa", "ec"])
def csr(request, rsa_csr, ec_csr):
    return {"rsa": rsa_csr, "ec": ec_csr}[request.param]


SHAPES = [shape1, shape2, shape3]


# --- accepted requests ----------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=["signeddata", "contentinfo", "bare"])
def test_unwrap_valid_shapes(csr, shape):
    csr_der = csr.public_bytes(DER)
    result = unwrap_cmc(shape(csr_der))
    assert isinstance(result, bytes)
    assert result == csr_der  # exact original bytes
    loaded = x509.load_der_x509_csr(result)
    assert loaded.public_bytes(DER) == csr_der
    assert loaded.is_signature_valid


@pytest.mark.parametrize("shape", SHAPES, ids=["signeddata", "contentinfo", "bare"])
def test_looks_like_cmc_valid_shapes(csr, shape):
    assert looks_like_cmc(shape(csr.public_bytes(DER))) is True


def test_signeddata_encodes_as_expected(rsa_csr):
    info, rest = decoder.decode(shape1(rsa_csr.public_bytes(DER)),
                                asn1Spec=rfc5652.ContentInfo())
    assert rest == b""
    sd, _ = decoder.decode(bytes(info["content"]), asn1Spec=rfc5652.SignedData())
    assert sd["version"] == 3
    assert not sd["certificates"].isValue
    assert len(sd["signerInfos"]) == 0


# --- refused requests -----------------------------------------------------

def _assert_rejected(data, match=None):
    with pytest.raises(CMCError, match=match):
        unwrap_cmc(data)


def test_two_requests(rsa_csr, ec_csr):
    pki = _pkidata([_tcr(rsa_csr.public_bytes(DER), 1), _tcr(ec_csr.public_bytes(DER), 2)])
    for data in (pki, _signed_data(pki), _content_info(rfc6402.id_cct_PKIData, pki)):
        _assert_rejected(data, "contains 2 certification requests; exactly one")


def test_zero_requests():
    pki = _pkidata([])
    for data in (pki, _signed_data(pki)):
        _assert_rejected(data, "contains 0 certification requests")


def test_crm_request():
    _assert_rejected(_signed_data(_pkidata([_crm()])), "request type 'crm'")


def test_orm_request():
    _assert_rejected(_pkidata([_orm()]), "request type 'orm'")


def test_unknown_content_type(rsa_csr):
    data = _content_info(rfc5652.id_data, encoder.encode(univ.OctetString(b"x")))
    _assert_rejected(data, r"unsupported CMC content type 1\.2\.840\.113549\.1\.7\.1")
    assert looks_like_cmc(data)  # it is a ContentInfo, just not one we accept


def test_wrong_econtent_type(rsa_csr):
    pki = _pkidata([_tcr(rsa_csr.public_bytes(DER))])
    _assert_rejected(_signed_data(pki, e_content_type=rfc5652.id_data),
                     "encapsulated content type")


def test_missing_econtent(rsa_csr):
    pki = _pkidata([_tcr(rsa_csr.public_bytes(DER))])
    _assert_rejected(_signed_data(pki, with_content=False), "no encapsulated content")


@pytest.mark.parametrize("shape", SHAPES, ids=["signeddata", "contentinfo", "bare"])
def test_trailing_garbage(rsa_csr, shape):
    data = shape(rsa_csr.public_bytes(DER)) + b"\x00garbage"
    _assert_rejected(data, "trailing data")
    assert not looks_like_cmc(data)


def test_trailing_garbage_inside_econtent(rsa_csr):
    pki = _pkidata([_tcr(rsa_csr.public_bytes(DER))]) + b"\x05\x00"
    _assert_rejected(_signed_data(pki), "trailing data")


@pytest.mark.parametrize("data", [
    b"",
    b"\x00",
    os.urandom(64),
    b"\x30\x84\xff\xff\xff\xff",
    b"-----BEGIN CERTIFICATE REQUEST-----",
], ids=["empty", "zero", "random", "huge-length", "pem"])
def test_garbage(data):
    _assert_rejected(data, "^malformed CMC request$")
    assert not looks_like_cmc(data)


@pytest.mark.parametrize("shape", SHAPES, ids=["signeddata", "contentinfo", "bare"])
def test_truncated(rsa_csr, shape):
    data = shape(rsa_csr.public_bytes(DER))
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        _assert_rejected(data[:cut])
        assert not looks_like_cmc(data[:cut])


def test_deeply_nested():
    data = b""
    for _ in range(20000):
        n = len(data)
        length = bytes([n]) if n < 0x80 else bytes([0x84]) + n.to_bytes(4, "big")
        data = b"\x30" + length + data
    _assert_rejected(data)
    assert not looks_like_cmc(data)


def test_plain_csr(csr):
    csr_der = csr.public_bytes(DER)
    assert not looks_like_cmc(csr_der)
    _assert_rejected(csr_der)


def test_certificate():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_der = cert.public_bytes(DER)
    assert not looks_like_cmc(cert_der)
    _assert_rejected(cert_der)


def _tlv(tag, content):
    """Hand-build one DER TLV (used where pyasn1 would normalise the encoding)."""
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _raw_pkidata(csr_bytes):
    empty = _tlv(0x30, b"")
    tcr = _tlv(0xA0, _tlv(0x02, b"\x01") + csr_bytes)
    return _tlv(0x30, empty + _tlv(0x30, tcr) + empty + empty)


def test_hand_built_pkidata(rsa_csr):
    csr_der = rsa_csr.public_bytes(DER)
    assert _raw_pkidata(csr_der) == shape3(csr_der)
    assert unwrap_cmc(_raw_pkidata(csr_der)) == csr_der


def test_non_minimal_length_csr_is_refused(rsa_csr):
    """pyasn1 accepts a non-minimal length; re-encoding would silently fix it."""
    csr_der = rsa_csr.public_bytes(DER)
    assert csr_der[:2] == b"\x30\x82"
    non_der = b"\x30\x83\x00" + csr_der[2:]
    _assert_rejected(_raw_pkidata(non_der), "not DER encoded")


def test_indefinite_length_csr_is_refused(rsa_csr):
    csr_der = rsa_csr.public_bytes(DER)
    ber = b"\x30\x80" + csr_der[4:] + b"\x00\x00"
    _assert_rejected(_raw_pkidata(ber))


def test_recursion_error_is_wrapped(monkeypatch, rsa_csr):
    import anchor.x509.cmc as cmc

    def explode(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    data = shape1(rsa_csr.public_bytes(DER))
    monkeypatch.setattr(cmc.der_decoder, "decode", explode)
    _assert_rejected(data, "^malformed CMC request$")
    assert looks_like_cmc(data) is False


def test_errors_are_valueerrors():
    assert issubclass(CMCError, ValueError)
    with pytest.raises(ValueError):
        unwrap_cmc(b"nonsense")
