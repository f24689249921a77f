"""The keystone backend against a real Keystone (SQLite, fernet, gunicorn on loopback)."""

import socket
import threading
import time

import pytest

import helpers
from anchor.auth import AuthenticationFailed
from anchor.auth.keystone import KeystoneAuthenticator
from conftest import make_deployment, webtest_app
from keystone_server import Keystone


@pytest.fixture(scope="module")
def keystone(tmp_path_factory):
    with Keystone(str(tmp_path_factory.mktemp("keystone"))) as server:
        server.alice_ids = server.create_user("alice", "alice-pw", "fleet", roles=["member", "cert_requester"])
        server.create_user("bob", "bob-pw", "fleet", roles=["member"])
        server.create_user("anchor-svc", "svc-pw", "service", roles=["service"])
        yield server


def app_for(tmp_path, auth, validators=None):
    deployment = make_deployment(str(tmp_path))
    config = deployment.config(validators=validators or {
        "common_name": {"allowed_domains": [".example.com"]},
        "server_group": {"group_prefixes": {"cert": "cert_requester"}},
    })
    config["authentication"]["default_auth"] = dict({"backend": "keystone"}, **auth)
    deployment.write_config(config)
    return webtest_app(deployment)


def sign(client, token, cn="cert-web.example.com"):
    return client.post("/v1/sign/default", {"user": "ignored", "secret": token, "encoding": "pem",
                                            "csr": helpers.csr_pem(helpers.make_csr(cn)).decode()},
                       expect_errors=True)


def test_token_signs_and_roles_reach_server_group(keystone, tmp_path):
    client = app_for(tmp_path, {"url": keystone.url})
    alice = keystone.token_for("alice", "alice-pw", "fleet")
    bob = keystone.token_for("bob", "bob-pw", "fleet")
    assert sign(client, alice).status_int == 200
    assert sign(client, bob).status_int == 400  # bob lacks the cert_requester role
    assert sign(client, bob, cn="web.example.com").status_int == 200


def test_auth_result_fields(keystone):
    backend = KeystoneAuthenticator(url=keystone.url)
    ids = keystone.alice_ids
    result = backend.authenticate("whoever", keystone.token_for("alice", "alice-pw", "fleet"))
    assert result.username == "alice"
    assert result.user_id == ids["user_id"] and result.project_id == ids["project_id"]
    assert {"member", "cert_requester"} <= result.groups


@pytest.mark.parametrize("token", ["not-a-token", "gAAAAABn" + "x" * 150, ""])
def test_invalid_tokens_get_401(keystone, tmp_path, token):
    assert sign(app_for(tmp_path, {"url": keystone.url}), token).status_int == 401


def test_revoked_token_is_refused_once_the_cache_entry_expires(keystone):
    backend = KeystoneAuthenticator(url=keystone.url, cache_seconds=2)
    token = keystone.token_for("alice", "alice-pw", "fleet")
    backend.authenticate("", token)
    keystone.revoke(token)
    backend.authenticate("", token)  # still cached: Keystone was not asked
    time.sleep(2.2)
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("", token)


def test_without_cache_a_revoked_token_is_refused_at_once(keystone):
    backend = KeystoneAuthenticator(url=keystone.url, cache_seconds=0)
    token = keystone.token_for("alice", "alice-pw", "fleet")
    backend.authenticate("", token)
    keystone.revoke(token)
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("", token)


def test_service_credentials_validate_user_tokens(keystone):
    backend = KeystoneAuthenticator(url=keystone.url, auth_url=keystone.url, username="anchor-svc",
                                    password="svc-pw", project_name="service")
    assert backend.authenticate("", keystone.token_for("bob", "bob-pw", "fleet")).username == "bob"
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("", "not-a-token")


def test_wrong_service_credentials_give_503(keystone, tmp_path):
    client = app_for(tmp_path, {"url": keystone.url, "auth_url": keystone.url, "username": "anchor-svc",
                                "password": "wrong", "project_name": "service"})
    assert sign(client, keystone.token_for("alice", "alice-pw", "fleet")).status_int == 503


def test_keystone_stopped_gives_503_then_recovers(tmp_path):
    with Keystone(str(tmp_path / "keystone")) as server:
        server.create_user("carol", "carol-pw", "fleet", roles=["member"])
        client = app_for(tmp_path / "anchor", {"url": server.url, "cache_seconds": 0, "timeout": 3},
                         validators={"common_name": {"allowed_domains": [".example.com"]}})
        token = server.token_for("carol", "carol-pw", "fleet")
        assert sign(client, token).status_int == 200
        server.stop()
        response = sign(client, token)
        assert response.status_int == 503
        assert "retry" in response.text
        server.start()
        assert sign(client, token).status_int == 200


def test_keystone_that_never_answers_gives_503_within_the_timeout(tmp_path):
    """Failure injection: a socket that accepts connections and never replies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", helpers.free_port()))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/v3" % listener.getsockname()[1]
        client = app_for(tmp_path, {"url": url, "timeout": 1})
        started = time.monotonic()
        assert sign(client, "some-token").status_int == 503
        assert time.monotonic() - started < 10  # bounded by the timeout, never a hang
        assert accepted, "the backend never connected"
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


@pytest.mark.parametrize("options, problem", [
    ({}, "url"),
    ({"url": "keystone.example.com"}, "url"),
    ({"url": "http://k/", "timeout": 0}, "timeout"),
    ({"url": "http://k/", "cache_seconds": -1}, "cache_seconds"),
    ({"url": "http://k/", "insecure": "yes"}, "insecure"),
    ({"url": "http://k/", "username": "svc"}, "service credentials need"),
    ({"url": "http://k/", "colour": "blue"}, "unknown option"),
])
def test_configuration_errors(options, problem):
    with pytest.raises(ValueError, match=problem):
        KeystoneAuthenticator(**options)


def test_tokens_are_never_logged(keystone, tmp_path, caplog):
    caplog.set_level("DEBUG")
    client = app_for(tmp_path, {"url": keystone.url})
    token = keystone.token_for("alice", "alice-pw", "fleet")
    sign(client, token)
    sign(client, token + "x")
    assert token not in caplog.text


def test_user_field_may_be_left_out(keystone, tmp_path, caplog):
    """The form's user is ignored with Keystone: a client may omit it, and the
    log names the token's user."""
    caplog.set_level("INFO")
    client = app_for(tmp_path, {"url": keystone.url},
                     validators={"common_name": {"allowed_domains": [".example.com"]}})
    response = client.post("/v1/sign/default", {"secret": keystone.token_for("bob", "bob-pw", "fleet"),
                                                "csr": helpers.csr_pem(helpers.make_csr("b.example.com")).decode()},
                           expect_errors=True)
    assert response.status_int == 200
    assert "to user 'bob'" in caplog.text
