"""Anchor under ``pecan serve config.py``, driven by the real curl and openssl.

One server (RSA-2048 CA, the sample policy) serves the whole module; its
output is captured to a log file, checked by the last test.
"""

import base64
import datetime
import os
import subprocess

import pytest

import helpers
import servers
from conftest import make_deployment

VALID_HOURS = 24
BACKDATE = datetime.timedelta(minutes=5)
WRONG_SECRET = "not-the-secret-4711"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("pecan-serve")
    deployment = make_deployment(str(root / "deployment"), kind="rsa2048")
    with servers.pecan_serve(deployment, str(root / "server")) as server:
        yield deployment, server


@pytest.fixture
def deployment(served):
    return served[0]


@pytest.fixture
def server(served):
    return served[1]


def sign_url(server, ra="default"):
    return server.url + "/v1/sign/" + ra


def check_issued(deployment, cert_path, cn, cwd):
    """A certificate verifiable against the CA, for ``cn``, recorded in the
    output directory with identical content; returns it."""
    servers.verify(deployment.ca_cert_path, cert_path, cwd=cwd)
    cert_path = os.path.join(cwd, cert_path)
    certificate = servers.load_pem_cert(cert_path)
    assert certificate.subject.rfc4514_string() == "CN=%s" % cn
    stored = os.path.join(deployment.output_dir, servers.stored_name(certificate))
    assert os.path.isfile(stored), "%s not in %s" % (stored, deployment.issued_files())
    with open(stored, "rb") as mine, open(cert_path, "rb") as theirs:
        assert mine.read() == theirs.read()
    return certificate


# --------------------------------------------------------------------------
# a. The README walkthrough


def test_readme_curl_walkthrough(deployment, server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X")
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    result = servers.curl(sign_url(server), "-F", "user=%s" % helpers.USER,
                          "-F", "secret=%s" % helpers.SECRET, "-F", "encoding=pem",
                          "-F", "csr=<X.csr", cwd=cwd)
    after = datetime.datetime.now(datetime.timezone.utc)
    assert result.returncode == 0, servers.describe(result)
    pem = result.stdout
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----\n"), servers.describe(result)
    assert pem.rstrip().endswith(b"-----END CERTIFICATE-----"), servers.describe(result)
    (tmp_path / "cert.pem").write_bytes(pem)

    certificate = check_issued(deployment, "cert.pem", "anchor-test.example.com", cwd)

    not_before, not_after = servers.dates("cert.pem", cwd=cwd)
    assert not_after - not_before == datetime.timedelta(hours=VALID_HOURS) + BACKDATE
    assert before - BACKDATE <= not_before <= after - BACKDATE
    assert (not_before, not_after) == (certificate.not_valid_before_utc, certificate.not_valid_after_utc)


def test_readme_walkthrough_answer_is_text_plain(server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X")
    answer = servers.request(sign_url(server), *servers.sign_form("<X.csr"), cwd=cwd)
    assert answer.status == 200, answer
    assert "content-type: text/plain" in answer.headers.lower(), answer.headers


# --------------------------------------------------------------------------
# b. Other forms of the csr field


def test_csr_as_file_upload(deployment, server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X", cn="upload.example.com")
    answer = servers.request(sign_url(server), *servers.sign_form("@X.csr"), cwd=cwd, name="cert")
    assert answer.status == 200, answer
    check_issued(deployment, "cert.body", "upload.example.com", cwd)


def test_der_csr_as_file_upload(deployment, server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X", cn="der-upload.example.com")
    servers.openssl("req", "-in", "X.csr", "-outform", "DER", "-out", "X.der", cwd=cwd)
    answer = servers.request(sign_url(server), *servers.sign_form("@X.der", encoding="der"),
                             cwd=cwd, name="cert")
    assert answer.status == 200, answer
    check_issued(deployment, "cert.body", "der-upload.example.com", cwd)


def test_der_csr_as_base64_text_field(deployment, server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X", cn="der-base64.example.com")
    servers.openssl("req", "-in", "X.csr", "-outform", "DER", "-out", "X.der", cwd=cwd)
    encoded = base64.b64encode((tmp_path / "X.der").read_bytes()).decode("ascii")
    answer = servers.request(sign_url(server), *servers.sign_form(encoded, encoding="der"),
                             cwd=cwd, name="cert")
    assert answer.status == 200, answer
    check_issued(deployment, "cert.body", "der-base64.example.com", cwd)


def test_der_csr_as_wrapped_base64_text_from_file(deployment, server, tmp_path):
    # openssl base64 wraps its output at 64 columns; the text field keeps the newlines.
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X", cn="der-wrapped.example.com")
    servers.openssl("req", "-in", "X.csr", "-outform", "DER", "-out", "X.der", cwd=cwd)
    servers.openssl("base64", "-in", "X.der", "-out", "X.b64", cwd=cwd)
    assert (tmp_path / "X.b64").read_text().count("\n") > 1
    answer = servers.request(sign_url(server), *servers.sign_form("<X.b64", encoding="der"),
                             cwd=cwd, name="cert")
    assert answer.status == 200, answer
    check_issued(deployment, "cert.body", "der-wrapped.example.com", cwd)


# --------------------------------------------------------------------------
# c. Concurrency


def test_twenty_concurrent_signing_requests(deployment, server, tmp_path):
    count = 20
    cwd = str(tmp_path)
    makers = [subprocess.Popen(
        [servers.system_binary("openssl"), "req", "-out", "r%02d.csr" % i, "-nodes",
         "-keyout", "r%02d.key" % i, "-newkey", "rsa:2048", "-subj", "/CN=concurrent-%02d.example.com" % i],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(count)]
    for maker in makers:
        output, _ = maker.communicate(timeout=120)
        assert maker.returncode == 0, output
    files_before = set(deployment.issued_files())

    env = servers.client_env(cwd)
    clients = []
    try:
        for i in range(count):
            command = servers.curl_command(
                sign_url(server), "-s", "-S", "-o", "c%02d.pem" % i, "-w", "%{http_code}",
                *servers.sign_form("<r%02d.csr" % i))
            clients.append(subprocess.Popen(command, cwd=cwd, env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        outcomes = [client.communicate(timeout=120) for client in clients]
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait(timeout=10)

    problems = ["client %d: exit %s, status %r, stderr %r" % (i, client.returncode, out, err)
                for i, (client, (out, err)) in enumerate(zip(clients, outcomes))
                if client.returncode != 0 or out != b"200"]
    assert not problems, "\n".join(problems)

    paths = ["c%02d.pem" % i for i in range(count)]
    servers.verify(deployment.ca_cert_path, *paths, cwd=cwd)
    certificates = [check_issued(deployment, path, "concurrent-%02d.example.com" % i, cwd)
                    for i, path in enumerate(paths)]
    assert len({c.serial_number for c in certificates}) == count
    new_files = set(deployment.issued_files()) - files_before
    assert new_files == {servers.stored_name(c) for c in certificates}
    assert len(new_files) == count


# --------------------------------------------------------------------------
# d. Status codes over real HTTP


@pytest.fixture
def good_csr(tmp_path):
    servers.readme_csr(str(tmp_path), "X", cn="status.example.com")
    return "<X.csr"


def test_wrong_secret_is_401(server, tmp_path, good_csr):
    answer = servers.request(sign_url(server), *servers.sign_form(good_csr, secret=WRONG_SECRET),
                             cwd=str(tmp_path))
    assert answer.status == 401, answer
    assert b"BEGIN CERTIFICATE" not in answer.body


def test_wrong_user_is_401(server, tmp_path, good_csr):
    answer = servers.request(sign_url(server), *servers.sign_form(good_csr, user="someone-else"),
                             cwd=str(tmp_path))
    assert answer.status == 401, answer


def test_unknown_ra_is_404(server, tmp_path, good_csr):
    answer = servers.request(sign_url(server, "no-such-ra"), *servers.sign_form(good_csr),
                             cwd=str(tmp_path))
    assert answer.status == 404, answer


@pytest.mark.parametrize("path", ["/nope", "/v1/nothing", "/v2/sign/default", "/v1/sign/default/extra",
                                  "/v1/ca/no-such-ra"])
def test_unknown_path_is_404(server, tmp_path, path):
    answer = servers.request(server.url + path, cwd=str(tmp_path))
    assert answer.status == 404, answer


def test_garbage_csr_is_400(deployment, server, tmp_path):
    files_before = deployment.issued_files()
    answer = servers.request(sign_url(server), *servers.sign_form("this is not a CSR"), cwd=str(tmp_path))
    assert answer.status == 400, answer
    assert deployment.issued_files() == files_before


def test_cn_outside_allowed_domains_is_400(deployment, server, tmp_path):
    cwd = str(tmp_path)
    servers.readme_csr(cwd, "X", cn="anchor-test.example.org")
    answer = servers.request(sign_url(server), *servers.sign_form("<X.csr"), cwd=cwd)
    assert answer.status == 400, answer
    assert b"BEGIN CERTIFICATE" not in answer.body


def test_get_on_sign_is_405(server, tmp_path):
    answer = servers.request(sign_url(server), cwd=str(tmp_path))
    assert answer.status == 405, answer
    assert "\nallow: post" in answer.headers.lower(), answer.headers


def test_robots_txt(server, tmp_path):
    answer = servers.request(server.url + "/robots.txt", cwd=str(tmp_path))
    assert answer.status == 200, answer
    assert answer.body == b"User-agent: *\nDisallow: /\n"


def test_ca_certificate_is_the_ca_file(deployment, server, tmp_path):
    answer = servers.request(server.url + "/v1/ca/default", cwd=str(tmp_path))
    assert answer.status == 200, answer
    with open(deployment.ca_cert_path, "rb") as handle:
        assert answer.body == handle.read()


def test_two_mib_csr_field_is_413_and_server_still_serves(deployment, server, tmp_path, good_csr):
    cwd = str(tmp_path)
    (tmp_path / "big.txt").write_bytes(b"A" * (2 * 1024 * 1024))
    files_before = deployment.issued_files()

    # curl as is (it sends "Expect: 100-continue" for a body this large) ...
    answer = servers.request(sign_url(server), *servers.sign_form("<big.txt"), cwd=cwd, name="big")
    assert answer.status == 413, answer
    assert b"BEGIN CERTIFICATE" not in answer.body
    # ... and without Expect, when the body is on its way as the server answers.
    answer = servers.request(sign_url(server), "-H", "Expect:", *servers.sign_form("<big.txt"),
                             cwd=cwd, name="big-no-expect")
    assert answer.status == 413, answer
    assert deployment.issued_files() == files_before

    answer = servers.request(sign_url(server), *servers.sign_form(good_csr), cwd=cwd, name="after")
    assert answer.status == 200, answer
    check_issued(deployment, "after.body", "status.example.com", cwd)


# --------------------------------------------------------------------------
# e. The log (keep this test last in the module: it reads what the others logged)


def test_server_log_has_no_secret_and_no_traceback(server, tmp_path, good_csr):
    cwd = str(tmp_path)
    # Whatever ran before, the log sees at least one success and one bad secret.
    assert servers.request(sign_url(server), *servers.sign_form(good_csr), cwd=cwd).status == 200
    assert servers.request(sign_url(server), *servers.sign_form(good_csr, secret=WRONG_SECRET),
                           cwd=cwd).status == 401
    log = server.log()
    assert "issued serial" in log, log  # this really is the server's log
    assert "refused a request" in log, log
    assert helpers.SECRET not in log
    assert WRONG_SECRET not in log
    assert "Traceback" not in log, log
