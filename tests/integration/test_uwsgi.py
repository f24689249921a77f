"""Anchor under uWSGI (``--pecan config.py``), driven by curl and openssl.

The README runs ``uwsgi --http-socket :PORT --venv <venv> --pecan config.py
-p 4``; ``:PORT`` listens on every interface.  These tests bind
``127.0.0.1:PORT`` instead (servers in tests listen on loopback only): the
command differs from the README's in the host alone.
"""

import os
import signal
import sys

import helpers
import servers
from conftest import make_deployment


def uwsgi_command(port, *extra):
    return [servers.venv_binary("uwsgi"), "--http-socket", "127.0.0.1:%d" % port,
            "--venv", sys.prefix, "--pecan", "config.py", "-p", "4", *extra]


def walkthrough(deployment, server, cwd, cn="anchor-test.example.com"):
    """The README's openssl + curl commands against ``server``; the answer
    must be a certificate that openssl verifies against the CA."""
    servers.readme_csr(cwd, "X", cn=cn)
    result = servers.curl(server.url + "/v1/sign/default", "-F", "user=%s" % helpers.USER,
                          "-F", "secret=%s" % helpers.SECRET, "-F", "encoding=pem",
                          "-F", "csr=<X.csr", cwd=cwd)
    assert result.returncode == 0, servers.describe(result)
    assert result.stdout.startswith(b"-----BEGIN CERTIFICATE-----\n"), servers.describe(result)
    cert_path = os.path.join(cwd, "cert.pem")
    with open(cert_path, "wb") as handle:
        handle.write(result.stdout)
    servers.verify(deployment.ca_cert_path, "cert.pem", cwd=cwd)
    certificate = servers.load_pem_cert(cert_path)
    assert certificate.subject.rfc4514_string() == "CN=%s" % cn
    stored = os.path.join(deployment.output_dir, servers.stored_name(certificate))
    with open(stored, "rb") as handle:
        assert handle.read() == result.stdout
    return certificate


def test_uwsgi_master_serves_the_walkthrough_and_stops_on_sigint(tmp_path):
    deployment = make_deployment(str(tmp_path / "deployment"), kind="rsa2048")
    workdir = str(tmp_path / "server")
    port = helpers.free_port()
    servers.write_pecan_config(workdir, port)
    command = uwsgi_command(port, "--master", "--die-on-term", "--need-app")
    with servers.running(command, workdir, servers.server_env(deployment), port, signal.SIGINT) as server:
        walkthrough(deployment, server, str(tmp_path))
        # A few more requests, so that more than one worker is likely to serve one.
        for index in range(4):
            client_dir = tmp_path / ("client%d" % index)
            client_dir.mkdir()
            walkthrough(deployment, server, str(client_dir), cn="worker-%d.example.com" % index)
        answer = servers.request(server.url + "/robots.txt", cwd=str(tmp_path))
        assert answer.status == 200 and answer.body == b"User-agent: *\nDisallow: /\n", answer
        answer = servers.request(server.url + "/v1/sign/default",
                                 *servers.sign_form("<X.csr", secret="wrong"), cwd=str(tmp_path))
        assert answer.status == 401, answer

    assert not server.killed, "uwsgi did not exit on SIGINT within %s s" % servers.STOP_TIMEOUT
    assert not server.stragglers, "uwsgi workers outlived the master: %s" % (server.stragglers,)
    log = server.log()
    assert "Anchor ready" in log, log
    assert "goodbye to uWSGI" in log, log
    assert "Traceback" not in log, log
    assert helpers.SECRET not in log
    assert len(deployment.issued_files()) == 5


def test_uwsgi_readme_command_shape(tmp_path):
    """``uwsgi --http-socket 127.0.0.1:PORT --venv <venv> --pecan config.py -p 4``:
    the README's command, but for the host (README: ``:PORT``, all interfaces)."""
    deployment = make_deployment(str(tmp_path / "deployment"), kind="p256")
    workdir = str(tmp_path / "server")
    port = helpers.free_port()
    servers.write_pecan_config(workdir, port)
    command = uwsgi_command(port)
    assert command[1:] == ["--http-socket", "127.0.0.1:%d" % port, "--venv", sys.prefix,
                           "--pecan", "config.py", "-p", "4"]
    # Without --master every process is a worker: SIGINT goes to the whole
    # process group this test started.
    with servers.running(command, workdir, servers.server_env(deployment), port, signal.SIGINT,
                         signal_group=True) as server:
        walkthrough(deployment, server, str(tmp_path))

    assert not server.killed, "uwsgi did not exit on SIGINT within %s s" % servers.STOP_TIMEOUT
    assert not server.stragglers, "uwsgi workers outlived SIGINT: %s" % (server.stragglers,)
    log = server.log()
    assert "Anchor ready" in log, log
    assert "Traceback" not in log, log
    assert len(deployment.issued_files()) == 1
