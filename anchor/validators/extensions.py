"""Validators that look at the request's extensions."""

from cryptography.x509.oid import ExtensionOID

from anchor.validators import ValidationError, options, string_list
from anchor.x509 import names
from anchor.x509.names import CA_SET_EXTENSIONS, CERTIFICATE_EXTENSIONS


def _ca_status_options(ca_requested=False):
    if ca_requested is not False:
        raise ValueError("ca_requested must be false: Anchor never issues CA certificates")
    return {}


@options(_ca_status_options)
def ca_status(csr, **kwargs):
    """Refuse requests for a CA certificate (always run, whatever the config says).

    A request is refused when basicConstraints says CA:TRUE or keyUsage asks
    for keyCertSign or cRLSign.
    """
    constraints = csr.extension(ExtensionOID.BASIC_CONSTRAINTS)
    if constraints is not None and constraints.value.ca:
        raise ValidationError("request asks for a CA certificate (basicConstraints CA:TRUE)")
    for usage in ("keyCertSign", "cRLSign"):
        if usage in csr.key_usages:
            raise ValidationError("request asks for the %s key usage" % usage)


def critical_extensions_understood(csr, **kwargs):
    """Refuse a request carrying a critical extension Anchor would not copy.

    Anchor copies the extensions in ``CERTIFICATE_EXTENSIONS`` and drops the
    rest when signing.  Dropping a critical one would change the meaning of
    the certificate behind the requester's back, so such a request is refused.
    """
    understood = CERTIFICATE_EXTENSIONS | CA_SET_EXTENSIONS
    for ext in csr.extensions:
        if ext.critical and ext.oid not in understood:
            raise ValidationError("request has an unknown critical extension %s" % ext.oid.dotted_string)


def _extensions_options(allowed_extensions=()):
    allowed = set()
    for name in string_list(allowed_extensions, "allowed_extensions"):
        oid = names.extension_oid(name)
        if oid is None:
            raise ValueError("allowed_extensions entry %r is neither an RFC 5280 extension name "
                             "nor a dotted OID" % name)
        allowed.add(oid)
    return {"allowed_extensions": frozenset(allowed)}


@options(_extensions_options)
def extensions(csr, allowed_extensions, **kwargs):
    """Every extension of the request is in ``allowed_extensions`` (RFC 5280
    names such as ``keyUsage``, or dotted OIDs)."""
    for ext in csr.extensions:
        if ext.oid not in allowed_extensions:
            raise ValidationError("extension %s is not allowed" % _extension_name(ext.oid))


def _extension_name(oid):
    for name, known in names.EXTENSION_NAMES.items():
        if known == oid:
            return name
    return oid.dotted_string


def _key_usage_options(allowed_usage=()):
    allowed = set()
    for name in string_list(allowed_usage, "allowed_usage"):
        short = names.key_usage_name(name)
        if short is None:
            raise ValueError("allowed_usage entry %r is not a key usage; use one of: %s"
                             % (name, ", ".join(names.KEY_USAGES)))
        allowed.add(short)
    return {"allowed_usage": frozenset(allowed)}


@options(_key_usage_options)
def key_usage(csr, allowed_usage, **kwargs):
    """Every keyUsage bit the request asserts is in ``allowed_usage`` (long
    names such as "Digital Signature" or short ones such as digitalSignature)."""
    refused = sorted(csr.key_usages - allowed_usage)
    if refused:
        raise ValidationError("key usage %s is not allowed" % ", ".join(refused))


def _ext_key_usage_options(allowed_usage=()):
    allowed = set()
    for name in string_list(allowed_usage, "allowed_usage"):
        oid = names.extended_key_usage_oid(name)
        if oid is None:
            raise ValueError("allowed_usage entry %r is not an extended key usage name or dotted OID" % name)
        allowed.add(oid)
    return {"allowed_usage": frozenset(allowed)}


@options(_ext_key_usage_options)
def ext_key_usage(csr, allowed_usage, **kwargs):
    """Every extendedKeyUsage purpose of the request is in ``allowed_usage``
    (long names, short names such as serverAuth, or dotted OIDs)."""
    for oid in csr.extended_key_usages:
        if oid not in allowed_usage:
            raise ValidationError("extended key usage %s is not allowed" % oid.dotted_string)
