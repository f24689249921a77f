"""The real-Keystone test fixture (keystone_server.Keystone) works end to end."""

import http.client

from keystone_server import Keystone


def _v3_status(ks):
    conn = http.client.HTTPConnection("127.0.0.1", ks.port, timeout=10)
    try:
        conn.request("GET", "/v3")
        return conn.getresponse().status
    finally:
        conn.close()


def _validate(ks, token):
    return ks.admin_session().get(f"{ks.url}/auth/tokens",
                                  headers={"X-Subject-Token": token}, raise_exc=False)


def test_keystone_lifecycle_users_tokens_and_revocation(tmp_path):
    ks = Keystone(tmp_path / "keystone")
    try:
        ks.start()
        assert ks.url.startswith("http://127.0.0.1:") and ks.url.endswith("/v3")
        assert ks.port < 32768
        assert _v3_status(ks) == 200

        ids = ks.create_user("alice", "alice-pw", "fleet", roles=["member", "cert_requester"])
        token = ks.token_for("alice", "alice-pw", "fleet")
        assert token

        response = _validate(ks, token)
        assert response.status_code == 200, response.text
        body = response.json()["token"]
        assert body["user"]["name"] == "alice"
        assert body["user"]["id"] == ids["user_id"]
        assert body["project"]["id"] == ids["project_id"]
        assert body["project"]["name"] == "fleet"
        assert {"member", "cert_requester"} <= {role["name"] for role in body["roles"]}

        ks.revoke(token)
        assert _validate(ks, token).status_code == 404

        url = ks.url
        ks.stop()
        assert not ks.running
        ks.start()
        assert ks.url == url
        assert _v3_status(ks) == 200
        # data survived the restart: alice can still log in
        assert ks.token_for("alice", "alice-pw", "fleet")
    finally:
        ks.close()
        ks.close()  # idempotent
    assert not ks.running
