#!/usr/bin/env python3
"""Signing benchmark: the local backend next to the pkcs11 backend (SoftHSM2).

For RSA-2048 and ECDSA P-256 CA keys it prints, in one process on one core:
the raw signature rate of the key with ``cryptography`` (the limit), and the
certificates per second of each backend's ``sign`` (build + sign the
certificate for a parsed request).  The token is a throwaway SoftHSM2 token
in a temporary directory; the same CA keys are used by both backends.

    .venv/bin/python bench/signing.py [--seconds 2]

Needs the Debian packages softhsm2 and opensc (tools/test installs them).
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from anchor import settings
from anchor.signing.local import LocalSigner
from anchor.signing.pkcs11 import PKCS11Signer
from anchor.x509.request import CertificateRequest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "bench-pin"
KEYS = {
    "RSA-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
}


def rate(function, seconds):
    """Calls per second of ``function`` over about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        count += 1
    return count / (time.perf_counter() - start)


def write_ca(directory, name, key):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA %s" % name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, name + ".crt")
    key_path = os.path.join(directory, name + ".key")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(key_path, 0o400)
    return cert_path, key_path


def ca_settings(directory, backend, cert_path, options):
    return settings.SigningCASettings(
        name=backend, backend=backend, cert_path=cert_path, output_path=None, signing_hash="sha256",
        valid_hours=24, backdate=datetime.timedelta(minutes=5), options=options, base_dir=directory,
        where="signing_ca." + backend)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args(argv)
    for tool in ("softhsm2-util",):
        if shutil.which(tool) is None:
            sys.exit("bench/signing.py: %s is missing; apt-get install softhsm2 opensc" % tool)

    with tempfile.TemporaryDirectory() as directory:
        with open(os.path.join(directory, "softhsm2.conf"), "w") as handle:
            handle.write("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                         % os.path.join(directory, "tokens"))
        os.makedirs(os.path.join(directory, "tokens"))
        os.environ["SOFTHSM2_CONF"] = os.path.join(directory, "softhsm2.conf")
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN,
                        "--so-pin", "bench-so-pin"], check=True, capture_output=True, timeout=60)

        request_key = ec.generate_private_key(ec.SECP256R1())
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example.com")]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.example.com")]), False)
               .sign(request_key, hashes.SHA256()))
        request = CertificateRequest(csr)

        print("%-9s %14s %16s %16s %8s" % ("CA key", "raw sign/s", "local certs/s", "pkcs11 certs/s",
                                          "pkcs11/local"))
        for number, (name, make_key) in enumerate(KEYS.items(), start=1):
            key = make_key()
            cert_path, key_path = write_ca(directory, name, key)
            key_id = "%02x" % number
            subprocess.run(["softhsm2-util", "--import", key_path, "--token", "bench", "--pin", PIN,
                            "--id", key_id, "--label", name], check=True, capture_output=True, timeout=60)
            local = LocalSigner(ca_settings(directory, "anchor", cert_path, {"key_path": key_path}))
            token = PKCS11Signer(ca_settings(directory, "pkcs11", cert_path, {
                "pkcs11_path": MODULE, "token_label": "bench", "pin": PIN, "key_id": key_id}))
            message = b"x" * 600  # about the size of a certificate's TBS part
            if isinstance(key, rsa.RSAPrivateKey):
                raw = rate(lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256()), args.seconds)
            else:
                raw = rate(lambda: key.sign(message, ec.ECDSA(hashes.SHA256())), args.seconds)
            local_rate = rate(lambda: local.sign(request), args.seconds)
            token_rate = rate(lambda: token.sign(request), args.seconds)
            print("%-9s %14.0f %16.0f %16.0f %8.2f" % (name, raw, local_rate, token_rate, token_rate / local_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
