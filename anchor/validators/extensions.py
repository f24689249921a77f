"""Validators that look at the request's extensions."""

from cryptography.x509.oid import ExtensionOID

from anchor.validators import ValidationError, options
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
