"""Builders of CMC Full PKI Requests (RFC 5272/6402) around PKCS#10 DER, for tests."""

from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ
from pyasn1_modules import rfc4055, rfc5652, rfc6402

def _tcr(csr_der, body_part_id=1):
    request = rfc6402.TaggedRequest()
    tcr = request["tcr"]
    tcr["bodyPartID"] = body_part_id
    cert_req, _ = decoder.decode(csr_der, asn1Spec=rfc6402.CertificationRequest())
    tcr["certificationRequest"] = cert_req
    return request


def _crm(body_part_id=1):
    request = rfc6402.TaggedRequest()
    cert_req = request["crm"]["certReq"]
    cert_req["certReqId"] = body_part_id
    cert_req["certTemplate"]["version"] = 2
    return request


def _orm(body_part_id=1):
    request = rfc6402.TaggedRequest()
    orm = request["orm"]
    orm["bodyPartID"] = body_part_id
    orm["requestMessageType"] = univ.ObjectIdentifier("1.2.3.4")
    orm["requestMessageValue"] = encoder.encode(univ.Null(""))
    return request


def _pkidata(requests):
    pki = rfc6402.PKIData()
    for name in ("controlSequence", "reqSequence", "cmsSequence", "otherMsgSequence"):
        pki[name].clear()  # present but empty
    for i, request in enumerate(requests):
        pki["reqSequence"][i] = request
    return encoder.encode(pki)


def _content_info(content_type, content_der):
    info = rfc5652.ContentInfo()
    info["contentType"] = content_type
    info["content"] = content_der
    return encoder.encode(info)


def _signed_data(pki_der, e_content_type=rfc6402.id_cct_PKIData, with_content=True):
    sd = rfc5652.SignedData()
    sd["version"] = 3
    digest = sd["digestAlgorithms"][0]
    digest["algorithm"] = rfc4055.id_sha256
    encap = sd["encapContentInfo"]
    encap["eContentType"] = e_content_type
    if with_content:
        encap["eContent"] = pki_der
    sd["signerInfos"].clear()
    return _content_info(rfc5652.id_signedData, encoder.encode(sd))


def shape1(csr_der):
    return _signed_data(_pkidata([_tcr(csr_der)]))


def shape2(csr_der):
    return _content_info(rfc6402.id_cct_PKIData, _pkidata([_tcr(csr_der)]))


def shape3(csr_der):
    return _pkidata([_tcr(csr_der)])
