"""The ldap backend against a real OpenLDAP slapd (memberof overlay, TLS).

Active Directory's UPN binds (``user@domain``) cannot be reproduced with
slapd: it refuses such a bind DN with invalidDNSyntax before any overlay
runs.  That one path is covered with ldap3's own MOCK_SYNC strategy at the
end of this module, and only that path.
"""

import ldap3
import pytest

import helpers
from anchor.auth import AuthenticationFailed, AuthenticationUnavailable
from anchor.auth.ldap import LDAPAuthenticator
from conftest import make_deployment, webtest_app
from slapd import Slapd

ODD_NAME = "we*ird)(name"


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    with Slapd(str(tmp_path_factory.mktemp("slapd"))) as server:
        server.add_user("alice", "alice-pw", groups=["CertRequesters", "Admins"])
        server.add_user("bob", "bob-pw", groups=["Admins"])
        server.add_user(ODD_NAME, "odd-pw", groups=["Odd"])
        server.add_user("*", "star-pw", groups=[])
        yield server


def template_backend(server, **options):
    return LDAPAuthenticator(host=server.host, port=server.port,
                             user_dn_template="uid={user},ou=Users,dc=example,dc=com", **options)


def filter_backend(server, **options):
    return LDAPAuthenticator(host=server.host, port=server.port, base="ou=Users,dc=example,dc=com",
                             user_filter="(uid={user})", **options)


@pytest.mark.parametrize("make", [template_backend, filter_backend], ids=["dn-template", "filter"])
def test_right_password_gives_user_and_groups(directory, make):
    result = make(directory).authenticate("alice", "alice-pw")
    assert result.username == "alice"
    assert result.groups == frozenset({"CertRequesters", "Admins"})


@pytest.mark.parametrize("make", [template_backend, filter_backend], ids=["dn-template", "filter"])
@pytest.mark.parametrize("user, password", [("alice", "wrong"), ("alice", "bob-pw"), ("nobody", "x"),
                                            ("ALICE", "wrong")])
def test_wrong_credentials_are_refused(directory, make, user, password):
    with pytest.raises(AuthenticationFailed):
        make(directory).authenticate(user, password)


@pytest.mark.parametrize("make", [template_backend, filter_backend], ids=["dn-template", "filter"])
def test_special_characters_are_matched_literally(directory, make):
    backend = make(directory)
    assert backend.authenticate(ODD_NAME, "odd-pw").groups == frozenset({"Odd"})
    # "*" is a user of its own, not a wildcard that finds alice (or everyone).
    assert backend.authenticate("*", "star-pw").username == "*"
    for user in ("*", "alice)(uid=*", "a*"):
        with pytest.raises(AuthenticationFailed):
            backend.authenticate(user, "alice-pw")


@pytest.mark.parametrize("password", ["", None])
def test_empty_password_is_refused_before_contacting_the_server(password):
    # Port 1 on loopback: nothing listens, so any attempt would give 503.
    backend = LDAPAuthenticator(host="127.0.0.1", port=1, user_dn_template="uid={user},dc=example,dc=com")
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("alice", password)


def test_starttls_with_the_test_ca(directory):
    backend = template_backend(directory, starttls=True, ca_file=directory.ca_file)
    assert backend.authenticate("bob", "bob-pw").groups == frozenset({"Admins"})


def test_ldaps_with_the_test_ca(directory):
    backend = LDAPAuthenticator(host="127.0.0.1", port=directory.tls_port, ssl=True, ca_file=directory.ca_file,
                                user_dn_template="uid={user},ou=Users,dc=example,dc=com")
    assert backend.authenticate("bob", "bob-pw").username == "bob"


def test_ldaps_without_the_ca_is_not_trusted(directory):
    backend = LDAPAuthenticator(host="127.0.0.1", port=directory.tls_port, ssl=True,
                                user_dn_template="uid={user},ou=Users,dc=example,dc=com")
    with pytest.raises(AuthenticationUnavailable):
        backend.authenticate("bob", "bob-pw")


def test_server_stopped_gives_503_and_recovers(tmp_path):
    with Slapd(str(tmp_path / "slapd")) as server:
        server.add_user("carol", "carol-pw", groups=["Ops"])
        backend = template_backend(server, timeout=2)
        assert backend.authenticate("carol", "carol-pw").groups == frozenset({"Ops"})
        server.stop()
        with pytest.raises(AuthenticationUnavailable):
            backend.authenticate("carol", "carol-pw")
        server.start()
        assert backend.authenticate("carol", "carol-pw").username == "carol"


def sign(client, user, password, cn):
    return client.post("/v1/sign/default", {"user": user, "secret": password, "encoding": "pem",
                                            "csr": helpers.csr_pem(helpers.make_csr(cn)).decode()},
                       expect_errors=True)


def test_groups_reach_server_group_through_http(directory, tmp_path):
    deployment = make_deployment(str(tmp_path))
    config = deployment.config(validators={
        "common_name": {"allowed_domains": [".example.com"]},
        "server_group": {"group_prefixes": {"cert": "CertRequesters"}},
    })
    config["authentication"]["default_auth"] = {
        "backend": "ldap", "host": directory.host, "port": directory.port, "starttls": True,
        "ca_file": directory.ca_file, "user_dn_template": "uid={user},ou=Users,dc=example,dc=com"}
    deployment.write_config(config)
    client = webtest_app(deployment)
    assert sign(client, "alice", "alice-pw", "cert-web.example.com").status_int == 200
    assert sign(client, "bob", "bob-pw", "cert-web.example.com").status_int == 400  # not in the group
    assert sign(client, "bob", "bob-pw", "other-web.example.com").status_int == 200
    assert sign(client, "alice", "wrong", "cert-web.example.com").status_int == 401
    assert sign(client, "alice", "", "cert-web.example.com").status_int == 401


def test_directory_down_gives_503_through_http(tmp_path):
    deployment = make_deployment(str(tmp_path))
    config = deployment.config()
    config["authentication"]["default_auth"] = {
        "backend": "ldap", "host": "127.0.0.1", "port": helpers.free_port(), "timeout": 2,
        "user_dn_template": "uid={user},ou=Users,dc=example,dc=com"}
    deployment.write_config(config)
    response = sign(webtest_app(deployment), "alice", "alice-pw", "web.example.com")
    assert response.status_int == 503


@pytest.mark.parametrize("options, problem", [
    ({}, "host"),
    ({"host": "h"}, "exactly one of"),
    ({"host": "h", "domain": "example.com"}, "base"),
    ({"host": "h", "user_dn_template": "uid=x,dc=example,dc=com"}, "{user}"),
    ({"host": "h", "user_dn_template": "uid={user}", "ssl": True, "starttls": True}, "either"),
    ({"host": "h", "user_dn_template": "uid={user}", "port": 0}, "port"),
    ({"host": "h", "user_dn_template": "uid={user}", "timeout": 0}, "timeout"),
    ({"host": "h", "base": "dc=x", "user_filter": "(uid={user})", "bind_dn": "cn=x"}, "bind_password"),
])
def test_configuration_errors(options, problem):
    with pytest.raises(ValueError, match=problem.replace("{", "\\{").replace("}", "\\}")):
        LDAPAuthenticator(**options)


# -- Active Directory (ldap3 MOCK_SYNC, for the UPN bind alone) ---------------

def mock_ad(monkeypatch):
    """An in-memory directory that accepts ``alice@example.com`` as a bind name,
    as Active Directory does, and has AD-style groups under OU=Groups."""
    server = ldap3.Server("mock-ad")
    connection = ldap3.Connection(server, user="cn=admin,dc=example,dc=com", password="x",
                                  client_strategy=ldap3.MOCK_SYNC)
    connection.strategy.add_entry("CN=alice,CN=Users,DC=example,DC=com", {
        "objectClass": ["person"], "sAMAccountName": "alice", "userPassword": "alice-pw",
        "memberOf": ["CN=Nova_Team,OU=Groups,DC=example,DC=com",
                     "CN=Domain Users,CN=Users,DC=example,DC=com"]})
    connection.strategy.add_entry("CN=mallory,CN=Users,DC=example,DC=com", {
        "objectClass": ["person"], "sAMAccountName": "mallory", "userPassword": "m-pw"})
    # The UPN as a bind name: MOCK_SYNC looks bind names up in server.dit.
    server.dit["alice@example.com"] = {"userPassword": [b"alice-pw"]}
    real_connection = ldap3.Connection

    def mock_connection(_server, **kwargs):
        kwargs.pop("receive_timeout", None)
        return real_connection(server, client_strategy=ldap3.MOCK_SYNC, **kwargs)

    monkeypatch.setattr("anchor.auth.ldap.ldap3.Connection", mock_connection)
    return LDAPAuthenticator(host="ad.example.com", base="DC=example,DC=com", domain="example.com")


def test_active_directory_upn_bind_and_groups_under_ou_groups(monkeypatch):
    backend = mock_ad(monkeypatch)
    result = backend.authenticate("alice", "alice-pw")
    assert result.username == "alice"
    # Only groups whose parent is OU=Groups count, as in the original Anchor.
    assert result.groups == frozenset({"Nova_Team"})
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("alice", "wrong")
    with pytest.raises(AuthenticationFailed):
        backend.authenticate("mallory", "m-pw")  # no UPN for mallory: the bind fails


def test_passwords_never_reach_the_log(directory, tmp_path, caplog):
    caplog.set_level("DEBUG")
    deployment = make_deployment(str(tmp_path))
    config = deployment.config()
    config["authentication"]["default_auth"] = {
        "backend": "ldap", "host": directory.host, "port": directory.port,
        "user_dn_template": "uid={user},ou=Users,dc=example,dc=com"}
    config["audit"] = {"target": "log"}
    deployment.write_config(config)
    client = webtest_app(deployment)
    assert sign(client, "alice", "alice-pw", "web.example.com").status_int == 200
    assert sign(client, "alice", "Wr0ng-pa55word", "web.example.com").status_int == 401
    assert "alice-pw" not in caplog.text and "Wr0ng-pa55word" not in caplog.text
    assert "alice" in caplog.text  # the log was captured: the user name is there
