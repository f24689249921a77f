#!/usr/bin/env python3
"""Growth benchmark: the cost of one request as the configuration and the request grow.

Each request goes through the whole WSGI application in this process
(RequestGuard, Pecan, the controller, anchor.issuance: static
authentication, parse, validators, signing, audit to the log), without HTTP
and without output_path, with an ECDSA P-256 CA, so that whatever grows is
not hidden behind an RSA signature or a disk flush.  It prints the time per
request for:

- 1, 100 and 10,000 registration authorities in config.json, sharing one
  authentication and one signing_ca block (the request goes to the last one);
- a CSR with 1, 10 and 500 subjectAltName DNS names, to an RA whose
  validators look at them (common_name, alternative_names,
  standards_compliance, source_cidrs);
- an RA whose whitelist_names lists 10, then 10,000 names.

The cost must not grow with the number of RAs or allowed names, and must
grow at most linearly with the names in the request.  The figures are for
people to read; the script fails only if a request is not answered with a
certificate.

    .venv/bin/python bench/growth.py [--quick]
"""

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import timeit
import uuid

import webob
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from anchor import app as anchor_app
from anchor import testca

USER, SECRET = "myusername", "simplepassword"  # the sample credentials, as the README's curl sends
SAMPLE_VALIDATORS = {
    "common_name": {"allowed_domains": [".example.com"]},
    "source_cidrs": {"cidrs": ["127.0.0.0/8", "::1/128"]},
    "standards_compliance": {},
}


def make_csr(common_name, sans=(), key=None):
    """An RSA-2048 CSR in PEM, like the README's ``openssl req -newkey rsa:2048``."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def multipart_form(fields):
    """(content type, body) of a multipart/form-data form of text fields, as
    ``curl -F name=value -F 'csr=<file'`` sends it."""
    boundary = "------------------------" + uuid.uuid4().hex[:16]
    parts = []
    for name, value in fields:
        value = value if isinstance(value, bytes) else value.encode("ascii")
        parts.append(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                     % (boundary.encode(), name.encode(), value))
    body = b"".join(parts) + b"--%s--\r\n" % boundary.encode()
    return "multipart/form-data; boundary=" + boundary, body


def sign_form(csr_pem):
    return multipart_form([("user", USER), ("secret", SECRET), ("encoding", "pem"), ("csr", csr_pem)])


def write_config(path, ca_dir, authorities, output_path=None, audit=True):
    """config.json at ``path``: the sample's authentication and signing_ca
    blocks (CA in ``ca_dir``) and the given registration authorities
    (name -> validators)."""
    ca = {
        "backend": "anchor",
        "cert_path": os.path.join(ca_dir, "root-ca.crt"),
        "key_path": os.path.join(ca_dir, "root-ca-unwrapped.key"),
        "signing_hash": "sha256",
        "valid_hours": 24,
    }
    if output_path:
        ca["output_path"] = output_path
    data = {
        "authentication": {"default_auth": {"backend": "static", "user": USER, "secret": SECRET}},
        "signing_ca": {"default_ca": ca},
        "registration_authority": {
            name: {"authentication": "default_auth", "signing_ca": "default_ca", "validators": validators}
            for name, validators in authorities.items()
        },
    }
    if audit:
        data["audit"] = {"target": "log"}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    return path


def quiet_logging():
    """Anchor's log lines (and audit events) are built and formatted as in
    service, but written to /dev/null."""
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s"))
    logger = logging.getLogger("anchor")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def post(application, path, content_type, body):
    """POST the form to the WSGI application as a client on 127.0.0.1; the response."""
    request = webob.Request.blank(path, method="POST", body=body, content_type=content_type,
                                  remote_addr="127.0.0.1")
    return request.get_response(application)


def per_request(application, path, content_type, body, target_seconds, repeat=5):
    """CPU seconds of this process per request (best of ``repeat`` batches of
    about ``target_seconds`` each); fails unless the answer is a certificate.

    CPU time, not wall time: on a shared machine other processes take the
    core now and then, which would show up as noise in wall time.
    """
    response = post(application, path, content_type, body)
    if response.status_code != 200 or not response.body.startswith(b"-----BEGIN CERTIFICATE-----"):
        raise RuntimeError("%s answered %s: %r" % (path, response.status, response.body[:200]))
    start = time.process_time()
    post(application, path, content_type, body)
    once = time.process_time() - start
    runs = max(3, int(target_seconds / max(once, 1e-4)))
    best = min(timeit.repeat(lambda: post(application, path, content_type, body), number=runs, repeat=repeat,
                             timer=time.process_time))
    return best / runs


def build(directory, name, ca_dir, authorities):
    path = write_config(os.path.join(directory, name + ".json"), ca_dir, authorities)
    start = time.perf_counter()
    application = anchor_app.make_app(path)
    return application, time.perf_counter() - start


def measure(directory, quick=False):
    """Run every case; print one line each and return the figures."""
    quiet_logging()
    target = 0.04 if quick else 0.2
    ca_dir = os.path.join(directory, "CA")
    testca.make_ca(ca_dir, "p256")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    content_type, body = sign_form(make_csr("anchor-test.example.com", key=key))
    results = {"registration_authorities": {}, "subject_alt_names": {}, "whitelist_names": {}}

    print("growth: CPU time of one request through the WSGI app in process "
          "(P-256 CA, no output_path, audit to log)")
    for count in (1, 100, 10000):
        authorities = {"ra%05d" % index: SAMPLE_VALIDATORS for index in range(count)}
        application, startup = build(directory, "ras%d" % count, ca_dir, authorities)
        seconds = per_request(application, "/v1/sign/ra%05d" % (count - 1), content_type, body, target)
        results["registration_authorities"][count] = {"ms_per_request": seconds * 1e3, "startup_s": startup}
        print("  %6d registration authorities   %7.3f ms/request   (start-up %.2f s)"
              % (count, seconds * 1e3, startup))
        del application
    ras = results["registration_authorities"]
    ras_ratio = ras[10000]["ms_per_request"] / ras[1]["ms_per_request"]

    validators = dict(SAMPLE_VALIDATORS, alternative_names={"allowed_domains": [".example.com"]})
    application, _ = build(directory, "sans", ca_dir, {"default": validators})
    for count in (1, 10, 500):
        sans = ["host-%d.zone%d.example.com" % (index, index % 50) for index in range(count)]
        san_type, san_body = sign_form(make_csr(sans[0], sans, key=key))
        seconds = per_request(application, "/v1/sign/default", san_type, san_body,
                              target * (3 if count > 100 else 1))
        results["subject_alt_names"][count] = {"ms_per_request": seconds * 1e3}
    sans = results["subject_alt_names"]
    first = (sans[10]["ms_per_request"] - sans[1]["ms_per_request"]) / 9 * 1e3
    then = (sans[500]["ms_per_request"] - sans[10]["ms_per_request"]) / 490 * 1e3
    for count in (1, 10, 500):
        extra = ""
        if count == 10:
            extra = "   +%.1f us per added name (1 -> 10)" % first
        elif count == 500:
            extra = "   +%.1f us per added name (10 -> 500)" % then
        print("  %6d subjectAltName names      %7.3f ms/request%s"
              % (count, sans[count]["ms_per_request"], extra))
    del application

    exact = ["host-%d.zone%d.example.com" % (index, index % 50) for index in range(5000)]
    patterns = ["svc%d-%%.zone%d.example.org" % (index, index % 50) for index in range(5000)]
    names_10000 = ["anchor-test.example.com"] + exact[:4999] + patterns
    request_sans = exact[:9]
    wl_type, wl_body = sign_form(make_csr("anchor-test.example.com", request_sans, key=key))
    for count, names in ((10, ["anchor-test.example.com"] + request_sans), (10000, names_10000)):
        validators = {
            "whitelist_names": {"names": names, "allow_cn_id": True, "allow_dns_id": True},
            "source_cidrs": {"cidrs": ["127.0.0.0/8"]},
        }
        application, startup = build(directory, "whitelist%d" % count, ca_dir, {"default": validators})
        seconds = per_request(application, "/v1/sign/default", wl_type, wl_body, target)
        results["whitelist_names"][count] = {"ms_per_request": seconds * 1e3, "startup_s": startup}
        print("  %6d whitelist_names entries   %7.3f ms/request   (request: CN + 9 subjectAltNames)"
              % (count, seconds * 1e3))
        del application
    wl = results["whitelist_names"]
    wl_ratio = wl[10000]["ms_per_request"] / wl[10]["ms_per_request"]

    results["verdicts"] = {
        "registration_authorities_ratio_10000_to_1": ras_ratio,
        "us_per_added_san_1_to_10": first,
        "us_per_added_san_10_to_500": then,
        "whitelist_ratio_10000_to_10": wl_ratio,
        # Generous bounds: timing noise on a shared 2-core machine is a few percent.
        "flat_in_registration_authorities": ras_ratio < 1.25,
        "linear_in_subject_alt_names": then < max(2 * first, 25.0),
        "flat_in_whitelist_names": wl_ratio < 1.25,
    }
    print("  => 10,000 RAs cost x%.2f of 1 RA; 10,000 allowed names x%.2f of 10; "
          "a subjectAltName costs %.1f us (1->10) and %.1f us (10->500) each: %s"
          % (ras_ratio, wl_ratio, first, then,
             "no growth with RAs or allow lists, linear in the request's names"
             if all(results["verdicts"][k] for k in ("flat_in_registration_authorities",
                                                     "linear_in_subject_alt_names",
                                                     "flat_in_whitelist_names"))
             else "GROWTH BEYOND THE BOUNDS (RAs < x1.25, allow list < x1.25, per name 10->500 < 2x 1->10)"))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="anchor-growth-") as directory:
        measure(directory, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
