"""``anchor serve`` runs the development server for real."""

import os
import signal
import sys

import helpers
import servers
from conftest import make_deployment


def test_anchor_serve_serves(tmp_path):
    deployment = make_deployment(str(tmp_path / "deployment"))
    workdir = tmp_path / "server"
    port = helpers.free_port()
    servers.write_pecan_config(str(workdir), port)
    command = [os.path.join(os.path.dirname(sys.executable), "anchor"), "serve"]
    with servers.running(command, str(workdir), servers.server_env(deployment), port, signal.SIGTERM) as server:
        servers.readme_csr(str(tmp_path), "X")
        answer = servers.request(server.url + "/v1/sign/default", *servers.sign_form("<X.csr"), cwd=str(tmp_path))
        assert answer.status == 200, answer
    assert "serving on http://127.0.0.1:%d" % port in server.log()
