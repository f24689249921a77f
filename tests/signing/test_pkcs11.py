"""The ``pkcs11`` signing backend against a real SoftHSM2 token.

The module makes its own SoftHSM2 token in a temporary directory (see
``softhsm.py``): an RSA-2048 and an EC P-256 CA are made in software with
``cryptography`` (so the CA certificates do not depend on the code under
test), their keys are imported into the token with ``softhsm2-util`` under
CKA_ID 01 and 02, and the software copies are deleted.  Every signature in
these tests is therefore computed by the token.

``SOFTHSM2_CONF`` is set in ``os.environ`` for the whole module (and
restored afterwards): the backend loads the module in this process, and in
the children it forks.
"""

import dataclasses
import datetime
import http.client
import logging
import os
import select
import shutil
import signal
import socketserver
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
import wsgiref.simple_server

import pytest
import webtest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID

import helpers
import softhsm
from anchor import app as anchor_app
from anchor.settings import ConfigError

TOKEN = "anchor"
# A second token holding the RSA CA key, used only by the wrong-PIN tests.  Login
# state is per token and per process in PKCS#11: on a token where this process
# already has a logged-in session, C_Login answers CKR_USER_ALREADY_LOGGED_IN
# whatever the PIN, so a wrong PIN can only be detected on a token nobody in
# this process is logged in to.  Neither label is a prefix of the other:
# pkcs11-tool --token-label matches prefixes.
PIN_TOKEN = "pin-checks"
# A distinctive PIN, so that "it is nowhere in the logs" means something.
PIN = "pin-7f3a9c"
WRONG_PIN = "98765"
KEY_IDS = {"rsa": "01", "ec": "02"}
DELETE = object()  # an override that removes the option from the block

TIMEOUT = 60
LOG_NAME = "anchor.signing.pkcs11"

SIGNATURE_ALGORITHMS = {
    ("rsa", "sha224"): (SignatureAlgorithmOID.RSA_WITH_SHA224, "sha224WithRSAEncryption"),
    ("rsa", "sha256"): (SignatureAlgorithmOID.RSA_WITH_SHA256, "sha256WithRSAEncryption"),
    ("rsa", "sha384"): (SignatureAlgorithmOID.RSA_WITH_SHA384, "sha384WithRSAEncryption"),
    ("rsa", "sha512"): (SignatureAlgorithmOID.RSA_WITH_SHA512, "sha512WithRSAEncryption"),
    ("ec", "sha256"): (SignatureAlgorithmOID.ECDSA_WITH_SHA256, "ecdsa-with-SHA256"),
    ("ec", "sha384"): (SignatureAlgorithmOID.ECDSA_WITH_SHA384, "ecdsa-with-SHA384"),
    ("ec", "sha512"): (SignatureAlgorithmOID.ECDSA_WITH_SHA512, "ecdsa-with-SHA512"),
}


# --------------------------------------------------------------------------
# The token, the CAs and the deployments


@dataclasses.dataclass
class HSM:
    softhsm: softhsm.SoftHSM
    root: str
    slot: int
    certs: dict        # "rsa" / "ec" -> x509.Certificate of the CA whose key is on the token
    cert_paths: dict   # "rsa" / "ec" -> its PEM file
    other_rsa_cert_path: str  # an RSA CA whose key is NOT on the token


@pytest.fixture(scope="module")
def hsm(tmp_path_factory):
    softhsm.require_tools()
    root = tmp_path_factory.mktemp("softhsm")
    token = softhsm.SoftHSM(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", token.conf_path)
        token.init_token(TOKEN, PIN)
        token.init_token(PIN_TOKEN, PIN)
        certs, cert_paths = {}, {}
        for kind, key_kind in (("rsa", "rsa2048"), ("ec", "p256")):
            cert, _, cert_path, key_path = helpers.make_ca(
                str(root / ("ca-" + kind)), key_kind, common_name="HSM %s CA" % kind.upper())
            token.import_key(key_path, TOKEN, PIN, KEY_IDS[kind], "ca-" + kind)
            if kind == "rsa":
                token.import_key(key_path, PIN_TOKEN, PIN, KEY_IDS[kind], "ca-" + kind)
            os.chmod(key_path, 0o600)
            os.unlink(key_path)  # from now on only the token holds the CA key
            certs[kind], cert_paths[kind] = cert, cert_path
        _, _, other_cert_path, other_key_path = helpers.make_ca(
            str(root / "ca-other-rsa"), "rsa2048", common_name="Other RSA CA")
        os.chmod(other_key_path, 0o600)
        os.unlink(other_key_path)
        listing = token.list_objects(TOKEN, PIN)
        assert "ca-rsa" in listing and "ca-ec" in listing, listing
        assert "ca-rsa" in token.list_objects(PIN_TOKEN, PIN)
        yield HSM(token, str(root), token.slot_of(TOKEN), certs, cert_paths, other_cert_path)


def ca_block(hsm, output_dir, kind="rsa", **overrides):
    """A pkcs11 signing_ca block for the ``kind`` CA; DELETE drops an option."""
    block = {
        "backend": "pkcs11",
        "cert_path": hsm.cert_paths[kind],
        "output_path": output_dir,
        "signing_hash": "sha256",
        "valid_hours": 24,
        "token_label": TOKEN,
        "pin": PIN,
        "key_id": KEY_IDS[kind],
        "pkcs11_path": softhsm.MODULE,
    }
    for name, value in overrides.items():
        if value is DELETE:
            block.pop(name, None)
        else:
            block[name] = value
    return block


def write_config(directory, cas, ras):
    """config.json with a static auth block, the CA blocks ``cas`` and the
    RAs ``ras`` (RA name -> CA name), without validators."""
    data = {
        "authentication": {"default_auth": {"backend": "static", "user": helpers.USER,
                                            "secret": helpers.SECRET}},
        "signing_ca": cas,
        "registration_authority": {
            ra: {"authentication": "default_auth", "signing_ca": ca} for ra, ca in ras.items()},
    }
    return helpers.write_json(os.path.join(str(directory), "config.json"), data)


@dataclasses.dataclass
class Deployment:
    config_path: str
    outputs: dict  # RA name -> output_path

    def make_app(self):
        return anchor_app.make_app(self.config_path)

    def client(self):
        return webtest.TestApp(self.make_app(), extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    def files(self, ra):
        """Every entry of the RA's output_path, hidden temporary files included."""
        return sorted(os.listdir(self.outputs[ra]))


def deploy(hsm, directory, rsa=None, ec=None):
    """RAs "rsa" and "ec", each on its own pkcs11 CA block and output_path."""
    directory = str(directory)
    cas, outputs = {}, {}
    for kind, overrides in (("rsa", rsa or {}), ("ec", ec or {})):
        outputs[kind] = os.path.join(directory, "out-" + kind)
        os.makedirs(outputs[kind], exist_ok=True)
        cas[kind] = ca_block(hsm, outputs[kind], kind, **overrides)
    return Deployment(write_config(directory, cas, {"rsa": "rsa", "ec": "ec"}), outputs)


def form(csr):
    return {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
            "csr": helpers.csr_pem(csr).decode()}


def post(client, ra, csr):
    return client.post("/v1/sign/%s" % ra, form(csr), expect_errors=True)


def issue(client, ra, csr):
    response = post(client, ra, csr)
    assert response.status_int == 200, response.text
    return x509.load_pem_x509_certificate(response.body), response.body


def stored_name(certificate):
    return certificate.fingerprint(hashes.SHA256()).hex() + ".crt"


def spki(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------
# openssl


def openssl(*args):
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl not found; install it: apt-get install openssl", pytrace=False)
    try:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("openssl %s did not finish within %s s" % (" ".join(args), TIMEOUT))


def openssl_verify(ca_path, pem, path):
    with open(path, "wb") as handle:
        handle.write(pem)
    result = openssl("verify", "-CAfile", ca_path, str(path))
    assert result.returncode == 0 and "%s: OK" % path in result.stdout, result.stdout + result.stderr


def openssl_signature_algorithm(path):
    result = openssl("x509", "-noout", "-text", "-in", str(path))
    assert result.returncode == 0, result.stderr
    names = {line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
             if line.strip().startswith("Signature Algorithm:")}
    assert len(names) == 1, result.stdout
    return names.pop()


# --------------------------------------------------------------------------
# 1. Signing through the HTTP API


def rich_csr(subject_key):
    return helpers.make_csr(
        "svc.example.com", dns=["svc.example.com", "alt.example.com"], ips=[],
        key=subject_key,
        extensions=[
            (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.BasicConstraints(ca=False, path_length=None), True),
        ])


def local_certificate(directory, kind, csr):
    """The certificate the local (``anchor``) backend issues for ``csr``."""
    _, _, cert_path, key_path = helpers.make_ca(
        os.path.join(str(directory), "local-ca"), {"rsa": "rsa2048", "ec": "p256"}[kind])
    output = os.path.join(str(directory), "local-out")
    os.makedirs(output, exist_ok=True)
    block = {"backend": "anchor", "cert_path": cert_path, "key_path": key_path,
             "output_path": output, "signing_hash": "sha256", "valid_hours": 24}
    path = write_config(directory, {"local": block}, {"local": "local"})
    client = webtest.TestApp(anchor_app.make_app(path), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    return issue(client, "local", csr)[0]


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_signs_through_the_http_api(hsm, tmp_path, kind):
    deployment = deploy(hsm, tmp_path / "hsm")
    client = deployment.client()
    subject_key = helpers.private_key("rsa2048")
    csr = rich_csr(subject_key)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    certificate, pem = issue(client, kind, csr)
    after = datetime.datetime.now(datetime.timezone.utc)
    ca = hsm.certs[kind]

    # The token's signature verifies with the CA certificate, for openssl too.
    certificate.verify_directly_issued_by(ca)
    pem_path = tmp_path / "issued.pem"
    openssl_verify(hsm.cert_paths[kind], pem, pem_path)
    oid, name = SIGNATURE_ALGORITHMS[(kind, "sha256")]
    assert certificate.signature_algorithm_oid == oid
    assert openssl_signature_algorithm(pem_path) == name
    # Recorded before being returned.
    assert deployment.files(kind) == [stored_name(certificate)]
    with open(os.path.join(deployment.outputs[kind], stored_name(certificate)), "rb") as handle:
        assert handle.read() == pem

    # The same form as every backend's certificate.
    helpers.assert_certificate_form(certificate, ca, csr, subject_key, before, after)
    extensions = certificate.extensions
    assert extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == ["svc.example.com", "alt.example.com"]

    # ... and exactly the form of the local backend's certificate for the same CSR.
    local = local_certificate(tmp_path / "local", kind, csr)
    assert local.version == certificate.version
    assert local.subject == certificate.subject
    assert local.serial_number.bit_length() >= 64
    assert local.signature_hash_algorithm.name == certificate.signature_hash_algorithm.name
    assert (local.not_valid_after_utc - local.not_valid_before_utc
            == certificate.not_valid_after_utc - certificate.not_valid_before_utc)
    assert [(ext.oid, ext.critical) for ext in local.extensions] \
        == [(ext.oid, ext.critical) for ext in certificate.extensions]
    for ext in certificate.extensions:
        if ext.oid != ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
            assert local.extensions.get_extension_for_oid(ext.oid).value == ext.value, ext.oid


@pytest.mark.parametrize("kind, signing_hash", sorted(SIGNATURE_ALGORITHMS))
def test_signing_hash_gives_the_matching_algorithm(hsm, tmp_path, kind, signing_hash):
    deployment = deploy(hsm, tmp_path, **{kind: {"signing_hash": signing_hash}})
    certificate, pem = issue(deployment.client(), kind, helpers.make_csr("hash.example.com"))
    oid, name = SIGNATURE_ALGORITHMS[(kind, signing_hash)]
    assert certificate.signature_algorithm_oid == oid
    assert certificate.signature_hash_algorithm.name == signing_hash
    certificate.verify_directly_issued_by(hsm.certs[kind])
    pem_path = tmp_path / "issued.pem"
    openssl_verify(hsm.cert_paths[kind], pem, pem_path)
    assert openssl_signature_algorithm(pem_path) == name


# --------------------------------------------------------------------------
# 2. slot instead of token_label, pin_file instead of pin


def sign_with_both(hsm, deployment, tmp_path):
    client = deployment.client()
    for kind in ("rsa", "ec"):
        certificate, pem = issue(client, kind, helpers.make_csr("%s.example.com" % kind))
        certificate.verify_directly_issued_by(hsm.certs[kind])
        openssl_verify(hsm.cert_paths[kind], pem, tmp_path / ("%s.pem" % kind))
        assert deployment.files(kind) == [stored_name(certificate)]


def test_slot_instead_of_token_label(hsm, tmp_path):
    assert isinstance(hsm.slot, int)
    by_slot = {"token_label": DELETE, "slot": hsm.slot}
    sign_with_both(hsm, deploy(hsm, tmp_path, rsa=by_slot, ec=by_slot), tmp_path)


def test_pin_file_instead_of_pin(hsm, tmp_path):
    # A relative pin_file is taken relative to config.json's directory.
    (tmp_path / "token.pin").write_text(PIN + "\n")
    from_file = {"pin": DELETE, "pin_file": "token.pin"}
    sign_with_both(hsm, deploy(hsm, tmp_path, rsa=from_file, ec=from_file), tmp_path)


def test_slot_and_pin_file_together(hsm, tmp_path):
    pin_path = tmp_path / "secret" / "token.pin"
    pin_path.parent.mkdir()
    pin_path.write_text(PIN)
    options = {"token_label": DELETE, "slot": hsm.slot, "pin": DELETE, "pin_file": str(pin_path)}
    sign_with_both(hsm, deploy(hsm, tmp_path, rsa=options, ec=options), tmp_path)


# --------------------------------------------------------------------------
# 3. Configuration errors: one line from make_app, naming the option


def _not_a_module(hsm, directory):
    path = os.path.join(directory, "not-a-module.so")
    with open(path, "w") as handle:
        handle.write("this is a text file, not a PKCS#11 module\n")
    return {"pkcs11_path": path}


def _library_without_pkcs11(hsm, directory):
    # A real shared library, but without C_GetFunctionList.
    import PyKCS11.LowLevel
    return {"pkcs11_path": PyKCS11.LowLevel._LowLevel.__file__}


def _missing_pin_file(hsm, directory):
    return {"pin": DELETE, "pin_file": os.path.join(directory, "absent.pin")}


def _empty_pin_file(hsm, directory):
    path = os.path.join(directory, "empty.pin")
    with open(path, "w") as handle:
        handle.write(" \n")
    return {"pin": DELETE, "pin_file": path}


def _both_pins(hsm, directory):
    path = os.path.join(directory, "token.pin")
    with open(path, "w") as handle:
        handle.write(PIN)
    return {"pin_file": path}


CONFIG_ERRORS = [
    # id, overrides (or a function of (hsm, directory) returning them), option, text in the message
    ("pkcs11_path-absent", {"pkcs11_path": DELETE}, "pkcs11_path", "missing"),
    ("pkcs11_path-no-such-file", {"pkcs11_path": "/nonexistent/libpkcs11.so"}, "pkcs11_path",
     "no PKCS#11 module at /nonexistent/libpkcs11.so"),
    ("pkcs11_path-text-file", _not_a_module, "pkcs11_path", "cannot load PKCS#11 module"),
    ("pkcs11_path-other-library", _library_without_pkcs11, "pkcs11_path", "cannot load PKCS#11 module"),
    ("token_label-not-found", {"token_label": "no-such-token"}, "token_label", "'no-such-token'"),
    ("slot-not-found", {"token_label": DELETE, "slot": 987654}, "slot", "no token in slot 987654"),
    ("slot-not-a-number", {"token_label": DELETE, "slot": "1"}, "slot", "must be a slot number"),
    ("pin_file-missing", _missing_pin_file, "pin_file", "absent.pin"),
    ("pin_file-empty", _empty_pin_file, "pin_file", "is empty"),
    ("key_id-not-on-token", {"key_id": "ff"}, "key_id", "CKA_ID ff"),
    ("key_id-not-hex", {"key_id": "zz"}, "key_id", "'zz' is not hexadecimal"),
    ("key_id-absent", {"key_id": DELETE}, "key_id", "missing"),
    ("key_id-rsa-key-with-ec-cert", {"cert_path": "EC"}, "key_id", "does not match"),
    ("key_id-key-of-another-rsa-ca", {"cert_path": "OTHER"}, "key_id", "does not match"),
    ("pin-and-pin_file", _both_pins, "pin", "exactly one of pin and pin_file"),
    ("neither-pin-nor-pin_file", {"pin": DELETE}, "pin", "exactly one of pin and pin_file"),
    ("neither-token_label-nor-slot", {"token_label": DELETE}, "token_label", "exactly one of"),
    ("token_label-and-slot", {"slot": 0}, "token_label", "exactly one of"),
    ("unknown-option", {"colour": "blue"}, "colour", "unknown option"),
]


def config_error(path):
    with pytest.raises(ConfigError) as info:
        anchor_app.make_app(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


def single_ca_config(hsm, directory, **overrides):
    directory = str(directory)
    output = os.path.join(directory, "out")
    os.makedirs(output, exist_ok=True)
    return write_config(directory, {"hsm": ca_block(hsm, output, "rsa", **overrides)}, {"rsa": "hsm"})


@pytest.mark.parametrize("overrides, option, text",
                         [case[1:] for case in CONFIG_ERRORS], ids=[case[0] for case in CONFIG_ERRORS])
def test_configuration_error(hsm, tmp_path, caplog, overrides, option, text):
    caplog.set_level(logging.DEBUG)
    if callable(overrides):
        overrides = overrides(hsm, str(tmp_path))
    special = {"EC": hsm.cert_paths["ec"], "OTHER": hsm.other_rsa_cert_path}
    if overrides.get("cert_path") in special:
        overrides = dict(overrides, cert_path=special[overrides["cert_path"]])
    path = single_ca_config(hsm, tmp_path, **overrides)
    message = config_error(path)
    assert message.startswith("%s: signing_ca.hsm.%s: " % (path, option)), message
    assert text in message, message
    assert PIN not in message and PIN not in caplog.text
    # The same token works with the right settings: the failure was the option's.
    good = single_ca_config(hsm, tmp_path / "good")
    client = webtest.TestApp(anchor_app.make_app(good), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    issue(client, "rsa", helpers.make_csr())


@pytest.mark.parametrize("source", ["pin", "pin_file"])
def test_wrong_pin_is_named_and_never_shown(hsm, tmp_path, caplog, source):
    caplog.set_level(logging.DEBUG)
    if source == "pin":
        overrides = {"pin": WRONG_PIN}
    else:
        (tmp_path / "wrong.pin").write_text(WRONG_PIN + "\n")
        overrides = {"pin": DELETE, "pin_file": "wrong.pin"}
    path = single_ca_config(hsm, tmp_path, token_label=PIN_TOKEN, **overrides)
    message = config_error(path)
    assert message.startswith("%s: signing_ca.hsm.%s: " % (path, source)), message
    assert "login" in message and "CKR_PIN_INCORRECT" in message, message
    assert PIN_TOKEN in message
    assert WRONG_PIN not in message
    assert WRONG_PIN not in caplog.text
    assert PIN not in message and PIN not in caplog.text
    # Only the PIN was wrong (checked in another process, which leaves this
    # process logged out of that token).
    assert "ca-rsa" in hsm.softhsm.list_objects(PIN_TOKEN, PIN)


def test_pykcs11_not_installed(hsm, tmp_path, monkeypatch):
    monkeypatch.setattr("anchor.signing.pkcs11.PyKCS11", None)
    path = single_ca_config(hsm, tmp_path)
    message = config_error(path)
    assert message.startswith("%s: signing_ca.hsm.backend: " % path), message
    assert "PyKCS11" in message and "pip install" in message, message


# --------------------------------------------------------------------------
# 4. Concurrent requests in one process


class _ThreadingServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 128  # 50 clients connect at once


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_concurrent_requests(hsm, tmp_path, kind):
    count = 50
    deployment = deploy(hsm, tmp_path)
    application = deployment.make_app()
    keys = [helpers.private_key("p256", fresh=True) for _ in range(count)]
    bodies = [urllib.parse.urlencode(form(helpers.make_csr("c%02d.example.com" % i, key=key)))
              for i, key in enumerate(keys)]
    results = [None] * count
    barrier = threading.Barrier(count)

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, application,
                                               server_class=_ThreadingServer,
                                               handler_class=_QuietHandler)
    port = server.server_address[1]
    server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                     daemon=True)
    server_thread.start()

    def client(index):
        try:
            barrier.wait(timeout=TIMEOUT)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
            try:
                connection.request("POST", "/v1/sign/%s" % kind, bodies[index],
                                   {"Content-Type": "application/x-www-form-urlencoded"})
                response = connection.getresponse()
                results[index] = (response.status, response.read())
            finally:
                connection.close()
        except Exception as exc:  # reported by the main thread
            results[index] = exc

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(count)]
    # Switch threads far more often than the default 5 ms, so that requests
    # interleave inside the backend as they would on a busy server.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 2 * TIMEOUT
        for thread in clients:
            thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in clients), "clients still running"
    finally:
        sys.setswitchinterval(switch_interval)
        server.shutdown()
        server.server_close()
        server_thread.join(TIMEOUT)

    failures = [(i, result) for i, result in enumerate(results)
                if not isinstance(result, tuple) or result[0] != 200]
    assert not failures, failures[:5]
    ca = hsm.certs[kind]
    certificates = [x509.load_pem_x509_certificate(body) for _, body in results]
    for index, certificate in enumerate(certificates):
        certificate.verify_directly_issued_by(ca)
        # Each client got the certificate of its own request.
        assert spki(certificate.public_key()) == spki(keys[index].public_key())
    for index in (0, count // 2, count - 1):
        openssl_verify(hsm.cert_paths[kind], results[index][1], tmp_path / ("c%02d.pem" % index))
    assert len({certificate.serial_number for certificate in certificates}) == count
    assert deployment.files(kind) == sorted(stored_name(c) for c in certificates)


# --------------------------------------------------------------------------
# 5. Recovery after the token dropped the session


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_recovers_after_the_session_is_closed_underneath(hsm, tmp_path, caplog, kind):
    caplog.set_level(logging.DEBUG)
    deployment = deploy(hsm, tmp_path)
    client = deployment.client()
    first, _ = issue(client, kind, helpers.make_csr("first.example.com"))
    assert deployment.files(kind) == [stored_name(first)]

    hsm.softhsm.close_all_sessions(hsm.slot)

    response = post(client, kind, helpers.make_csr("dropped.example.com"))
    assert response.status_int == 500, response.text
    assert "certificate signing error" in response.text
    assert "BEGIN CERTIFICATE" not in response.text
    # Nothing half-issued: no new certificate, not even a temporary file.
    assert deployment.files(kind) == [stored_name(first)]
    warnings = [record for record in caplog.records
                if record.name == LOG_NAME and record.levelno == logging.WARNING
                and "dropped the session" in record.getMessage()]
    assert len(warnings) == 1, caplog.text
    assert "CKR_SESSION_HANDLE_INVALID" in warnings[0].getMessage()

    # The next request reopens a session and succeeds.
    again, _ = issue(client, kind, helpers.make_csr("again.example.com"))
    again.verify_directly_issued_by(hsm.certs[kind])
    assert deployment.files(kind) == sorted([stored_name(first), stored_name(again)])
    # The other RA's CA, on its own session, was not disturbed for good either.
    other = "ec" if kind == "rsa" else "rsa"
    issue(client, other, helpers.make_csr("other.example.com"))
    issue(client, other, helpers.make_csr("other2.example.com"))
    assert PIN not in caplog.text


# --------------------------------------------------------------------------
# 6. The PIN never appears in the logs


def test_pin_is_never_logged(hsm, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    deployment = deploy(hsm, tmp_path / "good")
    client = deployment.client()
    bodies = []
    for kind in ("rsa", "ec"):
        bodies.append(issue(client, kind, helpers.make_csr("%s.example.com" % kind))[1].decode())
        bad_secret = dict(form(helpers.make_csr()), secret="wrong")
        bodies.append(client.post("/v1/sign/%s" % kind, bad_secret, expect_errors=True).text)
        bad_csr = dict(form(helpers.make_csr()), csr="not a CSR")
        bodies.append(client.post("/v1/sign/%s" % kind, bad_csr, expect_errors=True).text)
    hsm.softhsm.close_all_sessions(hsm.slot)
    for kind in ("rsa", "ec"):
        failed = post(client, kind, helpers.make_csr())
        assert failed.status_int == 500
        bodies.append(failed.text)
    messages = [config_error(single_ca_config(hsm, tmp_path / "wrong", token_label=PIN_TOKEN,
                                              pin=WRONG_PIN)),
                config_error(single_ca_config(hsm, tmp_path / "nokey", key_id="ff"))]

    # The logs saw all of it (so their silence about the PIN means something)...
    text = caplog.text
    assert "issued serial" in text
    assert "authentication failed" in text or "stage auth" in text
    assert "dropped the session" in text
    assert "failed to sign" in text
    # ... and the PIN is nowhere: not in the logs, the answers or the errors.
    assert PIN not in text
    assert WRONG_PIN not in text
    for body in bodies + messages:
        assert PIN not in body
    assert WRONG_PIN not in messages[0]


# --------------------------------------------------------------------------
# 7. Fork safety: uwsgi forks its workers after loading the app


def wait_for_child(pid, read_fd):
    """The child's exit status and what it wrote to the pipe; kill it after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_fd)
        pytest.fail("the forked child did not finish within %s s" % TIMEOUT)
    chunks = []
    while select.select([read_fd], [], [], 1)[0]:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    return status, b"".join(chunks).decode("utf-8", "replace")


FORK_CASES = {
    # uwsgi's case: fork right after make_app, before any request.
    "fresh": (False, False),
    # The parent has a live session when it forks.
    "parent-has-session": (True, False),
    # ... and the child's copy of it is dead, as PKCS#11 allows after a fork
    # (SoftHSM2 keeps a working copy, so the child closes it first to act like
    # an HSM that does not): the child must open its own session, not try the
    # parent's and fail its first request.
    "parent-session-dead-in-child": (True, True),
}


@pytest.mark.parametrize("case", sorted(FORK_CASES))
def test_fork_safety(hsm, tmp_path, case):
    parent_signed_first, kill_inherited_sessions = FORK_CASES[case]
    deployment = deploy(hsm, tmp_path)
    client = deployment.client()
    before = {kind: 0 for kind in ("rsa", "ec")}
    if parent_signed_first:
        for kind in before:
            issue(client, kind, helpers.make_csr("parent-before.example.com"))
            before[kind] = 1
    child_forms = {kind: form(helpers.make_csr("child-%s.example.com" % kind)) for kind in before}

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: sign through the app, report the statuses, exit
        code = 1
        try:
            os.close(read_fd)
            if kill_inherited_sessions:
                hsm.softhsm.close_all_sessions(hsm.slot)
            statuses = [str(client.post("/v1/sign/%s" % kind, child_forms[kind],
                                        expect_errors=True).status_int) for kind in ("rsa", "ec")]
            os.write(write_fd, " ".join(statuses).encode())
            code = 0
        except BaseException:
            try:
                os.write(write_fd, traceback.format_exc()[-4000:].encode())
            except BaseException:
                pass
        finally:
            os._exit(code)

    os.close(write_fd)
    status, report = wait_for_child(pid, read_fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    assert report == "200 200", report
    for kind in before:
        # The child's certificates were recorded and verify.
        names = deployment.files(kind)
        assert len(names) == before[kind] + 1, names
        for name in names:
            with open(os.path.join(deployment.outputs[kind], name), "rb") as handle:
                x509.load_pem_x509_certificate(handle.read()).verify_directly_issued_by(hsm.certs[kind])

    # The parent still signs after the child has gone (with its own session).
    for kind in before:
        certificate, _ = issue(client, kind, helpers.make_csr("parent-after.example.com"))
        certificate.verify_directly_issued_by(hsm.certs[kind])
        assert len(deployment.files(kind)) == before[kind] + 2
