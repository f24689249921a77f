"""Name tables for extensions, key usages and extended key usages.

Configuration files name these things the way OpenSSL prints them (long
names such as "Digital Signature") or the way RFC 5280 spells them (short
names such as ``digitalSignature``).  These tables map both to what
``cryptography`` uses, so the rest of Anchor never compares strings.
"""

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

# RFC 5280 extension names accepted in configuration, by their OID.
EXTENSION_NAMES = {
    "basicConstraints": ExtensionOID.BASIC_CONSTRAINTS,
    "keyUsage": ExtensionOID.KEY_USAGE,
    "extendedKeyUsage": ExtensionOID.EXTENDED_KEY_USAGE,
    "subjectAltName": ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    "subjectKeyIdentifier": ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    "authorityKeyIdentifier": ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    "nameConstraints": ExtensionOID.NAME_CONSTRAINTS,
    "certificatePolicies": ExtensionOID.CERTIFICATE_POLICIES,
    "policyMappings": ExtensionOID.POLICY_MAPPINGS,
    "policyConstraints": ExtensionOID.POLICY_CONSTRAINTS,
    "cRLDistributionPoints": ExtensionOID.CRL_DISTRIBUTION_POINTS,
    "issuingDistributionPoint": ExtensionOID.ISSUING_DISTRIBUTION_POINT,
    "deltaCRLIndicator": ExtensionOID.DELTA_CRL_INDICATOR,
    "privateKeyUsagePeriod": x509.ObjectIdentifier("2.5.29.16"),
    "subjectDirectoryAttributes": x509.ObjectIdentifier("2.5.29.9"),
    "certificateIssuer": x509.ObjectIdentifier("2.5.29.29"),
    "issuerAltName": ExtensionOID.ISSUER_ALTERNATIVE_NAME,
}

# Extensions Anchor copies from a request into the certificate it signs.
# Anything else in a request is dropped when non-critical and refused when
# critical; subjectKeyIdentifier and authorityKeyIdentifier are always set
# by the CA itself.
CERTIFICATE_EXTENSIONS = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.POLICY_CONSTRAINTS,
    ExtensionOID.INHIBIT_ANY_POLICY,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.SUBJECT_INFORMATION_ACCESS,
    ExtensionOID.TLS_FEATURE,
})
CA_SET_EXTENSIONS = frozenset({
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
})

# keyUsage bits: RFC 5280 short name -> (OpenSSL long name, cryptography attribute).
KEY_USAGES = {
    "digitalSignature": ("Digital Signature", "digital_signature"),
    "nonRepudiation": ("Non Repudiation", "content_commitment"),
    "keyEncipherment": ("Key Encipherment", "key_encipherment"),
    "dataEncipherment": ("Data Encipherment", "data_encipherment"),
    "keyAgreement": ("Key Agreement", "key_agreement"),
    "keyCertSign": ("Certificate Sign", "key_cert_sign"),
    "cRLSign": ("CRL Sign", "crl_sign"),
    "encipherOnly": ("Encipher Only", "encipher_only"),
    "decipherOnly": ("Decipher Only", "decipher_only"),
}

# extendedKeyUsage purposes: short name -> (OpenSSL long name, OID).
EXTENDED_KEY_USAGES = {
    "serverAuth": ("TLS Web Server Authentication", ExtendedKeyUsageOID.SERVER_AUTH),
    "clientAuth": ("TLS Web Client Authentication", ExtendedKeyUsageOID.CLIENT_AUTH),
    "codeSigning": ("Code Signing", ExtendedKeyUsageOID.CODE_SIGNING),
    "emailProtection": ("E-mail Protection", ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "timeStamping": ("Time Stamping", ExtendedKeyUsageOID.TIME_STAMPING),
    "OCSPSigning": ("OCSP Signing", ExtendedKeyUsageOID.OCSP_SIGNING),
    "anyExtendedKeyUsage": ("Any Extended Key Usage", ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE),
}


def _dotted_oid(text):
    try:
        return x509.ObjectIdentifier(text)
    except ValueError:
        return None


def extension_oid(name):
    """The OID of an extension given by RFC 5280 name or dotted OID, or None."""
    return EXTENSION_NAMES.get(name) or _dotted_oid(name)


def key_usage_name(name):
    """The RFC 5280 short name of a keyUsage given by short or long name, or None."""
    if name in KEY_USAGES:
        return name
    for short, (long_name, _attr) in KEY_USAGES.items():
        if long_name == name:
            return short
    return None


def extended_key_usage_oid(name):
    """The OID of an extended key usage given by short name, long name or dotted OID."""
    if name in EXTENDED_KEY_USAGES:
        return EXTENDED_KEY_USAGES[name][1]
    for long_name, oid in EXTENDED_KEY_USAGES.values():
        if long_name == name:
            return oid
    return _dotted_oid(name)
