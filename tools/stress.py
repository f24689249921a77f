#!/usr/bin/env python3
"""Stress Anchor under uwsgi and check that nothing is lost.

Starts Anchor under uwsgi (several workers) on loopback with a fresh test CA,
sends valid and invalid signing requests from many concurrent clients for a
bounded time, then checks and prints:

- zero 5xx answers and zero connection errors;
- every 200 matches a distinct file in output_path, with the same bytes;
- all serial numbers distinct;
- resident memory per worker at the end within 10 % of what it was after
  warm-up (no leak).

    .venv/bin/python tools/stress.py [--seconds 60] [--concurrency 32] [--workers 4]

Exits 0 when every check holds, 1 otherwise.  Needs uwsgi in the virtualenv
(tools/test installs it).
"""

import argparse
import base64
import collections
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from anchor import testca  # noqa: E402

USER, SECRET = "stress", "stress-secret"


def free_port():
    while True:
        with socket.socket() as probe:
            port = 20000 + int.from_bytes(os.urandom(2), "big") % 12000
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def make_csrs(count):
    key = ec.generate_private_key(ec.SECP256R1())
    csrs = []
    for index in range(count):
        name = "stress-%d.example.com" % index
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
               .sign(key, hashes.SHA256()))
        csrs.append(csr.public_bytes(serialization.Encoding.PEM))
    return csrs


def multipart(fields):
    boundary = uuid.uuid4().hex
    body = b"".join(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                    % (boundary.encode(), name.encode(), value) for name, value in fields)
    return body + b"--%s--\r\n" % boundary.encode(), "multipart/form-data; boundary=" + boundary


def request_kinds(csrs):
    """(bodies, expected status) for each kind of request sent.  The first
    CSR's name is blacklisted by the RA, so the policy refuses it."""
    refused, allowed = csrs[0], csrs[1:]

    def form(csr, secret=SECRET.encode()):
        return multipart([("user", USER.encode()), ("secret", secret), ("encoding", b"pem"), ("csr", csr)])

    return {
        "valid": ([form(csr) for csr in allowed], 200),
        "wrong secret": ([form(allowed[0], secret=b"wrong")], 401),
        "garbage csr": ([form(base64.b64encode(os.urandom(300)))], 400),
        "unknown ra": ([form(allowed[0])], 404),
        "refused by policy": ([form(refused)], 400),
    }


def write_config(root, port):
    ca_dir, output = os.path.join(root, "CA"), os.path.join(root, "certs")
    testca.make_ca(ca_dir, "p256")
    os.makedirs(output)
    import json

    config = {
        "authentication": {"a": {"backend": "static", "user": USER, "secret": SECRET}},
        "signing_ca": {"ca": {"backend": "anchor", "cert_path": os.path.join(ca_dir, "root-ca.crt"),
                              "key_path": os.path.join(ca_dir, "root-ca-unwrapped.key"),
                              "output_path": output, "signing_hash": "sha256", "valid_hours": 24}},
        "registration_authority": {"default": {"authentication": "a", "signing_ca": "ca", "validators": {
            "common_name": {"allowed_domains": [".example.com"]},
            "alternative_names": {"allowed_domains": [".example.com"]},
            "blacklist_names": {"domains": ["stress-0.example.com"]},
            "source_cidrs": {"cidrs": ["127.0.0.0/8"]},
            "standards_compliance": {}}}},
    }
    with open(os.path.join(root, "config.json"), "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(REPO, "config.py")) as handle:
        text = handle.read().replace('"port": "5016"', '"port": "%d"' % port)
    text = text.replace('"level": "INFO", "handlers"', '"level": "WARNING", "handlers"')
    with open(os.path.join(root, "config.py"), "w") as handle:
        handle.write(text.replace('"anchor": {"level": "INFO"}', '"anchor": {"level": "WARNING"}'))
    return output


def worker_pids(master):
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                children.append(int(entry))
    return sorted(children)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Client(threading.Thread):
    def __init__(self, port, kinds, stop_at, results, plan):
        super().__init__(daemon=True)
        self.port, self.kinds, self.stop_at, self.results, self.plan = port, kinds, stop_at, results, plan

    def run(self):
        index = 0
        while time.monotonic() < self.stop_at:
            kind = self.plan[index % len(self.plan)]
            bodies, expected = self.kinds[kind]
            body, content_type = bodies[index % len(bodies)]
            path = "/v1/sign/nope" if kind == "unknown ra" else "/v1/sign/default"
            index += 1
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("POST", path, body, {"Content-Type": content_type})
                response = connection.getresponse()
                data = response.read()
                connection.close()
                self.results.append((kind, expected, response.status, data))
            except (OSError, http.client.HTTPException) as exc:
                self.results.append((kind, expected, "error: %s" % type(exc).__name__, b""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)
    uwsgi = os.path.join(os.path.dirname(sys.executable), "uwsgi")
    if not os.path.exists(uwsgi):
        sys.exit("tools/stress.py: uwsgi is missing; run tools/test (or pip install uwsgi)")

    with tempfile.TemporaryDirectory(prefix="anchor-stress-") as root:
        port = free_port()
        output = write_config(root, port)
        env = dict(os.environ, ANCHOR_CONF=os.path.join(root, "config.json"))
        log = open(os.path.join(root, "uwsgi.log"), "wb")
        master = subprocess.Popen(
            [uwsgi, "--http-socket", "127.0.0.1:%d" % port, "--venv", sys.prefix, "--pecan", "config.py",
             "-p", str(args.workers), "--master", "--die-on-term", "--need-app", "--listen", "128",
             "--disable-logging"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or master.poll() is not None:
                        sys.exit("uwsgi did not start; see its log")
                    time.sleep(0.1)
            csrs = make_csrs(64)
            kinds = request_kinds(csrs)
            plan = ["valid"] * 6 + ["wrong secret", "garbage csr", "unknown ra", "refused by policy"]

            warm = []
            Client(port, kinds, time.monotonic() + 3, warm, plan).run()
            workers = worker_pids(master.pid)
            rss_after_warm_up = {pid: rss_mb(pid) for pid in workers}

            results = []
            stop_at = time.monotonic() + args.seconds
            started = time.monotonic()
            clients = [Client(port, kinds, stop_at, results, plan[i % len(plan):] + plan[:i % len(plan)])
                       for i in range(args.concurrency)]
            for client in clients:
                client.start()
            for client in clients:
                client.join(args.seconds + 60)
            elapsed = time.monotonic() - started
            rss_at_end = {pid: rss_mb(pid) for pid in workers}
        finally:
            os.killpg(master.pid, signal.SIGINT)
            try:
                master.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(master.pid, signal.SIGKILL)
                master.wait(10)
            log.close()

        counts = collections.Counter((kind, status) for kind, _, status, _ in results)
        server_errors = sum(n for (kind, status), n in counts.items() if isinstance(status, int) and status >= 500)
        connection_errors = sum(n for (kind, status), n in counts.items() if isinstance(status, str))
        unexpected = sum(1 for kind, expected, status, _ in results
                         if status != expected and not isinstance(status, str) and status < 500)
        issued = [data for kind, expected, status, data in results if status == 200] + [
            data for kind, expected, status, data in warm if status == 200]
        files = {name for name in os.listdir(output) if not name.startswith(".")}
        serials, missing, mismatched = set(), 0, 0
        for data in issued:
            certificate = x509.load_pem_x509_certificate(data)
            serials.add(certificate.serial_number)
            name = certificate.fingerprint(hashes.SHA256()).hex() + ".crt"
            if name not in files:
                missing += 1
            else:
                with open(os.path.join(output, name), "rb") as handle:
                    mismatched += handle.read() != data
        growth = max((rss_at_end[pid] - rss_after_warm_up[pid]) / rss_after_warm_up[pid]
                     for pid in workers) if workers else 0.0

        print("stress: %d workers, concurrency %d, %.0f s" % (args.workers, args.concurrency, elapsed))
        print("requests: %d (%.0f/s)" % (len(results), len(results) / elapsed))
        for (kind, status), number in sorted(counts.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            print("  %-18s -> %-6s %7d" % (kind, status, number))
        print("5xx answers: %d" % server_errors)
        print("connection errors: %d" % connection_errors)
        print("unexpected 2xx/4xx statuses: %d" % unexpected)
        print("certificates returned: %d, files in output_path: %d, returned but missing on disk: %d, "
              "bytes differ: %d" % (len(issued), len(files), missing, mismatched))
        print("distinct serials: %d of %d" % (len(serials), len(issued)))
        for pid in workers:
            print("worker %d RSS: %.1f MB after warm-up, %.1f MB at the end (%+.1f %%)"
                  % (pid, rss_after_warm_up[pid], rss_at_end[pid],
                     100 * (rss_at_end[pid] - rss_after_warm_up[pid]) / rss_after_warm_up[pid]))
        checks = {
            "zero 5xx": server_errors == 0,
            "zero connection errors": connection_errors == 0,
            "every status as expected": unexpected == 0,
            "every 200 recorded, byte for byte": missing == 0 and mismatched == 0 and len(files) == len(issued),
            "serials distinct": len(serials) == len(issued),
            "RSS within 10 % of warm-up": growth <= 0.10,
        }
        for name, ok in checks.items():
            print("%-36s %s" % (name, "ok" if ok else "FAILED"))
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
