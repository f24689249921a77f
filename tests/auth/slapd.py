"""A private OpenLDAP slapd for tests: loopback only, memberof overlay, StartTLS and LDAPS.

Needs the Debian packages ``slapd`` (and ``ldap-utils`` for manual poking) and the
Python packages ``ldap3`` and ``cryptography``.  Typical use::

    with Slapd(tmp_path) as server:          # start() on enter, close() on exit
        dn = server.add_user("alice", "pw", groups=["Admins"])
        # ldap3.Server(server.host, server.port) ... or server.url / server.ldaps_url

Everything lives under ``base_dir``: slapd.conf, the AD-compat schema, the mdb database,
the TLS files (tls/ca.crt, tls/server.crt, tls/server.key), the pid file and state.json
(ports and admin password, so a second ``Slapd`` on the same directory reuses them).

Notes:
* Entries are added through the running slapd (ldap3 as the rootdn), never with offline
  slapadd, which bypasses the memberof overlay (users would get no memberOf).
* Ports are picked at random in [20000, 32767] - below the Linux ephemeral range so a
  client socket can't grab them between stop() and start().
* slapd daemonizes; the daemon is not our child, and in a container whose PID 1 doesn't
  reap it lingers as a zombie, so stop() waits for the pid file to vanish and the ports to
  close rather than using ``kill -0``.
"""

import atexit
import datetime
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import weakref
import secrets

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import escape_rdn
from ldap3.utils.hashed import hashed

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
PORT_RANGE = (20000, 32767)

AD_COMPAT_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.99.1 NAME 'adCompatUser' SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName ) )
"""

SLAPD_CONF = """\
include   "{schema}/core.schema"
include   "{schema}/cosine.schema"
include   "{schema}/inetorgperson.schema"
include   "{schema}/nis.schema"
include   "{base}/adcompat.schema"
modulepath {modules}
moduleload back_mdb
moduleload memberof
pidfile   "{base}/slapd.pid"
argsfile  "{base}/slapd.args"

TLSCACertificateFile  "{base}/tls/ca.crt"
TLSCertificateFile    "{base}/tls/server.crt"
TLSCertificateKeyFile "{base}/tls/server.key"

database  mdb
suffix    "{suffix}"
rootdn    "{rootdn}"
rootpw    {rootpw}
directory "{base}/db"
maxsize   104857600
index     objectClass eq
index     uid,sAMAccountName,userPrincipalName eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read

overlay memberof
memberof-group-oc    groupOfNames
memberof-member-ad   member
memberof-memberof-ad memberOf
memberof-refint      TRUE
"""

_RUNNING = weakref.WeakSet()


@atexit.register
def _stop_leftovers():
    """Safety net: don't leave a slapd behind if a test forgot close()."""
    for server in list(_RUNNING):
        try:
            server.stop(timeout=10)
        except Exception:  # pragma: no cover - best effort at exit
            pass


class SlapdError(RuntimeError):
    pass


def _port_free(host, port):
    """True if nothing listens on host:port and we could bind it (as slapd does, SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return not _port_open(host, port)


def _port_open(host, port):
    """True if something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect((host, port))
        except OSError:
            return False
    return True


def _pick_ports(host, count, exclude=()):
    rng = random.SystemRandom()
    ports = []
    for _ in range(1000):
        port = rng.randint(*PORT_RANGE)
        if port in ports or port in exclude:
            continue
        if _port_free(host, port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise SlapdError("no free ports found in %d-%d" % PORT_RANGE)


def _process_alive(pid):
    """True if pid is a live (not zombie) process.  kill -0 succeeds for zombies, /proc doesn't lie."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except OSError:
        return False
    # "pid (comm) S ..." - comm may contain spaces or parentheses, the state follows the last ')'
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _write(path, data, mode=0o644):
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    os.chmod(path, mode)


def make_tls_files(directory, hosts=("localhost",), ips=("127.0.0.1",)):
    """Write ca.crt, ca.key, server.crt and server.key (P-256) into directory; return their paths."""
    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Anchor tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "slapd test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(name) for name in hosts] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Anchor tests"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, hosts[0] if hosts else ips[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=True, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    paths = {name: os.path.join(directory, name)
             for name in ("ca.crt", "ca.key", "server.crt", "server.key")}
    _write(paths["ca.key"], key_pem(ca_key), 0o600)
    _write(paths["server.key"], key_pem(key), 0o600)  # slapd runs as this same user
    _write(paths["ca.crt"], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(paths["server.crt"], cert.public_bytes(serialization.Encoding.PEM))
    return paths


class Slapd:
    """A private slapd under ``base_dir`` on 127.0.0.1 (plain+StartTLS port and LDAPS port)."""

    host = "127.0.0.1"
    base_dn = "dc=example,dc=com"
    admin_dn = "cn=admin,dc=example,dc=com"
    users_dn = "ou=Users,dc=example,dc=com"
    groups_dn = "ou=Groups,dc=example,dc=com"
    upn_domain = "example.com"

    def __init__(self, base_dir):
        self.base_dir = os.path.abspath(os.fspath(base_dir))
        os.makedirs(self.base_dir, exist_ok=True)
        self.conf_file = os.path.join(self.base_dir, "slapd.conf")
        self.schema_file = os.path.join(self.base_dir, "adcompat.schema")
        self.db_dir = os.path.join(self.base_dir, "db")
        self.tls_dir = os.path.join(self.base_dir, "tls")
        self.ca_file = os.path.join(self.tls_dir, "ca.crt")
        self.cert_file = os.path.join(self.tls_dir, "server.crt")
        self.key_file = os.path.join(self.tls_dir, "server.key")
        self.pid_file = os.path.join(self.base_dir, "slapd.pid")
        self.state_file = os.path.join(self.base_dir, "state.json")
        self.port = None
        self.tls_port = None
        self.admin_password = None
        self.pid = None
        self._seeded = False
        if os.path.exists(self.state_file):
            with open(self.state_file) as handle:
                state = json.load(handle)
            self.port, self.tls_port = state["port"], state["tls_port"]
            self.admin_password = state["admin_password"]
            self._seeded = state.get("seeded", False)
        if self.admin_password is None:
            self.admin_password = secrets.token_hex(12)

    # ------------------------------------------------------------------ addresses
    @property
    def url(self):
        return "ldap://%s:%d" % (self.host, self.port) if self.port else None

    @property
    def ldaps_url(self):
        return "ldaps://%s:%d" % (self.host, self.tls_port) if self.tls_port else None

    @property
    def running(self):
        return self.pid is not None

    def __repr__(self):
        return "<Slapd %s %s pid=%s>" % (self.url, self.ldaps_url, self.pid)

    # ------------------------------------------------------------------ setup
    def _save_state(self):
        _write(self.state_file, json.dumps({
            "port": self.port, "tls_port": self.tls_port,
            "admin_password": self.admin_password, "seeded": self._seeded}), 0o600)

    def _write_config(self):
        if not os.path.exists(self.cert_file) or not os.path.exists(self.key_file):
            make_tls_files(self.tls_dir)
        if not os.path.exists(self.conf_file):
            for path in (self.schema_file, self.conf_file):
                for char in '"\n':
                    if char in path:
                        raise SlapdError("unsupported character %r in base_dir %r" % (char, self.base_dir))
            os.makedirs(self.db_dir, mode=0o700, exist_ok=True)
            _write(self.schema_file, AD_COMPAT_SCHEMA)
            _write(self.conf_file, SLAPD_CONF.format(
                schema=SCHEMA_DIR, modules=MODULE_DIR, base=self.base_dir, suffix=self.base_dn,
                rootdn=self.admin_dn, rootpw=self.admin_password), 0o600)
        self._save_state()

    @staticmethod
    def _binary(name):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
        if not path:
            raise SlapdError("%s not found: apt-get install -y --no-install-recommends slapd ldap-utils" % name)
        return path

    def _run(self, argv, timeout):
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise SlapdError("%s timed out after %ss" % (argv[0], timeout)) from exc
        return proc

    def _read_pid(self):
        try:
            with open(self.pid_file) as handle:
                return int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _clear_stale_pid_file(self):
        pid = self._read_pid()
        if pid is not None and _process_alive(pid):
            raise SlapdError("a slapd (pid %d) already runs on %s; stop it first" % (pid, self.base_dir))
        if os.path.exists(self.pid_file):
            os.unlink(self.pid_file)

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout=30):
        """Configure (first time), check with slaptest, start slapd, wait for it, seed base entries."""
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        self._write_config()
        proc = self._run([self._binary("slaptest"), "-Q", "-u", "-f", self.conf_file],
                         timeout=max(1, deadline - time.monotonic()))
        if proc.returncode:
            raise SlapdError("slaptest failed (%d): %s%s" % (proc.returncode, proc.stdout, proc.stderr))
        self._clear_stale_pid_file()

        fixed_ports = self.port is not None
        attempts = 1 if fixed_ports else 5
        for attempt in range(attempts):
            if not fixed_ports:
                self.port, self.tls_port = _pick_ports(self.host, 2)
            urls = "ldap://%s:%d/ ldaps://%s:%d/" % (self.host, self.port, self.host, self.tls_port)
            proc = self._run([self._binary("slapd"), "-h", urls, "-f", self.conf_file],
                             timeout=max(1, deadline - time.monotonic()))
            if proc.returncode == 0:
                break
            # most likely somebody else took one of the ports in the meantime
            if fixed_ports or attempt == attempts - 1:
                raise SlapdError("slapd -h %r failed (%d): %s%s"
                                 % (urls, proc.returncode, proc.stdout, proc.stderr))
        self._save_state()

        try:
            self._wait_ready(deadline)
            self.pid = self._read_pid()
            _RUNNING.add(self)
            self._seed()
        except BaseException:
            self._terminate(max(5, deadline - time.monotonic()))
            raise
        return self

    def _wait_ready(self, deadline):
        last = None
        while True:
            try:
                conn = self.connect(bind=False, timeout=2)
                try:
                    if conn.search("", "(objectClass=*)", search_scope=ldap3.BASE,
                                   attributes=["namingContexts"]):
                        if self._read_pid() is not None:
                            return
                finally:
                    conn.unbind()
            except ldap_exc.LDAPException as exc:
                last = exc
            pid = self._read_pid()
            if pid is not None and not _process_alive(pid):
                raise SlapdError("slapd (pid %d) died while starting" % pid)
            if time.monotonic() > deadline:
                raise SlapdError("slapd on %s did not answer in time: %r" % (self.url, last))
            time.sleep(0.05)

    def stop(self, timeout=30):
        """SIGTERM slapd and wait until its pid file is gone and its ports are closed; keep the data."""
        _RUNNING.discard(self)
        self._terminate(timeout)
        self.pid = None

    def _terminate(self, timeout):
        deadline = time.monotonic() + timeout
        pid = self._read_pid() or self.pid
        if pid is None and not self._ports_open():
            return
        if pid is not None and _process_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        while time.monotonic() < deadline:
            if not os.path.exists(self.pid_file) and not self._ports_open():
                return
            if pid is not None and not _process_alive(pid):
                # died (or zombie) without cleaning up its pid file
                if not self._ports_open():
                    if os.path.exists(self.pid_file):
                        os.unlink(self.pid_file)
                    return
            time.sleep(0.05)
        # last resort
        if pid is not None and _process_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            end = time.monotonic() + 5
            while time.monotonic() < end and (_process_alive(pid) or self._ports_open()):
                time.sleep(0.05)
        if os.path.exists(self.pid_file) and (pid is None or not _process_alive(pid)):
            os.unlink(self.pid_file)
        raise SlapdError("slapd (pid %s) did not stop within %ss (killed)" % (pid, timeout))

    def _ports_open(self):
        return any(port and _port_open(self.host, port) for port in (self.port, self.tls_port))

    def close(self):
        """Stop slapd if it runs (or left a pid file); safe to call more than once."""
        if self.running or os.path.exists(self.pid_file):
            self.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.close()

    # ------------------------------------------------------------------ LDAP helpers
    def connect(self, user=None, password=None, bind=True, timeout=10):
        """An ldap3 Connection to the plain port, bound as ``user`` (default: the admin)."""
        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, connect_timeout=timeout)
        if user is None and bind:
            user, password = self.admin_dn, self.admin_password
        conn = ldap3.Connection(server, user=user if bind else None, password=password if bind else None,
                                receive_timeout=timeout, raise_exceptions=False)
        if bind:
            if not conn.bind():
                raise SlapdError("bind as %s failed: %s" % (user, conn.result))
        else:
            conn.open()
        return conn

    @staticmethod
    def _check(conn, ok, what, allowed=()):
        code = conn.result.get("result") if conn.result else None
        if not ok and code not in allowed:
            raise SlapdError("%s failed: %s" % (what, conn.result))
        return code

    def _seed(self):
        if self._seeded:
            return
        conn = self.connect()
        try:
            exists = 68  # entryAlreadyExists
            ok = conn.add(self.base_dn, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
            self._check(conn, ok, "add %s" % self.base_dn, (exists,))
            for dn, ou in ((self.users_dn, "Users"), (self.groups_dn, "Groups")):
                ok = conn.add(dn, ["organizationalUnit"], {"ou": ou})
                self._check(conn, ok, "add %s" % dn, (exists,))
        finally:
            conn.unbind()
        self._seeded = True
        self._save_state()

    def user_dn(self, uid):
        return "uid=%s,%s" % (escape_rdn(uid), self.users_dn)

    def group_dn(self, name):
        return "cn=%s,%s" % (escape_rdn(name), self.groups_dn)

    def add_user(self, uid, password, groups=(), sam_account_name=None, upn=None):
        """Add uid=<uid>,ou=Users (inetOrgPerson + adCompatUser) and put it in each group; return its DN."""
        if isinstance(groups, str):
            groups = [groups]
        dn = self.user_dn(uid)
        attributes = {
            "uid": uid, "cn": uid, "sn": uid,
            "sAMAccountName": uid if sam_account_name is None else sam_account_name,
            "userPrincipalName": "%s@%s" % (uid, self.upn_domain) if upn is None else upn,
            "userPassword": hashed(ldap3.HASHED_SALTED_SHA, password),
        }
        conn = self.connect()
        try:
            ok = conn.add(dn, ["inetOrgPerson", "adCompatUser"], attributes)
            self._check(conn, ok, "add %s" % dn)
            for group in groups:
                gdn = self.group_dn(group)
                ok = conn.add(gdn, ["groupOfNames"], {"cn": group, "member": dn})
                if self._check(conn, ok, "add %s" % gdn, (68,)) == 68:
                    ok = conn.modify(gdn, {"member": [(ldap3.MODIFY_ADD, [dn])]})
                    self._check(conn, ok, "add member %s to %s" % (dn, gdn),
                                (20,))  # attributeOrValueExists: already a member
        finally:
            conn.unbind()
        return dn
