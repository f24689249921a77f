"""anchor-certmonger: the certmonger CA helper for Anchor.

certmonger runs this helper with ``CERTMONGER_OPERATION`` (and, to submit,
``CERTMONGER_CSR``) in the environment and reads its answer from stdout and
its exit status.  Register it once::

    getcert add-ca -c anchor -e "anchor-certmonger --url https://anchor.example.com:5016 \
        --ra default --user myusername --secret-file /etc/anchor/secret \
        --ca-file /etc/anchor/ca-bundle.pem"

Operations:

``SUBMIT`` (also ``POLL``, and the default when the variable is unset)
    POST the CSR to ``<url>/v1/sign/<ra>`` as the form ``curl -F`` sends
    (user, secret, encoding=pem, csr).  200: the certificate on stdout, exit 0.
    Any other 4xx: the reason on stdout, exit 2 (rejected).  5xx, 408, 429,
    timeout or no connection: exit 3 (certmonger retries later).
``FETCH-ROOTS``
    ``GET <url>/v1/ca/<ra>``, printed as certmonger wants it: a nickname
    line, then the certificate in PEM.
``IDENTIFY``, ``GET-NEW-REQUEST-REQUIREMENTS``, ``GET-SUPPORTED-TEMPLATES``
    answered without talking to Anchor.
anything else
    exit 6 (not supported).

Missing or unsafe settings exit 4 (underconfigured) with a message.  The
secret is read from ``--secret-file`` only: a file owned by the user running
the helper and not readable by group or others.  It is never accepted on the
command line, where ``ps`` would show it to everyone, and never printed.  TLS
is always verified (``--ca-file`` names the bundle for an https URL; a
certificate that does not verify exits 4), a redirect is not followed (exit
4), and every network call is bounded by ``--timeout``.
"""

import argparse
import dataclasses
import http.client
import os
import re
import secrets
import ssl
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import anchor

NAME = "anchor-certmonger"

# certmonger's helper exit statuses.
ISSUED = 0
REJECTED = 2
UNREACHABLE = 3
UNDERCONFIGURED = 4
UNSUPPORTED = 6

DEFAULT_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 300
# Statuses that mean "try again later" rather than "no".
RETRY_STATUSES = (408, 429)

PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----")


class HelperExit(Exception):
    """Stop with ``status``, printing ``message`` (certmonger shows it)."""

    def __init__(self, status, message=""):
        super().__init__(message)
        self.status, self.message = status, message


@dataclasses.dataclass(frozen=True)
class Settings:
    url: str | None
    ra: str | None
    user: str
    secret_file: str | None
    ca_file: str | None
    timeout: float
    csr_file: str | None


# --------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise HelperExit(UNDERCONFIGURED, "%s: invalid command line: %s" % (self.prog, message))


def _parser():
    parser = _Parser(
        prog=NAME, allow_abbrev=False,
        description="certmonger CA helper for Anchor.  certmonger sets CERTMONGER_OPERATION "
                    "and CERTMONGER_CSR; run by hand it submits the CSR in CSRFILE.")
    parser.add_argument("--url", help="Anchor's base URL, e.g. https://anchor.example.com:5016")
    parser.add_argument("--ra", help="the registration authority (the <ra> of /v1/sign/<ra>)")
    parser.add_argument("--user", default="", help="the user name sent to Anchor")
    parser.add_argument("--secret-file",
                        help="file holding the secret (owned by this user, mode 0400 or 0600)")
    parser.add_argument("--ca-file", help="CA bundle that verifies an https Anchor")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds allowed for each network call (default %(default)s)")
    parser.add_argument("csr_file", nargs="?", metavar="CSRFILE",
                        help="a PEM CSR to submit when CERTMONGER_CSR is not set")
    return parser


def parse_settings(argv):
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the unknown options only: their values could be secrets.
        options = [item.split("=", 1)[0] for item in unknown if item.startswith("-")]
        if any(re.fullmatch(r"--?(secret|password|pass|token)", option) for option in options):
            raise HelperExit(UNDERCONFIGURED, "%s: the secret is never taken from the command line "
                             "(ps shows it to every user): put it in a file only you can read "
                             "(chmod 0400) and give --secret-file" % NAME)
        raise HelperExit(UNDERCONFIGURED, "%s: invalid command line: unknown argument(s) %s"
                         % (NAME, " ".join(options) or "(a value without an option)"))
    if not args.timeout > 0:
        raise HelperExit(UNDERCONFIGURED, "%s: --timeout must be a positive number of seconds" % NAME)
    return Settings(args.url, args.ra, args.user, args.secret_file, args.ca_file, args.timeout,
                    args.csr_file)


def base_url(settings):
    if not settings.url:
        raise HelperExit(UNDERCONFIGURED, "%s: no Anchor URL: give --url (e.g. --url "
                         "https://anchor.example.com:5016)" % NAME)
    parsed = urllib.parse.urlsplit(settings.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise HelperExit(UNDERCONFIGURED, "%s: --url must be an http:// or https:// URL with a host, "
                         "not %r" % (NAME, settings.url))
    if not settings.ra:
        raise HelperExit(UNDERCONFIGURED, "%s: no registration authority: give --ra "
                         "(e.g. --ra default)" % NAME)
    return settings.url.rstrip("/")


def ra_path(prefix, settings):
    return "%s/%s" % (prefix, urllib.parse.quote(settings.ra, safe=""))


def read_secret(path):
    """The secret in ``path``, after checking that nobody else can read it."""
    if not path:
        raise HelperExit(UNDERCONFIGURED, "%s: no secret: give --secret-file, a file of mode 0400 "
                         "holding the secret (never the secret itself)" % NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as exc:
        raise HelperExit(UNDERCONFIGURED, "%s: cannot read the secret file %s: %s"
                         % (NAME, path, exc.strerror)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HelperExit(UNDERCONFIGURED, "%s: the secret file %s is not a regular file" % (NAME, path))
        if info.st_uid != os.geteuid():
            raise HelperExit(UNDERCONFIGURED, "%s: the secret file %s must belong to the user running "
                             "the helper (uid %d), not uid %d" % (NAME, path, os.geteuid(), info.st_uid))
        if info.st_mode & 0o077:
            raise HelperExit(UNDERCONFIGURED, "%s: the secret file %s has mode %04o: others could read "
                             "it; chmod 0400 it" % (NAME, path, stat.S_IMODE(info.st_mode)))
        data = os.read(fd, 64 * 1024)
    except OSError as exc:
        raise HelperExit(UNDERCONFIGURED, "%s: cannot read the secret file %s: %s"
                         % (NAME, path, exc.strerror)) from None
    finally:
        os.close(fd)
    try:
        secret = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise HelperExit(UNDERCONFIGURED, "%s: the secret file %s is not UTF-8 text" % (NAME, path)) from None
    if not secret:
        raise HelperExit(UNDERCONFIGURED, "%s: the secret file %s is empty" % (NAME, path))
    return secret


def read_csr(settings):
    csr = os.environ.get("CERTMONGER_CSR", "")
    if not csr and settings.csr_file:
        try:
            with open(settings.csr_file, encoding="ascii", errors="replace") as handle:
                csr = handle.read(MAX_ANSWER_BYTES)
        except OSError as exc:
            raise HelperExit(UNDERCONFIGURED, "%s: cannot read the CSR file %s: %s"
                             % (NAME, settings.csr_file, exc.strerror)) from None
    if not csr.strip():
        raise HelperExit(UNDERCONFIGURED, "%s: no CSR: certmonger passes it in CERTMONGER_CSR; "
                         "by hand, give a CSR file" % NAME)
    return csr


# --------------------------------------------------------------------------
# HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it could carry the secret elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(settings):
    handlers = [_NoRedirect()]
    if settings.url.lower().startswith("https:"):
        try:
            context = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise HelperExit(UNDERCONFIGURED, "%s: cannot use the CA file %s: %s"
                             % (NAME, settings.ca_file, exc)) from None
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def _read_body(response, deadline):
    chunks, size = [], 0
    while size <= MAX_ANSWER_BYTES:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took too long")
        chunk = response.read(64 * 1024)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def http_call(settings, url, data=None, headers=None):
    """(status, body) of one request; HelperExit(3) when Anchor cannot be
    reached in time, HelperExit(4) when TLS verification fails."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    request.add_header("User-Agent", "%s/%s" % (NAME, anchor.__version__))
    request.add_header("Accept", "text/plain")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    deadline = time.monotonic() + settings.timeout
    try:
        try:
            with _opener(settings).open(request, timeout=settings.timeout) as response:
                return response.status, _read_body(response, deadline)
        except urllib.error.HTTPError as answer:
            with answer:
                return answer.code, _read_body(answer, deadline)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise HelperExit(UNDERCONFIGURED, "%s: the TLS certificate of %s does not verify (%s); "
                             "give the CA bundle that issued it with --ca-file"
                             % (NAME, settings.url, reason.verify_message or reason)) from None
        raise HelperExit(UNREACHABLE, "%s: cannot reach Anchor at %s: %s"
                         % (NAME, settings.url, reason)) from None
    except TimeoutError:
        raise HelperExit(UNREACHABLE, "%s: Anchor at %s did not answer within %g s"
                         % (NAME, settings.url, settings.timeout)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise HelperExit(UNREACHABLE, "%s: connection to Anchor at %s failed: %s"
                         % (NAME, settings.url, exc.__class__.__name__ if not str(exc) else exc)) from None


def one_line(body, status):
    text = " ".join(body.decode("utf-8", "replace").split())
    if not text:
        text = http.client.responses.get(status, "no reason given")
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "..."
    return text


def certificates(body):
    return PEM_CERTIFICATE.findall(body.decode("ascii", "replace"))


def judge(status, body, what):
    """The certificates of a 200 answer; HelperExit for anything else."""
    if status == 200:
        found = certificates(body)
        if not found:
            raise HelperExit(UNREACHABLE, "%s: Anchor answered 200 to %s without a certificate"
                             % (NAME, what))
        return found
    reason = "Anchor answered %d to %s: %s" % (status, what, one_line(body, status))
    if status >= 500 or status in RETRY_STATUSES:
        raise HelperExit(UNREACHABLE, reason)
    if 300 <= status < 400:
        raise HelperExit(UNDERCONFIGURED, reason + " (a redirect: give the final URL with --url)")
    raise HelperExit(REJECTED, reason)


def multipart(fields):
    """(body, content type) of a multipart/form-data form of text fields."""
    encoded = [(name, value.encode("utf-8")) for name, value in fields]
    while True:
        boundary = "anchor-certmonger-" + secrets.token_hex(16)
        if not any(boundary.encode("ascii") in value for _, value in encoded):
            break
    parts = []
    for name, value in encoded:
        parts.append(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                     % (boundary.encode("ascii"), name.encode("ascii"), value))
    parts.append(b"--%s--\r\n" % boundary.encode("ascii"))
    return b"".join(parts), "multipart/form-data; boundary=" + boundary


# --------------------------------------------------------------------------
# Operations


def submit(settings, out):
    url = ra_path(base_url(settings) + "/v1/sign", settings)
    csr = read_csr(settings)
    secret = read_secret(settings.secret_file)
    out.secrets.append(secret)
    body, content_type = multipart([("user", settings.user), ("secret", secret),
                                    ("encoding", "pem"), ("csr", csr)])
    status, answer = http_call(settings, url, body, {"Content-Type": content_type})
    found = judge(status, answer, "the signing request")
    out.write("".join(pem + "\n" for pem in found))
    return ISSUED


def fetch_roots(settings, out):
    url = ra_path(base_url(settings) + "/v1/ca", settings)
    status, answer = http_call(settings, url)
    found = judge(status, answer, "the CA certificate request")
    nickname = "Anchor %s" % settings.ra
    for number, pem in enumerate(found, 1):
        out.write("%s\n%s\n" % (nickname if number == 1 else "%s %d" % (nickname, number), pem))
    return ISSUED


def identify(settings, out):
    out.write("Anchor (%s %s)\n" % (NAME, anchor.__version__))
    return ISSUED


def nothing(settings, out):
    return ISSUED


OPERATIONS = {
    "SUBMIT": submit,
    "POLL": submit,  # never asked to wait, so a poll just submits again
    "FETCH-ROOTS": fetch_roots,
    "IDENTIFY": identify,
    "GET-NEW-REQUEST-REQUIREMENTS": nothing,  # CERTMONGER_CSR is all it needs
    "GET-SUPPORTED-TEMPLATES": nothing,  # Anchor has no profiles
}


class Output:
    """stdout, never showing a secret."""

    def __init__(self, stream):
        self.stream, self.secrets = stream, []

    def write(self, text):
        for secret in self.secrets:
            text = text.replace(secret, "********")
        self.stream.write(text)
        self.stream.flush()


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    out = Output(sys.stdout)
    operation = os.environ.get("CERTMONGER_OPERATION") or "SUBMIT"
    handler = OPERATIONS.get(operation)
    if handler is None:
        return UNSUPPORTED
    try:
        return handler(parse_settings(argv), out)
    except HelperExit as stop:
        if stop.message:
            out.write(stop.message.rstrip("\n") + "\n")
        return stop.status
    except Exception as exc:  # a traceback's exit 1 would mean "wait, poll later"
        out.write("%s: internal error: %s: %s\n" % (NAME, exc.__class__.__name__, exc))
        return UNDERCONFIGURED


if __name__ == "__main__":
    sys.exit(main())
