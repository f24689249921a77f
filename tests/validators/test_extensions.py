"""Extension validators: extensions, key_usage and ext_key_usage, each
accepting and refusing requests, with names from every accepted spelling."""

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

import helpers
from anchor.validators import ValidationError
from anchor.validators.extensions import ext_key_usage, extensions, key_usage
from anchor.x509 import names
from anchor.x509.request import CertificateRequest


def request_with(*extension_values, critical=False, **kwargs):
    return CertificateRequest(helpers.make_csr(
        "a.example.com", extensions=[(value, critical) for value in extension_values], **kwargs))


def run(validator, csr, **options):
    prepared = validator.prepare_options(**options)
    return validator(csr=csr, auth_result=None, conf=None, request=None, **prepared)


usage = helpers.key_usage


BC = x509.BasicConstraints(ca=False, path_length=None)
KU = usage(digital_signature=True, key_encipherment=True)
EKU = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
UNKNOWN = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")


# -- extensions ------------------------------------------------------

@pytest.mark.parametrize("allowed", [
    ["basicConstraints", "keyUsage", "extendedKeyUsage", "subjectAltName"],
    ["2.5.29.19", "2.5.29.15", "2.5.29.37", "2.5.29.17"],
    ["basicConstraints", "2.5.29.15", "extendedKeyUsage", "2.5.29.17", "nameConstraints"],
])
def test_extensions_accepts_listed(allowed):
    request = request_with(BC, KU, EKU, dns=["a.example.com"])
    assert run(extensions, request, allowed_extensions=allowed) is None
    # A request with no extension passes any list.
    assert run(extensions, request_with(), allowed_extensions=allowed) is None


@pytest.mark.parametrize("allowed, missing", [
    (["basicConstraints", "keyUsage", "extendedKeyUsage"], "subjectAltName"),
    (["basicConstraints", "keyUsage", "subjectAltName"], "extendedKeyUsage"),
    (["2.5.29.19", "2.5.29.37", "2.5.29.17"], "keyUsage"),
    (["keyUsage", "extendedKeyUsage", "subjectAltName"], "basicConstraints"),
    ([], "not allowed"),
])
def test_extensions_refuses_unlisted(allowed, missing):
    request = request_with(BC, KU, EKU, dns=["a.example.com"])
    with pytest.raises(ValidationError, match=missing):
        run(extensions, request, allowed_extensions=allowed)


def test_extensions_private_extension_by_oid():
    request = request_with(UNKNOWN, BC)
    assert run(extensions, request, allowed_extensions=["basicConstraints", "1.3.6.1.4.1.99999.1"]) is None
    with pytest.raises(ValidationError, match="1.3.6.1.4.1.99999.1"):
        run(extensions, request, allowed_extensions=["basicConstraints", "1.3.6.1.4.1.99999.2"])


@pytest.mark.parametrize("name", sorted(names.EXTENSION_NAMES))
def test_extensions_every_table_name_is_accepted_in_config(name):
    prepared = extensions.prepare_options(allowed_extensions=[name])
    assert prepared["allowed_extensions"] == frozenset({names.EXTENSION_NAMES[name]})


@pytest.mark.parametrize("allowed", [["KeyUsage"], ["key_usage"], ["subjectAlternativeName"], ["Key Usage"],
                                     ["keyUsage", "nonsense"], [""], ["1"], "keyUsage", [2]])
def test_extensions_bad_config(allowed):
    with pytest.raises(ValueError):
        extensions.prepare_options(allowed_extensions=allowed)


# -- key_usage ------------------------------------------------------

def test_key_usage_long_and_short_names():
    request = request_with(usage(digital_signature=True, key_encipherment=True))
    for allowed in (["Digital Signature", "Key Encipherment"], ["digitalSignature", "keyEncipherment"],
                    ["Digital Signature", "keyEncipherment", "Data Encipherment"]):
        assert run(key_usage, request, allowed_usage=allowed) is None
    for allowed in (["Digital Signature"], ["keyEncipherment"], ["Data Encipherment", "nonRepudiation"]):
        with pytest.raises(ValidationError):
            run(key_usage, request, allowed_usage=allowed)


@pytest.mark.parametrize("short", sorted(names.KEY_USAGES))
def test_key_usage_each_bit(short):
    long_name, attr = names.KEY_USAGES[short]
    bits = {attr: True}
    if short in ("encipherOnly", "decipherOnly"):
        bits["key_agreement"] = True  # only meaningful together with keyAgreement
    request = request_with(usage(**bits))
    needed = {short} | ({"keyAgreement"} if "key_agreement" in bits and short != "keyAgreement" else set())
    others = [name for name in names.KEY_USAGES if name not in needed]
    assert run(key_usage, request, allowed_usage=sorted(needed)) is None
    long_names = [names.KEY_USAGES[name][0] for name in sorted(needed)]
    assert run(key_usage, request, allowed_usage=long_names) is None
    with pytest.raises(ValidationError, match=short):
        run(key_usage, request, allowed_usage=others + [n for n in needed if n != short])


def test_key_usage_absent_extension_passes_empty_list():
    assert run(key_usage, request_with(), allowed_usage=[]) is None
    with pytest.raises(ValidationError):
        run(key_usage, request_with(usage(digital_signature=True)), allowed_usage=[])


@pytest.mark.parametrize("allowed", [["digital signature"], ["DigitalSignature"], ["Digital Signature", "x"],
                                     ["serverAuth"], "digitalSignature", [None]])
def test_key_usage_bad_config(allowed):
    with pytest.raises(ValueError):
        key_usage.prepare_options(allowed_usage=allowed)


# -- ext_key_usage ------------------------------------------------------

SHORT_EKU = ["serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping", "OCSPSigning",
             "anyExtendedKeyUsage"]
LONG_EKU = ["TLS Web Server Authentication", "TLS Web Client Authentication", "Code Signing",
            "E-mail Protection", "Time Stamping", "OCSP Signing", "Any Extended Key Usage"]
OID_EKU = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING,
           ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.TIME_STAMPING,
           ExtendedKeyUsageOID.OCSP_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]


@pytest.mark.parametrize("index", range(len(SHORT_EKU)))
def test_ext_key_usage_every_spelling(index):
    oid = OID_EKU[index]
    request = request_with(x509.ExtendedKeyUsage([oid]))
    for spelling in (SHORT_EKU[index], LONG_EKU[index], oid.dotted_string):
        assert run(ext_key_usage, request, allowed_usage=[spelling]) is None
    others = [name for i, name in enumerate(SHORT_EKU) if i != index]
    with pytest.raises(ValidationError, match=oid.dotted_string):
        run(ext_key_usage, request, allowed_usage=others)


def test_ext_key_usage_all_purposes_must_be_allowed():
    request = request_with(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]))
    assert run(ext_key_usage, request, allowed_usage=["TLS Web Server Authentication", "clientAuth"]) is None
    with pytest.raises(ValidationError, match=ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string):
        run(ext_key_usage, request, allowed_usage=["serverAuth"])
    with pytest.raises(ValidationError, match=ExtendedKeyUsageOID.SERVER_AUTH.dotted_string):
        run(ext_key_usage, request, allowed_usage=["TLS Web Client Authentication"])


def test_ext_key_usage_private_oid():
    private = x509.ObjectIdentifier("1.3.6.1.4.1.99999.3")
    request = request_with(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, private]))
    assert run(ext_key_usage, request, allowed_usage=["serverAuth", "1.3.6.1.4.1.99999.3"]) is None
    with pytest.raises(ValidationError, match="1.3.6.1.4.1.99999.3"):
        run(ext_key_usage, request, allowed_usage=["serverAuth", "1.3.6.1.4.1.99999.4"])


def test_ext_key_usage_absent_extension_passes():
    assert run(ext_key_usage, request_with(), allowed_usage=["serverAuth"]) is None


@pytest.mark.parametrize("allowed", [["webServer"], ["serverauth"], ["TLS Web Server"], ["Digital Signature"],
                                     ["serverAuth", "nonsense"], "serverAuth", [1]])
def test_ext_key_usage_bad_config(allowed):
    with pytest.raises(ValueError):
        ext_key_usage.prepare_options(allowed_usage=allowed)
