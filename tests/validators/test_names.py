"""Name validators: common_name, alternative_names, alternative_names_ip,
blacklist_names, whitelist_names and server_group, each accepting and
refusing requests, plus their configuration checks and failure reporting."""

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import helpers
from anchor import settings
from anchor.auth import AuthResult
from anchor.validators import ValidationError
from anchor.validators.names import (alternative_names, alternative_names_ip, blacklist_names,
                                     common_name, server_group, whitelist_names)
from anchor.x509.request import CertificateRequest
from conftest import webtest_app

USER = AuthResult("alice")


def request_for(*args, **kwargs):
    return CertificateRequest(helpers.make_csr(*args, **kwargs))


def ip(text):
    return ipaddress.ip_address(text)


def run(validator, csr, options, auth_result=USER):
    """Prepare ``options`` as Anchor does at start-up, then call the validator."""
    prepared = validator.prepare_options(**options)
    return validator(csr=csr, auth_result=auth_result, conf=None, request=None, **prepared)


def refused(validator, csr, options, auth_result=USER, match=None):
    with pytest.raises(ValidationError, match=match):
        run(validator, csr, options, auth_result)


def san_request(entries, cn=None):
    """A request whose subjectAltName holds ``entries`` (GeneralName objects)."""
    san = x509.SubjectAlternativeName(entries)
    return request_for(cn=cn, extensions=[(san, False)])


# -- common_name -----------------------------------------------------------

CN_OPTIONS = {"allowed_domains": [".example.com", ".test.org"],
              "allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]}


@pytest.mark.parametrize("cn", ["www.example.com", "a.b.c.example.com", "host.test.org", "10.0.0.1",
                                "10.255.255.255", "2001:db8::5", "WWW.Example.Com"])
def test_common_name_accepts(cn):
    assert run(common_name, request_for(cn), CN_OPTIONS) is None


@pytest.mark.parametrize("cn", ["www.example.net", "example.com", "test.org", "11.0.0.1", "2001:db9::1",
                                "www.example.com.evil.net", "wwwexample.com", "com"])
def test_common_name_refuses(cn):
    refused(common_name, request_for(cn), CN_OPTIONS)


def test_common_name_ip_needs_networks():
    # Without allowed_networks an IP common name can never pass, even when
    # a domain suffix would textually match it.
    refused(common_name, request_for("10.0.0.1"), {"allowed_domains": [".0.0.1"]}, match="network")


def test_common_name_counts_names():
    options = {"allowed_domains": [".example.com"]}
    # No CN at all is fine only when a subjectAltName is present.
    assert run(common_name, request_for(cn=None, dns=["www.example.com"]), options) is None
    refused(common_name, request_for(cn=None), options)
    two = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.com"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "b.example.com")])
    refused(common_name, request_for(subject=two), options)
    # Two CNs stay refused even with a subjectAltName present.
    refused(common_name, request_for(subject=two, dns=["a.example.com"]), options)


@pytest.mark.parametrize("options", [
    {"allowed_domains": ["example.com"]},          # no leading dot
    {"allowed_domains": "example.com"},            # not a list
    {"allowed_domains": [".example.com", 3]},      # not strings
    {"allowed_domains": ["."]},                    # no domain
    {"allowed_domains": [".a\u200db.example"]},    # not IDNA
    {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/33"]},
    {"allowed_domains": [".example.com"], "allowed_networks": ["example.com"]},
    {"allowed_domains": [".example.com"], "allowed_networks": "10.0.0.0/8"},
])
def test_common_name_bad_config(options):
    with pytest.raises(ValueError):
        common_name.prepare_options(**options)


@pytest.mark.parametrize("validator", [common_name, alternative_names, alternative_names_ip])
def test_allow_any_must_be_a_boolean_even_with_domains(validator):
    """A non-boolean allow_any is a config error, also when allowed_domains is
    not empty: "allow_any": "false" must not silently allow every name."""
    for allow_any in ("false", "yes", 0, 1):
        with pytest.raises(ValueError, match="allow_any"):
            validator.prepare_options(allowed_domains=[".example.com"], allow_any=allow_any)


def test_allow_any_false_keeps_domains_enforced():
    options = {"allowed_domains": [".example.com"], "allow_any": False}
    refused(common_name, request_for("evil.example.net"), options)
    refused(alternative_names, request_for("a.example.com", dns=["evil.example.net"]), options)
    refused(alternative_names_ip, request_for("a.example.com", dns=["evil.example.net"]), options)


# -- alternative_names ------------------------------------------------------

ALT_OPTIONS = {"allowed_domains": [".example.com"]}


def test_alternative_names_accepts_dns_under_suffix():
    request = request_for("not-checked.example.net", dns=["a.example.com", "b.c.example.com"])
    assert run(alternative_names, request, ALT_OPTIONS) is None
    # No subjectAltName at all: nothing to refuse.
    assert run(alternative_names, request_for("x.example.net"), ALT_OPTIONS) is None


@pytest.mark.parametrize("dns", [["a.example.net"], ["a.example.com", "b.example.org"], ["example.com"],
                                 ["a.example.com.evil.org"]])
def test_alternative_names_refuses_dns_outside(dns):
    refused(alternative_names, request_for("a.example.com", dns=dns), ALT_OPTIONS)


@pytest.mark.parametrize("entry", [
    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    x509.RFC822Name("root@example.com"),
    x509.UniformResourceIdentifier("https://www.example.com/"),
    x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
])
def test_alternative_names_refuses_other_types(entry):
    refused(alternative_names, san_request([x509.DNSName("a.example.com"), entry], cn="a.example.com"),
            ALT_OPTIONS)


# -- alternative_names_ip -----------------------------------------------------

ALT_IP_OPTIONS = {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8", "2001:db8::/32"]}


def test_alternative_names_ip_accepts():
    request = request_for("a.example.com", dns=["a.example.com", "b.example.com"],
                          ips=[ip("10.1.2.3"), ip("2001:db8::1")])
    assert run(alternative_names_ip, request, ALT_IP_OPTIONS) is None


@pytest.mark.parametrize("dns, ips", [
    (["a.example.net"], []),
    (["a.example.com"], ["192.168.0.1"]),
    (["a.example.com"], ["10.0.0.1", "2001:db9::1"]),
    ([], ["11.0.0.0"]),
])
def test_alternative_names_ip_refuses(dns, ips):
    request = request_for("a.example.com", dns=dns, ips=[ip(i) for i in ips])
    refused(alternative_names_ip, request, ALT_IP_OPTIONS)


@pytest.mark.parametrize("entry", [
    x509.RFC822Name("root@example.com"),
    x509.UniformResourceIdentifier("https://www.example.com/"),
])
def test_alternative_names_ip_refuses_other_types(entry):
    refused(alternative_names_ip, san_request([entry], cn="a.example.com"), ALT_IP_OPTIONS)


def test_alternative_names_ip_without_networks_refuses_every_ip():
    request = request_for("a.example.com", dns=["a.example.com"], ips=[ip("10.0.0.1")])
    refused(alternative_names_ip, request, {"allowed_domains": [".example.com"]})


# -- blacklist_names ------------------------------------------------------

@pytest.mark.parametrize("entry", ["example.com", ".example.com"])
@pytest.mark.parametrize("cn, dns", [
    ("example.com", []),
    ("www.example.com", []),
    ("a.b.example.com", []),
    ("ok.example.org", ["ok.example.org", "www.example.com"]),
    ("ok.example.org", ["example.com"]),
])
def test_blacklist_refuses_listed_domain_and_below(entry, cn, dns):
    refused(blacklist_names, request_for(cn, dns=dns), {"domains": ["other.net", entry]})


@pytest.mark.parametrize("entry", ["example.com", ".example.com"])
@pytest.mark.parametrize("cn, dns", [
    ("example.org", []),
    ("example.com.org", []),
    ("www.example.org", ["www.example.net", "com"]),
    ("10.0.0.1", []),
])
def test_blacklist_accepts_other_names(entry, cn, dns):
    assert run(blacklist_names, request_for(cn, dns=dns), {"domains": [entry]}) is None


def test_blacklist_idn_domain():
    options = {"domains": ["bücher.example"]}
    refused(blacklist_names, request_for("www.xn--bcher-kva.example"), options)
    refused(blacklist_names, request_for("WWW.BÜCHER.EXAMPLE"), options)
    assert run(blacklist_names, request_for("www.buecher.example"), options) is None


@pytest.mark.parametrize("options", [{}, {"domains": []}, {"domains": "example.com"}, {"domains": ["."]},
                                     {"domains": [None]}])
def test_blacklist_bad_config(options):
    with pytest.raises(ValueError):
        blacklist_names.prepare_options(**options)


# -- whitelist_names ------------------------------------------------------

ALL_SLOTS = {"allow_cn_id": True, "allow_dns_id": True, "allow_ip_id": True}


def wl(names, **flags):
    return dict({"names": names}, **flags)


@pytest.mark.parametrize("entry, name", [
    ("www.example.com", "www.example.com"),
    ("www.example.com", "WWW.EXAMPLE.COM"),
    ("WWW.Example.Com.", "www.example.com"),
    ("%.example.com", "www.example.com"),
    ("%.example.com", "x.example.com"),
    ("host-%.example.com", "host-1.example.com"),
    ("host-%.example.com", "host-abc-def.example.com"),
    ("%-db.example.com", "orders-db.example.com"),
    ("%.%.example.com", "a.b.example.com"),
    ("www.%.example.com", "www.eu.example.com"),
    ("%.bücher.example", "www.xn--bcher-kva.example"),
])
def test_whitelist_name_matches(entry, name):
    options = wl(["unrelated.example.org", entry], **ALL_SLOTS)
    assert run(whitelist_names, request_for(name), options) is None
    assert run(whitelist_names, request_for(cn=None, dns=[name]), options) is None


@pytest.mark.parametrize("entry, name", [
    ("www.example.com", "www2.example.com"),
    ("www.example.com", "a.www.example.com"),
    ("www.example.com", "example.com"),
    ("%.example.com", "example.com"),
    ("%.example.com", "a.b.example.com"),
    ("%.example.com", "www.example.org"),
    ("%.example.com", "www.evilexample.com"),
    ("host-%.example.com", "web-1.example.com"),
    ("host-%.example.com", "host-1.sub.example.com"),
    ("host-%.example.com", "xhost-1.example.com"),
    ("%-db.example.com", "orders-db-x.example.com"),
    ("%.%.example.com", "a.example.com"),
    ("%.%.example.com", "a.b.c.example.com"),
    ("www.%.example.com", "web.eu.example.com"),
])
def test_whitelist_name_does_not_match(entry, name):
    options = wl([entry], **ALL_SLOTS)
    refused(whitelist_names, request_for(name), options)
    refused(whitelist_names, request_for(cn=None, dns=[name]), options)


def test_whitelist_ip_entries():
    options = wl(["10.0.0.5", "2001:db8::1", "192.168.0.0/16"], **ALL_SLOTS)
    accepted = request_for(cn=None, ips=[ip("10.0.0.5"), ip("2001:db8::1"), ip("192.168.7.7")])
    assert run(whitelist_names, accepted, options) is None
    assert run(whitelist_names, request_for("10.0.0.5"), options) is None
    refused(whitelist_names, request_for(cn=None, ips=[ip("10.0.0.6")]), options)
    refused(whitelist_names, request_for(cn=None, ips=[ip("2001:db8::2")]), options)
    refused(whitelist_names, request_for("10.0.0.6"), options)
    # An address is not a name: a name entry does not allow it, nor the reverse.
    refused(whitelist_names, request_for(cn=None, ips=[ip("10.0.0.5")]), wl(["www.example.com"], **ALL_SLOTS))
    refused(whitelist_names, request_for("www.example.com"), wl(["10.0.0.5"], **ALL_SLOTS))


def test_whitelist_wildcard_needs_allow_wildcard():
    request = request_for(cn=None, dns=["*.example.com"])
    for entry in ("%.example.com", "*.example.com"):
        refused(whitelist_names, request, wl([entry], allow_dns_id=True), match="wildcard")
        refused(whitelist_names, request, wl([entry], allow_dns_id=True, allow_wildcard=False))
        assert run(whitelist_names, request, wl([entry], allow_dns_id=True, allow_wildcard=True)) is None
    # allow_wildcard does not make a pattern match more than one label.
    refused(whitelist_names, request_for(cn=None, dns=["*.a.example.com"]),
            wl(["%.example.com"], allow_dns_id=True, allow_wildcard=True))
    # nor does it let a wildcard replace an exact label.
    refused(whitelist_names, request, wl(["www.example.com"], allow_dns_id=True, allow_wildcard=True))
    # A wildcard common name is treated the same way.
    refused(whitelist_names, request_for("*.example.com"), wl(["%.example.com"], allow_cn_id=True))
    assert run(whitelist_names, request_for("*.example.com"),
               wl(["%.example.com"], allow_cn_id=True, allow_wildcard=True)) is None


def test_whitelist_slots_not_allowed_are_refused():
    names = ["www.example.com", "10.0.0.5"]
    cn_only = request_for("www.example.com")
    dns_only = request_for(cn=None, dns=["www.example.com"])
    ip_only = request_for(cn=None, ips=[ip("10.0.0.5")])

    assert run(whitelist_names, cn_only, wl(names, allow_cn_id=True)) is None
    refused(whitelist_names, cn_only, wl(names, allow_dns_id=True, allow_ip_id=True), match="common name")
    refused(whitelist_names, cn_only, wl(names))

    assert run(whitelist_names, dns_only, wl(names, allow_dns_id=True)) is None
    refused(whitelist_names, dns_only, wl(names, allow_cn_id=True, allow_ip_id=True), match="DNS")

    assert run(whitelist_names, ip_only, wl(names, allow_ip_id=True)) is None
    refused(whitelist_names, ip_only, wl(names, allow_cn_id=True, allow_dns_id=True), match="IP")

    # Every identity in an allowed slot is checked, not only the first.
    both = request_for("www.example.com", dns=["www.example.com", "bad.example.com"])
    refused(whitelist_names, both, wl(names, **ALL_SLOTS))
    both = request_for("bad.example.com", dns=["www.example.com"])
    refused(whitelist_names, both, wl(names, **ALL_SLOTS))


@pytest.mark.parametrize("entry", [
    x509.RFC822Name("root@www.example.com"),
    x509.UniformResourceIdentifier("https://www.example.com/"),
    x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
    x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])),
])
def test_whitelist_refuses_other_san_types(entry):
    options = wl(["www.example.com", "%.example.com", "%"], **ALL_SLOTS, allow_wildcard=True)
    refused(whitelist_names, san_request([x509.DNSName("www.example.com"), entry]), options)
    refused(whitelist_names, san_request([entry], cn="www.example.com"), options)


@pytest.mark.parametrize("options", [
    {},
    {"names": []},
    {"names": "www.example.com"},
    {"names": ["www.example.com", 5]},
    {"names": ["a..example.com"]},
    {"names": ["a\u200db.example.com"]},
    {"names": ["www.example.com"], "allow_cn_id": "true"},
    {"names": ["www.example.com"], "allow_dns_id": 1},
    {"names": ["www.example.com"], "allow_ip_id": None},
    {"names": ["www.example.com"], "allow_wildcard": "false"},
])
def test_whitelist_bad_config(options):
    with pytest.raises(ValueError):
        whitelist_names.prepare_options(**options)


# -- server_group ------------------------------------------------------

GROUPS = {"group_prefixes": {"nova": "nova_group", "glance": "glance_group"}}


def member(*groups):
    return AuthResult("alice", groups=frozenset(groups))


@pytest.mark.parametrize("cn, groups", [
    ("nova-compute1.example.com", ["nova_group"]),
    ("nova-1.example.com", ["other", "nova_group"]),
    ("glance-api.example.com", ["glance_group"]),
    ("cinder-1.example.com", []),          # prefix not listed
    ("novax-1.example.com", []),           # a different prefix
    ("www.example.com", []),               # no dash
    ("www.nova-1.example.com", []),        # the dash is not in the first label
])
def test_server_group_accepts(cn, groups):
    assert run(server_group, request_for(cn), GROUPS, auth_result=member(*groups)) is None


@pytest.mark.parametrize("cn, groups", [
    ("nova-compute1.example.com", []),
    ("nova-compute1.example.com", ["glance_group"]),
    ("glance-api.example.com", ["nova_group"]),
    ("nova-", []),
])
def test_server_group_refuses(cn, groups):
    refused(server_group, request_for(cn), GROUPS, auth_result=member(*groups))


@pytest.mark.parametrize("cn", ["NOVA-compute1.example.com", "Nova-1.example.com", "nOvA-1.EXAMPLE.COM"])
def test_server_group_prefix_ignores_case(cn):
    """Names are compared case-insensitively (NOVA-1.example.com and
    nova-1.example.com are the same host), so the prefix check is too:
    otherwise anyone could get a certificate for a group's servers by
    upper-casing the prefix."""
    refused(server_group, request_for(cn), GROUPS, auth_result=member())
    refused(server_group, request_for(cn), GROUPS, auth_result=member("glance_group"))
    assert run(server_group, request_for(cn), GROUPS, auth_result=member("nova_group")) is None


@pytest.mark.parametrize("options", [{}, {"group_prefixes": {}}, {"group_prefixes": ["nova"]},
                                     {"group_prefixes": {"nova": ""}}, {"group_prefixes": {"nova": 3}}])
def test_server_group_bad_config(options):
    with pytest.raises(ValueError):
        server_group.prepare_options(**options)


# -- failure reporting through HTTP ------------------------------------------

def sign(app, csr):
    return app.post("/v1/sign/default", {"user": helpers.USER, "secret": helpers.SECRET,
                                         "encoding": "pem", "csr": helpers.csr_pem(csr).decode()},
                    expect_errors=True)


NAME_POLICY = {"common_name": {"allowed_domains": [".example.com"]}}


def test_refusal_is_not_explained_by_default(deployment):
    deployment.write_config(deployment.config(validators=NAME_POLICY))
    app = webtest_app(deployment)
    response = sign(app, helpers.make_csr("www.example.net"))
    assert response.status_int == 400
    assert response.text == "request refused by policy\n"
    assert sign(app, helpers.make_csr("www.example.com")).status_int == 200


def test_refusal_is_explained_with_explain_failures(deployment):
    config = deployment.config(validators=NAME_POLICY)
    config["registration_authority"]["default"]["explain_failures"] = True
    deployment.write_config(config)
    app = webtest_app(deployment)
    response = sign(app, helpers.make_csr("www.example.net"))
    assert response.status_int == 400
    assert response.text.startswith("request refused by policy")
    assert "validator common_name" in response.text
    assert "www.example.net" in response.text and "not allowed" in response.text
    assert sign(app, helpers.make_csr("www.example.com")).status_int == 200


def test_explain_failures_must_be_a_boolean(deployment):
    from anchor import app as anchor_app

    config = deployment.config(validators=NAME_POLICY)
    config["registration_authority"]["default"]["explain_failures"] = "yes"
    deployment.write_config(config)
    with pytest.raises(settings.ConfigError, match="explain_failures"):
        anchor_app.make_app(deployment.config_path)


def test_whitelist_wildcard_only_as_left_most_label():
    """With allow_wildcard, `%` matches a `*` label only as the whole left-most label."""
    options = whitelist_names.prepare_options(names=["%.%.example.com"], allow_dns_id=True,
                                              allow_wildcard=True)
    whitelist_names(csr=CertificateRequest(helpers.make_csr(cn=None, dns=["*.a.example.com"])), **options)
    with pytest.raises(ValidationError):
        whitelist_names(csr=CertificateRequest(helpers.make_csr(cn=None, dns=["a.*.example.com"])), **options)
