"""Real servers and real clients for the integration tests.

Servers (``pecan serve``, ``uwsgi``) run as subprocesses bound to 127.0.0.1
on a free port, with their output captured to a log file, and are always
stopped, however the test ends.  Clients are the real ``curl`` and
``openssl`` binaries.  Every subprocess call has a timeout.

Imported by the test modules of this directory as ``import servers``.
"""

import contextlib
import dataclasses
import datetime
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers

BIN_DIR = os.path.dirname(sys.executable)
REPO_CONFIG_PY = os.path.join(helpers.REPO, "config.py")

INSTALL_HINTS = {
    "curl": "apt-get install curl",
    "openssl": "apt-get install openssl",
}

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")

CLIENT_TIMEOUT = 60
START_TIMEOUT = 60
STOP_TIMEOUT = 20


# --------------------------------------------------------------------------
# Binaries


def system_binary(name):
    """The path of a system binary, or a test failure saying how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail("%s is not installed (or not on PATH); install it, e.g. `%s`"
                    % (name, INSTALL_HINTS.get(name, "apt-get install " + name)), pytrace=False)
    return path


def venv_binary(name):
    """An executable installed next to this Python (pecan, uwsgi)."""
    path = os.path.join(BIN_DIR, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s not found; install the test dependencies in this virtualenv: "
                    "%s -m pip install -e '.[test]'" % (path, sys.executable), pytrace=False)
    return path


def run(args, cwd=None, timeout=CLIENT_TIMEOUT, env=None, input=None):
    """Run a command to completion (with a timeout) and return the CompletedProcess."""
    try:
        return subprocess.run(args, cwd=cwd, env=env, input=input, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail("%r did not finish within %s s; output so far:\n%s\n%s"
                    % (args, timeout, _text(exc.stdout), _text(exc.stderr)))


def _text(data):
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def describe(result):
    return "command %r exited with %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        result.args, result.returncode, _text(result.stdout), _text(result.stderr))


# --------------------------------------------------------------------------
# openssl


def openssl(*args, cwd=None, input=None, timeout=CLIENT_TIMEOUT, check=True):
    result = run([system_binary("openssl"), *args], cwd=cwd, input=input, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(describe(result))
    return result


def readme_csr(cwd, name, cn="anchor-test.example.com"):
    """The README's command: ``openssl req -out X.csr -nodes -keyout X.key
    -newkey rsa:2048 -subj "/CN=..."``; returns (csr path, key path)."""
    openssl("req", "-out", name + ".csr", "-nodes", "-keyout", name + ".key",
            "-newkey", "rsa:2048", "-subj", "/CN=%s" % cn, cwd=cwd)
    return os.path.join(cwd, name + ".csr"), os.path.join(cwd, name + ".key")


def verify(ca_path, *cert_paths, cwd=None):
    """``openssl verify -CAfile ca cert...`` must succeed and say OK for each."""
    result = openssl("verify", "-CAfile", ca_path, *cert_paths, cwd=cwd, check=False)
    assert result.returncode == 0, describe(result)
    lines = _text(result.stdout).splitlines()
    for path in cert_paths:
        assert "%s: OK" % path in lines, describe(result)
    return result


def dates(cert_path, cwd=None):
    """(notBefore, notAfter) as printed by ``openssl x509 -noout -dates``."""
    output = _text(openssl("x509", "-noout", "-dates", "-in", cert_path, cwd=cwd).stdout)
    values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def parse(text):
        return datetime.datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y GMT").replace(
            tzinfo=datetime.timezone.utc)

    return parse(values["notBefore"]), parse(values["notAfter"])


def load_pem_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def stored_name(certificate):
    """The file name Anchor records a certificate under: sha256 of its DER."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest() + ".crt"


# --------------------------------------------------------------------------
# curl


def client_env(home):
    """The environment for curl: no proxy settings, no user .curlrc."""
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in PROXY_VARIABLES and key not in ("CURL_HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    return env


def curl_command(url, *args):
    return [system_binary("curl"), url, *args]


def curl(url, *args, cwd, timeout=CLIENT_TIMEOUT):
    """Run curl with ``args``; returns the CompletedProcess."""
    return run(curl_command(url, *args), cwd=cwd, env=client_env(cwd), timeout=timeout)


@dataclasses.dataclass(repr=False)
class Answer:
    status: int
    body: bytes
    headers: str
    result: object  # the CompletedProcess of curl

    def __repr__(self):
        return "HTTP %s, body %r\n--- headers ---\n%s\n%s" % (
            self.status, self.body[:500], self.headers, describe(self.result))


def request(url, *args, cwd, name="answer", timeout=CLIENT_TIMEOUT):
    """``curl -s -S -o body -D headers -w '%{http_code}' URL args...``.

    Fails the test when curl itself fails (exit code not 0: reset,
    timeout...), with everything curl printed.
    """
    body_path = os.path.join(cwd, name + ".body")
    headers_path = os.path.join(cwd, name + ".headers")
    for path in (body_path, headers_path):
        if os.path.exists(path):
            os.unlink(path)
    result = curl(url, "-s", "-S", "-o", body_path, "-D", headers_path, "-w", "%{http_code}",
                  *args, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, "curl failed:\n" + describe(result)
    with open(body_path, "rb") as handle:
        body = handle.read()
    with open(headers_path, encoding="latin-1") as handle:
        headers = handle.read()
    return Answer(int(_text(result.stdout).strip()), body, headers, result)


def sign_form(csr_arg, user=helpers.USER, secret=helpers.SECRET, encoding="pem"):
    """curl -F arguments of the signing form; ``csr_arg`` is the value after
    ``csr=`` (``<file``, ``@file`` or literal text)."""
    return ["-F", "user=%s" % user, "-F", "secret=%s" % secret,
            "-F", "encoding=%s" % encoding, "-F", "csr=%s" % csr_arg]


# --------------------------------------------------------------------------
# Servers


def pecan_config_text(port, host="127.0.0.1"):
    """The repository's config.py with ``server.host`` and ``server.port`` replaced."""
    with open(REPO_CONFIG_PY, encoding="utf-8") as handle:
        text = handle.read()
    text, hosts = re.subn(r'("host"\s*:\s*)"[^"]*"', r'\g<1>"%s"' % host, text)
    text, ports = re.subn(r'("port"\s*:\s*)(?:"[^"]*"|\d+)', r'\g<1>"%d"' % port, text)
    assert (hosts, ports) == (1, 1), (
        "config.py no longer has one \"host\": \"...\" and one \"port\": \"...\" entry "
        "for these tests to substitute:\n" + text)
    return text


def write_pecan_config(directory, port):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.py")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(pecan_config_text(port))
    return path


def server_env(deployment):
    env = dict(os.environ)
    env["ANCHOR_CONF"] = deployment.config_path
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclasses.dataclass
class Server:
    process: subprocess.Popen
    port: int
    workdir: str
    log_path: str
    stop_signal: int
    signal_group: bool
    # Filled in when the server has been stopped:
    exit_status: int | None = None
    killed: bool = False
    stragglers: tuple = ()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()


def _group_members(pgid):
    """Live (non-zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _leader_exited(pid):
    """Whether ``pid`` (our child) has exited, without reaping it: while it is
    a zombie its process group id cannot be reused."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None


def stop(server, timeout=STOP_TIMEOUT):
    """Stop ``server`` with its stop signal; SIGKILL its process group (the
    processes this test started, nothing else) if it does not exit in time."""
    process = server.process
    if process.returncode is not None:
        return
    pgid = process.pid  # started with start_new_session: leader of its own group
    if not _leader_exited(pgid):
        if server.signal_group:
            os.killpg(pgid, server.stop_signal)
        else:
            process.send_signal(server.stop_signal)
    deadline = time.monotonic() + timeout
    while not _leader_exited(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _leader_exited(pgid):
        server.killed = True
        os.killpg(pgid, signal.SIGKILL)
    # Children (uwsgi workers) must be gone too; the leader is still a zombie
    # here, so the group id still names only what this test started.
    deadline = time.monotonic() + 5
    while [pid for pid in _group_members(pgid) if pid != pgid] and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stragglers = tuple(pid for pid in _group_members(pgid) if pid != pgid)
    if server.stragglers:
        os.killpg(pgid, signal.SIGKILL)
    server.exit_status = process.wait(timeout=10)


@contextlib.contextmanager
def running(args, workdir, env, port, stop_signal, signal_group=False):
    """Start ``args`` in ``workdir``, wait for ``port``, yield a Server; stop it
    on the way out whatever happens."""
    log_path = os.path.join(workdir, "server.log")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(process, port, workdir, log_path, stop_signal, signal_group)
    try:
        try:
            helpers.wait_for_port(port, START_TIMEOUT, process)
        except RuntimeError as exc:
            pytest.fail("%s: %s\n--- server log ---\n%s" % (args, exc, server.log()))
        yield server
    finally:
        stop(server)


def pecan_serve(deployment, workdir):
    """``pecan serve config.py`` for ``deployment`` (a context manager)."""
    port = helpers.free_port()
    write_pecan_config(workdir, port)
    return running([venv_binary("pecan"), "serve", "config.py"], str(workdir),
                   server_env(deployment), port, signal.SIGTERM)


def copy_repository(destination):
    """The files git tracks, as a fresh clone would have them."""
    listed = subprocess.run(["git", "-C", helpers.REPO, "ls-files", "-z"], capture_output=True,
                            check=True, timeout=30).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = os.path.join(helpers.REPO, name)
        if not os.path.exists(source):  # deleted in the work tree, not yet committed
            continue
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
