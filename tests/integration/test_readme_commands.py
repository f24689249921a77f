"""README command 1 (tools/serve) run for real on a copy of the repository.

The copy is started exactly as a new user would, except that config.py's
port is a free one and ANCHOR_VENV points at this test run's virtualenv
(so nothing is downloaded); tools/serve must then create the test CA
itself and serve the README walkthrough.
"""

import os
import signal
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

import helpers
import servers


def serve_env():
    env = {k: v for k, v in os.environ.items() if k != "ANCHOR_CONF"}
    env["ANCHOR_VENV"] = sys.prefix
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_tools_serve_creates_a_ca_and_serves_the_walkthrough(tmp_path):
    repo = tmp_path / "anchor"
    servers.copy_repository(str(repo))
    assert not (repo / "CA" / "root-ca.crt").exists()
    port = helpers.free_port()
    (repo / "config.py").write_text(servers.pecan_config_text(port))
    client_dir = tmp_path / "client"
    client_dir.mkdir()

    with servers.running([str(repo / "tools" / "serve")], str(repo), serve_env(), port,
                         signal.SIGTERM) as server:
        csr_path, _ = servers.readme_csr(str(client_dir), "anchor-test.example.com")
        answer = servers.request(server.url + "/v1/sign/default",
                                 *servers.sign_form("<" + csr_path, user="myusername",
                                                    secret="simplepassword"),
                                 cwd=str(client_dir))
        assert answer.status == 200, answer
        cert_path = client_dir / "anchor-test.example.com.crt"
        cert_path.write_bytes(answer.body)
        servers.verify(str(repo / "CA" / "root-ca.crt"), str(cert_path), cwd=str(client_dir))
        issued = x509.load_pem_x509_certificate(answer.body)
        assert sorted(os.listdir(repo / "certs")) == [".gitignore", servers.stored_name(issued)]
    assert "static authentication uses the sample user and secret" in server.log()

    key_path = repo / "CA" / "root-ca-unwrapped.key"
    assert oct(key_path.stat().st_mode & 0o777) == oct(0o400)
    ca = x509.load_pem_x509_certificate((repo / "CA" / "root-ca.crt").read_bytes())
    assert isinstance(ca.public_key(), rsa.RSAPublicKey) and ca.public_key().key_size == 4096
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    # A second start keeps the CA it made the first time.
    ca_bytes = (repo / "CA" / "root-ca.crt").read_bytes()
    with servers.running([str(repo / "tools" / "serve")], str(repo), serve_env(), port,
                         signal.SIGTERM) as server:
        answer = servers.request(server.url + "/v1/ca/default", cwd=str(client_dir))
        assert answer.status == 200 and answer.body == ca_bytes
    assert (repo / "CA" / "root-ca.crt").read_bytes() == ca_bytes
