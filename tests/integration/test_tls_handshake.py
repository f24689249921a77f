"""A certificate issued by Anchor works in a real TLS handshake.

Anchor (through WebTest) issues a certificate for tls.example.com; a Python
``ssl`` server presents it and ``openssl s_client`` verifies it against the
CA certificate, checking the host name.  Negative twins (another CA, another
host name) show that the check can fail.
"""

import contextlib
import dataclasses
import socket
import ssl
import threading

import pytest
from cryptography.x509.oid import SignatureAlgorithmOID

import helpers
import servers
from conftest import make_deployment, webtest_app

HOST = "tls.example.com"
SIGNATURES = {
    "rsa2048": SignatureAlgorithmOID.RSA_WITH_SHA256,
    "p256": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    "ed25519": SignatureAlgorithmOID.ED25519,
}


@dataclasses.dataclass
class Issued:
    deployment: object
    kind: str
    cert_path: str
    key_path: str


@pytest.fixture(params=["rsa2048", "p256", "ed25519"])
def issued(request, tmp_path):
    """A certificate (and its key) for tls.example.com from a CA of each kind;
    the leaf key is of the CA's kind too."""
    kind = request.param
    deployment = make_deployment(str(tmp_path / "deployment"), kind=kind)
    key = helpers.private_key(kind, fresh=True)
    csr = helpers.make_csr(cn=HOST, dns=[HOST], key=key)
    response = webtest_app(deployment).post(
        "/v1/sign/default",
        {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
         "csr": helpers.csr_pem(csr).decode("ascii")},
        expect_errors=True)
    assert response.status_int == 200, response.text
    cert_path = str(tmp_path / "tls.crt")
    key_path = str(tmp_path / "tls.key")
    with open(cert_path, "wb") as handle:
        handle.write(response.body)
    with open(key_path, "wb") as handle:
        handle.write(helpers.key_pem(key))
    servers.verify(deployment.ca_cert_path, cert_path)
    certificate = servers.load_pem_cert(cert_path)
    assert certificate.signature_algorithm_oid == SIGNATURES[kind]
    return Issued(deployment, kind, cert_path, key_path)


class OneShotTLSServer:
    """A TLS server on 127.0.0.1 answering one connection in a thread."""

    def __init__(self, cert_path, key_path):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.port = helpers.free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.listener.settimeout(30)
        self.handshake_done = False
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        try:
            connection, _ = self.listener.accept()
            connection.settimeout(30)
            with self.context.wrap_socket(connection, server_side=True) as tls:
                self.handshake_done = True
                tls.sendall(b"hello from %s\n" % HOST.encode())
                try:
                    while tls.recv(4096):
                        pass
                except (ssl.SSLError, OSError):
                    pass  # the client may close without a TLS close_notify
        except Exception as exc:  # reported through self.error
            self.error = exc

    def close(self):
        self.listener.close()
        self.thread.join(timeout=35)
        assert not self.thread.is_alive(), "TLS server thread did not finish"


@contextlib.contextmanager
def tls_server(issued):
    server = OneShotTLSServer(issued.cert_path, issued.key_path)
    server.thread.start()
    try:
        yield server
    finally:
        server.close()


def s_client(port, ca_path, hostname=HOST):
    result = servers.openssl(
        "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", HOST,
        "-verify_hostname", hostname, "-CAfile", ca_path, "-verify_return_error",
        input=b"", timeout=20, check=False)
    output = servers._text(result.stdout) + servers._text(result.stderr)
    return result, output


def test_handshake_verifies_against_the_anchor_ca(issued):
    with tls_server(issued) as server:
        result, output = s_client(server.port, issued.deployment.ca_cert_path)
    assert result.returncode == 0, output
    assert "Verify return code: 0 (ok)" in output, output
    assert "Verification: OK" in output, output
    assert "Verified peername: %s" % HOST in output, output
    assert server.handshake_done and server.error is None, (server.error, output)


def test_handshake_fails_against_another_ca(issued, tmp_path):
    _, _, other_ca_path, _ = helpers.make_ca(str(tmp_path / "other-ca"), issued.kind,
                                             common_name="Test CA")
    with tls_server(issued) as server:
        result, output = s_client(server.port, other_ca_path)
    assert result.returncode != 0, output
    assert "Verify return code: 0 (ok)" not in output, output
    assert "verify error" in output, output
    assert not server.handshake_done, output


def test_handshake_fails_for_another_host_name(issued):
    with tls_server(issued) as server:
        result, output = s_client(server.port, issued.deployment.ca_cert_path,
                                  hostname="other.example.com")
    assert result.returncode != 0, output
    assert "Verify return code: 0 (ok)" not in output, output
    assert "hostname mismatch" in output, output
    assert not server.handshake_done, output
