"""Hostile input: whatever a client sends, the answer is 2xx or 4xx, never
5xx, never a hang, and the next good request is still signed.

A property-based test (hypothesis) drives the WSGI app with generated form
fields, PEM/DER/CMC encodings, mutated CSRs and raw bodies; named cases
below pin the shapes the issue lists.  tests/fuzz/ holds the coverage-guided
twin (atheris) of the same property.
"""

import base64
import os

import pytest
import webtest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cmc_wrappers
import helpers
from anchor import app as anchor_app
from conftest import make_deployment

GOOD_CSR = helpers.csr_der(helpers.make_csr("good.example.com"))
SETTINGS = settings(max_examples=300, deadline=2000,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def application(tmp_path_factory):
    deployment = make_deployment(str(tmp_path_factory.mktemp("hostile")))
    config = deployment.config(validators=helpers.BROAD_POLICY, fixups=helpers.BROAD_FIXUPS)
    deployment.write_config(config)
    return anchor_app.make_app(deployment.config_path)


def post(application, body, content_type):
    request = webtest.TestRequest.blank("/v1/sign/default", {"REMOTE_ADDR": "127.0.0.1"}, method="POST",
                                        body=body, content_type=content_type)
    return request.get_response(application)


def form_body(fields):
    boundary = "hypothesis-boundary"
    parts = []
    for name, value in fields:
        if isinstance(value, bytes):
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="x"\r\n'
                         b"Content-Type: application/octet-stream\r\n\r\n%s\r\n"
                         % (boundary.encode(), name.encode(), value))
        else:
            parts.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                         % (boundary.encode(), name.encode(), value.encode("utf-8", "surrogatepass")))
    return b"".join(parts) + b"--%s--\r\n" % boundary.encode(), "multipart/form-data; boundary=" + boundary


def check(application, response):
    assert 200 <= response.status_int < 500, (response.status, response.body[:300])
    assert b"Traceback" not in response.body
    good, content_type = form_body([("user", helpers.USER), ("secret", helpers.SECRET), ("encoding", "der"),
                                    ("csr", GOOD_CSR)])
    after = post(application, good, content_type)
    assert after.status_int == 200, after.body


def mutate(data, draw):
    """A bit flip, truncation, insertion or length lie in DER bytes."""
    data = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "length", "none"]))
    if kind == "flip" and data:
        index = draw(st.integers(0, len(data) - 1))
        data[index] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif kind == "insert":
        index = draw(st.integers(0, len(data)))
        data[index:index] = draw(st.binary(max_size=16))
    elif kind == "length" and len(data) > 4:
        data[1:4] = draw(st.binary(min_size=3, max_size=3))
    return bytes(data)


@st.composite
def csr_values(draw):
    der = draw(st.sampled_from([GOOD_CSR, cmc_wrappers.shape1(GOOD_CSR), cmc_wrappers.shape3(GOOD_CSR)]))
    der = mutate(der, draw)
    shape = draw(st.sampled_from(["pem", "der-upload", "base64", "raw-text", "random"]))
    label = draw(st.sampled_from(["CERTIFICATE REQUEST", "CMC", "CERTIFICATE", "PRIVATE KEY", "X"]))
    if shape == "pem":
        return "pem", "-----BEGIN %s-----\n%s-----END %s-----\n" % (label, base64.encodebytes(der).decode(), label)
    if shape == "der-upload":
        return "der", der
    if shape == "base64":
        return "der", base64.b64encode(der).decode()
    if shape == "raw-text":
        return draw(st.sampled_from(["pem", "der"])), der.decode("latin-1")
    return draw(st.text(max_size=8)), draw(st.one_of(st.text(max_size=200), st.binary(max_size=200)))


@SETTINGS
@given(value=csr_values(), user=st.one_of(st.just(helpers.USER), st.text(max_size=20)),
       secret=st.one_of(st.just(helpers.SECRET), st.text(max_size=20)))
def test_any_csr_field_gets_2xx_or_4xx(application, value, user, secret):
    encoding, csr = value
    body, content_type = form_body([("user", user), ("secret", secret), ("encoding", encoding), ("csr", csr)])
    check(application, post(application, body, content_type))


@SETTINGS
@given(body=st.binary(max_size=2000),
       content_type=st.sampled_from(["multipart/form-data; boundary=hypothesis-boundary", "multipart/form-data",
                                     "application/x-www-form-urlencoded", "text/plain", "", "application/json",
                                     "multipart/form-data; boundary="]))
def test_any_body_gets_2xx_or_4xx(application, body, content_type):
    check(application, post(application, body, content_type))


@SETTINGS
@given(names=st.lists(st.text(min_size=1, max_size=70), min_size=0, max_size=8),
       cn=st.text(min_size=1, max_size=64))
def test_any_names_in_a_valid_csr_get_2xx_or_4xx(application, names, cn):
    """Names go through every name validator and the fixup: Unicode, IDNA,
    wildcards, dots, addresses, control characters."""
    builder = x509.CertificateSigningRequestBuilder()
    try:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names]), critical=False)
        csr = builder.sign(helpers.private_key("p256"), helpers.hash_for(helpers.private_key("p256")))
    except (ValueError, UnicodeError):
        return  # cryptography itself refuses to build it; nothing to send
    body, content_type = form_body([("user", helpers.USER), ("secret", helpers.SECRET), ("encoding", "pem"),
                                    ("csr", helpers.csr_pem(csr).decode())])
    check(application, post(application, body, content_type))


# -- named cases --------------------------------------------------------------

def good_fields(**overrides):
    fields = {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "der", "csr": GOOD_CSR}
    fields.update(overrides)
    return list(fields.items())


@pytest.mark.parametrize("case", [
    "deeply-nested", "length-lying", "ten-thousand-sans", "cmc-unknown-content-type", "cmc-no-request",
])
def test_named_hostile_requests(application, case):
    if case == "deeply-nested":
        der = b"\x30\x80" * 5000 + b"\x00\x00" * 5000
    elif case == "length-lying":
        der = b"\x30\x84\x7f\xff\xff\xff" + GOOD_CSR[4:]
    elif case == "ten-thousand-sans":
        csr = helpers.make_csr("many.example.com", dns=["h%d.example.com" % i for i in range(10000)])
        der = helpers.csr_der(csr)
    elif case == "cmc-unknown-content-type":
        der = cmc_wrappers._content_info(x509.ObjectIdentifier("1.2.840.113549.1.7.1").dotted_string,
                                         cmc_wrappers._pkidata([cmc_wrappers._tcr(GOOD_CSR)]))
    else:
        der = cmc_wrappers._pkidata([])
    body, content_type = form_body(good_fields(csr=der))
    response = post(application, body, content_type)
    check(application, response)
    if case != "ten-thousand-sans":
        assert response.status_int == 400


@pytest.mark.parametrize("path", ["/v1/sign/..%2fdefault", "/v1/sign/" + "a" * 5000, "/v1/sign/d%C3%A9fault",
                                  "/v1/sign/%00", "/v1/sign/default%2f..", "/v1/ca/..%2f..%2fetc%2fpasswd"])
def test_path_tricks_get_404(application, path):
    body, content_type = form_body(good_fields())
    request = webtest.TestRequest.blank(path, {"REMOTE_ADDR": "127.0.0.1"}, method="POST", body=body,
                                        content_type=content_type)
    response = request.get_response(application)
    assert response.status_int in (404, 405), response.status
    check(application, post(application, *form_body(good_fields())))


def test_twenty_megabyte_field_is_refused_unread(application):
    body, content_type = form_body(good_fields(csr=os.urandom(20 * 1024 * 1024)))
    response = post(application, body, content_type)
    assert response.status_int == 413
    check(application, response)
