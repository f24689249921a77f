"""Anchor under uWSGI behind nginx, both run from the samples in tools/.

uWSGI runs tools/uwsgi.ini (socket path changed) and nginx
tools/nginx-anchor.conf (listen port, certificate, socket and log paths
changed); see nginx.py.  Clients are real curl (over HTTPS, verifying
nginx's certificate against a test TLS CA) and openssl.  nginx's master runs
as root and its workers as ``nobody``, as on a host.
"""

import concurrent.futures
import functools
import os
import re
import time

import pytest

import helpers
import nginx
import servers
from conftest import make_deployment

# RAs besides the sample "default" (source_cidrs 127.0.0.0/8): only a client
# at 127.0.0.2 may use them; "restricted" also trusts 127.0.0.1 as a proxy.
RESTRICTED = {"cidrs": ["127.0.0.2/32"], "trusted_proxies": ["127.0.0.1/32"]}
RESTRICTED_DIRECT = {"cidrs": ["127.0.0.2/32"]}
REFUSED = b"request refused by policy\n"


def nginx_deployment(root):
    deployment = make_deployment(root, kind="p256")
    config = deployment.config()
    ras = config["registration_authority"]
    for name, cidrs in (("restricted", RESTRICTED), ("restricted_direct", RESTRICTED_DIRECT)):
        ras[name] = dict(ras["default"], validators={
            "common_name": {"allowed_domains": [".example.com"]},
            "source_cidrs": cidrs,
            "standards_compliance": {},
        })
    deployment.write_config(config)
    return deployment


def assert_stopped_cleanly(stack):
    stopped = stack.stopped
    assert stopped is not None
    assert stopped.nginx_quit, "nginx did not exit on `nginx -s quit`\n" + stack.logs()
    assert stopped.nginx_pid_file_gone, "nginx left its pid file"
    assert stopped.nginx_port_closed, "something still listens on nginx's port"
    assert not stopped.nginx_stragglers, "nginx workers outlived the master: %s" % (stopped.nginx_stragglers,)
    assert not stopped.uwsgi_killed, "uwsgi did not exit on SIGINT within %s s" % servers.STOP_TIMEOUT
    assert not stopped.uwsgi_stragglers, "uwsgi workers outlived the master: %s" % (stopped.uwsgi_stragglers,)
    assert stopped.uwsgi_socket_gone, "uwsgi (vacuum) did not remove its socket"


@pytest.fixture
def deployment(tmp_path):
    return nginx_deployment(str(tmp_path / "deployment"))


@pytest.fixture
def stack(tmp_path, deployment):
    with nginx.anchor_behind_nginx(tmp_path, deployment) as running:
        yield running
    assert_stopped_cleanly(running)


@pytest.fixture
def stack_with_http_proxy(tmp_path, deployment):
    with nginx.anchor_behind_nginx(tmp_path, deployment, http_proxy=True) as running:
        yield running
    assert_stopped_cleanly(running)


@pytest.fixture
def client_dir(tmp_path):
    path = tmp_path / "client"
    path.mkdir()
    servers.readme_csr(str(path), "X")
    return path


def sign(stack, cwd, ra="default", via="uwsgi_pass", source=None, extra=(), name="answer"):
    """The README's curl, through nginx over HTTPS."""
    return stack.request("/v1/sign/" + ra, *extra, "-F", "user=%s" % helpers.USER,
                         "-F", "secret=%s" % helpers.SECRET, "-F", "encoding=pem",
                         "-F", "csr=<X.csr", cwd=cwd, via=via, source=source, name=name)


def refused_addresses(log, ra):
    """The client addresses Anchor's source_cidrs refused for ``ra``, in order."""
    return re.findall(r"RA %s refused a request from user '[^']*' at stage validator source_cidrs: "
                      r"client address (\S+) is not in an allowed network" % re.escape(ra), log)


def in_parallel(calls):
    """Run the calls (curl requests) all at once; their results, in order."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [future.result(timeout=120) for future in futures]


def save(cwd, answer, name):
    with open(os.path.join(cwd, name), "wb") as handle:
        handle.write(answer.body)
    return name


# --------------------------------------------------------------------------


def test_sign_ca_and_robots_through_nginx_over_https(stack, client_dir):
    cwd = str(client_dir)
    answer = sign(stack, cwd)
    assert answer.status == 200, "%r\n%s" % (answer, stack.logs())
    assert answer.body.startswith(b"-----BEGIN CERTIFICATE-----\n"), answer
    servers.verify(stack.deployment.ca_cert_path, save(cwd, answer, "X.crt"), cwd=cwd)
    certificate = servers.load_pem_cert(os.path.join(cwd, "X.crt"))
    assert certificate.subject.rfc4514_string() == "CN=anchor-test.example.com"
    assert stack.deployment.issued_files() == [servers.stored_name(certificate)]

    answer = stack.request("/v1/ca/default", cwd=cwd)
    assert answer.status == 200, answer
    with open(stack.deployment.ca_cert_path, "rb") as handle:
        assert answer.body == handle.read()
    answer = stack.request("/robots.txt", cwd=cwd)
    assert answer.status == 200 and answer.body == b"User-agent: *\nDisallow: /\n", answer
    answer = stack.request("/v1/sign/default", cwd=cwd)        # GET
    assert answer.status == 405, answer
    answer = stack.request("/v1/nothing", cwd=cwd)
    assert answer.status == 404, answer
    assert re.search(r"^Server: nginx\s*$", answer.headers, re.M), answer   # server_tokens off

    # The TLS check is real: without the test CA, curl refuses nginx's certificate.
    result = servers.curl(stack.url("/robots.txt"), "-s", "-S", "--max-time", "30", cwd=cwd)
    assert result.returncode == 60, servers.describe(result)
    # TLS 1.2 is still served (TLS 1.3 is what curl negotiates by default).
    answer = stack.request("/robots.txt", "--tlsv1.2", "--tls-max", "1.2", cwd=cwd)
    assert answer.status == 200, answer

    assert "Traceback" not in stack.uwsgi_log(), stack.logs()
    assert helpers.SECRET not in stack.uwsgi_log()


def test_source_cidrs_sees_the_client_through_uwsgi_pass(stack, client_dir):
    """How the client's address reaches source_cidrs through uwsgi_pass.

    curl (127.0.0.2, or 127.0.0.1) connects to nginx on 127.0.0.1: nginx's
    ``$remote_addr`` is the client's address.  nginx talks to uWSGI over a
    unix socket, so there is no TCP peer address at all there; instead
    ``include uwsgi_params`` sends ``REMOTE_ADDR = $remote_addr``, and the
    sample also sends ``HTTP_X_FORWARDED_FOR = $remote_addr`` (which replaces
    any X-Forwarded-For the client sent; nginx passes the client's header on
    only when the param is not set).  uWSGI hands both to the WSGI environ
    unchanged, so Anchor's peer (``request.remote_addr``) *is* the client.

    So trusted_proxies is not needed on this path ("restricted_direct" has
    none and works), and listing 127.0.0.1 ("restricted") is harmless only
    because the sample replaces X-Forwarded-For: a client at 127.0.0.1
    forging ``X-Forwarded-For: 127.0.0.2`` reaches Anchor with REMOTE_ADDR
    127.0.0.1 (trusted) and X-Forwarded-For 127.0.0.1 (trusted, skipped,
    nothing left), so the address judged is 127.0.0.1 and it is refused.
    Anchor's log names the address it judged; it is checked too.
    """
    cwd = str(client_dir)
    for ra in ("restricted", "restricted_direct"):
        answer = sign(stack, cwd, ra=ra, source="127.0.0.2")
        assert answer.status == 200, "%s from 127.0.0.2: %r\n%s" % (ra, answer, stack.logs())

        answer = sign(stack, cwd, ra=ra, source="127.0.0.1")
        assert answer.status == 400 and answer.body == REFUSED, (ra, answer)

        answer = sign(stack, cwd, ra=ra, source="127.0.0.1", extra=["-H", "X-Forwarded-For: 127.0.0.2"])
        assert answer.status == 400 and answer.body == REFUSED, (
            "%s: a client at 127.0.0.1 chose its address with X-Forwarded-For: %r" % (ra, answer))

        answer = sign(stack, cwd, ra=ra, source="127.0.0.1",
                      extra=["-H", "X-Forwarded-For: 127.0.0.2, 127.0.0.2"])
        assert answer.status == 400, (ra, answer)

        assert refused_addresses(stack.uwsgi_log(), ra) == ["127.0.0.1"] * 3, stack.logs()
    assert len(stack.deployment.issued_files()) == 2


def test_source_cidrs_through_an_http_proxy_needs_trusted_proxies(stack_with_http_proxy, client_dir):
    """The sample's plain-HTTP alternative: nginx ``proxy_pass`` to uWSGI's
    ``--http-socket 127.0.0.1:P``.

    Here uWSGI sets REMOTE_ADDR from the TCP connection, whose peer is nginx
    (127.0.0.1), whoever the client is; the client's address travels only in
    ``X-Forwarded-For: $remote_addr`` (proxy_set_header, again replacing
    what the client sent).  Anchor believes that header only because the
    peer 127.0.0.1 is in "restricted"'s trusted_proxies; reading it from the
    right and skipping trusted proxies gives 127.0.0.2 for a client there,
    and 127.0.0.1 (nothing else left) for a client at 127.0.0.1, forged
    header or not.  Without trusted_proxies ("restricted_direct") every
    client looks like nginx, 127.0.0.1, and the 127.0.0.2-only RA refuses
    even the client at 127.0.0.2.
    """
    stack = stack_with_http_proxy
    cwd = str(client_dir)
    answer = sign(stack, cwd, ra="restricted", via="proxy_pass", source="127.0.0.2")
    assert answer.status == 200, "%r\n%s" % (answer, stack.logs())
    servers.verify(stack.deployment.ca_cert_path, save(cwd, answer, "proxied.crt"), cwd=cwd)

    answer = sign(stack, cwd, ra="restricted", via="proxy_pass", source="127.0.0.1")
    assert answer.status == 400, answer
    answer = sign(stack, cwd, ra="restricted", via="proxy_pass", source="127.0.0.1",
                  extra=["-H", "X-Forwarded-For: 127.0.0.2"])
    assert answer.status == 400, "a client at 127.0.0.1 chose its address: %r" % answer
    assert refused_addresses(stack.uwsgi_log(), "restricted") == ["127.0.0.1"] * 2, stack.logs()

    answer = sign(stack, cwd, ra="restricted_direct", via="proxy_pass", source="127.0.0.2")
    assert answer.status == 400, answer
    assert refused_addresses(stack.uwsgi_log(), "restricted_direct") == ["127.0.0.1"], stack.logs()

    # The uwsgi_pass server of the same nginx, same client, same RA: allowed.
    answer = sign(stack, cwd, ra="restricted_direct", via="uwsgi_pass", source="127.0.0.2")
    assert answer.status == 200, answer
    assert len(stack.deployment.issued_files()) == 2


def test_nginx_refuses_a_body_over_1_mib(stack, client_dir):
    cwd = str(client_dir)
    with open(os.path.join(cwd, "big.txt"), "w") as handle:
        handle.write("A" * (2 * 1024 * 1024))
    answer = stack.request("/v1/sign/default", "-F", "user=%s" % helpers.USER,
                           "-F", "secret=%s" % helpers.SECRET, "-F", "csr=<big.txt", cwd=cwd)
    assert answer.status == 413, answer
    assert b"nginx" in answer.body and "text/html" in answer.headers, answer   # nginx's page, not Anchor's
    assert "Anchor" not in stack.nginx_log("anchor-error.log")
    assert "client intended to send too large body" in stack.nginx_log("anchor-error.log"), stack.logs()

    # Just under the limit, the body goes through nginx (buffered in its
    # client_body_temp_path) to Anchor, which finds no CSR in it.
    with open(os.path.join(cwd, "junk.txt"), "w") as handle:
        handle.write("A" * (900 * 1024))
    answer = stack.request("/v1/sign/default", "-F", "user=%s" % helpers.USER,
                           "-F", "secret=%s" % helpers.SECRET, "-F", "csr=<junk.txt", cwd=cwd)
    assert answer.status == 400 and "text/plain" in answer.headers, "%r\n%s" % (answer, stack.logs())
    assert stack.deployment.issued_files() == []


def test_nginx_limits_the_signing_rate_per_client(stack, client_dir):
    limits = nginx.sample_limits()
    cwd = str(client_dir)
    count = 3 * (limits.burst + 1)

    started = time.monotonic()
    answers = in_parallel([functools.partial(sign, stack, cwd, name="sign%d" % index)
                           for index in range(count)])
    elapsed = time.monotonic() - started
    statuses = sorted(answer.status for answer in answers)
    assert set(statuses) <= {200, limits.status}, statuses
    # A fresh client may make 1 + burst requests at once, plus what the rate
    # allows while the burst lasts; the rest are refused by nginx.
    allowed = limits.burst + 1 + int(elapsed * limits.rate) + 1
    assert limits.burst + 1 <= statuses.count(200) <= allowed, (statuses, elapsed)
    assert statuses.count(limits.status) >= count - allowed, statuses
    refused = [answer for answer in answers if answer.status == limits.status]
    assert b"Too Many Requests" in refused[0].body, refused[0]
    assert "limiting requests" in stack.nginx_log("anchor-error.log"), stack.logs()
    assert len(stack.deployment.issued_files()) == statuses.count(200)

    # Only signing is limited.
    answers = in_parallel([functools.partial(stack.request, "/v1/ca/default", cwd=cwd, name="ca%d" % index)
                           for index in range(count)])
    assert {answer.status for answer in answers} == {200}, [answer.status for answer in answers]

    # Once the burst allowance has refilled (burst / rate seconds), signing works again.
    time.sleep((limits.burst + 1) / limits.rate + 0.5)
    for index in range(3):
        answer = sign(stack, cwd, name="after%d" % index)
        assert answer.status == 200, answer


def test_everything_stops(tmp_path, deployment, client_dir):
    """nginx -s quit and SIGINT to the uWSGI master leave nothing behind."""
    with nginx.anchor_behind_nginx(tmp_path, deployment) as stack:
        answer = sign(stack, str(client_dir))
        assert answer.status == 200, answer
        pids = {stack.nginx.process.pid, stack.uwsgi.process.pid}
        groups = [servers._group_members(pid) for pid in pids]
        assert all(len(members) > 1 for members in groups), groups   # masters and their workers
    assert_stopped_cleanly(stack)
    assert stack.nginx.process.returncode == 0, stack.logs()
    for pid in pids:
        assert servers._group_members(pid) == []
    with pytest.raises(OSError):
        os.stat(stack.socket_path)
    log = stack.uwsgi_log()
    assert "Anchor ready" in log and "goodbye to uWSGI" in log, log
    assert "Traceback" not in log, log
    error_log = stack.nginx_log()
    assert "gracefully shutting down" in error_log and "exit" in error_log, error_log
