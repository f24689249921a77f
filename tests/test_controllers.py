"""Every HTTP status of the API, through WebTest against the WSGI app."""

import base64
import errno
import io
import os
import urllib.parse

import pytest
import webtest
from cryptography import x509

import cmc_wrappers
import helpers
from anchor import app as anchor_app
from anchor import signing, store
from conftest import webtest_app


def form(request=None, **overrides):
    """The signing form for CSR object ``request``; ``overrides`` replace fields
    (a field set to None is left out)."""
    fields = {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
              "csr": helpers.csr_pem(request or helpers.make_csr()).decode()}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def sign(client, fields, ra="default", status="*", **kwargs):
    return client.post("/v1/sign/%s" % ra, fields, status=status, expect_errors=True, **kwargs)


# -- 200 ---------------------------------------------------------------------

def test_sign_returns_pem_certificate_and_records_it(client, deployment):
    csr = helpers.make_csr("web1.example.com")
    response = sign(client, form(csr))
    assert response.status_int == 200
    assert response.content_type == "text/plain"
    certificate = x509.load_pem_x509_certificate(response.body)
    assert certificate.subject == csr.subject
    files = deployment.issued_files()
    assert len(files) == 1
    with open(os.path.join(deployment.output_dir, files[0]), "rb") as handle:
        assert handle.read() == response.body


def test_urlencoded_form_is_accepted(client):
    response = client.post("/v1/sign/default", form(), content_type="application/x-www-form-urlencoded",
                           expect_errors=True)
    assert response.status_int == 200


def test_multipart_form_is_accepted(client):
    fields = form()
    response = client.post("/v1/sign/default", {k: v for k, v in fields.items() if k != "csr"},
                           upload_files=[("csr", "req.csr", fields["csr"].encode())], expect_errors=True)
    assert response.status_int == 200, response.text


def test_missing_encoding_defaults_to_pem(client):
    assert sign(client, form(encoding=None)).status_int == 200


def test_get_ca_returns_the_ca_certificate(client, deployment):
    response = client.get("/v1/ca/default")
    assert response.status_int == 200
    assert response.content_type == "text/plain"
    with open(deployment.ca_cert_path, "rb") as handle:
        assert x509.load_pem_x509_certificate(response.body) == x509.load_pem_x509_certificate(handle.read())


def test_robots_txt(client):
    response = client.get("/robots.txt")
    assert response.status_int == 200
    assert response.text == "User-agent: *\nDisallow: /\n"


# -- 401 ---------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {"secret": "wrong"},
    {"user": "someone-else"},
    {"secret": ""},
    {"secret": None},
    {"user": None},
    {"secret": helpers.SECRET + "x"},
    {"secret": helpers.SECRET[:-1]},
])
def test_bad_credentials_get_401(client, deployment, overrides):
    response = sign(client, form(**overrides))
    assert response.status_int == 401
    assert response.text == "authentication failed\n"
    assert deployment.issued_files() == []


def test_authentication_comes_before_parsing(client):
    # An unauthenticated caller learns nothing about the CSR it sent.
    assert sign(client, form(secret="wrong", csr="garbage")).status_int == 401


# -- 400 ---------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    ({"csr": None}, "missing csr field"),
    ({"csr": "not a csr"}, "no PEM block"),
    ({"csr": "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n"},
     "not valid base64"),
    ({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
     "not a PKCS#10"),
    ({"encoding": "base64"}, "unknown encoding"),
    ({"csr": "   "}, "empty"),
    ({"csr": "caf\u00e9"}, "ASCII"),
])
def test_unparseable_requests_get_400(client, deployment, overrides, message):
    response = sign(client, form(**overrides))
    assert response.status_int == 400
    assert message in response.text
    assert deployment.issued_files() == []


def test_certificate_instead_of_csr_gets_400(client, deployment):
    with open(deployment.ca_cert_path) as handle:
        response = sign(client, form(csr=handle.read()))
    assert response.status_int == 400


def test_private_key_instead_of_csr_gets_400(client):
    response = sign(client, form(csr=helpers.key_pem(helpers.private_key("p256")).decode()))
    assert response.status_int == 400


@pytest.mark.parametrize("cn", ["www.example.org", "evilexample.com", "10.1.2.3.example.net"])
def test_policy_refusal_gets_400_with_short_body(client, deployment, cn):
    response = sign(client, form(helpers.make_csr(cn)))
    assert response.status_int == 400
    assert response.text == "request refused by policy\n"
    assert deployment.issued_files() == []


def test_ca_request_is_refused_even_without_validators(deployment):
    deployment.write_config(deployment.config(validators={}))
    client = webtest_app(deployment)
    csr = helpers.make_csr(extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)])
    assert sign(client, form(csr)).status_int == 400
    assert sign(client, form()).status_int == 200


def test_repeated_field_gets_400(client):
    body = "user=%s&user=other&secret=%s&encoding=pem&csr=x" % (helpers.USER, helpers.SECRET)
    response = client.post("/v1/sign/default", body, content_type="application/x-www-form-urlencoded",
                           expect_errors=True)
    assert response.status_int == 400
    assert "more than once" in response.text


def test_non_utf8_field_gets_4xx_and_service_stays_healthy(client):
    body = b"user=%ff%fe&secret=x&encoding=pem&csr=x"
    response = client.post("/v1/sign/default", body, content_type="application/x-www-form-urlencoded",
                           expect_errors=True)
    assert 400 <= response.status_int < 500
    assert sign(client, form()).status_int == 200


def test_source_address_outside_cidrs_gets_400(deployment):
    client = webtest_app(deployment, remote_addr="192.0.2.7")
    assert sign(client, form()).status_int == 400


def test_x_forwarded_for_does_not_fool_source_cidrs(deployment):
    client = webtest_app(deployment, remote_addr="192.0.2.7")
    response = sign(client, form(), headers={"X-Forwarded-For": "127.0.0.1"})
    assert response.status_int == 400


# -- 404 / 405 ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/sign/nope", "/v1/sign/default/extra", "/v1/sign/", "/v1/sign",
                                  "/v1/sign/default.json", "/v1/sign/..%2fdefault"])
def test_unknown_ra_gets_404(client, path):
    assert client.post(path, form(), expect_errors=True).status_int == 404


@pytest.mark.parametrize("path", ["/", "/v1", "/v2/sign/default", "/nothing", "/v1/ca/nope", "/v1/ca/"])
def test_unknown_paths_get_404(client, path):
    assert client.get(path, expect_errors=True).status_int == 404


def test_get_on_sign_gets_405(client):
    response = client.get("/v1/sign/default", expect_errors=True)
    assert response.status_int == 405
    assert response.headers["Allow"] == "POST"


def test_post_on_ca_gets_405(client):
    assert client.post("/v1/ca/default", {}, expect_errors=True).status_int == 405


# -- 413 ---------------------------------------------------------------------

class CountingInput(io.BytesIO):
    """wsgi.input that counts what the application read."""

    def read(self, size=-1):
        data = super().read(size)
        self.consumed = getattr(self, "consumed", 0) + len(data)
        return data


def test_body_over_limit_gets_413_without_being_read(deployment):
    application = anchor_app.make_app(deployment.config_path, max_body_bytes=1000)
    body = CountingInput(b"csr=" + b"A" * 5000)
    environ = {"REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "CONTENT_LENGTH": str(len(body.getvalue())), "wsgi.input": body}
    response = webtest.TestRequest.blank("/v1/sign/default", environ, method="POST").get_response(application)
    assert response.status_int == 413
    assert getattr(body, "consumed", 0) == 0


def test_default_limit_is_one_mebibyte(client):
    big = form(csr="A" * (1024 * 1024))
    assert sign(client, big).status_int == 413
    assert sign(client, form()).status_int == 200


def test_chunked_body_over_limit_gets_413(deployment):
    application = anchor_app.make_app(deployment.config_path, max_body_bytes=1000)
    body = CountingInput(b"csr=" + b"A" * 5000)
    environ = {"REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": body}
    request = webtest.TestRequest.blank("/v1/sign/default", environ, method="POST")
    request.environ.pop("CONTENT_LENGTH", None)
    response = request.get_response(application)
    assert response.status_int == 413
    assert body.consumed <= 1001


# -- 500 (failure injection) -------------------------------------------------

def test_crashing_validator_gets_500_internal_validation_error(deployment, monkeypatch, caplog):
    def crash(**kwargs):
        raise KeyError("bug in a validator")

    monkeypatch.setattr("anchor.validators.standards.standards_compliance", crash)
    client = webtest_app(deployment)
    response = sign(client, form())
    assert response.status_int == 500
    assert response.text == "Internal Validation Error\n"
    assert "bug in a validator" not in response.text
    assert "bug in a validator" in caplog.text  # the detail is in the log
    assert deployment.issued_files() == []


def test_signing_failure_gets_500_certificate_signing_error(client, deployment, monkeypatch):
    def broken(self, request, now=None):
        raise RuntimeError("HSM on fire")

    monkeypatch.setattr(signing.Signer, "sign", broken)
    response = sign(client, form())
    assert response.status_int == 500
    assert response.text == "certificate signing error\n"
    assert deployment.issued_files() == []


def test_unwritable_output_path_gets_500_and_no_certificate(client, deployment, monkeypatch):
    real_fsync = os.fsync

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "fsync", disk_full)
    response = sign(client, form())
    assert response.status_int == 500
    assert "BEGIN CERTIFICATE" not in response.text
    assert os.listdir(deployment.output_dir) == []  # no temporary file left behind either

    monkeypatch.setattr(store.os, "fsync", real_fsync)  # the fault clears
    assert sign(client, form()).status_int == 200
    assert len(deployment.issued_files()) == 1


def test_nothing_but_500_bodies_leak_from_a_crash(deployment, monkeypatch):
    def crash(*args, **kwargs):
        raise ValueError("secret internal detail")

    monkeypatch.setattr("anchor.issuance.decode_request", crash)
    client = webtest_app(deployment)
    response = sign(client, form())
    assert response.status_int == 500
    assert "secret internal detail" not in response.text


# -- request encodings over HTTP -----------------------------------------------

@pytest.mark.parametrize("label", ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST", "CMC"])
def test_pem_with_any_label(client, label):
    der = helpers.csr_der(helpers.make_csr())
    body = base64.encodebytes(der).decode()
    pem = "-----BEGIN %s-----\n%s-----END %s-----\n" % (label, body, label)
    assert sign(client, form(csr=pem)).status_int == 200


def test_der_as_file_upload(client):
    der = helpers.csr_der(helpers.make_csr())
    fields = {k: v for k, v in form(encoding="der").items() if k != "csr"}
    response = client.post("/v1/sign/default", fields, upload_files=[("csr", "req.der", der)],
                           expect_errors=True)
    assert response.status_int == 200, response.text


def test_der_as_base64_field(client):
    der = helpers.csr_der(helpers.make_csr())
    assert sign(client, form(encoding="der", csr=base64.b64encode(der).decode())).status_int == 200


def test_der_raw_bytes_in_text_field_gets_400(client):
    assert sign(client, form(encoding="der", csr="\x30\x82garbage")).status_int == 400


@pytest.mark.parametrize("shape", [cmc_wrappers.shape1, cmc_wrappers.shape2, cmc_wrappers.shape3])
def test_cmc_wrapped_request(client, shape):
    csr = helpers.make_csr("cmc.example.com")
    wrapped = shape(helpers.csr_der(csr))
    fields = {k: v for k, v in form(encoding="der").items() if k != "csr"}
    response = client.post("/v1/sign/default", fields, upload_files=[("csr", "req.cmc", wrapped)],
                           expect_errors=True)
    assert response.status_int == 200, response.text
    assert x509.load_pem_x509_certificate(response.body).subject == csr.subject


def test_cmc_with_two_requests_gets_400(client):
    der = helpers.csr_der(helpers.make_csr())
    wrapped = cmc_wrappers._pkidata([cmc_wrappers._tcr(der, 1), cmc_wrappers._tcr(der, 2)])
    pem = "-----BEGIN CMC-----\n%s-----END CMC-----\n" % base64.encodebytes(wrapped).decode()
    response = sign(client, form(csr=pem))
    assert response.status_int == 400
    assert "exactly one" in response.text


# -- bodies that are not forms -------------------------------------------------

def raw_post(application, body, content_type, **environ):
    request = webtest.TestRequest.blank("/v1/sign/default", {"REMOTE_ADDR": "127.0.0.1"}, method="POST",
                                        body=body, content_type=content_type)
    request.environ.update(environ)
    return request.get_response(application)


@pytest.mark.parametrize("body, content_type", [
    (b"a=b", "multipart/form-data"),  # no boundary: WebOb raises while Pecan routes
    (b"\xff\xfe", "multipart/form-data; boundary=zz"),
    (b"--zz\r\nContent-Disposition: form-data; name=\"user\"; filename=\"u\"\r\n\r\n\xff\xfe\r\n--zz--\r\n",
     "multipart/form-data; boundary=zz"),
    (b"{}", "application/json"),
    (b"", ""),
])
def test_bodies_that_are_not_forms_get_4xx(deployment, body, content_type):
    application = anchor_app.make_app(deployment.config_path)
    response = raw_post(application, body, content_type)
    assert 400 <= response.status_int < 500, response.text
    assert "Traceback" not in response.text
    assert raw_post(application, form_body(), "application/x-www-form-urlencoded").status_int == 200


def form_body():
    return urllib.parse.urlencode(form()).encode()


def test_invalid_content_length_gets_400(deployment):
    application = anchor_app.make_app(deployment.config_path)
    response = raw_post(application, b"user=x", "application/x-www-form-urlencoded", CONTENT_LENGTH="-5")
    assert response.status_int == 400


@pytest.mark.parametrize("path", ["/", "/nothing", "/v1", "/v1/nothing", "/v2/sign/default"])
def test_unknown_paths_answer_plain_text(client, path):
    response = client.get(path, headers={"Accept": "text/html,*/*"}, expect_errors=True)
    assert response.status_int == 404
    assert response.content_type == "text/plain"
    assert response.text == "not found\n"


# -- 503 and backend crashes (failure injection) -------------------------------

def test_unreachable_identity_service_gets_503(client, deployment, monkeypatch):
    from anchor.auth import AuthenticationUnavailable

    def unreachable(self, user, secret):
        raise AuthenticationUnavailable("connection refused by 127.0.0.1:5000")

    monkeypatch.setattr("anchor.auth.static.StaticAuthenticator.authenticate", unreachable)
    response = sign(client, form())
    assert response.status_int == 503
    assert "127.0.0.1" not in response.text
    assert deployment.issued_files() == []


def test_crashing_auth_backend_gets_500_without_detail(client, monkeypatch):
    def crash(self, user, secret):
        raise RuntimeError("backend bug")

    monkeypatch.setattr("anchor.auth.static.StaticAuthenticator.authenticate", crash)
    response = sign(client, form())
    assert response.status_int == 500
    assert "backend bug" not in response.text


def test_broken_self_signature_is_refused_even_without_validators(deployment):
    """Proof of possession is not optional: an RA with no validators still
    refuses a CSR whose signature does not verify."""
    deployment.write_config(deployment.config(validators={}))
    client = webtest_app(deployment)
    der = bytearray(helpers.csr_der(helpers.make_csr("a.example.com")))
    der[-5] ^= 0x01
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n%s-----END CERTIFICATE REQUEST-----\n" % (
        base64.encodebytes(bytes(der)).decode())
    response = sign(client, form(csr=pem))
    assert response.status_int == 400
    assert deployment.issued_files() == []
    assert sign(client, form()).status_int == 200


def test_parser_complaints_stay_in_the_log(client, caplog):
    """A CSR whose extension cannot be parsed gets a short 400; the parser's
    own message (an internal detail) goes to the log only."""
    der = bytearray(helpers.csr_der(helpers.make_csr("a.example.com", dns=["a.example.com"])))
    index = bytes(der).find(b"a.example.com", 40)
    der[index - 1] = 0x7f  # the dNSName's length now runs past the extension
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n%s-----END CERTIFICATE REQUEST-----\n" % (
        base64.encodebytes(bytes(der)).decode())
    response = sign(client, form(csr=pem))
    assert response.status_int == 400
    assert "ParseError" not in response.text and "asn1" not in response.text.lower()
    assert "malformed extension" in response.text
    assert "cannot be used" in caplog.text  # the detail is in the log
