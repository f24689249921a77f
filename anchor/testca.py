"""A self-signed test CA for Anchor, like the README's openssl command:

    openssl req -out CA/root-ca.crt -keyout CA/root-ca-unwrapped.key \\
        -newkey rsa:4096 -subj "/CN=Anchor Test CA" -nodes -x509 -days 365
    chmod 0400 CA/root-ca-unwrapped.key

It uses the `cryptography` package instead of the openssl command, so a
machine with only Python needs nothing else.  Existing files are never
overwritten; with ``existing_key`` the certificate is made for a key that is
already there.  For testing only: a real CA key deserves more care.

Used by ``anchor bootstrap-ca`` and ``tools/bootstrap_ca.py``.
"""

import argparse
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

KEY_TYPES = {
    "rsa4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def make_ca(directory, key_type="rsa4096", days=365, common_name="Anchor Test CA", existing_key=False):
    """Write root-ca.crt and root-ca-unwrapped.key (mode 0400) in ``directory``.

    With ``existing_key``, root-ca-unwrapped.key must exist and only the
    certificate is made, for that key.
    """
    cert_path = os.path.join(directory, "root-ca.crt")
    key_path = os.path.join(directory, "root-ca-unwrapped.key")
    if os.path.exists(cert_path):
        raise FileExistsError("%s exists; remove it first to make a new CA" % cert_path)
    if existing_key:
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    else:
        if os.path.exists(key_path):
            raise FileExistsError("%s exists; remove it first to make a new CA" % key_path)
        os.makedirs(directory, exist_ok=True)
        key = KEY_TYPES[key_type]()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    if not existing_key:
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key_pem)
        os.chmod(key_path, 0o400)  # whatever the umask was
    with open(cert_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def add_arguments(parser):
    parser.add_argument("directory", nargs="?", default="CA",
                        help="where to write root-ca.crt and root-ca-unwrapped.key (default: CA)")
    parser.add_argument("--key-type", choices=sorted(KEY_TYPES), default="rsa4096",
                        help="CA key type (default: rsa4096, as the README's openssl command)")
    parser.add_argument("--days", type=int, default=365, help="validity of the CA certificate in days")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing, successfully, when the CA certificate already exists")
    parser.add_argument("--existing-key", action="store_true",
                        help="make only the certificate, for the root-ca-unwrapped.key already there")


def run(args):
    if args.if_missing and os.path.exists(os.path.join(args.directory, "root-ca.crt")):
        return 0
    try:
        cert_path, key_path = make_ca(args.directory, args.key_type, args.days,
                                      existing_key=args.existing_key)
    except (FileExistsError, FileNotFoundError, ValueError, TypeError) as exc:
        print("bootstrap-ca: %s" % exc, file=sys.stderr)
        return 1
    print("created %s%s (key %s, mode 0400)" % (cert_path, "" if args.existing_key else " and a new key",
                                                 key_path))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Create a self-signed test CA for Anchor.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
