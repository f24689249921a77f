"""The messaging target under uwsgi: its sender thread needs --enable-threads.

Without the option uwsgi runs no application thread, so Anchor refuses to
start rather than hold every event forever; with it, events from a worker
reach a real RabbitMQ node.
"""

import signal
import subprocess
import sys

import helpers
from conftest import make_deployment
from integration import servers
from rabbitmq import RabbitMQ, require_rabbitmq
from test_audit_messaging import Listener


def messaging_deployment(tmp_path, url):
    deployment = make_deployment(str(tmp_path / "deployment"))
    config = deployment.config()
    config["audit"] = {"target": "messaging", "url": url}
    deployment.write_config(config)
    return deployment


def uwsgi(port, *extra):
    return [servers.venv_binary("uwsgi"), "--http-socket", "127.0.0.1:%d" % port, "--venv", sys.prefix,
            "--pecan", "config.py", "-p", "2", "--master", "--die-on-term", "--need-app", *extra]


def test_refuses_to_start_without_threads(tmp_path):
    deployment = messaging_deployment(tmp_path, "rabbit://guest:guest@127.0.0.1:1/")
    workdir = tmp_path / "server"
    port = helpers.free_port()
    servers.write_pecan_config(str(workdir), port)
    result = subprocess.run(uwsgi(port), cwd=str(workdir), env=servers.server_env(deployment),
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert result.returncode != 0, output
    assert "start uwsgi with --enable-threads" in output, output


def test_events_from_a_uwsgi_worker_reach_the_bus(tmp_path):
    require_rabbitmq()
    with RabbitMQ(str(tmp_path / "rabbitmq")) as broker:
        listener = Listener(broker.url)
        try:
            deployment = messaging_deployment(tmp_path, broker.url)
            workdir = tmp_path / "server"
            port = helpers.free_port()
            servers.write_pecan_config(str(workdir), port)
            with servers.running(uwsgi(port, "--enable-threads"), str(workdir), servers.server_env(deployment),
                                 port, signal.SIGINT) as server:
                servers.readme_csr(str(tmp_path), "X", cn="uwsgi-audit.example.com")
                answer = servers.request(server.url + "/v1/sign/default", *servers.sign_form("<X.csr"),
                                         cwd=str(tmp_path))
                assert answer.status == 200, answer
                events = listener.collector.take(2)
            assert [(publisher, event_type) for publisher, event_type, _ in events] == [
                ("anchor", "audit.auth"), ("anchor", "audit.sign")]
            assert events[1][2]["attachments"][0]["content"]["subject"] == "CN=uwsgi-audit.example.com"
        finally:
            listener.close()
