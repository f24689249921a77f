"""The private slapd used by the LDAP tests: binds, memberOf, StartTLS, LDAPS, stop/start."""

import socket
import ssl

import ldap3
import pytest
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from slapd import Slapd

ODD = "we*ird)(name"
NASTY = 'a*b(c)d\\e,f+g=h <x>;"#'


@pytest.fixture
def server(tmp_path):
    instance = Slapd(tmp_path / "slapd")
    try:
        yield instance.start()
    finally:
        instance.close()


def port_open(host, port):
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def connection(url, user=None, password=None, tls=None):
    return ldap3.Connection(ldap3.Server(url, tls=tls, get_info=ldap3.NONE, connect_timeout=5),
                            user=user, password=password, receive_timeout=10, raise_exceptions=False)


def member_of(conn, base, uid):
    assert conn.search(base, "(uid=%s)" % escape_filter_chars(uid), attributes=["memberOf", "uid"])
    assert len(conn.entries) == 1
    return {dn.lower() for dn in conn.entries[0].memberOf.values}


def test_slapd_fixture(server):
    assert server.url == "ldap://127.0.0.1:%d" % server.port
    assert server.ldaps_url == "ldaps://127.0.0.1:%d" % server.tls_port
    assert server.host == "127.0.0.1" and server.port < 32768 and server.tls_port < 32768
    assert server.port != server.tls_port

    alice = server.add_user("alice", "alice-pw", groups=["CertRequesters", "Admins"])
    assert alice == "uid=alice,ou=Users,dc=example,dc=com"
    odd = server.add_user(ODD, "odd-pw", groups=["Odd"])
    assert odd == "uid=we*ird)(name,ou=Users,dc=example,dc=com"
    nasty = server.add_user(NASTY, "nasty-pw", groups=["Odd"], sam_account_name="nasty",
                            upn="nasty@corp.example")

    groups = {"cn=certrequesters,ou=groups,dc=example,dc=com", "cn=admins,ou=groups,dc=example,dc=com"}
    odd_groups = {"cn=odd,ou=groups,dc=example,dc=com"}

    # simple bind as alice: right password works, wrong one doesn't
    conn = connection(server.url, alice, "alice-pw")
    assert conn.bind(), conn.result
    assert member_of(conn, "ou=Users," + server.base_dn, "alice") == groups
    conn.unbind()
    conn = connection(server.url, alice, "wrong")
    assert not conn.bind()
    assert conn.result["result"] == 49  # invalidCredentials
    conn.unbind()

    # AD-style attributes are searchable
    conn = connection(server.url)
    assert conn.bind()
    assert conn.search(server.base_dn, "(sAMAccountName=alice)", attributes=["userPrincipalName"])
    assert [e.entry_dn for e in conn.entries] == [alice]
    assert conn.entries[0].userPrincipalName.value == "alice@example.com"
    assert conn.search(server.base_dn, "(userPrincipalName=nasty@corp.example)", attributes=["uid"])
    assert conn.entries[0].uid.value == NASTY
    conn.unbind()

    # users whose names are full of LDAP special characters
    for dn, password, uid in ((odd, "odd-pw", ODD), (nasty, "nasty-pw", NASTY)):
        conn = connection(server.url, dn, password)
        assert conn.bind(), (dn, conn.result)
        assert member_of(conn, server.base_dn, uid) == odd_groups
        conn.unbind()

    # StartTLS on the plain port, validated against the test CA
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=server.ca_file)
    conn = connection(server.url, alice, "alice-pw", tls=tls)
    conn.open()
    assert conn.start_tls(), conn.result
    assert conn.tls_started
    assert conn.bind(), conn.result
    assert member_of(conn, server.base_dn, "alice") == groups
    conn.unbind()

    # LDAPS with the test CA works ...
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=server.ca_file)
    conn = connection(server.ldaps_url, alice, "alice-pw", tls=tls)
    assert conn.bind(), conn.result
    assert conn.server.ssl
    assert member_of(conn, server.base_dn, "alice") == groups
    conn.unbind()
    # ... and fails certificate validation with only the system CAs
    conn = connection(server.ldaps_url, alice, "alice-pw", tls=ldap3.Tls(validate=ssl.CERT_REQUIRED))
    with pytest.raises(LDAPException, match="(?i)certificate"):
        conn.bind()
    # ... as does StartTLS
    conn = connection(server.url, tls=ldap3.Tls(validate=ssl.CERT_REQUIRED))
    conn.open()
    with pytest.raises(LDAPException, match="(?i)certificate"):
        conn.start_tls()

    # stop() closes both ports; start() brings the same server back with its data
    url, ldaps_url = server.url, server.ldaps_url
    server.stop()
    assert not port_open(server.host, server.port)
    assert not port_open(server.host, server.tls_port)
    server.start()
    assert (server.url, server.ldaps_url) == (url, ldaps_url)
    conn = connection(server.url, alice, "alice-pw")
    assert conn.bind(), conn.result
    assert member_of(conn, server.base_dn, "alice") == groups
    assert member_of(conn, server.base_dn, ODD) == odd_groups
    conn.unbind()

    # adding to an existing group after a restart
    bob = server.add_user("bob", "bob-pw", groups=["Admins"])
    conn = connection(server.url, bob, "bob-pw")
    assert conn.bind()
    assert member_of(conn, server.base_dn, "bob") == {"cn=admins,ou=groups,dc=example,dc=com"}
    conn.unbind()

    server.close()
    assert not port_open(server.host, server.port)
    assert not port_open(server.host, server.tls_port)
    server.close()  # idempotent
