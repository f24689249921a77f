"""Test helpers: CAs, CSRs and config.json files made on the fly."""

import datetime
import json
import os
import socket
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from anchor.testca import KEY_TYPES

# Every validator and the fixup, with options a "good" request satisfies:
# the policy the hostile-input tests and the fuzz target run requests through.
BROAD_POLICY = {
    "common_name": {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]},
    "alternative_names_ip": {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]},
    "whitelist_names": {"names": ["%.example.com", "10.0.0.0/8"], "allow_cn_id": True,
                        "allow_dns_id": True, "allow_ip_id": True, "allow_wildcard": True},
    "blacklist_names": {"domains": ["evil.example.com"]},
    "extensions": {"allowed_extensions": ["keyUsage", "extendedKeyUsage", "subjectAltName", "basicConstraints"]},
    "key_usage": {"allowed_usage": ["Digital Signature", "Key Encipherment"]},
    "ext_key_usage": {"allowed_usage": ["serverAuth", "clientAuth"]},
    "public_key": {"allowed_keys": {"RSA": 2048, "EC": 256}},
    "source_cidrs": {"cidrs": ["127.0.0.0/8"]},
    "standards_compliance": {},
}
BROAD_FIXUPS = {"enforce_alternative_names_present": {}}

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, SECRET = "tester", "s3cret-for-tests"

_KEYS = {}


def private_key(kind="p256", fresh=False):
    """A private key of that kind; cached per kind unless ``fresh``."""
    if fresh:
        return KEY_TYPES[kind]()
    if kind not in _KEYS:
        _KEYS[kind] = KEY_TYPES[kind]()
    return _KEYS[kind]


def hash_for(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(directory, kind="p256", with_ski=True, common_name="Test CA"):
    """Write a CA (root-ca.crt, root-ca-unwrapped.key mode 0400); return (cert, key, cert_path, key_path)."""
    os.makedirs(directory, exist_ok=True)
    key = private_key(kind, fresh=True)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    )
    if with_ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    cert = builder.sign(key, hash_for(key))
    cert_path = os.path.join(directory, "root-ca.crt")
    key_path = os.path.join(directory, "root-ca-unwrapped.key")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    if os.path.exists(key_path):
        os.chmod(key_path, 0o600)
    with open(key_path, "wb") as handle:
        handle.write(key_pem(key))
    os.chmod(key_path, 0o400)
    return cert, key, cert_path, key_path


def make_csr(cn="host.example.com", dns=(), ips=(), key=None, extensions=(), hash_alg=None,
             subject=None):
    """A CSR object.  ``extensions`` is a list of (ExtensionType, critical)."""
    key = key or private_key("p256")
    if subject is None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(i) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for value, critical in extensions:
        builder = builder.add_extension(value, critical)
    if hash_alg is None:
        hash_alg = hash_for(key)
    return builder.sign(key, hash_alg)


def csr_pem(csr):
    return csr.public_bytes(serialization.Encoding.PEM)


def csr_der(csr):
    return csr.public_bytes(serialization.Encoding.DER)


def sample_config(ca_dir, output_dir, validators=None, fixups=None, **ca_options):
    """A config.json dict in the current format for a CA in ``ca_dir``."""
    if validators is None:
        validators = {
            "common_name": {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/8"]},
            "source_cidrs": {"cidrs": ["127.0.0.0/8", "::1/128"]},
            "standards_compliance": {},
        }
    ca = {
        "backend": "anchor",
        "cert_path": os.path.join(ca_dir, "root-ca.crt"),
        "key_path": os.path.join(ca_dir, "root-ca-unwrapped.key"),
        "output_path": output_dir,
        "signing_hash": "sha256",
        "valid_hours": 24,
    }
    ca.update(ca_options)
    ra = {"authentication": "default_auth", "signing_ca": "default_ca", "validators": validators}
    if fixups is not None:
        ra["fixups"] = fixups
    return {
        "authentication": {"default_auth": {"backend": "static", "user": USER, "secret": SECRET}},
        "signing_ca": {"default_ca": ca},
        "registration_authority": {"default": ra},
    }


def write_json(path, data):
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2)
    return str(path)


def free_port():
    """A free TCP port on 127.0.0.1 below the ephemeral range."""
    for _ in range(200):
        with socket.socket() as probe:
            port = 20000 + int.from_bytes(os.urandom(2), "big") % 12000
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


def wait_for_port(port, timeout=30.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("server exited with status %s before listening" % process.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listened on port %d within %.0f s" % (port, timeout))


def assert_certificate_form(certificate, ca, csr, subject_key, before, after, valid_hours=24):
    """The form every signing backend's certificate has: v3, issuer the CA,
    subject and key from the request, a serial of 64 bits or more, notBefore
    backdated 5 minutes, lifetime valid_hours, AKI = the CA's SKI, SKI from
    the subject's key.  ``before``/``after`` bracket the signing request."""
    assert certificate.version == x509.Version.v3
    assert certificate.issuer == ca.subject
    assert certificate.subject == csr.subject
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert certificate.public_key().public_bytes(*spki) == subject_key.public_key().public_bytes(*spki)
    assert certificate.serial_number > 0
    assert certificate.serial_number.bit_length() >= 64
    assert before - datetime.timedelta(minutes=5, seconds=1) <= certificate.not_valid_before_utc
    assert certificate.not_valid_before_utc <= after - datetime.timedelta(minutes=5)
    assert (certificate.not_valid_after_utc - certificate.not_valid_before_utc
            == datetime.timedelta(hours=valid_hours, minutes=5))
    extensions = certificate.extensions
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski.digest
    assert (extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            == x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()))


def key_usage(**bits):
    """An x509.KeyUsage with the given bits set and every other bit clear."""
    fields = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                  encipher_only=False, decipher_only=False)
    fields.update(bits)
    return x509.KeyUsage(**fields)
