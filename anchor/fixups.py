"""Fixups: plain functions that return an adjusted request.

A fixup is registered as an entry point in the ``anchor.fixups`` namespace
and called with the same keyword arguments as a validator (``csr``,
``auth_result``, ``conf``, ``request`` and its options from config.json).
It returns the request to continue with: the same one, or a new one made
with :meth:`~anchor.x509.request.CertificateRequest.replace`.  Fixups run
before the validators, so policy judges exactly what will be signed.
"""

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from anchor.validators.names import normalize_dns_name
from anchor.x509.request import ip_address_or_none


def enforce_alternative_names_present(csr, **kwargs):
    """Copy each common name missing from subjectAltName into it.

    An IP address goes in as an iPAddress entry, anything else as a dNSName
    (a Unicode name in its IDNA A-label form).
    """
    present = csr.subject_alt_names
    missing = []
    for name in csr.common_names:
        address = ip_address_or_none(name)
        if address is not None:
            entry = x509.IPAddress(address)
        elif name.isascii():
            entry = x509.DNSName(name)
        else:
            entry = x509.DNSName(normalize_dns_name(name))
        if entry not in present and entry not in missing:
            missing.append(entry)
    if not missing:
        return csr
    old = csr.extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    critical = old.critical if old is not None else False
    san = x509.SubjectAlternativeName(present + missing)
    return csr.with_extension(x509.Extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, critical, san))
