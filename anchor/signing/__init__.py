"""Signing backends and the certificate they all build.

A signing backend is registered as an entry point in the
``anchor.signing_backends`` namespace.  The entry point is a class (or
factory) that Anchor calls once at start-up with the
:class:`~anchor.settings.SigningCASettings` of a ``signing_ca`` block.  It
loads what it needs then (CA certificate, key or HSM session) and raises
``ValueError`` (or :class:`~anchor.settings.OptionError` naming the option)
when something is wrong, so Anchor refuses to start.  The object returned
has:

``certificate``
    the CA certificate (``cryptography.x509.Certificate``);
``sign(request) -> cryptography.x509.Certificate``
    sign a :class:`~anchor.x509.request.CertificateRequest`; raise any
    exception on failure (the client gets 500, nothing is issued).

The easy way to write one is to subclass :class:`Signer` and set
``self.private_key`` to any ``cryptography`` private key object, including a
subclass of ``RSAPrivateKey`` or ``EllipticCurvePrivateKey`` whose ``sign``
asks an HSM: the certificate is then built here, the same for every backend.
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509.oid import ExtensionOID

from anchor.settings import OptionError
from anchor.x509.names import CERTIFICATE_EXTENSIONS

HASHES = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def load_ca_certificate(settings):
    """The CA certificate at ``settings.cert_path``, or OptionError."""
    try:
        with open(settings.cert_path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise OptionError("cert_path", "cannot read %s: %s" % (settings.cert_path, exc.strerror)) from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        try:
            return x509.load_der_x509_certificate(data)
        except ValueError:
            raise OptionError("cert_path", "%s is not a PEM or DER certificate" % settings.cert_path) from None


def public_key_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Signer:
    """Certificate building shared by all backends; subclasses provide the key."""

    private_key = None

    def __init__(self, settings):
        self.settings = settings
        self.certificate = load_ca_certificate(settings)
        try:
            ski = self.certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
            self._authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        except x509.ExtensionNotFound:
            self._authority_key_id = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.certificate.public_key())
        self._valid_for = datetime.timedelta(hours=settings.valid_hours)

    def check_key_matches_certificate(self, option):
        if public_key_der(self.private_key.public_key()) != public_key_der(self.certificate.public_key()):
            raise OptionError(option, "the key does not match the CA certificate %s" % self.settings.cert_path)

    @property
    def hash_algorithm(self):
        if isinstance(self.private_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            return None  # EdDSA signs the message itself, with no separate hash
        return HASHES[self.settings.signing_hash]()

    def sign(self, request, now=None):
        """Build and sign the certificate for ``request``."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.certificate.subject)
            .public_key(request.public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - self.settings.backdate)
            .not_valid_after(now + self._valid_for)
        )
        for ext in request.extensions:
            if ext.oid in CERTIFICATE_EXTENSIONS:
                builder = builder.add_extension(ext.value, ext.critical)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(request.public_key), False)
        builder = builder.add_extension(self._authority_key_id, False)
        return builder.sign(self.private_key, self.hash_algorithm)
