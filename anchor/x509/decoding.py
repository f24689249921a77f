"""Turn what a client posted into a :class:`CertificateRequest`.

Accepted forms of the ``csr`` field:

``encoding=pem``
    A PEM block with any BEGIN/END label (``CERTIFICATE REQUEST``,
    ``NEW CERTIFICATE REQUEST``, ``CMC``...), as text or as a file upload.
``encoding=der``
    DER bytes, either as a file upload (``curl -F csr=@req.der``) or as a
    base64 text field (``curl -F csr="$(base64 -w0 req.der)"``).

In both cases the DER inside is a PKCS#10 request, or a CMC Full PKI Request
carrying exactly one (see :mod:`anchor.x509.cmc`).
"""

import base64
import binascii
import re

from cryptography import exceptions, x509

from anchor.x509.cmc import CMCError, looks_like_cmc, unwrap_cmc
from anchor.x509.request import CertificateRequest

ENCODINGS = ("pem", "der")

_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n(.*?)-----END \1-----", re.DOTALL
)


class DecodeError(ValueError):
    """The request could not be decoded; the message is safe to show the
    client, ``detail`` (for the log) may name the parser's complaint."""

    def __init__(self, message, detail=None):
        super().__init__(message)
        self.detail = detail or message


def decode_request(data, encoding):
    """Decode the posted ``csr`` field (str or bytes) in the given encoding."""
    if encoding not in ENCODINGS:
        raise DecodeError("unknown encoding %r; use one of: %s" % (encoding, ", ".join(ENCODINGS)))
    if isinstance(data, str):
        try:
            data = data.encode("ascii")
        except UnicodeEncodeError:
            raise DecodeError("the CSR field must be ASCII text (PEM or base64)") from None
        textual = True
    else:
        textual = False
    if not data.strip():
        raise DecodeError("the CSR is empty")
    if encoding == "pem":
        der = _pem_to_der(data)
    elif textual:
        der = _base64_to_der(data)
    else:
        der = data
    return request_from_der(der)


def _pem_to_der(data):
    match = _PEM_BLOCK.search(data)
    if match is None:
        raise DecodeError("no PEM block (-----BEGIN ...----- / -----END ...-----) found")
    return _base64_to_der(match.group(2))


def _base64_to_der(data):
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("the CSR is not valid base64") from None


def request_from_der(der):
    """A CertificateRequest from PKCS#10 DER, or from a CMC wrapper around one."""
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError:
        if not looks_like_cmc(der):
            raise DecodeError("the data is not a PKCS#10 certificate request") from None
        try:
            csr = x509.load_der_x509_csr(unwrap_cmc(der))
        except CMCError as exc:
            raise DecodeError(str(exc)) from None
        except ValueError:
            raise DecodeError("the CMC request does not carry a valid PKCS#10 request") from None
    try:
        return CertificateRequest(csr)
    except (ValueError, x509.DuplicateExtension, exceptions.UnsupportedAlgorithm) as exc:
        raise DecodeError("the certificate request has a malformed extension or an unsupported key",
                          "the certificate request cannot be used: %s" % _short(exc)) from None


def _short(exc):
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
