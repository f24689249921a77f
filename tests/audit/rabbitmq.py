"""A private, throw-away RabbitMQ node for tests.

The broker runs as plain child processes of the test (no systemd, no
``su rabbitmq``), listens on 127.0.0.1 only, and keeps every file under a
caller-supplied base directory.  It has its own epmd on its own port, so it
never meets a system broker or another test's broker.

Usage::

    require_rabbitmq()
    with RabbitMQ(tmp_path / "rabbit") as broker:
        use(broker.url)           # rabbit://guest:guest@127.0.0.1:<port>/
        broker.stop()             # broker down, data kept, epmd still up
        broker.start()            # same URL again

Ports are chosen at random in 20000-32000 (so never in 35672-35682, where
rabbitmqctl's own temporary node listens) and checked to be bindable.
"""

import os
import pathlib
import random
import secrets
import signal
import socket
import subprocess
import time

import pytest

RABBITMQ_BIN = pathlib.Path("/usr/lib/rabbitmq/bin")
RABBITMQ_SERVER = RABBITMQ_BIN / "rabbitmq-server"
RABBITMQCTL = RABBITMQ_BIN / "rabbitmqctl"
EPMD = "epmd"

HOST = "127.0.0.1"
PORT_RANGE = (20000, 32000)
# rabbitmqctl's temporary Erlang node picks a distribution port in this range.
_CTL_PORT_RANGE = range(35672, 35683)
_ERL_ARGS = "-kernel inet_dist_use_interface {127,0,0,1}"

_CONFIG = """\
loopback_users.guest = true
log.console = false
log.file.level = info
"""


def require_rabbitmq():
    """Fail (never skip) the calling test if rabbitmq-server is missing."""
    if not RABBITMQ_SERVER.exists():
        pytest.fail(
            "rabbitmq-server is not installed: apt-get install rabbitmq-server",
            pytrace=False,
        )


def _port_bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count, rng=None):
    """Return ``count`` distinct random ports that are bindable on 127.0.0.1."""
    rng = rng or random.SystemRandom()
    ports = []
    for _ in range(1000):
        port = rng.randint(*PORT_RANGE)
        if port in ports or port in _CTL_PORT_RANGE:
            continue
        if _port_bindable(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("could not find %d free ports in %s" % (count, PORT_RANGE))


def _port_open(port, timeout=1.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path, lines=40):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return "<%s: %s>" % (path, exc)
    return "\n".join(data.splitlines()[-lines:])


def _exited(proc):
    """True if ``proc`` has exited, WITHOUT reaping it.

    While the (zombie) group leader is unreaped its process-group id cannot be
    reused, so killpg() on it is safe.
    """
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _killpg(proc, sig):
    if proc.returncode is not None:
        return  # reaped: the group id may belong to someone else now
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_group(proc, timeout):
    """Wait up to ``timeout`` for the session leader ``proc`` to exit, then kill
    whatever is left in its process group and reap the leader.

    Escalates SIGTERM -> SIGKILL if the leader does not exit in time.
    """
    if proc is None or proc.returncode is not None:
        return
    deadline = time.monotonic() + timeout
    while not _exited(proc) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _exited(proc):
        _killpg(proc, signal.SIGTERM)
        grace = time.monotonic() + 5
        while not _exited(proc) and time.monotonic() < grace:
            time.sleep(0.05)
    _killpg(proc, signal.SIGKILL)  # stragglers (and the leader if still alive)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
        pass


class RabbitMQ:
    """A private RabbitMQ node whose state lives under ``base_dir``."""

    def __init__(self, base_dir):
        self.base = pathlib.Path(base_dir).resolve()
        self.amqp_port, self.dist_port, self.epmd_port = _free_ports(3)
        self.nodename = "anchortest%s@localhost" % secrets.token_hex(4)
        self.url = "rabbit://guest:guest@%s:%d/" % (HOST, self.amqp_port)

        self.home = self.base / "home"
        self.mnesia = self.base / "mnesia"
        self.log_dir = self.base / "log"
        self.pid_file = self.base / "rabbit.pid"
        self.config_file = self.base / "rabbitmq.conf"
        self.env_file = self.base / "rabbitmq-env.conf"
        self.plugins_file = self.base / "enabled_plugins"
        self.server_log = self.base / "server.out"
        self.epmd_log = self.base / "epmd.log"
        self.ctl_log = self.base / "rabbitmqctl.log"

        self._server = None
        self._epmd = None
        self._prepare()
        self.env = self._environment()

    # -- setup --------------------------------------------------------------

    def _prepare(self):
        for path in (self.base, self.home, self.mnesia, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(_CONFIG)
        self.env_file.write_text("")  # shadow /etc/rabbitmq/rabbitmq-env.conf
        self.plugins_file.write_text("[].\n")  # no management plugin
        # Write the cookie ourselves: the node and rabbitmqctl must agree, and
        # letting both create it concurrently is a race.
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            fd = os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(16).upper())

    def _environment(self):
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RABBITMQ_", "ERL_", "NOTIFY_SOCKET"))
        }
        env.update(
            HOME=str(self.home),
            RABBITMQ_CONF_ENV_FILE=str(self.env_file),
            RABBITMQ_CONFIG_FILE=str(self.config_file),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.plugins_file),
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.mnesia),
            RABBITMQ_LOG_BASE=str(self.log_dir),
            RABBITMQ_PID_FILE=str(self.pid_file),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=_ERL_ARGS,
            RABBITMQ_CTL_ERL_ARGS=_ERL_ARGS,
            ERL_EPMD_ADDRESS=HOST,
            ERL_EPMD_PORT=str(self.epmd_port),
        )
        return env

    # -- helpers ------------------------------------------------------------

    @property
    def running(self):
        return self._server is not None and not _exited(self._server)

    def logs(self, lines=40):
        """The tail of the node's logs, for error messages."""
        parts = []
        candidates = [self.server_log, self.ctl_log, self.epmd_log]
        candidates += sorted(self.log_dir.glob("*.log"))
        for path in candidates:
            if path.exists():
                parts.append("--- %s ---\n%s" % (path, _tail(path, lines)))
        return "\n".join(parts) or "<no logs>"

    def ctl(self, *args, timeout=60):
        """Run rabbitmqctl against this node; return (returncode, output).

        Runs in its own session; on timeout the whole group is killed and
        ``subprocess.TimeoutExpired`` is raised.
        """
        cmd = [str(RABBITMQCTL), "-n", self.nodename, *args]
        proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc, signal.SIGKILL)
            proc.communicate(timeout=10)
            raise
        finally:
            if proc.returncode is None:
                _killpg(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        out = out.decode("utf-8", "replace")
        with open(self.ctl_log, "a") as fh:
            fh.write("$ rabbitmqctl %s -> %s\n%s\n" % (" ".join(args), proc.returncode, out))
        return proc.returncode, out

    def _fail(self, message):
        raise RuntimeError("%s (%s)\n%s" % (message, self.url, self.logs()))

    def _start_epmd(self):
        if self._epmd is not None and not _exited(self._epmd):
            return
        if self._epmd is not None:
            _reap_group(self._epmd, 0)
        with open(self.epmd_log, "ab") as log:
            self._epmd = subprocess.Popen(
                [EPMD, "-address", HOST, "-port", str(self.epmd_port)],
                env=self.env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port, timeout=0.5):
            if _exited(self._epmd) or time.monotonic() > deadline:
                self._fail("epmd did not start on port %d" % self.epmd_port)
            time.sleep(0.05)

    def _stop_epmd(self):
        if self._epmd is None:
            return
        _killpg(self._epmd, signal.SIGTERM)
        _reap_group(self._epmd, 5)
        self._epmd = None

    def _kill_server(self):
        if self._server is not None:
            _killpg(self._server, signal.SIGTERM)
            _reap_group(self._server, 10)
            self._server = None
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass

    # -- public API ---------------------------------------------------------

    def start(self, timeout=90):
        """Start the node; block until it accepts AMQP connections."""
        if self.running:
            return
        self._kill_server()  # reap a node that died on its own, if any
        start = time.monotonic()
        deadline = start + timeout
        self._start_epmd()
        if _port_open(self.amqp_port, timeout=0.5):
            self._fail("port %d is already in use" % self.amqp_port)
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass
        with open(self.server_log, "ab") as log:
            self._server = subprocess.Popen(
                [str(RABBITMQ_SERVER)],
                env=self.env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(deadline)
        except BaseException:
            self._kill_server()
            raise
        self.start_seconds = time.monotonic() - start

    def _wait_ready(self, deadline):
        # `rabbitmqctl wait <pidfile>` waits for the pid file, then for the
        # rabbit application to be running.  Run it in the background so a
        # node that dies early is noticed at once instead of at the timeout.
        waiter_timeout = max(1, int(deadline - time.monotonic()))
        waiter = subprocess.Popen(
            [str(RABBITMQCTL), "-n", self.nodename, "wait",
             "--timeout", str(waiter_timeout), str(self.pid_file)],
            env=self.env,
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                if _exited(waiter):
                    out = waiter.communicate(timeout=10)[0].decode("utf-8", "replace")
                    with open(self.ctl_log, "a") as fh:
                        fh.write("$ rabbitmqctl wait -> %s\n%s\n" % (waiter.returncode, out))
                    if waiter.returncode != 0:
                        self._fail("rabbitmqctl wait failed (rc=%s)" % waiter.returncode)
                    break
                if _exited(self._server):
                    self._fail("rabbitmq-server exited during startup")
                if time.monotonic() > deadline + 5:
                    self._fail("rabbitmq-server did not become ready in time")
                time.sleep(0.1)
        finally:
            if waiter.returncode is None:
                _killpg(waiter, signal.SIGKILL)
                waiter.wait(timeout=10)
        while not _port_open(self.amqp_port):
            if _exited(self._server):
                self._fail("rabbitmq-server exited before opening the AMQP port")
            if time.monotonic() > deadline:
                self._fail("AMQP port %d never accepted connections" % self.amqp_port)
            time.sleep(0.1)

    def stop(self, timeout=60):
        """Stop the node (data kept, epmd left running); port closed afterwards."""
        if self._server is None:
            return
        start = time.monotonic()
        deadline = start + timeout
        if not _exited(self._server):
            try:
                # With the pid file, `stop` waits for the OS process to exit.
                rc, out = self.ctl("stop", str(self.pid_file), timeout=timeout)
            except subprocess.TimeoutExpired:
                rc = None
            if rc != 0:
                self._kill_server()
                self._fail("rabbitmqctl stop failed (rc=%s); node killed" % rc)
        # Wait for the broker port to close rather than probing pids: the
        # stopped processes can linger as zombies.
        while _port_open(self.amqp_port, timeout=0.5):
            if time.monotonic() > deadline:
                self._kill_server()
                self._fail("AMQP port %d still open after stop" % self.amqp_port)
            time.sleep(0.1)
        _reap_group(self._server, max(1.0, deadline - time.monotonic()))
        self._server = None
        try:
            self.pid_file.unlink()
        except FileNotFoundError:
            pass
        self.stop_seconds = time.monotonic() - start

    def close(self):
        """Stop the node if running, and epmd.  Idempotent, never raises for
        things that are already stopped."""
        try:
            if self._server is not None:
                try:
                    self.stop()
                except Exception:
                    self._kill_server()
        finally:
            self._kill_server()
            self._stop_epmd()

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "<RabbitMQ %s node=%s>" % (self.url, self.nodename)
