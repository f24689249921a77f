"""Extract the PKCS#10 request from a CMC Full PKI Request (RFC 5272/6402).

A CMC Full PKI Request is built up in layers; Anchor accepts three shapes:

1. ContentInfo (RFC 5652) with contentType id-signedData. Its SignedData has
   an encapContentInfo whose eContentType is id-cct-PKIData and whose eContent
   is an OCTET STRING holding the DER encoding of a PKIData.
2. ContentInfo with contentType id-cct-PKIData and the PKIData as content.
3. A bare PKIData.

PKIData carries controlSequence, reqSequence, cmsSequence and
otherMsgSequence. Anchor signs exactly one certificate per call, so
reqSequence must hold exactly one TaggedRequest, and that request must be the
``tcr`` (TaggedCertificationRequest, i.e. PKCS#10) choice. The CRMF (``crm``)
and other-request (``orm``) choices are refused. Controls, nested CMS content
and other messages are ignored.

The CMS signature (SignerInfos) is NOT verified. Anchor checks the inner
CSR's own self-signature and authenticates the caller in other ways, just as
it does for a plain PKCS#10 upload.

The CSR is returned in DER form. It is re-encoded by pyasn1's DER encoder, and
those bytes must also appear in the input: so a CSR that was not sent in DER
is refused, and the bytes returned are always exactly the bytes the client
sent.
"""

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1_modules import rfc5652, rfc6402


class CMCError(ValueError):
    """The bytes are not an acceptable CMC request; str(e) is a short client-safe reason."""


def _decode(der, spec, what):
    """DER-decode all of ``der`` as ``spec``; refuse bytes left over after it."""
    value, rest = der_decoder.decode(der, asn1Spec=spec)
    if rest:
        raise CMCError("trailing data after %s" % what)
    return value


def _pkidata_bytes(der):
    """Return the DER PKIData from any of the three accepted shapes."""
    try:
        info = _decode(der, rfc5652.ContentInfo(), "CMS ContentInfo")
    except CMCError:
        raise
    except Exception:
        return der  # not a ContentInfo, so this should be a bare PKIData

    content_type = info["contentType"]
    if content_type == rfc6402.id_cct_PKIData:
        return bytes(info["content"])
    if content_type != rfc5652.id_signedData:
        raise CMCError("unsupported CMC content type %s" % content_type)

    signed = _decode(bytes(info["content"]), rfc5652.SignedData(), "SignedData")
    encap = signed["encapContentInfo"]
    if encap["eContentType"] != rfc6402.id_cct_PKIData:
        raise CMCError("unsupported CMC encapsulated content type %s"
                       % encap["eContentType"])
    if not encap["eContent"].isValue:
        raise CMCError("CMC SignedData has no encapsulated content")
    return bytes(encap["eContent"])


def _unwrap(der):
    pki_der = _pkidata_bytes(der)
    pki_data = _decode(pki_der, rfc6402.PKIData(), "CMC PKIData")

    requests = pki_data["reqSequence"]
    if len(requests) != 1:
        raise CMCError("CMC request contains %d certification requests; "
                       "exactly one is required" % len(requests))
    kind = requests[0].getName()
    if kind != "tcr":
        raise CMCError("unsupported CMC request type '%s'; only PKCS#10 (tcr) "
                       "requests are accepted" % kind)

    csr = requests[0]["tcr"]["certificationRequest"]
    csr_der = der_encoder.encode(csr)
    if csr_der not in pki_der:
        raise CMCError("CMC certification request is not DER encoded")
    return csr_der


def unwrap_cmc(der: bytes) -> bytes:
    """Return the DER bytes of the single PKCS#10 request inside a CMC request.

    Raises CMCError for anything that is not an acceptable CMC Full PKI
    Request; no decoder exception escapes.
    """
    try:
        return _unwrap(bytes(der))
    except CMCError:
        raise
    except Exception:  # PyAsn1Error, RecursionError, ... from hostile input
        raise CMCError("malformed CMC request") from None


def looks_like_cmc(der: bytes) -> bool:
    """Cheap check: does ``der`` decode as a CMS ContentInfo or a bare PKIData?

    Never raises.
    """
    for spec in (rfc5652.ContentInfo(), rfc6402.PKIData()):
        try:
            _decode(bytes(der), spec, "CMC")
            return True
        # Any decoding error only means "not this shape": try the next one.
        except Exception:  # nosec B110
            pass
    return False
