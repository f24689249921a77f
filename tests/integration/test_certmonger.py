"""certmonger gets its certificates from Anchor through anchor-certmonger.

A real certmonger (private bus and state, see certmonger.py) and Anchor
under ``pecan serve`` (the sample policy, an RSA CA), both on loopback, serve
the whole module.  The helper is registered as the README shows::

    getcert add-ca -c anchor -e '<helper> --url <anchor> --ra default
        --user <user> --secret-file <file of mode 0400>'

and a second CA entry, ``anchor-down``, points at a port where nothing
listens.  Each test makes its own request and waits (bounded) for the state
certmonger settles in.
"""

import os
import time

import pytest

import anchor
import certmonger
import helpers
import servers
from conftest import make_deployment


@pytest.fixture(scope="module")
def anchor_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("certmonger-anchor")
    deployment = make_deployment(str(root / "deployment"), kind="rsa2048")
    with servers.pecan_serve(deployment, str(root / "server")) as server:
        yield deployment, server


@pytest.fixture(scope="module")
def cm(anchor_server, tmp_path_factory):
    """The private certmonger with the CAs ``anchor`` and ``anchor-down``."""
    deployment, server = anchor_server
    base = tmp_path_factory.mktemp("certmonger")
    secret_file = certmonger.write_secret_file(base / "anchor-secret")
    with certmonger.private_certmonger(base / "state") as daemon:
        daemon.add_ca("anchor", ["--url", server.url, "--ra", "default", "--user", helpers.USER,
                                 "--secret-file", secret_file])
        down = "http://127.0.0.1:%d" % helpers.free_port()
        daemon.add_ca("anchor-down", ["--url", down, "--ra", "default", "--user", helpers.USER,
                                      "--secret-file", secret_file, "--timeout", "5"])
        yield daemon


@pytest.fixture
def out(tmp_path):
    return str(tmp_path)


def request(cm, out, name, cn, ca="anchor", *extra):
    """``getcert request`` for CN=cn (and DNS:cn); returns the cert path."""
    cert_path = os.path.join(out, name + ".crt")
    cm.getcert("request", "-c", ca, "-I", name, "-k", os.path.join(out, name + ".key"),
               "-f", cert_path, "-N", "CN=" + cn, "-D", cn, *extra)
    return cert_path


def server_log(anchor_server):
    return "\n--- anchor log (tail) ---\n" + anchor_server[1].log()[-3000:]


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def serial_of(cert_path):
    """The serial number of the certificate in ``cert_path`` (None while the
    file is being replaced)."""
    try:
        return servers.load_pem_cert(cert_path).serial_number
    except (OSError, ValueError):
        return None


def test_add_ca_identifies_the_helper(cm):
    listed = cm.getcert("list-cas", "-c", "anchor", "-v").stdout
    assert "ca-type: EXTERNAL" in listed, listed
    assert "helper-location: " + " ".join(certmonger.helper_command()) in listed, listed
    assert helpers.SECRET not in listed


def test_certificate_issued_saved_and_monitored(cm, anchor_server, out):
    deployment = anchor_server[0]
    ca_copy = os.path.join(out, "anchor-ca.pem")
    cert_path = request(cm, out, "host1", "host1.example.com", "anchor", "-F", ca_copy)
    state = cm.wait_for(cert_path, "MONITORING", extra=server_log(anchor_server))
    assert "CA: anchor" in state.text
    assert "subject: CN=host1.example.com" in state.text
    # Issued by Anchor: verifies against its CA, and is the copy it recorded.
    servers.verify(deployment.ca_cert_path, cert_path)
    certificate = servers.load_pem_cert(cert_path)
    assert certificate.subject.rfc4514_string() == "CN=host1.example.com"
    stored = os.path.join(deployment.output_dir, servers.stored_name(certificate))
    assert os.path.isfile(stored), deployment.issued_files()
    assert servers.load_pem_cert(stored) == certificate
    # FETCH-ROOTS told certmonger the CA: it saved it where -F said.
    assert servers.load_pem_cert(ca_copy) == deployment.ca_cert
    # certmonger knows which helper version it talks to (IDENTIFY).
    listed = cm.getcert("list-cas", "-c", "anchor", "-v").stdout
    assert "self-identifies as: Anchor (anchor-certmonger %s)" % anchor.__version__ in listed, listed


def test_policy_refusal_is_ca_rejected(cm, anchor_server, out):
    deployment = anchor_server[0]
    before = deployment.issued_files()
    cert_path = request(cm, out, "host2", "host2.example.org")
    state = cm.wait_for(cert_path, "CA_REJECTED", extra=server_log(anchor_server))
    assert state.ca_error == "Anchor answered 400 to the signing request: request refused by policy"
    assert not os.path.exists(cert_path)
    assert deployment.issued_files() == before


def test_anchor_down_is_ca_unreachable(cm, out):
    cert_path = request(cm, out, "host3", "host3.example.com", "anchor-down")
    state = cm.wait_for(cert_path, "CA_UNREACHABLE")
    assert state.ca_error.startswith("anchor-certmonger: cannot reach Anchor at http://127.0.0.1:")
    assert not os.path.exists(cert_path)


def test_post_save_command_runs_after_the_certificate_is_saved(cm, anchor_server, out):
    """-C is how the README restarts a service with its new certificate: the
    command sees the saved certificate."""
    cert_path = os.path.join(out, "host4.crt")
    marker = os.path.join(out, "restarted.pem")
    request(cm, out, "host4", "host4.example.com", "anchor", "-C", "cp %s %s" % (cert_path, marker))
    cm.wait_for(cert_path, "MONITORING", extra=server_log(anchor_server))
    for _ in range(150):  # the command runs right after the save: bounded wait
        if os.path.exists(marker) and read(marker) == read(cert_path):
            break
        time.sleep(0.1)
    assert os.path.exists(marker), "post-save command did not run\n" + cm.log()[-4000:]
    assert read(marker) == read(cert_path)
    servers.verify(anchor_server[0].ca_cert_path, marker)


def test_resubmit_renews_with_a_new_certificate(cm, anchor_server, out):
    """Renewal is another SUBMIT: a new certificate replaces the old one."""
    cert_path = request(cm, out, "host5", "host5.example.com")
    cm.wait_for(cert_path, "MONITORING", extra=server_log(anchor_server))
    first = servers.load_pem_cert(cert_path)
    cm.getcert("resubmit", "-f", cert_path)
    deadline = time.monotonic() + certmonger.DEFAULT_WAIT
    while serial_of(cert_path) in (first.serial_number, None):
        assert time.monotonic() < deadline, "no new certificate\n" + cm.request(cert_path).text
        time.sleep(0.2)
    cm.wait_for(cert_path, "MONITORING", extra=server_log(anchor_server))
    second = servers.load_pem_cert(cert_path)
    assert second.subject == first.subject and second.public_key() == first.public_key()
    servers.verify(anchor_server[0].ca_cert_path, cert_path)
    assert servers.stored_name(second) in anchor_server[0].issued_files()


def test_the_secret_is_nowhere_in_certmonger(cm):
    """Only the secret file's path is in certmonger's state and log."""
    for directory, _, files in os.walk(cm.base):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            assert helpers.SECRET.encode() not in read(path), path
