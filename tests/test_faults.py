"""Faults: a slow identity service, a CA key file that goes away.

(The disk-full case is in test_controllers.py, the token that drops its
session in signing/test_pkcs11.py, SIGKILL mid-flight in
integration/test_crash_safety.py.)
"""

import http.client
import os
import socket
import socketserver
import threading
import time
import wsgiref.simple_server

import helpers
from anchor import app as anchor_app
from conftest import webtest_app


class ThreadingServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def blackhole():
    """A socket that accepts connections and never answers (failure injection)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", helpers.free_port()))
    listener.listen(64)
    return listener


def post(port, ra, user, secret, timeout=30):
    import urllib.parse

    body = urllib.parse.urlencode({"user": user, "secret": secret, "encoding": "pem",
                                   "csr": helpers.csr_pem(helpers.make_csr("a.example.com")).decode()})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    connection.request("POST", "/v1/sign/%s" % ra, body, {"Content-Type": "application/x-www-form-urlencoded"})
    status = connection.getresponse().status
    connection.close()
    return status, time.monotonic() - started


def test_a_slow_identity_service_fails_fast_and_other_ras_keep_serving(deployment):
    hole = blackhole()
    config = deployment.config()
    config["authentication"]["slow_ldap"] = {
        "backend": "ldap", "host": "127.0.0.1", "port": hole.getsockname()[1], "timeout": 2,
        "user_dn_template": "uid={user},ou=Users,dc=example,dc=com"}
    config["registration_authority"]["slow"] = dict(config["registration_authority"]["default"],
                                                    authentication="slow_ldap")
    deployment.write_config(config)
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, anchor_app.make_app(deployment.config_path),
                                               server_class=ThreadingServer, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        slow_result = {}
        slow = threading.Thread(target=lambda: slow_result.update(
            answer=post(port, "slow", "alice", "pw")))
        slow.start()
        time.sleep(0.3)  # the slow request is now waiting on the directory
        status, elapsed = post(port, "default", helpers.USER, helpers.SECRET)
        assert status == 200 and elapsed < 1.5, (status, elapsed)
        assert slow.is_alive(), "the slow request should still be waiting"
        slow.join(30)
        status, elapsed = slow_result["answer"]
        assert status == 503
        assert elapsed < 2 + 3  # the configured timeout, plus a margin; never a hang
    finally:
        server.shutdown()
        server.server_close()
        hole.close()


def test_ca_key_file_gone_after_start_up_changes_nothing(deployment):
    """The key is read once at start-up and never again (DESIGN.md): removing
    or breaking the file afterwards does not affect signing, and nothing
    reads it on the request path."""
    client = webtest_app(deployment)
    os.chmod(deployment.ca_key_path, 0o600)
    with open(deployment.ca_key_path, "wb") as handle:
        handle.write(b"not a key any more")
    os.rename(deployment.ca_key_path, deployment.ca_key_path + ".gone")
    response = client.post("/v1/sign/default", {"user": helpers.USER, "secret": helpers.SECRET,
                                                "csr": helpers.csr_pem(helpers.make_csr()).decode()},
                           expect_errors=True)
    assert response.status_int == 200
    assert len(deployment.issued_files()) == 1
