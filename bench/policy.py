#!/usr/bin/env python3
"""Policy benchmark: validators against large allow lists and many names.

Prints, for each validator, the time to validate one request carrying
``--sans`` subjectAltName DNS names against an RA whose allow list holds
``--names`` entries, and the time per name.  The figures are for people to
read; the script fails only if a validator refuses what it should accept.

    .venv/bin/python bench/policy.py [--names 10000] [--sans 100]
"""

import argparse
import sys
import timeit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from anchor.auth import AuthResult
from anchor.validators import names, standards
from anchor.x509.request import CertificateRequest


def make_request(sans):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), False))
    return CertificateRequest(builder.sign(key, hashes.SHA256()))


def measure(label, validator, options, request, count):
    """Time one validation, including the request model's first look at the
    CSR's extensions (derived views are cached per request, so every run
    starts from a fresh request as a real one would)."""
    prepared = validator.prepare_options(**options)
    context = {"auth_result": AuthResult("bench"), "conf": None, "request": None}

    def once():
        validator(csr=CertificateRequest(request.csr), **context, **prepared)

    once()  # must pass
    runs = 200
    seconds = min(timeit.repeat(once, number=runs, repeat=5)) / runs
    print("%-22s %8.1f us/request %8.2f us/name" % (label, seconds * 1e6, seconds * 1e6 / count))
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=10000, help="entries in the allow lists")
    parser.add_argument("--sans", type=int, default=100, help="subjectAltName DNS names in the request")
    args = parser.parse_args(argv)

    sans = ["host-%d.zone%d.example.com" % (i, i % 50) for i in range(args.sans)]
    request = make_request(sans)
    exact = ["host-%d.zone%d.example.com" % (i, i % 50) for i in range(args.names // 2)]
    patterns = ["svc%d-%%.zone%d.example.org" % (i, i % 50) for i in range(args.names - len(exact))]
    domains = [".zone%d.example.com" % i for i in range(args.names)]
    refused = [".zone%d.example.net" % i for i in range(args.names)]

    print("policy: %d allowed entries, %d subjectAltName names per request" % (args.names, args.sans))
    measure("whitelist_names", names.whitelist_names,
            {"names": exact + patterns, "allow_cn_id": True, "allow_dns_id": True}, request, args.sans)
    measure("alternative_names", names.alternative_names, {"allowed_domains": domains}, request, args.sans)
    measure("common_name", names.common_name, {"allowed_domains": domains}, request, 1)
    measure("blacklist_names", names.blacklist_names, {"domains": refused}, request, args.sans + 1)
    measure("standards_compliance", standards.standards_compliance, {}, request, args.sans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
