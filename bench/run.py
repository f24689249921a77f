#!/usr/bin/env python3
"""Service benchmark: Anchor under uwsgi on loopback, driven by wrk.

Run it as ``bench/run`` (after README command 2, with the Debian package
wrk installed).  In one run it measures and prints:

1. the limits, in this process on one core: the raw signature rate of the
   CA key (RSA-4096, ECDSA P-256; a 600-byte message, as a certificate's TBS
   part), the time to load the CA key from PEM, and the in-process pipeline
   (anchor.x509.decoding.decode_request on the PEM form field, the sample
   validators, Signer.sign, PEM serialisation) with and without the durable
   record (CertificateStore.record: write, fsync, rename, fsync of the
   directory), with the time spent in fsync measured on its own, on the
   temporary directory's disk and on tmpfs;
2. a cost ladder: CPU time per request of the pipeline, of
   anchor.issuance.issue without and with audit, and of the whole WSGI app;
3. growth with the number of RAs, subjectAltNames and allowed names
   (bench/growth.py);
4. that a CA key is never loaded on the request path: in process (cProfile
   counts load_*_private_key calls, an audit hook counts opens of the key
   file, while make_app runs and then while requests are served), and under
   uwsgi (the key file is moved away once the server answers, and every
   later request must still get its certificate; no worker holds it open);
5. Anchor under uwsgi (``uwsgi --http-socket 127.0.0.1:PORT --venv VENV
   --pecan config.py -p N --master --die-on-term --need-app
   --enable-threads --cpu-affinity 1``) with 1 and 2 workers, an RSA-4096
   and a P-256 CA, the sample config.json plus output_path and audit to a
   log file, driven by wrk posting the README's curl form at concurrency 1,
   4 and 16; with 2 workers also 16 clients that pause between requests
   (exponential think time, about half the measured capacity), for latency
   below saturation;
6. the resident memory of each worker over 100,000 issuances (P-256, 2
   workers).

The full run does the uwsgi matrix twice: with output_path on the
temporary directory's disk (the configuration as deployed) and on tmpfs
(/dev/shm, where fsync costs nothing), which separates Anchor's own cost from
the disk's.  ``--quick`` (about a minute) does it on disk only, with short
runs and 5,000 issuances for the memory check.

The figures are for people to read, not a timed test: the exit status is
non-zero only when the run itself failed (a server did not start, a request
was not answered with a certificate, wrk failed, the key-load check failed).

    bench/run [--quick] [--json PATH] [--seconds S] [--keep]
"""

import argparse
import contextlib
import cProfile
import http.client
import json
import os
import pstats
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import timeit

import webob
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import growth
from anchor import app as anchor_app
from anchor import issuance, settings, testca
from anchor.auth import AuthResult
from anchor.x509.decoding import decode_request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = sys.prefix
CA_NAMES = {"rsa4096": "RSA-4096", "p256": "P-256"}
CONCURRENCY = (1, 4, 16)
KEY_AWAY_SUFFIX = ".moved-away-by-bench"
START_TIMEOUT = 60
BUDGET_SECONDS = 570  # the full run must end within 10 minutes on 2 cores

WRK_SCRIPT = """\
-- Written by bench/run.py: post the README's curl form, count what is not a 200.
local handle = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = handle:read("*a")
handle:close()
wrk.headers["Content-Type"] = %(content_type)s

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

limit, think_ms, completed, non200 = 0, 0, 0, 0
function init(args)
  limit = tonumber(args[1]) or 0
  think_ms = tonumber(args[2]) or 0
  math.randomseed(os.time())
end
%(delay)s
function response(status, headers, body)
  completed = completed + 1
  if status ~= 200 then non200 = non200 + 1 end
  if limit > 0 and completed == limit then
    io.write("LIMIT\\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non200") end
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "timeout": %%d, "non200": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, '
    .. '"max_us": %%d, "mean_us": %%.1f}\\n', summary.requests, summary.duration, e.connect, e.read,
    e.write, e.timeout, bad, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""
WRK_DELAY = """
function delay()
  return -think_ms * math.log(1 - math.random())
end
"""

CONFIG_PY_ADDITION = """

# --- added by bench/run.py: audit events to a file of their own, one JSON line each ---
logging["handlers"]["audit_file"] = {
    "level": "INFO", "class": "logging.FileHandler", "filename": %r, "formatter": "audit_line"}
logging["formatters"]["audit_line"] = {"format": "%%(message)s"}
logging["loggers"]["anchor.audit"] = {"level": "INFO", "handlers": ["audit_file"], "propagate": False}
"""


class RunFailed(Exception):
    """The benchmark could not measure what it should."""


def say(text=""):
    print(text, flush=True)


# --------------------------------------------------------------------------
# The machine


def cores():
    return len(os.sched_getaffinity(0))


@contextlib.contextmanager
def pinned(cpu):
    """Run the block on one core (when the machine lets us choose)."""
    previous = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def tmpfs_directory():
    """/dev/shm when it is a tmpfs, else None."""
    try:
        with open("/proc/mounts", encoding="ascii", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "/dev/shm" and fields[2] == "tmpfs":
                    return "/dev/shm"
    except OSError:
        pass
    return None


def proc_stat(pid):
    """(parent pid, CPU seconds) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    result = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None and stat[0] == pid:
                result.append(int(name))
    return sorted(result)


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        stat = proc_stat(pid)
        if stat is not None:
            total += stat[1]
    return total


def machine_busy_seconds():
    """CPU seconds all cores spent busy (not idle or waiting on I/O) since boot."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def load_average():
    with open("/proc/loadavg", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------
# Deployments: a CA, config.json, config.py, an output directory, logs


def write_deployment(root, ca_dir, output_dir):
    """The sample config.json (paths made absolute) plus output_path and
    audit to the log, and the repository's config.py plus a FileHandler for
    anchor.audit.  Returns the path of config.json."""
    os.makedirs(root, exist_ok=True)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(REPO, "config.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    for block in data["signing_ca"].values():
        block["cert_path"] = os.path.join(ca_dir, "root-ca.crt")
        block["key_path"] = os.path.join(ca_dir, "root-ca-unwrapped.key")
        block["output_path"] = output_dir
    data["audit"] = {"target": "log"}
    config_json = os.path.join(root, "config.json")
    with open(config_json, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    with open(os.path.join(REPO, "config.py"), encoding="utf-8") as handle:
        config_py = handle.read()
    with open(os.path.join(root, "config.py"), "w", encoding="utf-8") as handle:
        handle.write(config_py + CONFIG_PY_ADDITION % os.path.join(root, "audit.log"))
    return config_json


def key_path_of(ca_dir):
    return os.path.join(ca_dir, "root-ca-unwrapped.key")


# --------------------------------------------------------------------------
# Limits, in this process


def rate(function, seconds, batches=5):
    """Calls of ``function`` per CPU second of this process: the best of
    ``batches`` batches taking about ``seconds`` in all.  A limit is the best
    the machine does, and CPU time is what it is counted in: other processes
    on a shared machine take wall time from us, not CPU time."""
    function()
    start = time.process_time()
    function()
    once = max(time.process_time() - start, 1e-6)
    number = max(1, int(seconds / batches / once))
    return number / min(timeit.repeat(function, number=number, repeat=batches, timer=time.process_time))


def signer_of(key):
    message = b"x" * 600  # about the size of a certificate's TBS part
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return lambda: key.sign(message, ec.ECDSA(hashes.SHA256()))


class Pipeline:
    """decode_request + validators + Signer.sign + PEM (+ store.record), as
    anchor.issuance runs them, without authentication, audit or HTTP."""

    def __init__(self, config_json, csr_text):
        self.ra = anchor_app.build_authorities(settings.load(config_json))["default"]
        self.csr_text = csr_text
        request = webob.Request.blank("/v1/sign/default", remote_addr="127.0.0.1")
        self.context = {"auth_result": AuthResult(growth.USER), "conf": self.ra.settings, "request": request}
        self.checks = issuance.ALWAYS_ON + self.ra.validators

    def __call__(self, record=False):
        csr = decode_request(self.csr_text, "pem")
        for check in self.checks:
            check(csr=csr, **self.context)
        certificate = self.ra.signer.sign(csr)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        if record:
            self.ra.store.record(certificate, pem)
        return pem


@contextlib.contextmanager
def fsync_timer():
    """Time every os.fsync made in the block: yields [seconds, calls]."""
    real, spent = os.fsync, [0.0, 0]

    def fsync(descriptor):
        start = time.perf_counter()
        try:
            return real(descriptor)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1

    os.fsync = fsync
    try:
        yield spent
    finally:
        os.fsync = real


def record_rate(pipeline, seconds):
    """Wall rate of the pipeline with the durable record, and the share of
    the time spent waiting in fsync."""
    with fsync_timer() as spent:
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            pipeline(record=True)
            count += 1
        elapsed = time.perf_counter() - start
    return {"per_s": count / elapsed, "fsync_ms_per_record": spent[0] / count * 1e3,
            "fsync_share": spent[0] / elapsed, "records": count}


def measure_limits(work, cas, storages, csr_text, seconds):
    say("limits, in process on one core (CPU time, best of 5 batches; the durable record in wall time):")
    limits = {}
    with pinned(0):
        for kind, ca_dir in cas.items():
            name = CA_NAMES[kind]
            with open(key_path_of(ca_dir), "rb") as handle:
                key_pem = handle.read()
            start = time.perf_counter()
            key = serialization.load_pem_private_key(key_pem, password=None)
            load_ms = (time.perf_counter() - start) * 1e3
            raw = rate(signer_of(key), seconds)
            figures = {"raw_sign_per_s": raw, "key_load_ms": load_ms}
            say("  %-8s raw signature          %8.0f /s  (%.3f ms; loading the key from PEM: %.1f ms)"
                % (name, raw, 1e3 / raw, load_ms))
            for storage, base in storages.items():
                output = tempfile.mkdtemp(prefix="limits-%s-" % kind, dir=base)
                config_json = write_deployment(os.path.join(work, "limits-%s-%s" % (kind, storage)),
                                               ca_dir, output)
                pipeline = Pipeline(config_json, csr_text)
                if "inprocess_per_s" not in figures:
                    figures["inprocess_per_s"] = rate(pipeline, seconds)
                    say("  %-8s pipeline, no record    %8.0f /s  (%.3f ms: parse, verify, validators, "
                        "build, sign, PEM)" % (name, figures["inprocess_per_s"], 1e3 / figures["inprocess_per_s"]))
                recorded = record_rate(pipeline, seconds)
                figures["record_" + storage] = recorded
                say("  %-8s pipeline + record %-5s%8.0f /s  wall (fsync %.2f ms per record, %2.0f%% of the time)"
                    % (name, storage, recorded["per_s"], recorded["fsync_ms_per_record"],
                       recorded["fsync_share"] * 100))
                shutil.rmtree(output, ignore_errors=True)
            limits[kind] = figures
    return limits


def cost_ladder(work, ca_dir, csr_text, content_type, body, seconds):
    """CPU time per request of each layer around the pipeline (P-256 CA, no
    output_path), so the cost of what surrounds the signature is visible."""
    growth.quiet_logging()
    root = os.path.join(work, "ladder")
    config_json = write_deployment(root, ca_dir, os.path.join(root, "unused"))
    with open(config_json, encoding="utf-8") as handle:
        data = json.load(handle)
    for block in data["signing_ca"].values():
        del block["output_path"]
    with_audit = os.path.join(root, "audit.json")
    with open(with_audit, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    del data["audit"]
    without_audit = os.path.join(root, "no-audit.json")
    with open(without_audit, "w", encoding="utf-8") as handle:
        json.dump(data, handle)

    pipeline = Pipeline(without_audit, csr_text)
    posted = issuance.PostedRequest(growth.USER, growth.SECRET, "pem", csr_text)
    request = webob.Request.blank("/v1/sign/default", remote_addr="127.0.0.1")
    plain = anchor_app.build_authorities(settings.load(without_audit))["default"]
    audited = anchor_app.build_authorities(settings.load(with_audit))["default"]
    application = anchor_app.make_app(with_audit)
    steps = [
        ("pipeline (parse, validators, sign, PEM)", pipeline),
        ("+ issuance.issue: auth, log line", lambda: issuance.issue(plain, posted, request)),
        ("+ audit to log (2 CADF events)", lambda: issuance.issue(audited, posted, request)),
        ("+ WSGI: RequestGuard, WebOb form, Pecan", lambda: growth.post(application, "/v1/sign/default",
                                                                         content_type, body)),
    ]
    say("cost ladder, CPU per request in process (P-256 CA, no output_path):")
    ladder, previous = {}, 0.0
    with pinned(0):
        for label, function in steps:
            per_s = rate(function, seconds)
            ms = 1e3 / per_s
            ladder[label] = ms
            say("  %-42s %7.3f ms   (%+.3f)" % (label, ms, ms - previous))
            previous = ms
    return ladder


# --------------------------------------------------------------------------
# A CA key is never loaded on the request path


def key_loads(profile):
    """Calls of any private-key loading function recorded by ``profile``."""
    total = 0
    for (_, _, name), (_, calls, *_rest) in pstats.Stats(profile).stats.items():
        if any(word in name for word in ("load_pem_private_key", "load_der_private_key",
                                         "load_ssh_private_key")) or name == "load_private_key":
            total += calls
    return total


_OPENED, _WATCHED = [], {}


def _audit_hook(event, args):
    if _WATCHED and event == "open" and args and isinstance(args[0], (str, bytes)):
        if os.path.realpath(os.fsdecode(args[0])) in _WATCHED:
            _OPENED.append(args[0])


def key_load_check_in_process(work, ca_dir, content_type, body, count):
    """cProfile and an audit hook around make_app (where the key must be
    loaded: proof that the check sees a load) and around ``count`` requests
    (where it must not be)."""
    growth.quiet_logging()
    root = os.path.join(work, "keycheck")
    config_json = write_deployment(root, ca_dir, os.path.join(root, "certs"))
    sys.addaudithook(_audit_hook)
    _WATCHED[os.path.realpath(key_path_of(ca_dir))] = True
    try:
        profile = cProfile.Profile()
        profile.enable()
        application = anchor_app.make_app(config_json)
        profile.disable()
        startup = {"loads": key_loads(profile), "opens": len(_OPENED)}
        del _OPENED[:]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(count):
            response = growth.post(application, "/v1/sign/default", content_type, body)
            if response.status_code != 200:
                profile.disable()
                raise RunFailed("in-process key-load check: request answered %s" % response.status)
        profile.disable()
        requests = {"loads": key_loads(profile), "opens": len(_OPENED)}
    finally:
        _WATCHED.clear()
        del _OPENED[:]
    ok = startup["loads"] >= 1 and startup["opens"] >= 1 and requests == {"loads": 0, "opens": 0}
    say("CA key on the request path, in process (RSA-4096): make_app: %d call(s) of key-loading functions, %d "
        "open(s) of the key file; then %d requests: %d call(s), %d open(s) -> %s"
        % (startup["loads"], startup["opens"], count, requests["loads"], requests["opens"],
           "OK" if ok else "FAILED"))
    return {"ok": ok, "startup": startup, "requests": requests, "request_count": count}


# --------------------------------------------------------------------------
# Anchor under uwsgi, driven by wrk


class Server:
    """uwsgi serving one deployment on a free loopback port."""

    def __init__(self, root, workers):
        self.root, self.workers_wanted = root, workers
        self.process = None
        self.port = None
        self.log_path = os.path.join(root, "uwsgi-%dw.log" % workers)

    def command(self):
        command = [os.path.join(VENV, "bin", "uwsgi"), "--http-socket", "127.0.0.1:%d" % self.port,
                   "--venv", VENV, "--pecan", "config.py", "-p", str(self.workers_wanted), "--master",
                   "--die-on-term", "--need-app", "--enable-threads",
                   # uwsgi's --http-socket closes the connection after each answer
                   # without saying so; saying it lets wrk reconnect instead of
                   # counting a read error.  Each request is on a new connection,
                   # as with curl or certmonger.
                   "--add-header", "Connection: close"]
        if cores() > 1:
            command += ["--cpu-affinity", "1"]
        return command

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.port = free_port()
        env = dict(os.environ, ANCHOR_CONF=os.path.join(self.root, "config.json"))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RunFailed("uwsgi exited with %s at start-up:\n%s" % (self.process.returncode, self.log_tail()))
            try:
                status, _ = self.request("GET", "/robots.txt")
                if status == 200 and len(self.workers()) == self.workers_wanted:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RunFailed("uwsgi did not answer within %d s:\n%s" % (START_TIMEOUT, self.log_tail()))

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    def workers(self):
        return children(self.process.pid)

    def holds_open(self, path):
        """Workers that have ``path`` (or it moved away) open."""
        holders = []
        for pid in self.workers():
            try:
                links = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
            except OSError:
                continue
            if any(link.startswith(path) for link in links):
                holders.append(pid)
        return holders

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the session uwsgi was started in
            self.process.wait(timeout=20)


class Load:
    """wrk posting the signing form, one thread, ``connections`` clients."""

    def __init__(self, directory, content_type, body):
        self.wrk = shutil.which("wrk")
        if self.wrk is None:
            raise RunFailed("wrk is not installed: apt-get install wrk")
        body_path = os.path.join(directory, "form.body")
        with open(body_path, "wb") as handle:
            handle.write(body)
        self.scripts = {}
        for think in (False, True):
            path = os.path.join(directory, "post%s.lua" % ("-think" if think else ""))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(WRK_SCRIPT % {"body": json.dumps(body_path), "content_type": json.dumps(content_type),
                                           "delay": WRK_DELAY if think else ""})
            self.scripts[think] = path

    def run(self, url, connections, seconds, cpus=None, limit=0, think_ms=0.0):
        command = [self.wrk, "-t1", "-c%d" % connections, "-d%ds" % max(1, round(seconds)), "--timeout", "30s",
                   "-s", self.scripts[think_ms > 0], url + "/v1/sign/default", "--", str(limit), "%.3f" % think_ms]

        def pin():
            if cpus:
                os.sched_setaffinity(0, cpus)

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, preexec_fn=pin)
        timer = threading.Timer(seconds + 60, process.kill)
        timer.start()
        output = []
        try:
            for line in process.stdout:
                output.append(line.decode(errors="replace"))
                if line.startswith(b"LIMIT") and process.poll() is None:
                    # wrk sleeps for its whole duration whatever its threads do;
                    # SIGINT ends the sleep, and wrk reports as usual.
                    process.send_signal(signal.SIGINT)
            errors = process.stderr.read().decode(errors="replace")
            process.wait()
        finally:
            timer.cancel()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [line for line in output if line.startswith("BENCH ")]
        if process.returncode != 0 or not lines:
            raise RunFailed("wrk failed (%s): %s\n%s%s" % (process.returncode, " ".join(command),
                                                          "".join(output), errors))
        figures = json.loads(lines[-1][len("BENCH "):])
        figures["wrk_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return figures


def measure(server, load, connections, seconds, think_ms=0.0, limit=0):
    """One wrk run against ``server`` with the CPU time of the workers, of the
    master, of wrk and of everything else on the machine."""
    workers = server.workers()
    wrk_cpus = None
    if len(workers) < cores():
        wrk_cpus = set(range(len(workers), cores()))  # uwsgi put worker i on core i - 1
    worker_cpu, master_cpu = cpu_seconds(workers), cpu_seconds([server.process.pid])
    busy, start = machine_busy_seconds(), time.monotonic()
    figures = load.run(server.url, connections, seconds, wrk_cpus, limit, think_ms)
    elapsed = time.monotonic() - start
    worker_cpu = cpu_seconds(workers) - worker_cpu
    master_cpu = cpu_seconds([server.process.pid]) - master_cpu
    busy = machine_busy_seconds() - busy
    requests = figures["requests"]
    duration = figures["duration_us"] / 1e6
    worker_cores = min(len(workers), cores())
    errors = figures["non200"] + figures["connect"] + figures["read"] + figures["write"] + figures["timeout"]
    return {
        "workers": len(workers), "concurrency": connections, "think_ms": think_ms,
        "requests": requests, "seconds": duration, "rps": requests / duration,
        "per_core_rps": requests / duration / worker_cores,
        "p50_ms": figures["p50_us"] / 1e3, "p90_ms": figures["p90_us"] / 1e3,
        "p99_ms": figures["p99_us"] / 1e3, "max_ms": figures["max_us"] / 1e3, "mean_ms": figures["mean_us"] / 1e3,
        "errors": errors, "non200": figures["non200"],
        "socket_errors": {key: figures[key] for key in ("connect", "read", "write", "timeout")},
        "worker_cpu_ms_per_request": worker_cpu / max(requests, 1) * 1e3,
        "worker_busy": worker_cpu / (elapsed * worker_cores),
        "wrk_cpu_share": figures["wrk_cpu_s"] / (elapsed * cores()),
        "foreign_cpu_share": max(0.0, busy - worker_cpu - master_cpu - figures["wrk_cpu_s"]) / (elapsed * cores()),
        "rss_mb": [rss_mb(pid) for pid in workers],
        "worker_pids": workers,
    }


def sign_once(server, content_type, body):
    status, answer = server.request("POST", "/v1/sign/default", body, {"Content-Type": content_type})
    if status != 200 or not answer.startswith(b"-----BEGIN CERTIFICATE-----"):
        raise RunFailed("POST /v1/sign/default answered %s: %r\n%s" % (status, answer[:200], server.log_tail()))


@contextlib.contextmanager
def serving(root, workers, key_path, content_type, body):
    """A started server whose CA key file has been moved away after start-up
    (any later load of it would fail the request); stopped, key restored."""
    server = Server(root, workers)
    moved = key_path + KEY_AWAY_SUFFIX
    try:
        server.start()
        sign_once(server, content_type, body)
        os.rename(key_path, moved)
        yield server
    finally:
        server.stop()
        if os.path.exists(moved):
            os.rename(moved, key_path)


def limit_of(limits, kind):
    """What a CA's HTTP throughput is compared with: RSA-4096 to the raw
    signature rate, P-256 to the in-process pipeline rate."""
    return limits[kind]["raw_sign_per_s" if kind == "rsa4096" else "inprocess_per_s"]


def matrix(work, cas, storage, base, content_type, body, load, seconds, warm_seconds, limits, rows):
    for kind, ca_dir in cas.items():
        for workers in (1, 2):
            root = os.path.join(work, "http-%s-%s-%dw" % (kind, storage, workers))
            output = tempfile.mkdtemp(prefix="certs-%s-%dw-" % (kind, workers), dir=base)
            write_deployment(root, ca_dir, output)
            served = []
            with serving(root, workers, key_path_of(ca_dir), content_type, body) as server:
                load.run(server.url, 4, warm_seconds)
                pids = server.workers()
                runs = [(connections, 0.0) for connections in CONCURRENCY]
                if workers == 2:
                    runs.append((16, None))  # paced: think time set from the run at 16
                for connections, think in runs:
                    if think is None:
                        # 16 clients pausing between requests, offering about half
                        # the capacity just measured at 16: latency below saturation.
                        capacity = served[-1]["rps"]
                        think = max(1.0, 16 / (0.5 * capacity) * 1e3 - 1e3 * workers / capacity)
                    row = dict(measure(server, load, connections, seconds, think_ms=think), ca=kind, storage=storage)
                    row["ratio"] = row["per_core_rps"] / limit_of(limits, kind)
                    if think:
                        row["offered_share"] = row["rps"] / served[-1]["rps"]
                    served.append(row)
                    print_row(row)
                holders = server.holds_open(key_path_of(ca_dir))
                respawned = server.workers() != pids
            for row in served:
                row["key_held_open_by"], row["workers_respawned"] = holders, respawned
            rows.extend(served)
            shutil.rmtree(output, ignore_errors=True)


def memory_run(work, ca_dir, storage, base, content_type, body, load, total, deadline):
    """RSS of each worker (P-256, 2 workers, 16 clients) after every tenth of
    ``total`` issuances, within ``deadline`` (monotonic time).  A leak grows
    with the issuances; the allocator settling in grows once, early: the
    growth over the second half tells them apart."""
    root = os.path.join(work, "memory")
    output = tempfile.mkdtemp(prefix="certs-memory-", dir=base)
    write_deployment(root, ca_dir, output)
    samples, issued, errors = [], 0, 0
    with serving(root, 2, key_path_of(ca_dir), content_type, body) as server:
        load.run(server.url, 4, 1)
        pids = server.workers()
        samples.append({"issued": 0, "rss_mb": [rss_mb(pid) for pid in pids]})
        for tenth in range(1, 11):
            remaining = deadline - time.monotonic()
            if remaining < 5:
                say("  stopped at %d issuances: the run's time budget is spent" % issued)
                break
            row = measure(server, load, 16, remaining, limit=total * tenth // 10 - issued)
            issued += row["requests"]
            errors += row["errors"]
            samples.append({"issued": issued, "rss_mb": row["rss_mb"], "rps": row["rps"]})
            if tenth in (1, 5, 10):
                say("  after %6d issuances: RSS per worker %s MB  (%.0f requests/s)"
                    % (issued, " / ".join("%.1f" % mb for mb in row["rss_mb"]), row["rps"]))
        respawned = server.workers() != pids
    shutil.rmtree(output, ignore_errors=True)

    def grown(first, last):
        return max(b - a for a, b in zip(first["rss_mb"], last["rss_mb"]))

    first_tenth = grown(samples[1], samples[-1]) if len(samples) > 1 else 0.0
    half = samples[min(5, len(samples) - 1)]
    second_half = grown(half, samples[-1])
    say("  growth per worker: %.1f MB from the first tenth to the end, %.1f MB over the second half"
        % (first_tenth, second_half))
    return {"storage": storage, "samples": samples, "issued": issued, "target": total, "errors": errors,
            "growth_mb_after_first_tenth": first_tenth, "growth_mb_second_half": second_half,
            "max_rss_mb": max(max(s["rss_mb"]) for s in samples), "workers_respawned": respawned}


# --------------------------------------------------------------------------
# Printing


HEADER = ("%-8s %-5s %2s %4s %8s %8s %6s %8s %8s %6s %7s %5s %5s %5s %6s"
          % ("CA", "store", "w", "conc", "req/s", "/core", "ratio", "p50 ms", "p99 ms", "errors",
             "cpu ms", "busy", "wrk", "other", "RSS MB"))


def print_header():
    say(HEADER)


def print_row(row):
    conc = "%d" % row["concurrency"] + ("t" if row["think_ms"] else "")
    say("%-8s %-5s %2d %4s %8.1f %8.1f %6.2f %8.2f %8.2f %6d %7.2f %4.0f%% %4.0f%% %4.0f%% %6.1f"
        % (CA_NAMES[row["ca"]], row["storage"], row["workers"], conc, row["rps"], row["per_core_rps"],
           row.get("ratio", 0.0), row["p50_ms"], row["p99_ms"], row["errors"], row["worker_cpu_ms_per_request"],
           row["worker_busy"] * 100, row["wrk_cpu_share"] * 100, row["foreign_cpu_share"] * 100,
           max(mb for mb in row["rss_mb"] if mb is not None)))


def pick(rows, **where):
    return [row for row in rows if all(row.get(key) == value for key, value in where.items())]


def summarise(rows, limits, ladder, memory, checks, storages):
    """The targets, each met or not, with the figures behind it."""
    say()
    wsgi_ms = list(ladder.values())[-1]
    under_uwsgi = ", ".join("%s %.2f ms" % (storage, pick(rows, ca="p256", storage=storage, workers=1,
                                                           concurrency=4)[0]["worker_cpu_ms_per_request"])
                            for storage in storages)
    say("P-256 CA, CPU per request: pipeline %.3f ms; whole WSGI app in process %.3f ms; uwsgi worker (1 worker,"
        " 4 clients; + HTTP, log files, record) %s" % (list(ladder.values())[0], wsgi_ms, under_uwsgi))
    say()
    say("targets:")
    result = {}
    for storage in storages:
        for kind, (share, label) in {"rsa4096": (0.90, "raw RSA-4096 signature rate"),
                                     "p256": (0.50, "in-process pipeline rate")}.items():
            runs = [row for row in pick(rows, ca=kind, storage=storage) if not row["think_ms"]]
            best = max(runs, key=lambda row: row["per_core_rps"])
            limit = limit_of(limits, kind)
            ratio = best["per_core_rps"] / limit
            cpu_ratio = 1e3 / best["worker_cpu_ms_per_request"] / limit
            met = ratio >= share
            result["%s_%s" % (kind, storage)] = {"per_core_rps": best["per_core_rps"], "limit": limit,
                                                 "ratio": ratio, "cpu_ratio": cpu_ratio, "met": met,
                                                 "workers": best["workers"], "concurrency": best["concurrency"]}
            say("  %-8s %-5s per core %7.1f req/s = %.2f of the %s (%.0f/s), target >= %.2f: %s"
                % (CA_NAMES[kind], storage, best["per_core_rps"], ratio, label, limit, share,
                   "met" if met else "NOT met (%.0f%% short)" % ((share - ratio) / share * 100)))
            say("  %-8s %-5s   (best of %d workers at %d; by worker CPU time: %.2f ms per request = %.2f of the limit)"
                % ("", "", best["workers"], best["concurrency"], best["worker_cpu_ms_per_request"], cpu_ratio))
        for kind in CA_NAMES:
            c1 = pick(rows, ca=kind, storage=storage, workers=2, concurrency=1, think_ms=0.0)[0]
            c16 = pick(rows, ca=kind, storage=storage, workers=2, concurrency=16, think_ms=0.0)[0]
            paced = [row for row in pick(rows, ca=kind, storage=storage, workers=2, concurrency=16) if row["think_ms"]]
            bound = 16 / c16["rps"] * 1e3  # Little's law: mean latency with 16 requests always in flight
            met = c16["p99_ms"] <= 3 * c1["p50_ms"]
            result["latency_%s_%s" % (kind, storage)] = {
                "p50_ms_c1": c1["p50_ms"], "p99_ms_c16": c16["p99_ms"], "ratio": c16["p99_ms"] / c1["p50_ms"],
                "met": met, "littles_law_mean_ms_c16": bound,
                "paced_p99_ms_c16": paced[0]["p99_ms"] if paced else None,
                "paced_offered_share": paced[0]["offered_share"] if paced else None}
            say("  %-8s %-5s p99 at 16 (2 workers) %.2f ms = %.1fx the median at 1 (%.2f ms), target <= 3x: %s"
                % (CA_NAMES[kind], storage, c16["p99_ms"], c16["p99_ms"] / c1["p50_ms"], c1["p50_ms"],
                   "met" if met else "NOT met"))
            say("  %-8s %-5s   (saturated, 16 in flight on 2 workers: any server's mean is 16/throughput = %.2f ms"
                % ("", "", bound))
            if paced:
                paced_met = paced[0]["p99_ms"] <= 3 * c1["p50_ms"]
                say("  %-8s %-5s   = %.1fx the median at 1; 16 clients pausing, at %.0f%% of capacity: p99 %.2f ms"
                    " = %.1fx, %s)" % ("", "", bound / c1["p50_ms"], paced[0]["offered_share"] * 100,
                                       paced[0]["p99_ms"], paced[0]["p99_ms"] / c1["p50_ms"],
                                       "within 3x" if paced_met else "beyond 3x"))
    rss_max = max(max(mb for mb in row["rss_mb"] if mb is not None) for row in rows)
    if memory is not None:
        rss_max = max(rss_max, memory["max_rss_mb"])
        flat = memory["growth_mb_second_half"] <= 1.0
        met = rss_max < 80 and flat and memory["issued"] >= memory["target"] * 0.99
        result["memory"] = dict(memory, met=met, flat=flat)
        say("  memory: largest worker RSS %.1f MB (target < 80); over %d issuances (%s) it grew %.1f MB after the"
            " first tenth, %.1f MB over the second half (flat: <= 1 MB): %s"
            % (rss_max, memory["issued"], memory["storage"], memory["growth_mb_after_first_tenth"],
               memory["growth_mb_second_half"], "met" if met else "NOT met"))
    result["rss_mb_per_worker"] = rss_max
    key_ok = checks["in_process"]["ok"] and checks["http"]["ok"]
    say("  CA key load on the request path: %s (in process: %d loads/%d opens in %d requests; under uwsgi: the key"
        " file was moved away after start-up and %d requests then got their certificate, %d failed; workers"
        " holding it open: %s)" % ("never, met" if key_ok else "FAILED", checks["in_process"]["requests"]["loads"],
                                   checks["in_process"]["requests"]["opens"], checks["in_process"]["request_count"],
                                   checks["http"]["requests"], checks["http"]["errors"],
                                   checks["http"]["holders"] or "none"))
    result["key_load"] = {"met": key_ok}
    return result


# --------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument("--seconds", type=float, help="length of each measured HTTP run")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, configs)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    growth.quiet_logging()
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    limit_seconds = 0.5 if args.quick else 2.0
    warm = 0.5 if args.quick else 2.0
    memory_total = 5000 if args.quick else 100000
    if shutil.which("wrk") is None:
        say("bench/run: wrk is not installed (apt-get install wrk)")
        return 2

    work = tempfile.mkdtemp(prefix="anchor-bench-")
    storages = {"disk": work}
    shm = tmpfs_directory()
    shm_work = None
    if shm and not args.quick:
        shm_work = tempfile.mkdtemp(prefix="anchor-bench-", dir=shm)
        storages["tmpfs"] = shm_work
    say("bench/run: %s, %d cores, load average %.2f, working directory %s%s"
        % ("quick" if args.quick else "full", cores(), load_average(), work,
           "" if "tmpfs" in storages else (" (no tmpfs variant)" if not args.quick else "")))
    failed = None
    results = {"quick": args.quick, "cores": cores(), "load_average_start": load_average()}
    try:
        cas = {}
        for kind in CA_NAMES:
            cas[kind] = os.path.join(work, "CA-" + kind)
            testca.make_ca(cas[kind], kind)
        csr_pem = growth.make_csr("anchor-test.example.com")
        csr_text = csr_pem.decode("ascii")
        content_type, body = growth.sign_form(csr_pem)
        load = Load(work, content_type, body)

        limits = measure_limits(work, cas, storages, csr_text, limit_seconds)
        results["limits"] = limits
        say()
        results["ladder"] = cost_ladder(work, cas["p256"], csr_text, content_type, body, limit_seconds)
        say()
        with pinned(0):
            results["growth"] = growth.measure(os.path.join(work, "growth"), args.quick)
        say()
        checks = {"in_process": key_load_check_in_process(work, cas["rsa4096"], content_type, body,
                                                          20 if args.quick else 100)}
        say()

        rows = []
        say("Anchor under uwsgi, wrk on loopback: %s s per run; a new connection per request" % seconds)
        say("(w workers; conc: clients, t = pausing between requests; /core = req/s / min(w, cores); ratio: RSA-4096"
            " to the raw signature rate, P-256 to the in-process pipeline rate; cpu ms: worker CPU per request;"
            " busy: worker cores busy; wrk, other: machine CPU used by wrk and by other processes)")
        print_header()
        for storage, base in storages.items():
            matrix(work, cas, storage, base, content_type, body, load, seconds, warm, limits, rows)
        results["runs"] = rows
        http_requests = sum(row["requests"] for row in rows)
        http_errors = sum(row["errors"] for row in rows)
        holders = sorted({pid for row in rows for pid in row.get("key_held_open_by", [])})
        checks["http"] = {"ok": http_errors == 0 and not holders, "requests": http_requests,
                          "errors": http_errors, "holders": holders}

        say()
        memory_storage = "tmpfs" if "tmpfs" in storages else "disk"
        say("memory: P-256 CA, 2 workers, 16 clients, %d issuances, output_path on %s"
            % (memory_total, memory_storage))
        deadline = started + BUDGET_SECONDS
        memory = memory_run(work, cas["p256"], memory_storage, storages[memory_storage], content_type, body,
                            load, memory_total, deadline)
        results["memory"] = memory
        checks["http"]["requests"] += memory["issued"]
        checks["http"]["errors"] += memory["errors"]
        checks["http"]["ok"] = checks["http"]["ok"] and memory["errors"] == 0
        results["key_load_check"] = checks

        targets = summarise(rows, limits, results["ladder"], memory, checks, storages)
        results["targets"] = targets
        rsa, p256 = targets["rsa4096_disk"], targets["p256_disk"]
        latency = targets["latency_rsa4096_disk"]
        results.update({
            "rsa4096_per_core_rps": rsa["per_core_rps"],
            "rsa4096_raw_sign_per_s": limits["rsa4096"]["raw_sign_per_s"],
            "rsa4096_ratio": rsa["ratio"],
            "p256_per_core_rps": p256["per_core_rps"],
            "p256_inprocess_per_s": limits["p256"]["inprocess_per_s"],
            "p256_ratio": p256["ratio"],
            "p50_ms_c1": latency["p50_ms_c1"],
            "p99_ms_c16": latency["p99_ms_c16"],
            "rss_mb_per_worker": targets["rss_mb_per_worker"],
            "errors": http_errors + memory["errors"],
        })
        if "tmpfs" in storages:
            results.update({
                "rsa4096_per_core_rps_tmpfs": targets["rsa4096_tmpfs"]["per_core_rps"],
                "rsa4096_ratio_tmpfs": targets["rsa4096_tmpfs"]["ratio"],
                "p256_per_core_rps_tmpfs": targets["p256_tmpfs"]["per_core_rps"],
                "p256_ratio_tmpfs": targets["p256_tmpfs"]["ratio"],
            })
        if not checks["in_process"]["ok"] or not checks["http"]["ok"]:
            failed = "requests failed or the key-load check failed; the figures above are not valid"
    except RunFailed as exc:
        failed = str(exc)
    finally:
        if args.keep:
            say("kept %s%s" % (work, " and " + shm_work if shm_work else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
            if shm_work:
                shutil.rmtree(shm_work, ignore_errors=True)
    results["load_average_end"] = load_average()
    results["run_seconds"] = time.monotonic() - started
    say()
    say("run time %.0f s; load average %.2f at the start, %.2f at the end"
        % (results["run_seconds"], results["load_average_start"], results["load_average_end"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2, sort_keys=True, default=str)
    if failed:
        say("bench/run: FAILED: %s" % failed)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
