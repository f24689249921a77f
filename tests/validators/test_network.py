"""source_cidrs with trusted proxies, and client_address, directly and through HTTP."""

import ipaddress

import pytest
import webob

import helpers
from anchor.validators import ValidationError
from anchor.validators.names import networks
from anchor.validators.network import client_address, source_cidrs
from conftest import webtest_app

PROXY = "10.9.9.9"
OPTIONS = {"cidrs": ["192.0.2.0/24", "2001:db8::/32"], "trusted_proxies": ["10.9.9.0/24", "fd00::1/128"]}


def fake_request(remote_addr, forwarded=None):
    environ = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return webob.Request.blank("/", environ)


def run(remote_addr, forwarded=None, options=OPTIONS):
    prepared = source_cidrs.prepare_options(**options)
    return source_cidrs(csr=None, auth_result=None, conf=None,
                        request=fake_request(remote_addr, forwarded), **prepared)


@pytest.mark.parametrize("remote_addr, forwarded", [
    ("192.0.2.1", None),                            # direct client in range
    ("192.0.2.1", "198.51.100.1"),                  # XFF from a non-proxy is ignored
    ("2001:db8::7", None),
    (PROXY, "192.0.2.7"),                           # proxy forwarding an allowed client
    (PROXY, " 192.0.2.7 "),
    (PROXY, "192.0.2.7, 10.9.9.8"),                 # two trusted proxies in a chain
    (PROXY, "198.51.100.1, 192.0.2.7"),             # left of the real client: ignored
    (PROXY, "garbage, 192.0.2.7"),                  # left of the real client: ignored
    (PROXY, "2001:db8::1"),
    ("fd00::1", "192.0.2.7"),
])
def test_source_cidrs_accepts(remote_addr, forwarded):
    assert run(remote_addr, forwarded) is None


@pytest.mark.parametrize("remote_addr, forwarded", [
    ("198.51.100.1", None),                         # direct client out of range
    ("198.51.100.1", "192.0.2.7"),                  # a client cannot spoof with XFF
    ("198.51.100.1", "192.0.2.7, 10.9.9.8"),        # nor by naming a trusted proxy
    ("10.9.10.1", "192.0.2.7"),                     # not a trusted proxy (outside 10.9.9.0/24)
    ("fd00::2", "192.0.2.7"),
    (PROXY, "198.51.100.1"),                        # proxy forwarding a client out of range
    (PROXY, "192.0.2.7, 198.51.100.1"),             # the spoofed entry is left of the real client
    (PROXY, "198.51.100.1, 10.9.9.8"),
    (PROXY, "garbage"),                             # garbage from a trusted proxy
    (PROXY, "192.0.2.7, garbage"),
    (PROXY, "192.0.2.7:443"),
    (PROXY, "192.0.2.0/24"),
    (PROXY, ""),
    ("", None),
    ("not-an-address", None),
])
def test_source_cidrs_refuses(remote_addr, forwarded):
    with pytest.raises(ValidationError):
        run(remote_addr, forwarded)


def test_client_address_uses_xff_only_from_trusted_proxies():
    proxies = networks(["10.9.9.0/24"])
    address = ipaddress.ip_address
    assert client_address(fake_request(PROXY, "192.0.2.7"), proxies) == address("192.0.2.7")
    assert client_address(fake_request(PROXY, "1.1.1.1, 192.0.2.7, 10.9.9.1"), proxies) == address("192.0.2.7")
    assert client_address(fake_request("192.0.2.1", "192.0.2.7"), proxies) == address("192.0.2.1")
    assert client_address(fake_request(PROXY, "192.0.2.7"), ()) == address(PROXY)
    assert client_address(fake_request(PROXY, "junk"), proxies) is None


def test_source_cidrs_without_trusted_proxies_ignores_xff():
    options = {"cidrs": ["192.0.2.0/24"]}
    with pytest.raises(ValidationError):
        run(PROXY, "192.0.2.7", options)
    assert run("192.0.2.9", "198.51.100.1", options) is None


@pytest.mark.parametrize("options", [
    {},
    {"cidrs": []},
    {"cidrs": "192.0.2.0/24"},
    {"cidrs": ["192.0.2.0/33"]},
    {"cidrs": ["not-a-network"]},
    {"cidrs": ["192.0.2.0/24"], "trusted_proxies": ["proxy.example.com"]},
    {"cidrs": ["192.0.2.0/24"], "trusted_proxies": "10.9.9.9"},
])
def test_source_cidrs_bad_config(options):
    with pytest.raises(ValueError):
        source_cidrs.prepare_options(**options)


# -- end to end ------------------------------------------------------

def sign(app, headers=None):
    csr = helpers.make_csr("a.example.com")
    return app.post("/v1/sign/default", {"user": helpers.USER, "secret": helpers.SECRET,
                                         "encoding": "pem", "csr": helpers.csr_pem(csr).decode()},
                    headers=headers or {}, expect_errors=True)


def test_source_cidrs_through_http(deployment):
    validators = {"source_cidrs": {"cidrs": ["192.0.2.0/24"], "trusted_proxies": ["10.9.9.9/32"]}}
    deployment.write_config(deployment.config(validators=validators))

    behind_proxy = webtest_app(deployment, remote_addr="10.9.9.9")
    response = sign(behind_proxy, {"X-Forwarded-For": "192.0.2.7"})
    assert response.status_int == 200, response.text
    assert response.text.startswith("-----BEGIN CERTIFICATE-----")
    assert sign(behind_proxy, {"X-Forwarded-For": "198.51.100.1"}).status_int == 400
    assert sign(behind_proxy, {"X-Forwarded-For": "garbage"}).status_int == 400
    assert sign(behind_proxy).status_int == 400  # the proxy itself is not in cidrs

    not_a_proxy = webtest_app(deployment, remote_addr="198.51.100.1")
    assert sign(not_a_proxy, {"X-Forwarded-For": "192.0.2.7"}).status_int == 400
    assert len(deployment.issued_files()) == 1
