"""A real Keystone for tests: PyPI ``keystone`` + SQLite + fernet tokens, served by gunicorn.

Keystone lives in its own virtualenv, ``<repo>/.venv-keystone`` (git-ignored), which is
built on first use (``python -m venv`` + ``pip install keystone gunicorn``, ~30 s) and
reused afterwards.  A file lock keeps concurrent test processes from building it twice.

Typical use::

    with Keystone(tmp_path / "keystone") as ks:
        ks.start()
        ks.create_user("alice", "pw", "fleet", roles=["member"])
        token = ks.token_for("alice", "pw", "fleet")

All server state (config, SQLite database, fernet and credential keys, logs) is kept under
``base_dir``; ``stop()`` keeps it, so ``start()`` brings the same server back at the same URL.
"""

import atexit
import errno
import fcntl
import hashlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = REPO_ROOT / ".venv-keystone"
KEYSTONE_MANAGE = VENV_DIR / "bin" / "keystone-manage"
GUNICORN = VENV_DIR / "bin" / "gunicorn"

VENV_BUILD_TIMEOUT = 900      # seconds: venv creation + pip install (normally ~30 s)
VENV_LOCK_TIMEOUT = 1200      # seconds to wait for another process building the venv
MANAGE_TIMEOUT = 180          # seconds per keystone-manage call
HTTP_TIMEOUT = 30             # seconds per HTTP request made by the helpers
PORT_RANGE = (20000, 32767)   # below Linux's ephemeral range (32768-60999)

# Keystone's config; {base} is substituted with the state directory.
KEYSTONE_CONF = """\
[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///{base}/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = {base}/fernet-keys
[fernet_receipts]
key_repository = {base}/fernet-keys
[credential]
key_repository = {base}/credential-keys
[identity]
# bcrypt cost; 4 is the minimum and makes each password authentication much faster
password_hash_rounds = 4
# bcrypt only uses 72 bytes; the default (4096) makes keystone warn on every password hash
max_password_length = 72
"""

# gunicorn's argv would otherwise be parsed by oslo.config inside keystone and rejected.
WSGI_WRAPPER = """\
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
"""


# --------------------------------------------------------------------------- venv


def _tail(path, lines=40):
    try:
        with open(path, "r", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _text(data):
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _clean_env(**extra):
    """The environment for the keystone venv's programs: nothing of the project's venv."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
           and not key.startswith("OS_")}
    env["PATH"] = str(VENV_DIR / "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    env.update(extra)
    return env


def _venv_ready():
    return KEYSTONE_MANAGE.exists() and GUNICORN.exists()


def _lock_path():
    digest = hashlib.sha256(str(VENV_DIR).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"anchor-venv-keystone-{digest}.lock"


def ensure_venv():
    """Build ``.venv-keystone`` unless it already has keystone-manage and gunicorn.

    Returns the seconds spent building (0.0 when it was already there).  Calls
    ``pytest.fail`` with pip's output when the build fails.
    """
    if _venv_ready():
        return 0.0
    started = time.monotonic()
    with open(_lock_path(), "a+") as lock:
        deadline = time.monotonic() + VENV_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    pytest.fail(f"timed out after {VENV_LOCK_TIMEOUT}s waiting for another "
                                f"process building {VENV_DIR} (lock {_lock_path()})")
                time.sleep(0.5)
        try:
            if _venv_ready():          # another process built it while we waited
                return 0.0
            _build_venv()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return time.monotonic() - started


def _build_venv():
    commands = [
        # --clear: start over if an earlier build was interrupted half-way
        [sys.executable, "-m", "venv", "--clear", str(VENV_DIR)],
        [str(VENV_DIR / "bin" / "python"), "-m", "pip", "install", "-q", "keystone", "gunicorn"],
    ]
    deadline = time.monotonic() + VENV_BUILD_TIMEOUT
    for command in commands:
        try:
            result = subprocess.run(command, env=_clean_env(), stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True,
                                    timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as exc:
            output = (_text(exc.stdout) + _text(exc.stderr))[-6000:]
            pytest.fail(f"building the Keystone virtualenv {VENV_DIR} timed out "
                        f"({VENV_BUILD_TIMEOUT}s) in: {' '.join(command)}\n{output}",
                        pytrace=False)
        except OSError as exc:
            pytest.fail(f"building the Keystone virtualenv {VENV_DIR} failed: "
                        f"cannot run {command[0]}: {exc}", pytrace=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-6000:]
            pytest.fail(f"building the Keystone virtualenv {VENV_DIR} failed "
                        f"(exit {result.returncode}) in: {' '.join(command)}\n{output}",
                        pytrace=False)
    if not _venv_ready():
        pytest.fail(f"'pip install keystone gunicorn' succeeded but {KEYSTONE_MANAGE} or "
                    f"{GUNICORN} is missing", pytrace=False)


# --------------------------------------------------------------------------- ports


def _port_free(port):
    """True when nothing listens on 127.0.0.1:port.

    SO_REUSEADDR as gunicorn sets it: connections to a stopped server linger in TIME_WAIT
    on its port, and they must not make the port look busy for a restart.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _pick_port():
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(*PORT_RANGE)
        if _port_free(port):
            return port
    raise RuntimeError(f"no free port found in {PORT_RANGE}")


# --------------------------------------------------------------------------- server

_RUNNING = set()


@atexit.register
def _stop_leftovers():
    for server in list(_RUNNING):
        try:
            server.stop(timeout=10)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


class Keystone:
    """One Keystone server whose whole state lives under ``base_dir``."""

    ADMIN_USER = "admin"
    ADMIN_PROJECT = "admin"
    ADMIN_ROLE = "admin"
    DOMAIN = "default"

    def __init__(self, base_dir):
        self.base_dir = Path(base_dir).resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.etc_dir = self.base_dir / "etc"
        self.conf_path = self.etc_dir / "keystone.conf"
        self.log_path = self.base_dir / "gunicorn.log"
        self.manage_log_path = self.base_dir / "keystone-manage.log"
        self.pid_path = self.base_dir / "gunicorn.pid"
        self._state_path = self.base_dir / "state.json"
        self._bootstrapped_path = self.base_dir / ".bootstrapped"
        self._proc = None
        self._admin = None
        self.venv_build_seconds = 0.0
        state = self._load_state()
        if state is None:
            state = {"port": _pick_port(), "admin_password": secrets.token_urlsafe(18)}
            self._save_state(state)
        self.port = state["port"]
        self.admin_password = state["admin_password"]
        self.url = f"http://127.0.0.1:{self.port}/v3"

    def __repr__(self):
        return f"<Keystone {self.url} running={self.running} base_dir={self.base_dir}>"

    # -- state ------------------------------------------------------------------

    def _load_state(self):
        try:
            return json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return None

    def _save_state(self, state):
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_path)

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    # -- setup ------------------------------------------------------------------

    def _write_config(self):
        self.etc_dir.mkdir(exist_ok=True)
        self.conf_path.write_text(KEYSTONE_CONF.format(base=self.base_dir))
        (self.etc_dir / "ks_wsgi.py").write_text(WSGI_WRAPPER)

    def _manage(self, *args):
        command = [str(KEYSTONE_MANAGE), "--config-file", str(self.conf_path), *args]
        with open(self.manage_log_path, "a") as log:
            log.write(f"\n$ keystone-manage {args[0]}\n")
            log.flush()
            try:
                result = subprocess.run(command, env=_clean_env(), cwd=self.base_dir,
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, timeout=MANAGE_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"keystone-manage {args[0]} timed out after "
                                   f"{MANAGE_TIMEOUT}s; log tail:\n"
                                   f"{_tail(self.manage_log_path)}") from None
        if result.returncode != 0:
            raise RuntimeError(f"keystone-manage {args[0]} failed (exit {result.returncode}); "
                               f"log tail:\n{_tail(self.manage_log_path)}")

    def _setup(self):
        import grp
        import pwd
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        self._manage("db_sync")
        self._manage("fernet_setup", "--keystone-user", user, "--keystone-group", group)
        self._manage("credential_setup", "--keystone-user", user, "--keystone-group", group)
        self._manage("bootstrap",
                     "--bootstrap-password", self.admin_password,
                     "--bootstrap-username", self.ADMIN_USER,
                     "--bootstrap-project-name", self.ADMIN_PROJECT,
                     "--bootstrap-role-name", self.ADMIN_ROLE,
                     "--bootstrap-service-name", "keystone",
                     "--bootstrap-region-id", "RegionOne",
                     "--bootstrap-admin-url", self.url,
                     "--bootstrap-public-url", self.url,
                     "--bootstrap-internal-url", self.url)
        self._bootstrapped_path.write_text("ok\n")

    # -- lifecycle --------------------------------------------------------------

    def start(self, timeout=90):
        """Set Keystone up (first time only) and serve it; return once GET /v3 answers."""
        if self.running:
            return self
        self.venv_build_seconds = ensure_venv()
        deadline = time.monotonic() + timeout
        self._write_config()
        if not self._bootstrapped_path.exists():
            self._setup()
        if not _port_free(self.port):
            raise RuntimeError(f"cannot start Keystone: 127.0.0.1:{self.port} is already in use")
        with open(self.log_path, "a") as log:
            log.write(f"\n===== starting gunicorn at {time.ctime()} =====\n")
            log.flush()
            command = [str(GUNICORN), "--chdir", str(self.etc_dir),
                       "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                       "--graceful-timeout", "5", "--timeout", "60",
                       "--pid", str(self.pid_path)]
            if _gunicorn_has_control_socket_option():
                command.append("--no-control-socket")
            command.append("ks_wsgi:application")
            self._log_offset = self.log_path.stat().st_size
            self._proc = subprocess.Popen(
                command, cwd=self.etc_dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=_clean_env(OS_KEYSTONE_CONFIG_DIR=str(self.etc_dir)))
        _RUNNING.add(self)
        try:
            self._wait_until_up(deadline)
        except BaseException:
            self._kill_group()
            raise
        return self

    def _listening(self):
        """True once *our* gunicorn master logged that it bound the port."""
        try:
            with open(self.log_path, "r", errors="replace") as handle:
                handle.seek(self._log_offset)
                text = handle.read()
        except OSError:
            return False
        return f"Listening at: http://127.0.0.1:{self.port} ({self._proc.pid})" in text

    def _wait_until_up(self, deadline):
        # Wait for our master's "Listening at" line first, so that some other server that
        # happens to answer on this port is never mistaken for ours.
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self._proc.returncode} before "
                                   f"Keystone answered on {self.url}; gunicorn.log tail:\n"
                                   f"{_tail(self.log_path)}")
            if self._listening() and self._get_v3_status() == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Keystone did not answer on {self.url} in time; "
                                   f"gunicorn.log tail:\n{_tail(self.log_path)}\n"
                                   f"keystone-manage.log tail:\n{_tail(self.manage_log_path, 15)}")
            time.sleep(0.2)

    def _get_v3_status(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v3")
            return conn.getresponse().status
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def stop(self, timeout=30):
        """SIGTERM gunicorn; wait for the port to close and the master to be reaped."""
        proc = self._proc
        if proc is None:
            return
        deadline = time.monotonic() + timeout
        try:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._kill_group()
            # Leftover workers (normally none: the master waits for them).
            self._kill_group(only_leftovers=True)
            while _port_open(self.port):
                if time.monotonic() > deadline + 5:
                    raise RuntimeError(f"port {self.port} still open after stopping Keystone; "
                                       f"gunicorn.log tail:\n{_tail(self.log_path)}")
                time.sleep(0.1)
        finally:
            if proc.poll() is not None:
                self._proc = None
                self._admin = None
                _RUNNING.discard(self)

    def _kill_group(self, only_leftovers=False):
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the master leads its own process group
        if only_leftovers:
            end = time.monotonic() + 5
            while time.monotonic() < end:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        """Stop the server if it runs; safe to call more than once."""
        self.stop()

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- keystoneauth1 helpers ----------------------------------------------------

    def _session(self, auth=None):
        import requests
        from keystoneauth1 import session as ks_session

        http_session = requests.Session()
        http_session.trust_env = False  # never send loopback traffic through a proxy
        return ks_session.Session(auth=auth, session=http_session, timeout=HTTP_TIMEOUT)

    def _password_auth(self, name, password, project):
        from keystoneauth1.identity import v3
        return v3.Password(auth_url=self.url, username=name, password=password,
                           user_domain_id=self.DOMAIN, project_name=project,
                           project_domain_id=self.DOMAIN)

    def admin_session(self):
        """A keystoneauth1 Session authenticated as the bootstrap admin (project admin)."""
        if self._admin is None:
            self._admin = self._session(self._password_auth(
                self.ADMIN_USER, self.admin_password, self.ADMIN_PROJECT))
        return self._admin

    def _find(self, session, collection, name, **filters):
        response = session.get(f"{self.url}/{collection}", params={"name": name, **filters})
        found = response.json()[collection]
        return found[0] if found else None

    def _find_or_create(self, session, collection, name, body, **filters):
        from keystoneauth1 import exceptions
        item = self._find(session, collection, name, **filters)
        if item is not None:
            return item
        singular = collection[:-1]
        try:
            response = session.post(f"{self.url}/{collection}", json={singular: body})
            return response.json()[singular]
        except exceptions.Conflict:  # created meanwhile by someone else
            return self._find(session, collection, name, **filters)

    def create_user(self, name, password, project, roles=()):
        """Create project (if missing), user, roles (if missing) and role assignments.

        An existing user of that name gets ``password`` set.  Returns
        ``{"user_id": ..., "project_id": ...}``.
        """
        session = self.admin_session()
        project_ref = self._find_or_create(
            session, "projects", project,
            {"name": project, "domain_id": self.DOMAIN, "enabled": True},
            domain_id=self.DOMAIN)
        user_ref = self._find(session, "users", name, domain_id=self.DOMAIN)
        if user_ref is None:
            user_ref = session.post(f"{self.url}/users", json={"user": {
                "name": name, "password": password, "domain_id": self.DOMAIN,
                "default_project_id": project_ref["id"], "enabled": True}}).json()["user"]
        else:
            session.patch(f"{self.url}/users/{user_ref['id']}", json={"user": {
                "password": password, "enabled": True}})
        for role in roles:
            role_ref = self._find_or_create(session, "roles", role, {"name": role})
            session.put(f"{self.url}/projects/{project_ref['id']}/users/{user_ref['id']}"
                        f"/roles/{role_ref['id']}")
        return {"user_id": user_ref["id"], "project_id": project_ref["id"]}

    def token_for(self, name, password, project):
        """A project-scoped token for ``name`` (domain default) on ``project``."""
        return self._session(self._password_auth(name, password, project)).get_token()

    def revoke(self, token):
        """Revoke ``token`` (DELETE /v3/auth/tokens as admin)."""
        self.admin_session().delete(f"{self.url}/auth/tokens",
                                    headers={"X-Subject-Token": token})


_CONTROL_SOCKET_OPTION = None


def _gunicorn_has_control_socket_option():
    """gunicorn >= 27 opens a control socket unless told not to; older ones lack the flag."""
    global _CONTROL_SOCKET_OPTION
    if _CONTROL_SOCKET_OPTION is None:
        try:
            result = subprocess.run([str(GUNICORN), "--help"], env=_clean_env(),
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                    timeout=60)
            _CONTROL_SOCKET_OPTION = "--no-control-socket" in result.stdout
        except (OSError, subprocess.TimeoutExpired):
            _CONTROL_SOCKET_OPTION = True
    return _CONTROL_SOCKET_OPTION
