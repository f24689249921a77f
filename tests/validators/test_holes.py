"""Holes of the original Anchor, one test (or parametrized test) each, and
the request shapes that used to crash it."""

import copy
import ipaddress
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.type import char, univ
from pyasn1_modules import rfc2986, rfc5280

import helpers
from anchor import app as anchor_app
from anchor import settings
from anchor.auth import AuthResult
from anchor.validators import ValidationError
from anchor.validators.extensions import ext_key_usage, extensions, key_usage
from anchor.validators.keys import public_key
from anchor.validators.names import (alternative_names, alternative_names_ip, blacklist_names,
                                     common_name, whitelist_names)
from anchor.x509.request import CertificateRequest
from conftest import webtest_app


def request_for(*args, **kwargs):
    return CertificateRequest(helpers.make_csr(*args, **kwargs))


def run(validator, csr, options):
    prepared = validator.prepare_options(**options)
    return validator(csr=csr, auth_result=AuthResult("alice"), conf=None, request=None, **prepared)


def refused(validator, csr, options):
    with pytest.raises(ValidationError):
        run(validator, csr, options)


def sign(app, csr, ra="default"):
    return app.post("/v1/sign/%s" % ra, {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
                                         "csr": helpers.csr_pem(csr).decode()}, expect_errors=True)


usage = helpers.key_usage


# -- 1. case and trailing dot --------------------------------------------------

@pytest.mark.parametrize("name", ["SERVER1.EXAMPLE.COM.", "Server1.Example.Com", "server1.example.com."])
def test_hole1_domain_matching_ignores_case_and_one_trailing_dot(name):
    """Hole 1: domain matching is case-insensitive and ignores one trailing dot,
    in the request and in the configuration."""
    for domains in ([".example.com"], [".EXAMPLE.COM."]):
        options = {"allowed_domains": domains}
        assert run(common_name, request_for(name), options) is None
        assert run(alternative_names, request_for("x.example.com", dns=[name]), options) is None
        assert run(alternative_names_ip, request_for("x.example.com", dns=[name]), options) is None
    for entry in ("server1.example.com", "SERVER1.EXAMPLE.COM.", "%.example.com", "%.EXAMPLE.com."):
        options = {"names": [entry], "allow_cn_id": True, "allow_dns_id": True}
        assert run(whitelist_names, request_for(name), options) is None
        assert run(whitelist_names, request_for(cn=None, dns=[name]), options) is None
    for entry in ("example.com", ".EXAMPLE.COM.", "Server1.example.com"):
        refused(blacklist_names, request_for(name), {"domains": [entry]})
        refused(blacklist_names, request_for("ok.example.org", dns=[name]), {"domains": [entry]})
    # Only one trailing dot is ignored.
    refused(common_name, request_for("server1.example.com.."), {"allowed_domains": [".example.com"]})


# -- 2. CIDR ranges in whitelist_names ------------------------------------------

def test_hole2_whitelist_cidr_ranges():
    """Hole 2: an IP inside an allowed CIDR range in whitelist_names passes, as a
    SAN IP (allow_ip_id) and as a CN (allow_cn_id); an IP outside fails."""
    names = ["www.example.com", "10.20.0.0/16", "2001:db8:1::/48"]
    ip_options = {"names": names, "allow_ip_id": True}
    cn_options = {"names": names, "allow_cn_id": True}
    for inside in ("10.20.0.1", "10.20.255.254", "2001:db8:1::99"):
        assert run(whitelist_names, request_for(cn=None, ips=[ipaddress.ip_address(inside)]), ip_options) is None
        assert run(whitelist_names, request_for(inside), cn_options) is None
    for outside in ("10.21.0.1", "10.19.255.255", "2001:db8:2::1"):
        refused(whitelist_names, request_for(cn=None, ips=[ipaddress.ip_address(outside)]), ip_options)
        refused(whitelist_names, request_for(outside), cn_options)
    # One address out of range among several in range is enough to refuse.
    mixed = [ipaddress.ip_address("10.20.1.1"), ipaddress.ip_address("10.21.1.1")]
    refused(whitelist_names, request_for(cn=None, ips=mixed), ip_options)


# -- 3. configuration is never modified -------------------------------------------

def snapshot(value):
    """A comparable deep copy of ``value``, looking inside prepared option objects."""
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return ("dict", sorted((repr(key), snapshot(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [snapshot(item) for item in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(snapshot(item)) for item in value))
    if isinstance(value, re.Pattern):
        return ("re", value.pattern, value.flags)
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ())]
    attributes = dict(getattr(value, "__dict__", {}))
    attributes.update({name: getattr(value, name) for name in slots if hasattr(value, name)})
    if not attributes:
        return repr(value)
    return (type(value).__name__, sorted((name, snapshot(item)) for name, item in attributes.items()))


POLICY = {
    "common_name": {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]},
    "alternative_names_ip": {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]},
    "whitelist_names": {"names": ["www.example.com", "%.api.example.com", "10.1.0.0/16"],
                        "allow_cn_id": True, "allow_dns_id": True, "allow_ip_id": True},
    "blacklist_names": {"domains": ["bad.example.com"]},
    "key_usage": {"allowed_usage": ["Digital Signature", "keyEncipherment"]},
    "ext_key_usage": {"allowed_usage": ["serverAuth", "TLS Web Client Authentication", "1.3.6.1.4.1.99999.1"]},
    "extensions": {"allowed_extensions": ["keyUsage", "extendedKeyUsage", "2.5.29.17", "basicConstraints"]},
    "public_key": {"allowed_keys": {"EC": 256, "RSA": 2048}},
    "source_cidrs": {"cidrs": ["127.0.0.0/8"]},
    "standards_compliance": {},
}


def test_hole3_configuration_is_not_modified_by_requests(deployment, monkeypatch):
    """Hole 3: a validator never modifies its configured option lists; after many
    requests, accepted and refused, the config dict, config.json and the RA's
    prepared options are unchanged and the policy answers as before."""
    config = deployment.config(validators=copy.deepcopy(POLICY))
    original_config = copy.deepcopy(config)
    deployment.write_config(config)
    with open(deployment.config_path, "rb") as handle:
        original_file = handle.read()

    built = []
    real_build = anchor_app.build_authorities
    monkeypatch.setattr(anchor_app, "build_authorities", lambda conf: built.append(real_build(conf)) or built[-1])
    app = webtest_app(deployment)
    (authorities,) = built
    ra = authorities["default"]
    prepared_before = snapshot([(v.name, v.options) for v in ra.validators])
    raw_before = snapshot([(v.name, v.options) for v in ra.settings.validators])

    good_ku = usage(digital_signature=True, key_encipherment=True)
    server = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    requests = [
        (helpers.make_csr("www.example.com", dns=["www.example.com"], extensions=[(good_ku, False), (server, False)]),
         200),
        (helpers.make_csr("www.example.com", extensions=[(usage(data_encipherment=True), False)]), 400),
        (helpers.make_csr("www.example.com", extensions=[(usage(digital_signature=True, key_agreement=True), False)]),
         400),
        (helpers.make_csr("x.api.example.com", extensions=[
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)]), 400),
        (helpers.make_csr("x.api.example.com", extensions=[
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False), (good_ku, False)]), 200),
        (helpers.make_csr("bad.example.com"), 400),
        (helpers.make_csr("www.example.com", ips=[ipaddress.ip_address("10.1.2.3")]), 200),
        (helpers.make_csr("www.example.com", ips=[ipaddress.ip_address("10.2.2.3")]), 400),
        (helpers.make_csr("www.example.com", key=helpers.private_key("ed25519")), 400),
        (helpers.make_csr("www.example.com", extensions=[(x509.OCSPNoCheck(), False)]), 400),
    ]
    for _ in range(3):
        for csr, status in requests:
            response = sign(app, csr)
            assert response.status_int == status, response.text

    assert config == original_config
    assert config["registration_authority"]["default"]["validators"] == POLICY
    with open(deployment.config_path, "rb") as handle:
        assert handle.read() == original_file
    assert json.loads(original_file)["registration_authority"]["default"]["validators"] == POLICY
    assert snapshot([(v.name, v.options) for v in ra.validators]) == prepared_before
    assert snapshot([(v.name, v.options) for v in ra.settings.validators]) == raw_before
    assert [dict(v.options) for v in ra.settings.validators] == list(POLICY.values())


@pytest.mark.parametrize("validator, options, accepted, refused_request", [
    (key_usage, {"allowed_usage": ["Digital Signature", "keyEncipherment"]},
     request_for(extensions=[(usage(digital_signature=True), False)]),
     request_for(extensions=[(usage(data_encipherment=True), False)])),
    (ext_key_usage, {"allowed_usage": ["TLS Web Server Authentication", "clientAuth", "1.2.3.4"]},
     request_for(extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)]),
     request_for(extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)])),
    (extensions, {"allowed_extensions": ["keyUsage", "2.5.29.17"]},
     request_for(dns=["a.example.com"]),
     request_for(extensions=[(x509.BasicConstraints(ca=False, path_length=None), True)])),
    (common_name, {"allowed_domains": [".example.com", ".Example.ORG."], "allowed_networks": ["10.0.0.0/8"]},
     request_for("a.example.org"), request_for("a.example.net")),
    (alternative_names, {"allowed_domains": [".example.com"]},
     request_for(dns=["a.example.com"]), request_for(dns=["a.example.net"])),
    (blacklist_names, {"domains": ["bad.example.com", ".worse.example.com"]},
     request_for("a.example.com"), request_for("x.worse.example.com")),
    (whitelist_names, {"names": ["a.example.com", "%.b.example.com", "10.0.0.0/8"], "allow_cn_id": True},
     request_for("x.b.example.com"), request_for("x.c.example.com")),
    (public_key, {"allowed_keys": {"EC": 256, "RSA": 2048}},
     request_for(), request_for(key=helpers.private_key("ed25519"))),
])
def test_hole3_prepare_options_and_calls_leave_lists_alone(validator, options, accepted, refused_request):
    """Hole 3 (direct): prepare_options and many calls of the validator leave the
    configured lists unchanged and the prepared options answering the same."""
    original = copy.deepcopy(options)
    prepared = validator.prepare_options(**options)
    prepared_before = snapshot(prepared)
    for _ in range(50):
        assert validator(csr=accepted, auth_result=None, conf=None, request=None, **prepared) is None
        with pytest.raises(ValidationError):
            validator(csr=refused_request, auth_result=None, conf=None, request=None, **prepared)
    assert options == original
    assert snapshot(prepared) == prepared_before
    # Changing the caller's lists afterwards does not change the prepared policy either.
    for value in options.values():
        if isinstance(value, list):
            value.clear()
        elif isinstance(value, dict):
            value.clear()
    validator(csr=accepted, auth_result=None, conf=None, request=None, **prepared)
    with pytest.raises(ValidationError):
        validator(csr=refused_request, auth_result=None, conf=None, request=None, **prepared)


# -- 4. label boundary ------------------------------------------------------

@pytest.mark.parametrize("name", ["evilexample.com", "www.evilexample.com", "example.com.evil.net",
                                  "wwwexample.com"])
def test_hole4_suffix_matches_at_label_boundary(name):
    """Hole 4: `.example.com` allows names below example.com only, never
    `evilexample.com` (a textual suffix that is not a label boundary)."""
    options = {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]}
    refused(common_name, request_for(name), options)
    refused(alternative_names, request_for("www.example.com", dns=[name]), {"allowed_domains": [".example.com"]})
    refused(alternative_names_ip, request_for("www.example.com", dns=[name]), options)
    refused(whitelist_names, request_for(name), {"names": ["%.example.com", "example.com"], "allow_cn_id": True})
    refused(whitelist_names, request_for(cn=None, dns=[name]),
            {"names": ["%.example.com", "example.com"], "allow_dns_id": True})
    for entry in ("example.com", ".example.com"):
        # The blacklist does not refuse a name that merely ends with the same text.
        assert run(blacklist_names, request_for(name), {"domains": [entry]}) is None
        assert run(blacklist_names, request_for("ok.example.org", dns=[name]), {"domains": [entry]}) is None
    # ...while names below the domain still pass / are refused.
    assert run(common_name, request_for("www.example.com"), options) is None
    refused(blacklist_names, request_for("www.example.com"), {"domains": ["example.com"]})


# -- 5. empty allowed_domains --------------------------------------------------

EMPTY_DOMAINS = [(validator, options)
                 for validator in ("common_name", "alternative_names", "alternative_names_ip")
                 for options in ({}, {"allowed_domains": []}, {"allowed_domains": [], "allow_any": False})]
EMPTY_DOMAINS += [("common_name", {"allowed_networks": ["10.0.0.0/8"]}),
                  ("alternative_names_ip", {"allowed_domains": [], "allowed_networks": ["10.0.0.0/8"]})]


@pytest.mark.parametrize("validator, options", EMPTY_DOMAINS)
def test_hole5_empty_allowed_domains_is_a_config_error(deployment, validator, options):
    """Hole 5: an empty allowed_domains is a configuration error at start-up
    (it used to allow every name or none, silently)."""
    deployment.write_config(deployment.config(validators={validator: options}))
    with pytest.raises(settings.ConfigError, match="allowed_domains"):
        anchor_app.make_app(deployment.config_path)
    # The same RA with a domain listed starts.
    deployment.write_config(deployment.config(validators={validator: dict(options, allowed_domains=[".a.example"])}))
    anchor_app.make_app(deployment.config_path)


@pytest.mark.parametrize("validator", ["common_name", "alternative_names", "alternative_names_ip"])
def test_hole5_allow_any_allows_every_name(deployment, validator):
    """Hole 5: with "allow_any": true an empty allowed_domains starts and then
    allows any name."""
    deployment.write_config(deployment.config(validators={validator: {"allow_any": True}}))
    app = webtest_app(deployment)
    for name in ("anything.example.net", "host.internal", "x.y.z.example.org"):
        response = sign(app, helpers.make_csr(name, dns=[name]))
        assert response.status_int == 200, response.text


# -- 6. Unicode and IDNA ------------------------------------------------------

# A U-label of 34 characters whose A-label is 64+ characters long, in a name
# short enough for a common name (at most 64 bytes of UTF-8); without its
# last letter its A-label is 62 characters, which is fine.
LONG_U_LABEL = "".join(a + u for a, u in zip("abcdefghijklmnopq",
                                              "\u00e0\u00f5\u0117\u0144\u016f\u01a3\u01d2\u01ff\u0229" * 2))
INVALID_IDNA = [
    "a\u200db.example.com",            # ZERO WIDTH JOINER outside its allowed context
    LONG_U_LABEL + ".example.com",     # a Unicode label whose A-label is too long
    "xn--zz.example.com",              # not a valid A-label
    "XN--ZZ.example.com",
    "xn--a.example.com",
    "\u05d0a.example.com",             # bidi rule: RTL label with an LTR letter
    "a\u05d0.example.com",             # bidi rule: LTR first character, RTL after
]
VALIDATOR_OPTIONS = [
    (common_name, {"allowed_domains": [".example.com"]}),
    (alternative_names, {"allowed_domains": [".example.com"]}),
    (alternative_names_ip, {"allowed_domains": [".example.com"]}),
    (blacklist_names, {"domains": ["example.org"]}),
    (whitelist_names, {"names": ["%.example.com"], "allow_cn_id": True, "allow_dns_id": True}),
]


def test_hole6_u_labels_compare_as_a_labels():
    """Hole 6: a U-label is compared in its A-label form, in requests and in config."""
    for name in ("bücher.example.com", "BÜCHER.example.com", "www.bücher.example.com"):
        assert run(common_name, request_for(name), {"allowed_domains": [".example.com"]}) is None
        assert run(whitelist_names, request_for(name),
                   {"names": ["bücher.example.com", "%.bücher.example.com"], "allow_cn_id": True}) is None
    options = {"allowed_domains": [".bücher.example"]}
    for name in ("www.xn--bcher-kva.example", "WWW.BÜCHER.EXAMPLE", "www.bücher.example",
                 "WWW.XN--BCHER-KVA.EXAMPLE"):
        assert run(common_name, request_for(name), options) is None
    assert run(alternative_names, request_for("www.bücher.example", dns=["www.xn--bcher-kva.example"]),
               options) is None
    assert run(alternative_names_ip, request_for(cn=None, dns=["a.xn--bcher-kva.example"]), options) is None
    for name in ("www.buecher.example", "www.bucher.example", "www.xn--bcher-kva.example.com"):
        refused(common_name, request_for(name), options)
    refused(blacklist_names, request_for("www.bücher.example"), {"domains": ["xn--bcher-kva.example"]})
    refused(blacklist_names, request_for(cn=None, dns=["www.xn--bcher-kva.example"]),
            {"domains": ["bücher.example"]})


@pytest.mark.parametrize("name", INVALID_IDNA)
def test_hole6_invalid_idna_is_a_validation_error(name):
    """Hole 6: a name that is not valid IDNA is refused with ValidationError,
    never another exception, by every name validator."""
    for validator, options in VALIDATOR_OPTIONS:
        if validator in (alternative_names, alternative_names_ip):
            continue  # cryptography cannot put non-ASCII into a DNSName
        with pytest.raises(ValidationError):
            run(validator, request_for(name), options)
    if name.isascii():  # also as a subjectAltName (common_name does not look there)
        for validator, options in VALIDATOR_OPTIONS[1:]:
            with pytest.raises(ValidationError):
                run(validator, request_for(cn=None, dns=[name]), options)


def test_hole6_label_of_64_characters_is_refused():
    """Hole 6: a label of 64 characters is not a valid (IDNA) domain name: it is
    refused by every validator that checks subjectAltName DNS names, while 63
    characters is fine.  (A common name is at most 64 characters, so a long
    label reaches common_name only as a Unicode label, in INVALID_IDNA.)"""
    for long_label in ("a" * 64, "x" * 100):
        name = long_label + ".example.com"
        for validator, options in VALIDATOR_OPTIONS[1:]:
            with pytest.raises(ValidationError):
                run(validator, request_for(cn=None, dns=[name]), options)
    fine = "a" * 63 + ".example.com"
    for validator, options in VALIDATOR_OPTIONS[1:]:
        assert run(validator, request_for(cn=None, dns=[fine]), options) is None
    fine = LONG_U_LABEL[:-1] + ".example.com"
    for validator, options in (VALIDATOR_OPTIONS[0], VALIDATOR_OPTIONS[3], VALIDATOR_OPTIONS[4]):
        assert run(validator, request_for(fine), options) is None


POLICIES_HTTP = {
    "common_name": {"validators": {"common_name": {"allowed_domains": [".example.com"]}}},
    "blacklist_names": {"validators": {"blacklist_names": {"domains": ["example.org"]}}},
    "whitelist_names": {"validators": {"whitelist_names": {"names": ["%.example.com"], "allow_cn_id": True}}},
    "fixup": {"validators": {"alternative_names": {"allowed_domains": [".example.com"]},
                             "standards_compliance": {}},
              "fixups": {"enforce_alternative_names_present": {}}},
}


@pytest.mark.parametrize("policy", sorted(POLICIES_HTTP))
def test_hole6_idna_through_http(deployment, policy):
    """Hole 6: through HTTP, a Unicode CN in its A-label form is allowed, and a
    name that is not valid IDNA gets 400, never 500."""
    deployment.write_config(deployment.config(**POLICIES_HTTP[policy]))
    app = webtest_app(deployment)
    response = sign(app, helpers.make_csr("bücher.example.com"))
    assert response.status_int == 200, response.text
    for name in INVALID_IDNA:
        response = sign(app, helpers.make_csr(name))
        assert response.status_int == 400, (name, response.status, response.text)
        assert response.text == "request refused by policy\n"
    assert len(deployment.issued_files()) == 1


# -- duplicate extensions through HTTP ---------------------------------------------

def hand_made_csr(san_count, key):
    """A PKCS#10 request holding ``san_count`` identical subjectAltName
    extensions, built with pyasn1 (cryptography's builder refuses duplicates)."""
    info = rfc2986.CertificationRequestInfo()
    info["version"] = 0
    attribute = rfc5280.AttributeTypeAndValue()
    attribute["type"] = rfc5280.id_at_commonName
    attribute["value"] = der_encoder.encode(char.UTF8String("a.example.com"))
    rdn = rfc5280.RelativeDistinguishedName()
    rdn.append(attribute)
    rdns = rfc5280.RDNSequence()
    rdns.append(rdn)
    subject = rfc2986.Name()
    subject["rdnSequence"] = rdns
    info["subject"] = subject
    spki_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    info["subjectPKInfo"], _ = der_decoder.decode(spki_der, asn1Spec=rfc2986.SubjectPublicKeyInfo())
    san_der = x509.SubjectAlternativeName([x509.DNSName("a.example.com")]).public_bytes()
    requested = rfc5280.Extensions()
    for _ in range(san_count):
        extension = rfc5280.Extension()
        extension["extnID"] = rfc5280.id_ce_subjectAltName
        extension["critical"] = False
        extension["extnValue"] = san_der
        requested.append(extension)
    extension_request = rfc2986.Attribute()
    extension_request["type"] = univ.ObjectIdentifier("1.2.840.113549.1.9.14")
    extension_request["values"].append(requested)
    info["attributes"].append(extension_request)

    tbs_der = der_encoder.encode(info)
    request = rfc2986.CertificationRequest()
    request["certificationRequestInfo"] = info
    request["signatureAlgorithm"]["algorithm"] = univ.ObjectIdentifier("1.2.840.10045.4.3.2")
    request["signature"] = univ.BitString.fromOctetString(key.sign(tbs_der, ec.ECDSA(hashes.SHA256())))
    return x509.load_der_x509_csr(der_encoder.encode(request))


def test_duplicate_extension_is_refused_with_400(client, deployment):
    """A request carrying the same extension twice is refused with 400, not 500."""
    key = ec.generate_private_key(ec.SECP256R1())
    single = hand_made_csr(1, key)
    assert single.is_signature_valid
    assert len(single.extensions) == 1
    response = sign(client, single)
    assert response.status_int == 200, response.text  # the hand-made request itself is fine

    doubled = hand_made_csr(2, key)
    assert doubled.is_signature_valid
    assert doubled.subject.rfc4514_string() == "CN=a.example.com"
    with pytest.raises(x509.DuplicateExtension):
        doubled.extensions
    response = sign(client, doubled)
    assert response.status_int == 400, response.text
    assert len(deployment.issued_files()) == 1


# -- many names ------------------------------------------------------

def test_whitelist_with_ten_thousand_names():
    """whitelist_names with 10,000 entries (exact names and % patterns) accepts a
    request with 100 allowed names and refuses one with a single name not allowed."""
    names = []
    for i in range(5000):
        names.append("host%d.example.com" % i)
        names.append(("web-%%.zone%d.example.com" if i % 2 else "%%.%%.zone%d.example.org") % i)
    assert len(names) == 10000
    options = whitelist_names.prepare_options(names=names, allow_dns_id=True)

    allowed = ["host%d.example.com" % (i * 97) for i in range(40)]
    allowed += ["web-%d.zone%d.example.com" % (i, 2 * i + 1) for i in range(30)]
    allowed += ["a%d.b.zone%d.example.org" % (i, 2 * i) for i in range(30)]
    assert len(set(allowed)) == 100
    request = request_for(cn=None, dns=allowed)
    assert whitelist_names(csr=request, **options) is None

    for intruder in ("host5000.example.com", "web-1.zone2.example.com", "a.zone4.example.org",
                     "web-1.zone10001.example.com", "db-1.zone1.example.com"):
        bad = request_for(cn=None, dns=allowed[:50] + [intruder] + allowed[50:99])
        with pytest.raises(ValidationError, match=re.escape(intruder)):
            whitelist_names(csr=bad, **options)
