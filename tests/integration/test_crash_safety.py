"""Nothing issued is lost: SIGKILL the whole service while many signing
requests are in flight, then check every certificate a client received is
on disk, complete, and nothing on disk looks like a certificate but isn't."""

import os
import signal
import subprocess
import sys
import time

from cryptography import x509

import helpers
import servers
from conftest import make_deployment

CLIENTS = 40


def test_sigkill_mid_flight_loses_nothing(tmp_path):
    deployment = make_deployment(str(tmp_path / "deployment"), kind="rsa2048")
    workdir = tmp_path / "server"
    port = helpers.free_port()
    servers.write_pecan_config(str(workdir), port)
    command = [servers.venv_binary("uwsgi"), "--http-socket", "127.0.0.1:%d" % port, "--venv", sys.prefix,
               "--pecan", "config.py", "-p", "4", "--master", "--need-app", "--listen", "128"]
    clients_dir = tmp_path / "clients"
    clients_dir.mkdir()
    for index in range(CLIENTS):
        servers.readme_csr(str(clients_dir), "c%d" % index, cn="crash-%d.example.com" % index)
    with servers.running(command, str(workdir), servers.server_env(deployment), port, signal.SIGKILL,
                         signal_group=True) as server:
        warm_up = servers.request(server.url + "/robots.txt", cwd=str(clients_dir))  # workers are up
        assert warm_up.status == 200, warm_up
        curls = [subprocess.Popen(
            servers.curl_command(server.url + "/v1/sign/default", "-s", "-o", "c%d.pem" % index,
                                 "-w", "%{http_code}", "--max-time", "30",
                                 *servers.sign_form("<c%d.csr" % index)),
            cwd=str(clients_dir), env=servers.client_env(clients_dir), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL) for index in range(CLIENTS)]
        # Kill once a few certificates are out: some answered, some in
        # flight, some not yet accepted.
        deadline = time.monotonic() + 30
        while len(deployment.issued_files()) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(server.process.pid, signal.SIGKILL)
        statuses = [curl.communicate(timeout=60)[0].decode().strip() for curl in curls]

    received = [index for index, status in enumerate(statuses) if status == "200"]
    failed = [index for index, status in enumerate(statuses) if status != "200"]
    assert received, "no request finished before the kill: %s" % statuses
    assert failed, "every request finished before the kill; the test killed nothing in flight"
    on_disk = {name for name in os.listdir(deployment.output_dir) if not name.startswith(".")}
    for index in received:
        body = (clients_dir / ("c%d.pem" % index)).read_bytes()
        certificate = x509.load_pem_x509_certificate(body)
        name = servers.stored_name(certificate)
        assert name in on_disk, "certificate %d was returned but not recorded" % index
        assert (open(os.path.join(deployment.output_dir, name), "rb").read() == body)
    for name in on_disk:
        assert name.endswith(".crt"), name
        with open(os.path.join(deployment.output_dir, name), "rb") as handle:
            x509.load_pem_x509_certificate(handle.read())  # complete, or this raises
    # Temporary files (if the kill caught one) are hidden: ".<name>.tmp".
    assert all(name.endswith(".tmp") for name in os.listdir(deployment.output_dir) if name.startswith("."))
