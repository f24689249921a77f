"""A private certmonger for the integration tests.

certmonger runs on a private D-Bus session bus (a dbus-daemon of its own,
with no service activation), with every state directory in the test's
temporary directory: nothing of the machine's certmonger (/var/lib/certmonger)
is read or written.  ``getcert`` talks to it through the same bus.  Both
daemons are children of the test, stopped by PID however the test ends.

Why a bus and not certmonger's private socket (``certmonger -L -P``)? Over
that socket certmonger 0.79 records the *process id* of the getcert client
as the user to run ``-C`` post-save commands as ("Error on getpwuid(<pid>)"),
so post-save commands never run.  Over D-Bus the caller's uid is right.

Imported by the test modules of this directory as ``import certmonger``.
"""

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import helpers

INSTALL = "install it: apt-get install certmonger dbus"
GETCERT_TIMEOUT = 30
START_TIMEOUT = 30
STOP_TIMEOUT = 10
DEFAULT_WAIT = 60

# States a request does not leave by itself soon (certmonger retries an
# unreachable CA after hours).
SETTLED = {"MONITORING", "CA_REJECTED", "CA_UNREACHABLE", "CA_UNCONFIGURED", "NEED_GUIDANCE",
           "NEED_CA", "NEED_KEY_GEN_PERMS", "NEED_CERTSAVE_PERMS", "NEED_CA_CERT_SAVE_PERMS"}

REPO_WRAPPER = os.path.join(helpers.REPO, "tools", "anchor-certmonger")

# No service activation: a getcert call before certmonger is on the bus must
# fail, not start an unsupervised certmonger.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def binary(name, *extra_dirs):
    path = shutil.which(name, path=os.pathsep.join(
        [os.environ.get("PATH", ""), *extra_dirs, "/usr/sbin", "/usr/bin"]))
    if path is None:
        pytest.fail("%s is not installed (or not on PATH); %s" % (name, INSTALL), pytrace=False)
    return path


def helper_command():
    """How certmonger should run the Anchor helper: tools/anchor-certmonger
    when this interpreter is the checkout's .venv (the standard set-up, what
    the README shows), else ``<this python> -m anchor.certmonger``."""
    venv = os.path.join(helpers.REPO, ".venv")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv) and os.access(REPO_WRAPPER, os.X_OK):
        return [REPO_WRAPPER]
    return [sys.executable, "-m", "anchor.certmonger"]


def write_secret_file(path, secret=helpers.SECRET):
    with open(path, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o400)
    return str(path)


def _stop(process, timeout=STOP_TIMEOUT):
    """SIGTERM ``process`` (our child); SIGKILL its process group (what it
    started, nothing else) if it does not exit in time; reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


@dataclasses.dataclass
class Request:
    status: str
    ca_error: str
    text: str


@dataclasses.dataclass
class Certmonger:
    base: str
    env: dict
    getcert_path: str
    daemon: subprocess.Popen
    bus: subprocess.Popen
    log_path: str

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def getcert(self, command, *args, check=True, timeout=GETCERT_TIMEOUT):
        """``getcert <command> -s <args>``; fails the test when it fails
        (unless ``check`` is false)."""
        argv = [self.getcert_path, command, "-s", *args]
        try:
            result = subprocess.run(argv, env=self.env, cwd=self.base, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("%r did not finish within %s s: %r" % (argv, timeout, exc))
        if check and result.returncode != 0:
            pytest.fail("%r exited with %s:\n%s%s\n--- certmonger log (tail) ---\n%s"
                        % (argv, result.returncode, result.stdout, result.stderr, self.log()[-4000:]))
        return result

    def add_ca(self, nickname, helper_args):
        command = " ".join(helper_command() + list(helper_args))
        assert "'" not in command and '"' not in command, command
        self.getcert("add-ca", "-c", nickname, "-e", command)
        return command

    def request(self, cert_path):
        """The request that stores its certificate in ``cert_path``."""
        text = self.getcert("list", "-f", cert_path).stdout
        status = re.search(r"^\s*status: (\S+)", text, re.MULTILINE)
        error = re.search(r"^\s*ca-error: (.*)$", text, re.MULTILINE)
        return Request(status.group(1) if status else "", error.group(1) if error else "", text)

    def wait_for(self, cert_path, wanted, timeout=DEFAULT_WAIT, extra=""):
        """Poll until the request for ``cert_path`` is in state ``wanted``;
        fail early when it settles in another state, or after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            request = self.request(cert_path)
            if request.status == wanted:
                return request
            settled = request.status in SETTLED
            if settled or time.monotonic() > deadline or self.daemon.poll() is not None:
                pytest.fail("the request for %s is %s, not %s (%s)\n%s\n--- certmonger log "
                            "(tail) ---\n%s%s"
                            % (cert_path, request.status or "unknown", wanted,
                               "settled" if settled else "still after %d s" % timeout,
                               request.text, self.log()[-6000:], extra))
            time.sleep(0.2)


def _private_env(base, socket_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CERTMONGER_", "DBUS_")) and key.lower() not in (
               "http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update({
        "HOME": os.path.join(base, "home"),
        "CERTMONGER_CONFIG_DIR": os.path.join(base, "config"),
        "CERTMONGER_REQUESTS_DIR": os.path.join(base, "requests"),
        "CERTMONGER_CAS_DIR": os.path.join(base, "cas"),
        "CERTMONGER_LOCAL_CA_DIR": os.path.join(base, "local"),
        "CERTMONGER_TMPDIR": os.path.join(base, "tmp"),
        "CERTMONGER_SYSTEM_LOCK_FILE": os.path.join(base, "lock"),
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + socket_path,
        "PYTHONPATH": helpers.REPO,
    })
    return env


@contextlib.contextmanager
def private_certmonger(base):
    """Start a dbus-daemon and a certmonger whose state lives in ``base``;
    yield a Certmonger; stop both by PID on the way out."""
    dbus_daemon = binary("dbus-daemon")
    certmonger_path = binary("certmonger")
    getcert_path = binary("getcert")
    base = str(base)
    for name in ("home", "config", "requests", "cas", "local", "tmp"):
        os.makedirs(os.path.join(base, name), exist_ok=True)

    with contextlib.ExitStack() as stack:
        socket_path = os.path.join(base, "bus.sock")
        if len(socket_path) > 100:  # a unix socket path has at most 107 bytes
            short_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="anchor-cm-"))
            socket_path = os.path.join(short_dir, "bus.sock")
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        bus_config = os.path.join(base, "bus.conf")
        with open(bus_config, "w") as handle:
            handle.write(BUS_CONFIG.format(socket=socket_path))
        env = _private_env(base, socket_path)

        bus_log_path = os.path.join(base, "dbus.log")
        bus_log = stack.enter_context(open(bus_log_path, "wb"))
        bus = subprocess.Popen([dbus_daemon, "--config-file=" + bus_config, "--nofork", "--nopidfile"],
                               env=env, cwd=base, stdin=subprocess.DEVNULL, stdout=bus_log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_stop, bus)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(socket_path):
            if bus.poll() is not None or time.monotonic() > deadline:
                with open(bus_log_path, errors="replace") as handle:
                    pytest.fail("dbus-daemon did not start (%s): %s"
                                % (bus.poll(), handle.read()), pytrace=False)
            time.sleep(0.05)

        log_path = os.path.join(base, "certmonger.log")
        daemon_log = stack.enter_context(open(log_path, "wb"))
        # -s: the session bus above; -n: no fork, log to stderr; -d 2: also
        # log what each helper answered.
        daemon = subprocess.Popen([certmonger_path, "-s", "-n", "-d", "2"], env=env, cwd=base,
                                  stdin=subprocess.DEVNULL, stdout=daemon_log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        stack.callback(_stop, daemon)
        cm = Certmonger(base, env, getcert_path, daemon, bus, log_path)
        while cm.getcert("list-cas", check=False, timeout=10).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail("certmonger did not come up on the private bus (exit status %s):\n%s"
                            % (daemon.poll(), cm.log()), pytrace=False)
            time.sleep(0.1)
        yield cm
