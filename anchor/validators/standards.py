"""Conformance to RFC 5280 and common sense about request signatures."""

import re

from cryptography.x509.oid import ExtensionOID

from anchor.validators import ValidationError, options

# RFC 1034/1123 host label: letters, digits, inner hyphens, 1 to 63 characters.
DEFAULT_LABEL_RE = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
WEAK_HASHES = frozenset({"md5", "sha1"})


def _standards_options(label_re=DEFAULT_LABEL_RE):
    try:
        return {"label_re": re.compile(label_re, re.IGNORECASE)}
    except (re.error, TypeError) as exc:
        raise ValueError("label_re is not a valid regular expression: %s" % exc) from None


def _check_dns_name(name, label_re):
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    if len(name) > 253:
        raise ValidationError("domain name %r is longer than 253 characters" % name)
    for position, label in enumerate(labels):
        if label == "*" and position == 0 and len(labels) > 1:
            continue
        if not label_re.match(label):
            raise ValidationError("domain name %r has an invalid label %r" % (name, label))


@options(_standards_options)
def standards_compliance(csr, label_re, **kwargs):
    """RFC 5280 structure, valid DNS labels, and a strong valid self-signature."""
    seen = set()
    for ext in csr.extensions:
        if ext.oid in seen:
            raise ValidationError("extension %s appears twice" % ext.oid.dotted_string)
        seen.add(ext.oid)

    san = csr.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if len(csr.subject) == 0:
        if san is None:
            raise ValidationError("the subject is empty and there is no subjectAltName")
        if not san.critical:
            raise ValidationError("subjectAltName must be critical when the subject is empty")

    constraints = csr.extension(ExtensionOID.BASIC_CONSTRAINTS)
    if constraints is not None and not constraints.critical:
        raise ValidationError("basicConstraints must be critical")

    for name in csr.dns_names:
        _check_dns_name(name, label_re)

    self_signature(csr)


def self_signature(csr, **kwargs):
    """The CSR's self-signature verifies over the bytes the client sent, and
    is not made with MD5 or SHA-1: the requester holds the private key.
    Always run, whatever the configuration."""
    if csr.signature_hash_name in WEAK_HASHES:
        raise ValidationError("the request is signed with %s, which is too weak" % csr.signature_hash_name)
    if not csr.signature_valid:
        raise ValidationError("the request's self-signature does not verify")
