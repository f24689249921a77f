"""Anchor under uWSGI behind nginx, both started from the repository's samples.

``anchor_behind_nginx(tmp_path, deployment)`` is a context manager that

- starts uWSGI (the ``uwsgi`` of this virtualenv) from a copy of
  ``tools/uwsgi.ini`` in which only the socket path differs, with
  ``--venv sys.prefix``, in a directory holding a test config.py, and with
  ``ANCHOR_CONF`` naming the deployment's config.json;
- makes a TLS CA and a server certificate for 127.0.0.1 / localhost;
- renders ``tools/nginx-anchor.conf`` with only the listen port, the
  certificate paths, the socket path and the log paths substituted, includes
  it in a minimal main nginx.conf (pid file, logs and every temp path under
  the test's own prefix) and starts the system's nginx with ``-p -c -e``;
- optionally (``http_proxy=True``) also the sample's plain-HTTP alternative:
  uWSGI gets an ``--http-socket`` on loopback as well, and a second nginx
  server, made from the sample's server block with the uwsgi lines swapped
  for the ``proxy_*`` lines the sample documents, proxies to it;
- yields a ``Stack`` to make requests through nginx with curl;
- stops nginx (``nginx -s quit``) and then uWSGI (SIGINT), waits for both to
  be gone, and records how they went (``Stack.stopped``).

nginx's master runs as root here and its workers as ``nobody``, so the
uWSGI socket and nginx's temp directories live in a directory under /tmp that
``nobody`` can traverse (pytest's tmp_path is mode 0700), removed at the end.

Imported by the test modules of this directory as ``import nginx``.
"""

import contextlib
import dataclasses
import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import helpers
import servers

UWSGI_SAMPLE = os.path.join(helpers.REPO, "tools", "uwsgi.ini")
NGINX_SAMPLE = os.path.join(helpers.REPO, "tools", "nginx-anchor.conf")

# What the samples name, and the tests replace.
SAMPLE_SOCKET = "/run/anchor/uwsgi.sock"
SAMPLE_LISTEN = "listen 443 ssl;"
SAMPLE_CERT = "/etc/anchor/tls/anchor.example.com.crt"
SAMPLE_KEY = "/etc/anchor/tls/anchor.example.com.key"
SAMPLE_ACCESS_LOG = "/var/log/nginx/anchor-access.log"
SAMPLE_ERROR_LOG = "/var/log/nginx/anchor-error.log"

INSTALL_HINT = "install it: apt-get install nginx"
START_TIMEOUT = 60
STOP_TIMEOUT = 20


# --------------------------------------------------------------------------
# Binaries


def nginx_binary():
    """The system's nginx (often in /usr/sbin, which may not be on PATH)."""
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        pytest.fail("nginx is not installed; " + INSTALL_HINT, pytrace=False)
    return path


def uwsgi_params_file(nginx):
    """The uwsgi_params file shipped with nginx (next to its nginx.conf)."""
    result = servers.run([nginx, "-V"], timeout=30)
    configure = servers._text(result.stderr) + servers._text(result.stdout)
    match = re.search(r"--conf-path=(\S+)", configure)
    candidates = [os.path.join(os.path.dirname(match.group(1)), "uwsgi_params")] if match else []
    candidates.append("/etc/nginx/uwsgi_params")
    for path in candidates:
        if os.path.isfile(path):
            return path
    pytest.fail("nginx's uwsgi_params file was not found (looked in %s); %s"
                % (", ".join(candidates), INSTALL_HINT), pytrace=False)


# --------------------------------------------------------------------------
# The samples


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _replace(text, old, new, count=None, what="sample"):
    """``text`` with every ``old`` replaced; the sample must contain it
    (``count`` times when given), or the tests no longer match the sample."""
    found = text.count(old)
    assert found and (count is None or found == count), (
        "%s: expected %s occurrence(s) of %r, found %d; update tests/integration/nginx.py"
        % (what, count or "some", old, found))
    return text.replace(old, new)


def render_uwsgi_ini(socket_path):
    """tools/uwsgi.ini with the socket path replaced, nothing else."""
    text = _read(UWSGI_SAMPLE)
    assert re.search(r"^socket = %s$" % re.escape(SAMPLE_SOCKET), text, re.M), (
        "tools/uwsgi.ini: no `socket = %s` line" % SAMPLE_SOCKET)
    return _replace(text, "socket = " + SAMPLE_SOCKET, "socket = " + socket_path, 1, "tools/uwsgi.ini")


def render_nginx_sample(port, cert_path, key_path, socket_path, log_dir):
    """tools/nginx-anchor.conf with the listen address, certificate, socket
    and log paths replaced, nothing else."""
    text = _read(NGINX_SAMPLE)
    text = _replace(text, SAMPLE_LISTEN, "listen 127.0.0.1:%d ssl;" % port, 1)
    text = _replace(text, SAMPLE_CERT, cert_path, 1)
    text = _replace(text, SAMPLE_KEY, key_path, 1)
    text = _replace(text, "unix:" + SAMPLE_SOCKET, "unix:" + socket_path)
    text = _replace(text, SAMPLE_ACCESS_LOG, os.path.join(log_dir, "anchor-access.log"), 1)
    text = _replace(text, SAMPLE_ERROR_LOG, os.path.join(log_dir, "anchor-error.log"), 1)
    return text


def server_block(text):
    """The ``server { ... }`` block of a rendered sample (without the
    http-level lines before it, such as limit_req_zone)."""
    match = re.search(r"^server\s*\{", text, re.M)
    assert match, "tools/nginx-anchor.conf: no top-level `server {` block"
    depth = 0
    lines = text[match.start():].splitlines(keepends=True)
    for index, line in enumerate(lines):
        code = line.split("#", 1)[0]
        depth += code.count("{") - code.count("}")
        if depth == 0:
            return "".join(lines[:index + 1])
    raise AssertionError("tools/nginx-anchor.conf: unbalanced braces in the server block")


def http_proxy_variant(block, port, http_port, log_dir):
    """The sample's server block turned into its documented plain-HTTP
    alternative: the ``include uwsgi_params`` and ``uwsgi_*`` lines replaced
    by the ``proxy_*`` lines the sample lists in its comment, each
    ``uwsgi_pass`` by ``proxy_pass http://127.0.0.1:<http_port>``; listening
    on ``port``, logging to files of its own."""
    proxy_lines = re.findall(r"^\s*#\s+(proxy_\w+ [^;#]*;)\s*$", block, re.M)
    assert any(line.startswith("proxy_set_header X-Forwarded-For ") for line in proxy_lines), (
        "tools/nginx-anchor.conf: the commented plain-HTTP alternative (proxy_* lines) is missing")
    out = ["# The plain-HTTP alternative documented in tools/nginx-anchor.conf,\n",
           "# made by tests/integration/nginx.py from its server block.\n"]
    for line in block.splitlines(keepends=True):
        stripped = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if stripped.startswith("#"):
            continue
        if stripped == "include uwsgi_params;":
            out.extend(indent + proxy + "\n" for proxy in proxy_lines)
        elif stripped.startswith("uwsgi_pass "):
            out.append(indent + "proxy_pass http://127.0.0.1:%d;\n" % http_port)
        elif re.match(r"uwsgi_\w+ ", stripped):
            continue
        else:
            out.append(line)
    text = "".join(out)
    assert "uwsgi" not in text.split("\n", 2)[2], text
    text = re.sub(r"listen 127\.0\.0\.1:\d+ ssl;", "listen 127.0.0.1:%d ssl;" % port, text)
    text = text.replace(os.path.join(log_dir, "anchor-access.log"), os.path.join(log_dir, "http-access.log"))
    return text.replace(os.path.join(log_dir, "anchor-error.log"), os.path.join(log_dir, "http-error.log"))


@dataclasses.dataclass
class Limits:
    rate: float        # requests per second per client address
    burst: int         # served at once above the rate
    status: int        # what nginx answers beyond that


def sample_limits():
    """The signing rate limit the nginx sample configures."""
    text = re.sub(r"#.*", "", _read(NGINX_SAMPLE))
    zone = re.search(r"limit_req_zone \$binary_remote_addr zone=(\w+):\w+ rate=(\d+)r/s;", text)
    assert zone, "tools/nginx-anchor.conf: no per-address limit_req_zone in r/s"
    burst = re.search(r"limit_req zone=%s burst=(\d+) nodelay;" % zone.group(1), text)
    assert burst, "tools/nginx-anchor.conf: no `limit_req zone=%s burst=N nodelay;`" % zone.group(1)
    status = re.search(r"limit_req_status (\d+);", text)
    return Limits(float(zone.group(2)), int(burst.group(1)), int(status.group(1)) if status else 503)


def main_config(prefix, conf_dir, log_dir, includes):
    """A minimal nginx.conf: what a distribution's main file provides, with
    every path under the test's directories, including the samples."""
    temp = {name: os.path.join(prefix, name) for name in
            ("client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp")}
    include_lines = "".join("    include %s;\n" % os.path.join(conf_dir, name) for name in includes)
    return """\
# Test wrapper around tools/nginx-anchor.conf: the main context that an
# installed /etc/nginx/nginx.conf provides, with every path in the test's
# directories.  `daemon off`: the master stays the test's child process.
daemon off;
worker_processes 2;
pid {pid};
error_log {log_dir}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    default_type application/octet-stream;
    access_log {log_dir}/access.log;
    client_body_temp_path {client_body_temp};
    proxy_temp_path {proxy_temp};
    fastcgi_temp_path {fastcgi_temp};
    uwsgi_temp_path {uwsgi_temp};
    scgi_temp_path {scgi_temp};
{include_lines}}}
""".format(pid=os.path.join(log_dir, "nginx.pid"), log_dir=log_dir, conf_dir=conf_dir,
           include_lines=include_lines, **temp)


# --------------------------------------------------------------------------
# TLS for nginx


@dataclasses.dataclass
class TLSFiles:
    ca_path: str      # what curl --cacert gets
    cert_path: str    # nginx's ssl_certificate
    key_path: str     # nginx's ssl_certificate_key


def make_tls(directory):
    """A TLS CA of its own (not Anchor's) and a server certificate from it
    for 127.0.0.1 and localhost."""
    ca_cert, ca_key, ca_path, _ = helpers.make_ca(os.path.join(directory, "tls-ca"), "p256",
                                                  common_name="nginx test TLS CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "server.crt")
    key_path = os.path.join(directory, "server.key")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(helpers.key_pem(key))
    os.chmod(key_path, 0o600)
    return TLSFiles(ca_path, cert_path, key_path)


# --------------------------------------------------------------------------
# Running it


@dataclasses.dataclass
class Stopped:
    """How the stack went down."""
    nginx_quit: bool = False          # nginx -s quit made the master exit in time
    nginx_pid_file_gone: bool = False
    nginx_port_closed: bool = False
    nginx_stragglers: tuple = ()
    uwsgi_killed: bool = False        # SIGINT was not enough
    uwsgi_stragglers: tuple = ()
    uwsgi_socket_gone: bool = False   # vacuum removed it


@dataclasses.dataclass
class Stack:
    deployment: object
    tls: TLSFiles
    port: int                 # nginx, HTTPS, uwsgi_pass to the unix socket
    http_proxy_port: int      # nginx, HTTPS, proxy_pass to uwsgi's http-socket (or None)
    uwsgi_http_port: int      # uwsgi's own --http-socket (or None)
    socket_path: str
    uwsgi: servers.Server
    nginx: servers.Server
    conf_path: str
    log_dir: str
    stopped: Stopped = None

    def url(self, path, via="uwsgi_pass"):
        port = {"uwsgi_pass": self.port, "proxy_pass": self.http_proxy_port}[via]
        assert port, "this stack was started without http_proxy=True"
        return "https://127.0.0.1:%d%s" % (port, path)

    def request(self, path, *args, cwd, via="uwsgi_pass", source=None, name="answer"):
        """curl through nginx over HTTPS, verifying nginx's certificate; from
        the local address ``source`` (``--interface``) when given."""
        options = ["--cacert", self.tls.ca_path, "--max-time", "30"]
        if source:
            options += ["--interface", source]
        return servers.request(self.url(path, via), *options, *args, cwd=str(cwd), name=name)

    def uwsgi_log(self):
        return self.uwsgi.log()

    def nginx_log(self, name="error.log"):
        path = os.path.join(self.log_dir, name)
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def logs(self):
        return "--- uwsgi log ---\n%s\n--- nginx error.log ---\n%s\n--- anchor-error.log ---\n%s" % (
            self.uwsgi_log()[-6000:], self.nginx_log()[-3000:], self.nginx_log("anchor-error.log")[-3000:])


def _start(args, cwd, env, log_path, stop_signal, port=0):
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return servers.Server(process, port, cwd, log_path, stop_signal, False)


def _wait_for_unix_socket(path, process, log, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("uwsgi exited with status %s before listening on %s\n%s"
                        % (process.returncode, path, log()), pytrace=False)
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(0.5)
            try:
                probe.connect(path)
                return
            except OSError:
                time.sleep(0.05)
    pytest.fail("uwsgi did not listen on %s within %s s\n%s" % (path, timeout, log()), pytrace=False)


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_until_ready(stack, cwd, timeout=START_TIMEOUT):
    """Anchor answers through nginx (not nginx's 502 while workers load)."""
    deadline = time.monotonic() + timeout
    answer = None
    vias = ["uwsgi_pass"] + (["proxy_pass"] if stack.http_proxy_port else [])
    for via in vias:
        while time.monotonic() < deadline:
            answer = stack.request("/robots.txt", cwd=cwd, via=via, name="ready")
            if answer.status == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("Anchor did not answer through nginx (%s) within %s s: %r\n%s"
                        % (via, timeout, answer, stack.logs()), pytrace=False)


def _stop_nginx(stack, nginx, stopped):
    server = stack.nginx
    result = servers.run([nginx, "-p", stack.nginx.workdir, "-c", stack.conf_path,
                          "-e", os.path.join(stack.log_dir, "error.log"), "-s", "quit"], timeout=30)
    if result.returncode == 0:
        try:
            server.process.wait(timeout=STOP_TIMEOUT)
            stopped.nginx_quit = True
        except subprocess.TimeoutExpired:
            pass
    # Reaps it; SIGQUIT then SIGKILL to its process group only if still there.
    servers.stop(server)
    stopped.nginx_stragglers = server.stragglers
    deadline = time.monotonic() + 5
    pid_file = os.path.join(stack.log_dir, "nginx.pid")
    while os.path.exists(pid_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped.nginx_pid_file_gone = not os.path.exists(pid_file)
    stopped.nginx_port_closed = not any(
        _port_open(port) for port in (stack.port, stack.http_proxy_port) if port)


def _stop_uwsgi(stack, stopped):
    servers.stop(stack.uwsgi)   # SIGINT to the master; SIGKILL to its group if it hangs
    stopped.uwsgi_killed = stack.uwsgi.killed
    stopped.uwsgi_stragglers = stack.uwsgi.stragglers
    stopped.uwsgi_socket_gone = not os.path.exists(stack.socket_path)


@contextlib.contextmanager
def anchor_behind_nginx(tmp_path, deployment, http_proxy=False):
    """Start uWSGI and nginx from the samples for ``deployment``; yield a
    ``Stack``; stop both however the block ends (see the module docstring)."""
    nginx = nginx_binary()
    uwsgi = servers.venv_binary("uwsgi")
    params = uwsgi_params_file(nginx)
    base = os.path.join(str(tmp_path), "nginx-stack")
    app_dir, conf_dir, log_dir = (os.path.join(base, name) for name in ("app", "conf", "logs"))
    for directory in (app_dir, conf_dir, log_dir):
        os.makedirs(directory)
    # Socket and nginx prefix where nginx's workers (nobody) can reach them.
    run_dir = tempfile.mkdtemp(prefix="anchor-nginx-")
    os.chmod(run_dir, 0o711)
    prefix = os.path.join(run_dir, "nginx")
    os.makedirs(prefix)
    socket_path = os.path.join(run_dir, "uwsgi.sock")
    uwsgi_server = nginx_server = stack = None
    try:
        tls = make_tls(os.path.join(base, "tls"))
        port = helpers.free_port()
        http_proxy_port = uwsgi_http_port = None
        if http_proxy:
            http_proxy_port = helpers.free_port()
            uwsgi_http_port = helpers.free_port()

        # uWSGI from the sample ini.
        servers.write_pecan_config(app_dir, helpers.free_port())  # its port is unused under uwsgi
        ini_path = os.path.join(app_dir, "uwsgi.ini")
        with open(ini_path, "w", encoding="utf-8") as handle:
            handle.write(render_uwsgi_ini(socket_path))
        command = [uwsgi, "--ini", ini_path, "--venv", sys.prefix]
        if http_proxy:
            command += ["--http-socket", "127.0.0.1:%d" % uwsgi_http_port]
        uwsgi_server = _start(command, app_dir, servers.server_env(deployment),
                              os.path.join(base, "uwsgi.log"), signal.SIGINT)
        _wait_for_unix_socket(socket_path, uwsgi_server.process, uwsgi_server.log)

        # nginx from the sample server block.
        sample = render_nginx_sample(port, tls.cert_path, tls.key_path, socket_path, log_dir)
        includes = ["anchor.conf"]
        with open(os.path.join(conf_dir, "anchor.conf"), "w", encoding="utf-8") as handle:
            handle.write(sample)
        if http_proxy:
            with open(os.path.join(conf_dir, "anchor-http.conf"), "w", encoding="utf-8") as handle:
                handle.write(http_proxy_variant(server_block(sample), http_proxy_port, uwsgi_http_port, log_dir))
            includes.append("anchor-http.conf")
        shutil.copy(params, os.path.join(conf_dir, "uwsgi_params"))
        conf_path = os.path.join(conf_dir, "nginx.conf")
        with open(conf_path, "w", encoding="utf-8") as handle:
            handle.write(main_config(prefix, conf_dir, log_dir, includes))
        nginx_args = [nginx, "-p", prefix, "-c", conf_path, "-e", os.path.join(log_dir, "error.log")]
        check = servers.run(nginx_args + ["-t", "-q"], timeout=30)
        assert check.returncode == 0, "nginx -t refused the rendered sample:\n" + servers.describe(check)
        nginx_server = _start(nginx_args, prefix, os.environ.copy(), os.path.join(log_dir, "nginx.out"),
                              signal.SIGQUIT, port)
        stack = Stack(deployment, tls, port, http_proxy_port, uwsgi_http_port, socket_path,
                      uwsgi_server, nginx_server, conf_path, log_dir)
        for listen_port in (port, http_proxy_port):
            if listen_port:
                try:
                    helpers.wait_for_port(listen_port, START_TIMEOUT, nginx_server.process)
                except RuntimeError as exc:
                    pytest.fail("nginx: %s\n%s" % (exc, stack.logs()), pytrace=False)
        client_dir = os.path.join(base, "ready-client")
        os.makedirs(client_dir)
        _wait_until_ready(stack, client_dir)
        yield stack
    finally:
        stopped = Stopped()
        if nginx_server is not None:
            if stack is not None:
                _stop_nginx(stack, nginx, stopped)
            else:
                servers.stop(nginx_server)
        if uwsgi_server is not None:
            if stack is not None:
                _stop_uwsgi(stack, stopped)
            else:
                servers.stop(uwsgi_server)
        if stack is not None:
            stack.stopped = stopped
        shutil.rmtree(run_dir, ignore_errors=True)
