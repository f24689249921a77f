"""Fixups, and their place in the flow: before the validators."""

import ipaddress

from cryptography import x509

import helpers
from anchor.fixups import enforce_alternative_names_present
from anchor.x509.request import CertificateRequest
from conftest import webtest_app


def test_cn_copied_into_new_san():
    request = CertificateRequest(helpers.make_csr("a.example.com"))
    fixed = enforce_alternative_names_present(csr=request)
    assert fixed.dns_names == ["a.example.com"]
    assert request.dns_names == []  # the original request is untouched


def test_ip_cn_becomes_ip_entry_and_existing_entries_stay():
    request = CertificateRequest(helpers.make_csr("10.1.2.3", dns=["b.example.com"]))
    fixed = enforce_alternative_names_present(csr=request)
    assert fixed.dns_names == ["b.example.com"]
    assert fixed.ip_addresses == [ipaddress.ip_address("10.1.2.3")]


def test_nothing_to_do_returns_same_request():
    request = CertificateRequest(helpers.make_csr("a.example.com", dns=["a.example.com"]))
    assert enforce_alternative_names_present(csr=request) is request


def sign(client, csr):
    return client.post("/v1/sign/default", {"user": helpers.USER, "secret": helpers.SECRET,
                                            "encoding": "pem", "csr": helpers.csr_pem(csr).decode()},
                       expect_errors=True)


def test_fixup_output_is_what_gets_signed(deployment):
    validators = {"common_name": {"allowed_domains": [".example.com"]}}
    deployment.write_config(deployment.config(
        validators=validators, fixups={"enforce_alternative_names_present": {}}))
    response = sign(webtest_app(deployment), helpers.make_csr("a.example.com"))
    assert response.status_int == 200
    certificate = x509.load_pem_x509_certificate(response.body)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.com"]


def test_validators_judge_the_fixed_up_request(deployment):
    # standards_compliance checks subjectAltName labels, not the CN.  The CN
    # below has a bad label: alone it passes, but once the fixup copies it
    # into the SAN the validators see it and refuse.
    validators = {"common_name": {"allowed_domains": [".example.com"]}, "standards_compliance": {}}
    csr = helpers.make_csr("bad_label.example.com")
    deployment.write_config(deployment.config(validators=validators))
    assert sign(webtest_app(deployment), csr).status_int == 200
    deployment.write_config(deployment.config(
        validators=validators, fixups={"enforce_alternative_names_present": {}}))
    assert sign(webtest_app(deployment), csr).status_int == 400
