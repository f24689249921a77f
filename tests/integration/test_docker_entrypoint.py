"""The container's entry script, run for real in a temporary directory
standing in for the container's / (Docker itself cannot run here).

For each way of providing a CA at /key, the script prepares the CA and
config, then starts uwsgi as the Dockerfile's CMD does (on a free loopback
port instead of :5016), and the README walkthrough must work against it.
"""

import os
import signal
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers
import servers

SCRIPT = os.path.join(helpers.REPO, "tools", "docker", "entrypoint.sh")


def prepare(tmp_path, mounted):
    """A root with /key holding ``mounted`` files, and the app copied to /opt/anchor."""
    root, app = tmp_path / "root", tmp_path / "root" / "opt" / "anchor"
    servers.copy_repository(str(app))
    (root / "key").mkdir(parents=True)
    source = tmp_path / "mounted-ca"
    helpers.make_ca(str(source), "p256", common_name="Mounted CA")
    for name in mounted:
        (root / "key" / name).write_bytes((source / name).read_bytes())
    env = dict(os.environ, ANCHOR_ROOT=str(root), ANCHOR_APP=str(app), ANCHOR_PYTHON=sys.executable,
               ANCHOR_ALLOW_ROOT="1", PYTHONUNBUFFERED="1")
    env.pop("ANCHOR_CONF", None)
    return root, app, source, env


def uwsgi_command(port):
    return [SCRIPT, servers.venv_binary("uwsgi"), "--http-socket", "127.0.0.1:%d" % port, "--venv", sys.prefix,
            "--pecan", "config.py", "-p", "2", "--master", "--die-on-term", "--enable-threads", "--need-app"]


def walkthrough(server, app, cwd):
    servers.readme_csr(str(cwd), "X")
    answer = servers.request(server.url + "/v1/sign/default",
                             *servers.sign_form("<X.csr", user="myusername", secret="simplepassword"), cwd=str(cwd))
    assert answer.status == 200, answer
    (cwd / "cert.pem").write_bytes(answer.body)
    servers.verify(str(app / "CA" / "root-ca.crt"), "cert.pem", cwd=str(cwd))
    return x509.load_pem_x509_certificate(answer.body)


@pytest.mark.parametrize("mounted", [
    ("root-ca.crt", "root-ca-unwrapped.key"),
    ("root-ca-unwrapped.key",),
    (),
], ids=["key-and-certificate", "key-only", "nothing"])
def test_entrypoint_serves_the_walkthrough(tmp_path, mounted):
    root, app, source, env = prepare(tmp_path, mounted)
    port = helpers.free_port()
    with servers.running(uwsgi_command(port), str(app), env, port, signal.SIGINT) as server:
        certificate = walkthrough(server, app, tmp_path)
    log = server.log()
    ca = x509.load_pem_x509_certificate((app / "CA" / "root-ca.crt").read_bytes())
    key_path = app / "CA" / "root-ca-unwrapped.key"
    assert key_path.stat().st_mode & 0o777 == 0o400
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert key.public_key() == ca.public_key()
    assert certificate.issuer == ca.subject
    mounted_key = serialization.load_pem_private_key((source / "root-ca-unwrapped.key").read_bytes(), None)
    if "root-ca.crt" in mounted:
        assert "using the CA key and certificate mounted" in log
        assert (app / "CA" / "root-ca.crt").read_bytes() == (source / "root-ca.crt").read_bytes()
    elif mounted:
        assert "making a certificate for the CA key mounted" in log
        assert ca.public_key() == mounted_key.public_key()
        assert ca.subject != x509.load_pem_x509_certificate((source / "root-ca.crt").read_bytes()).subject
    else:
        assert "making a new test CA" in log
        assert ca.public_key() != mounted_key.public_key()
    assert sorted(os.listdir(app / "certs")) == sorted([".gitignore", servers.stored_name(certificate)])


def test_entrypoint_uses_a_mounted_config(tmp_path):
    root, app, source, env = prepare(tmp_path, ("root-ca.crt", "root-ca-unwrapped.key"))
    (root / "config").mkdir()
    config = helpers.sample_config(str(app / "CA"), str(app / "certs"))  # user tester, not myusername
    helpers.write_json(str(root / "config" / "config.json"), config)
    port = helpers.free_port()
    with servers.running(uwsgi_command(port), str(app), env, port, signal.SIGINT) as server:
        servers.readme_csr(str(tmp_path), "X")
        sample = servers.request(server.url + "/v1/sign/default",
                                 *servers.sign_form("<X.csr", user="myusername", secret="simplepassword"),
                                 cwd=str(tmp_path))
        mine = servers.request(server.url + "/v1/sign/default", *servers.sign_form("<X.csr"), cwd=str(tmp_path))
    assert sample.status == 401 and mine.status == 200
    assert "config.json is %s" % (root / "config" / "config.json") in server.log()


def test_entrypoint_refuses_to_run_as_root(tmp_path):
    root, app, source, env = prepare(tmp_path, ())
    env.pop("ANCHOR_ALLOW_ROOT")
    if os.getuid() != 0:
        pytest.fail("this test expects to run as root, as CI does")
    result = subprocess.run([SCRIPT, "true"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "refusing to run as root" in result.stderr
    assert not (app / "CA" / "root-ca.crt").exists()
