"""anchor-certmonger, the certmonger CA helper, run as certmonger runs it.

Every test starts the helper as a subprocess (``python -m anchor.certmonger``)
with a controlled environment (CERTMONGER_OPERATION, CERTMONGER_CSR) and
checks its stdout and exit status against certmonger's helper protocol:

    0 issued (PEM on stdout)   2 rejected   3 unreachable, retry later
    4 underconfigured          6 operation not supported

The Anchor it talks to is the real WSGI application, served in this process
by a threaded wsgiref server on 127.0.0.1.  Failures Anchor does not produce
on demand (503, 500, a redirect, a server that never answers) come from tiny
fake servers.  Whatever happens, the secret is never on the helper's command
line and never in what it prints.
"""

import contextlib
import datetime
import hashlib
import http.server
import ipaddress
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import wsgiref.simple_server

import pytest
import webob
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

import anchor
import helpers
from anchor import app as anchor_app
from conftest import make_deployment

HELPER = [sys.executable, "-m", "anchor.certmonger"]
WRAPPER = os.path.join(helpers.REPO, "tools", "anchor-certmonger")
RUN_TIMEOUT = 60
WRONG_SECRET = "definitely-not-the-secret-4711"


# --------------------------------------------------------------------------
# Servers


class _QuietWSGIHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def serving(server):
    """Run ``server`` in a background thread; shut it down on the way out."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wsgi_server(application, tls_context=None):
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, application,
                                               server_class=_ThreadingWSGIServer,
                                               handler_class=_QuietWSGIHandler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    return server


def url_of(server, scheme="http"):
    return "%s://127.0.0.1:%d" % (scheme, server.server_address[1])


@pytest.fixture(scope="module")
def anchor_deployment(tmp_path_factory):
    return make_deployment(str(tmp_path_factory.mktemp("certmonger-helper")))


@pytest.fixture(scope="module")
def anchor_url(anchor_deployment):
    """A real Anchor (the sample policy) on http://127.0.0.1:<port>."""
    application = anchor_app.make_app(anchor_deployment.config_path)
    with serving(wsgi_server(application)) as server:
        yield url_of(server)


class FakeAnchor(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's canned (status, body, headers)
    and records what it was sent."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.received.append((self.command, self.path, dict(self.headers), body))
        status, text, headers = self.server.answer
        payload = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def fake_anchor(status, body="", headers=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeAnchor)
    server.daemon_threads = True
    server.answer = (status, body, headers or {})
    server.received = []
    with serving(server):
        yield server


@contextlib.contextmanager
def silent_server():
    """A port that accepts connections (the kernel completes them) but never
    answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield "http://127.0.0.1:%d" % listener.getsockname()[1]


# --------------------------------------------------------------------------
# Running the helper


def helper_env(home, operation, csr, extra=None):
    """What certmonger gives a helper, and nothing from this test's own
    environment that could change the result (proxies, a user's config)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": helpers.REPO,
    }
    if operation is not None:
        env["CERTMONGER_OPERATION"] = operation
    if csr is not None:
        env["CERTMONGER_CSR"] = csr
    env.update(extra or {})
    return env


def run_helper(args, home, operation="SUBMIT", csr=None, command=None, extra_env=None,
               secrets=(helpers.SECRET,)):
    """Run the helper; the secret must be neither in its argv nor its output."""
    argv = list(command or HELPER) + [str(arg) for arg in args]
    for secret in secrets:
        assert not any(secret in arg for arg in argv), argv
    try:
        result = subprocess.run(argv, env=helper_env(home, operation, csr, extra_env),
                                cwd=str(home), stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail("the helper did not finish within %d s: %r" % (RUN_TIMEOUT, exc))
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr, result
    return result


def show(result):
    return "exit %s\n--- stdout ---\n%s--- stderr ---\n%s" % (
        result.returncode, result.stdout, result.stderr)


def write_secret(path, secret=helpers.SECRET, mode=0o400):
    with open(path, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, mode)
    return str(path)


@pytest.fixture
def secret_file(tmp_path):
    return write_secret(tmp_path / "secret")


def csr_text(cn="host.example.com", dns=None):
    csr = helpers.make_csr(cn=cn, dns=[cn] if dns is None else dns)
    return helpers.csr_pem(csr).decode("ascii")


def settings(url, secret_file, ra="default", user=helpers.USER, *extra):
    return ["--url", url, "--ra", ra, "--user", user, "--secret-file", secret_file, *extra]


def check_issued(result, deployment, cn):
    """stdout is one PEM certificate for ``cn`` from Anchor's CA, recorded in
    the output directory."""
    assert result.returncode == 0, show(result)
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----\n"), show(result)
    assert result.stdout.endswith("-----END CERTIFICATE-----\n"), show(result)
    assert result.stdout.count("BEGIN CERTIFICATE") == 1, show(result)
    certificate = x509.load_pem_x509_certificate(result.stdout.encode("ascii"))
    certificate.verify_directly_issued_by(deployment.ca_cert)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
    der = certificate.public_bytes(serialization.Encoding.DER)
    stored = os.path.join(deployment.output_dir, hashlib.sha256(der).hexdigest() + ".crt")
    with open(stored) as handle:
        assert handle.read() == result.stdout
    return certificate


def one_line(result):
    lines = result.stdout.splitlines()
    assert len(lines) == 1, show(result)
    return lines[0]


# --------------------------------------------------------------------------
# 0: issued


def test_submit_prints_the_certificate(anchor_url, anchor_deployment, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path,
                        csr=csr_text("submit.example.com"))
    check_issued(result, anchor_deployment, "submit.example.com")
    assert result.stderr == ""


def test_poll_is_a_submit(anchor_url, anchor_deployment, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path, operation="POLL",
                        csr=csr_text("poll.example.com"),
                        extra_env={"CERTMONGER_CA_COOKIE": "whatever"})
    check_issued(result, anchor_deployment, "poll.example.com")


def test_without_an_operation_it_submits_the_csr_file(anchor_url, anchor_deployment,
                                                      secret_file, tmp_path):
    """Run by hand (no CERTMONGER_* variables): the CSR comes from a file."""
    csr_path = tmp_path / "by-hand.csr"
    csr_path.write_text(csr_text("by-hand.example.com"))
    result = run_helper(settings(anchor_url, secret_file) + [str(csr_path)], tmp_path,
                        operation=None)
    check_issued(result, anchor_deployment, "by-hand.example.com")


def test_wrapper_script_runs_the_helper(anchor_url, anchor_deployment, secret_file, tmp_path):
    """tools/anchor-certmonger runs the helper with the python of the .venv
    next to its tools/ directory, wherever the checkout is (and through a
    symbolic link, as a copy in /usr/local/bin would be)."""
    checkout = tmp_path / "checkout"
    (checkout / "tools").mkdir(parents=True)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(WRAPPER, checkout / "tools" / "anchor-certmonger")
    python = checkout / ".venv" / "bin" / "python"
    python.write_text('#!/bin/sh\nexec "%s" "$@"\n' % sys.executable)
    python.chmod(0o755)
    link = tmp_path / "anchor-certmonger"
    link.symlink_to(checkout / "tools" / "anchor-certmonger")
    assert os.access(WRAPPER, os.X_OK)

    identified = run_helper([], tmp_path, operation="IDENTIFY", command=[str(link)])
    assert identified.returncode == 0 and identified.stdout.startswith("Anchor "), show(identified)
    result = run_helper(settings(anchor_url, secret_file), tmp_path, command=[str(link)],
                        csr=csr_text("wrapper.example.com"))
    check_issued(result, anchor_deployment, "wrapper.example.com")


def test_the_form_is_what_curl_F_sends(secret_file, tmp_path):
    """multipart/form-data with user, secret, encoding=pem and csr."""
    csr = csr_text("form.example.com")
    with fake_anchor(200, "no certificate here") as server:
        run_helper(settings(url_of(server) + "/", secret_file, ra="my ra"), tmp_path, csr=csr)
    [(method, path, headers, body)] = server.received
    assert (method, path) == ("POST", "/v1/sign/my%20ra")
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert headers["User-Agent"] == "anchor-certmonger/%s" % anchor.__version__
    form = webob.Request.blank("/", method="POST", body=body,
                               headers={"Content-Type": headers["Content-Type"]}).POST
    assert sorted(form.keys()) == ["csr", "encoding", "secret", "user"]
    assert form["user"] == helpers.USER
    assert form["secret"] == helpers.SECRET  # the file's trailing newline is not part of it
    assert form["encoding"] == "pem"
    assert form["csr"] == csr


# --------------------------------------------------------------------------
# 2: rejected


def test_policy_refusal_is_rejected(anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path,
                        csr=csr_text("www.example.org"))
    assert result.returncode == 2, show(result)
    assert one_line(result) == ("Anchor answered 400 to the signing request: "
                                "request refused by policy")


def test_wrong_secret_is_rejected(anchor_url, tmp_path):
    wrong = write_secret(tmp_path / "wrong", WRONG_SECRET)
    result = run_helper(settings(anchor_url, wrong), tmp_path, csr=csr_text(),
                        secrets=(helpers.SECRET, WRONG_SECRET))
    assert result.returncode == 2, show(result)
    assert one_line(result).startswith("Anchor answered 401 to the signing request: ")


def test_wrong_user_is_rejected(anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file, "default", "someone-else"), tmp_path,
                        csr=csr_text())
    assert result.returncode == 2, show(result)
    assert " 401 " in one_line(result)


def test_unknown_ra_is_rejected(anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file, ra="no-such-ra"), tmp_path,
                        csr=csr_text())
    assert result.returncode == 2, show(result)
    assert one_line(result) == ("Anchor answered 404 to the signing request: "
                                "no such registration authority")


def test_unparseable_csr_is_rejected(anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path,
                        csr="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                            "-----END CERTIFICATE REQUEST-----\n")
    assert result.returncode == 2, show(result)
    assert " 400 " in one_line(result)


def test_a_multiline_reason_is_printed_on_one_line(secret_file, tmp_path):
    with fake_anchor(403, "forbidden\n  for\r\nreasons\n") as server:
        result = run_helper(settings(url_of(server), secret_file), tmp_path, csr=csr_text())
    assert result.returncode == 2, show(result)
    assert one_line(result) == "Anchor answered 403 to the signing request: forbidden for reasons"


# --------------------------------------------------------------------------
# 3: unreachable, certmonger retries later


def test_nothing_listening_is_unreachable(secret_file, tmp_path):
    url = "http://127.0.0.1:%d" % helpers.free_port()
    result = run_helper(settings(url, secret_file), tmp_path, csr=csr_text())
    assert result.returncode == 3, show(result)
    assert one_line(result).startswith("anchor-certmonger: cannot reach Anchor at %s" % url)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_unreachable(status, secret_file, tmp_path):
    with fake_anchor(status, "try later") as server:
        result = run_helper(settings(url_of(server), secret_file), tmp_path, csr=csr_text())
    assert result.returncode == 3, show(result)
    assert one_line(result) == "Anchor answered %d to the signing request: try later" % status


def test_200_without_a_certificate_is_retried(secret_file, tmp_path):
    with fake_anchor(200, "<html>a captive portal</html>") as server:
        result = run_helper(settings(url_of(server), secret_file), tmp_path, csr=csr_text())
    assert result.returncode == 3, show(result)


def test_a_server_that_never_answers_times_out(secret_file, tmp_path):
    with silent_server() as url:
        started = time.monotonic()
        result = run_helper(settings(url, secret_file, "default", helpers.USER, "--timeout", "1"),
                            tmp_path, csr=csr_text())
        elapsed = time.monotonic() - started
    assert result.returncode == 3, show(result)
    assert "1 s" in result.stdout or "timed out" in result.stdout, show(result)
    assert elapsed < 15, elapsed


# --------------------------------------------------------------------------
# 4: underconfigured


def _missing_settings_cases():
    def base(url, secret):
        return {"--url": url, "--ra": "default", "--user": helpers.USER, "--secret-file": secret}

    return {
        "no url": (lambda b: b.pop("--url"), "no Anchor URL"),
        "not an http url": (lambda b: b.update({"--url": "ftp://127.0.0.1/"}), "http:// or https://"),
        "no ra": (lambda b: b.pop("--ra"), "no registration authority"),
        "no secret file": (lambda b: b.pop("--secret-file"), "no secret"),
        "secret file missing": (lambda b: b.update({"--secret-file": b["--secret-file"] + ".gone"}),
                                "No such file"),
        "secret file is a directory": (lambda b: b.update({"--secret-file": os.path.dirname(
            b["--secret-file"])}), "not a regular file"),
    }, base


CASES, BASE = _missing_settings_cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_missing_settings_are_underconfigured(case, anchor_url, secret_file, tmp_path):
    change, message = CASES[case]
    options = BASE(anchor_url, secret_file)
    change(options)
    args = [item for pair in options.items() for item in pair]
    result = run_helper(args, tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert message in one_line(result), show(result)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o440, 0o660, 0o700 | 0o004])
def test_a_secret_file_others_can_read_is_underconfigured(mode, anchor_url, tmp_path):
    path = write_secret(tmp_path / "secret", mode=mode)
    result = run_helper(settings(anchor_url, path), tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert "has mode %04o" % mode in one_line(result), show(result)


@pytest.mark.parametrize("mode", [0o400, 0o600])
def test_a_private_secret_file_is_accepted(mode, anchor_url, anchor_deployment, tmp_path):
    path = write_secret(tmp_path / "secret", mode=mode)
    result = run_helper(settings(anchor_url, path), tmp_path, csr=csr_text("mode.example.com"))
    check_issued(result, anchor_deployment, "mode.example.com")


def test_a_secret_file_of_another_user_is_underconfigured(anchor_url, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    path = write_secret(tmp_path / "secret")
    os.chown(path, 65534, 65534)
    result = run_helper(settings(anchor_url, path), tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert "must belong to the user running the helper" in one_line(result), show(result)


def test_an_empty_secret_file_is_underconfigured(anchor_url, tmp_path):
    path = tmp_path / "secret"
    path.write_text("\n")
    path.chmod(0o400)
    result = run_helper(settings(anchor_url, str(path)), tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert "is empty" in one_line(result)


@pytest.mark.parametrize("csr", [None, "", "  \n"])
def test_no_csr_is_underconfigured(csr, anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path, csr=csr)
    assert result.returncode == 4, show(result)
    assert "no CSR" in one_line(result)


@pytest.mark.parametrize("option", ["--secret", "--password", "--secret=%s"])
def test_a_secret_on_the_command_line_is_refused_and_not_echoed(option, anchor_url, secret_file,
                                                                tmp_path):
    """The helper has no option for the secret itself (and no abbreviation of
    --secret-file): ``ps`` would show it to every user.  The refusal does
    not repeat the value."""
    value = "cmdline-secret-0815"
    args = settings(anchor_url, secret_file)
    args += [option % value] if "%s" in option else [option, value]
    result = run_helper(args, tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert value not in result.stdout + result.stderr
    assert "never taken from the command line" in one_line(result)


def test_bad_command_lines_are_underconfigured_not_rejected(anchor_url, secret_file, tmp_path):
    """argparse would exit 2, which certmonger reads as "the CA rejected it"."""
    for args in (["--bogus"], ["--timeout", "soon"], ["--timeout", "0"], ["--url"]):
        result = run_helper(settings(anchor_url, secret_file) + args, tmp_path, csr=csr_text())
        assert result.returncode == 4, show(result)
        assert result.stdout.startswith("anchor-certmonger: "), show(result)


def test_a_redirect_is_not_followed(secret_file, tmp_path):
    """Following it could carry the secret to another server."""
    with fake_anchor(307, "moved", {"Location": "http://127.0.0.1:1/elsewhere"}) as server:
        result = run_helper(settings(url_of(server), secret_file), tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert "redirect" in one_line(result)
    assert len(server.received) == 1


# --------------------------------------------------------------------------
# https: always verified


@pytest.fixture(scope="module")
def tls_anchor(anchor_deployment, tmp_path_factory):
    """The same Anchor behind TLS, with a server certificate for 127.0.0.1
    from a separate TLS CA; yields (url, TLS CA bundle path)."""
    root = tmp_path_factory.mktemp("tls")
    ca_cert, ca_key, ca_path, _ = helpers.make_ca(str(root / "tls-ca"), "p256",
                                                  common_name="TLS Test CA")
    key = helpers.private_key("p256", fresh=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, helpers.hash_for(ca_key)))
    cert_path, key_path = root / "server.crt", root / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(helpers.key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    application = anchor_app.make_app(anchor_deployment.config_path)
    with serving(wsgi_server(application, context)) as server:
        yield url_of(server, "https"), ca_path


def test_https_with_the_ca_file(tls_anchor, anchor_deployment, secret_file, tmp_path):
    url, bundle = tls_anchor
    result = run_helper(settings(url, secret_file) + ["--ca-file", bundle], tmp_path,
                        csr=csr_text("tls.example.com"))
    check_issued(result, anchor_deployment, "tls.example.com")


def test_https_without_the_right_ca_does_not_verify(tls_anchor, anchor_deployment, secret_file,
                                                    tmp_path):
    url, _ = tls_anchor
    other = helpers.make_ca(str(tmp_path / "other-ca"), "p256", common_name="Other CA")[2]
    for extra in ([], ["--ca-file", other]):
        result = run_helper(settings(url, secret_file) + extra, tmp_path, csr=csr_text())
        assert result.returncode == 4, show(result)
        assert "does not verify" in one_line(result), show(result)


def test_an_unreadable_ca_file_is_underconfigured(tls_anchor, secret_file, tmp_path):
    url, _ = tls_anchor
    result = run_helper(settings(url, secret_file) + ["--ca-file", str(tmp_path / "nope.pem")],
                        tmp_path, csr=csr_text())
    assert result.returncode == 4, show(result)
    assert "cannot use the CA file" in one_line(result)


# --------------------------------------------------------------------------
# The other operations


def test_identify(tmp_path):
    result = run_helper([], tmp_path, operation="IDENTIFY")
    assert result.returncode == 0, show(result)
    assert result.stdout == "Anchor (anchor-certmonger %s)\n" % anchor.__version__


def test_fetch_roots_prints_a_nickname_then_the_ca(anchor_url, anchor_deployment, tmp_path):
    """certmonger's format: a nickname line, then the certificate in PEM.  No
    secret is needed to read the CA certificate."""
    result = run_helper(["--url", anchor_url, "--ra", "default"], tmp_path,
                        operation="FETCH-ROOTS")
    assert result.returncode == 0, show(result)
    nickname, pem = result.stdout.split("\n", 1)
    assert nickname == "Anchor default"
    with open(anchor_deployment.ca_cert_path) as handle:
        assert pem == handle.read()


def test_fetch_roots_unreachable_and_unknown_ra(anchor_url, tmp_path):
    down = run_helper(["--url", "http://127.0.0.1:%d" % helpers.free_port(), "--ra", "default"],
                      tmp_path, operation="FETCH-ROOTS")
    assert down.returncode == 3, show(down)
    unknown = run_helper(["--url", anchor_url, "--ra", "nope"], tmp_path, operation="FETCH-ROOTS")
    assert unknown.returncode == 2, show(unknown)
    missing = run_helper(["--url", anchor_url], tmp_path, operation="FETCH-ROOTS")
    assert missing.returncode == 4, show(missing)


@pytest.mark.parametrize("operation", ["GET-NEW-REQUEST-REQUIREMENTS", "GET-SUPPORTED-TEMPLATES"])
def test_answered_without_anchor(operation, tmp_path):
    """Nothing to require beyond the CSR, no templates: empty lists."""
    result = run_helper(["--url", "http://127.0.0.1:%d" % helpers.free_port(), "--ra", "default"],
                        tmp_path, operation=operation)
    assert (result.returncode, result.stdout) == (0, ""), show(result)


@pytest.mark.parametrize("operation", [
    "GET-RENEW-REQUEST-REQUIREMENTS", "GET-DEFAULT-TEMPLATE", "FETCH-SCEP-CA-CAPS",
    "FETCH-SCEP-CA-CERTS", "NO-SUCH-OPERATION"])
def test_other_operations_are_unsupported(operation, anchor_url, secret_file, tmp_path):
    result = run_helper(settings(anchor_url, secret_file), tmp_path, operation=operation,
                        csr=csr_text())
    assert (result.returncode, result.stdout) == (6, ""), show(result)


def test_help_shows_no_secret_option(tmp_path):
    result = run_helper(["--help"], tmp_path, operation=None)
    assert result.returncode == 0, show(result)
    assert "--secret-file" in result.stdout
    assert "--secret " not in result.stdout and "--secret=" not in result.stdout
