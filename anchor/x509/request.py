"""The certificate request as validators and fixups see it.

A :class:`CertificateRequest` wraps the CSR the client sent and describes the
certificate it asks for: subject, extensions and public key.  It is
immutable; a fixup that changes something gets a new request from
:meth:`CertificateRequest.replace`.  The self-signature always refers to the
bytes the client sent, whatever fixups did afterwards.
"""

import functools
import ipaddress

from cryptography import exceptions, x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from anchor.x509 import names


class CertificateRequest:
    """Derived views (names, usages, key facts) are computed once, on first use."""

    def __init__(self, csr, subject=None, extensions=None):
        self.csr = csr
        self.subject = csr.subject if subject is None else subject
        # Reading csr.extensions parses them: duplicates or malformed
        # extensions raise ValueError here, while decoding the request.
        self.extensions = tuple(csr.extensions if extensions is None else extensions)
        self.public_key = csr.public_key()

    def replace(self, subject=None, extensions=None):
        """A new request with the given subject and/or extensions."""
        return CertificateRequest(
            self.csr,
            self.subject if subject is None else subject,
            self.extensions if extensions is None else extensions,
        )

    def with_extension(self, extension):
        """A new request where ``extension`` replaces any with the same OID."""
        kept = [e for e in self.extensions if e.oid != extension.oid]
        return self.replace(extensions=kept + [extension])

    # -- subject ---------------------------------------------------------

    @functools.cached_property
    def common_names(self):
        return [attr.value for attr in self.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]

    # -- extensions ------------------------------------------------------

    def extension(self, name_or_oid):
        """The extension with that RFC 5280 name or OID, or None."""
        oid = name_or_oid
        if isinstance(name_or_oid, str):
            oid = names.extension_oid(name_or_oid)
        for ext in self.extensions:
            if ext.oid == oid:
                return ext
        return None

    @functools.cached_property
    def subject_alt_names(self):
        """The subjectAltName GeneralNames, or an empty list."""
        ext = self.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        return list(ext.value) if ext is not None else []

    @functools.cached_property
    def dns_names(self):
        return [n.value for n in self.subject_alt_names if isinstance(n, x509.DNSName)]

    @functools.cached_property
    def ip_addresses(self):
        return [n.value for n in self.subject_alt_names if isinstance(n, x509.IPAddress)]

    @functools.cached_property
    def other_alt_names(self):
        """subjectAltName entries that are neither DNS names nor IP addresses."""
        return [
            n for n in self.subject_alt_names
            if not isinstance(n, (x509.DNSName, x509.IPAddress))
        ]

    @functools.cached_property
    def key_usages(self):
        """The keyUsage bits asserted, as RFC 5280 short names."""
        ext = self.extension(ExtensionOID.KEY_USAGE)
        if ext is None:
            return frozenset()
        usage = ext.value
        asserted = set()
        for short, (_long, attr) in names.KEY_USAGES.items():
            if attr in ("encipher_only", "decipher_only") and not usage.key_agreement:
                continue  # cryptography refuses to read these without keyAgreement
            if getattr(usage, attr):
                asserted.add(short)
        return frozenset(asserted)

    @functools.cached_property
    def extended_key_usages(self):
        """The extendedKeyUsage OIDs, in request order."""
        ext = self.extension(ExtensionOID.EXTENDED_KEY_USAGE)
        return list(ext.value) if ext is not None else []

    # -- key and signature ----------------------------------------------

    @functools.cached_property
    def public_key_type(self):
        key = self.public_key
        for cls, label in (
            (rsa.RSAPublicKey, "RSA"),
            (ec.EllipticCurvePublicKey, "EC"),
            (ed25519.Ed25519PublicKey, "Ed25519"),
            (ed448.Ed448PublicKey, "Ed448"),
            (dsa.DSAPublicKey, "DSA"),
        ):
            if isinstance(key, cls):
                return label
        return type(key).__name__

    @functools.cached_property
    def public_key_size(self):
        """Bits: modulus for RSA/DSA, curve size for EC, 255/448 for EdDSA."""
        key = self.public_key
        if isinstance(key, ed25519.Ed25519PublicKey):
            return 255
        if isinstance(key, ed448.Ed448PublicKey):
            return 448
        if isinstance(key, ec.EllipticCurvePublicKey):
            return key.curve.key_size
        return getattr(key, "key_size", 0)

    @functools.cached_property
    def signature_hash_name(self):
        """The CSR's signature hash ("sha256", "sha1", ...), or None for EdDSA."""
        try:
            algorithm = self.csr.signature_hash_algorithm
        except exceptions.UnsupportedAlgorithm:
            return "unsupported"
        return algorithm.name if algorithm is not None else None

    @functools.cached_property
    def signature_valid(self):
        """Whether the CSR's self-signature verifies over the bytes the client sent."""
        try:
            return self.csr.is_signature_valid
        except (ValueError, exceptions.UnsupportedAlgorithm):
            return False


def ip_address_or_none(text):
    """``text`` as an IP address, or None when it is not one."""
    if ":" not in text and not text[-1:].isdigit():
        return None  # neither IPv6 nor dotted IPv4: skip the costly parse
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
