"""The log target: one CADF event per JSON line on the anchor.audit logger."""

import json
import logging
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import helpers
from anchor import audit
from conftest import webtest_app


@pytest.fixture
def audited(deployment):
    config = deployment.config()
    config["audit"] = {"target": "log"}
    deployment.write_config(config)
    return webtest_app(deployment)


def events(caplog):
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == "anchor.audit"]


def post(client, cn="web.example.com", secret=helpers.SECRET, user=helpers.USER):
    return client.post("/v1/sign/default", {"user": user, "secret": secret, "encoding": "pem",
                                            "csr": helpers.csr_pem(helpers.make_csr(cn)).decode()},
                       expect_errors=True)


def attachment(payload, name):
    return [a["content"] for a in payload.get("attachments", []) if a["name"] == name]


def test_success_emits_auth_and_sign_events(audited, caplog):
    caplog.set_level(logging.INFO, logger="anchor.audit")
    response = post(audited)
    assert response.status_int == 200
    certificate = x509.load_pem_x509_certificate(response.body)
    auth, sign = events(caplog)

    assert auth["event_type"] == "audit.auth"
    payload = auth["payload"]
    assert payload["typeURI"] == "http://schemas.dmtf.org/cloud/audit/1.0/event"
    assert payload["action"] == "authenticate" and payload["outcome"] == "success"
    user_id = str(uuid.uuid5(audit.USER_NAMESPACE, helpers.USER))
    assert payload["initiator"] == {"id": user_id, "typeURI": "service/security/account/user",
                                    "name": helpers.USER}
    assert payload["observer"]["id"] == payload["target"]["id"] == "anchor://authentication"
    assert payload["observer"]["domain"] == "default"

    assert sign["event_type"] == "audit.sign"
    payload = sign["payload"]
    assert payload["action"] == "evaluate" and payload["outcome"] == "success"
    assert payload["initiator"]["id"] == user_id
    assert payload["observer"] == {"id": "anchor://certificates/policy", "typeURI": "service/security",
                                   "domain": "default"}
    assert payload["target"]["id"] == "certificate:" + certificate.fingerprint(hashes.SHA256()).hex()
    details, = attachment(payload, "certificate")
    assert details == {
        "serial": "%x" % certificate.serial_number,
        "subject": "CN=web.example.com",
        "subject_alt_names": [],
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "signing_ca": "default_ca",
    }
    assert attachment(payload, "failure") == []


def test_auth_failure_emits_a_failed_auth_event_and_no_secret(audited, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-s3cret-value"
    assert post(audited, secret=wrong).status_int == 401
    auth, = events(caplog)
    assert auth["event_type"] == "audit.auth"
    assert auth["payload"]["outcome"] == "failure"
    failure, = attachment(auth["payload"], "failure")
    assert failure["stage"] == "auth" and failure["reason"]
    assert wrong not in caplog.text and helpers.SECRET not in caplog.text


def test_validation_failure_names_the_validator(audited, caplog):
    caplog.set_level(logging.INFO, logger="anchor.audit")
    assert post(audited, cn="www.example.org").status_int == 400
    auth, sign = events(caplog)
    assert auth["payload"]["outcome"] == "success"
    assert sign["payload"]["outcome"] == "failure"
    assert sign["payload"]["target"]["id"] == "certificate:none"
    failure, = attachment(sign["payload"], "failure")
    assert failure["stage"] == "validator common_name"
    assert "www.example.org" in failure["reason"]


def test_anonymous_user_gets_a_random_id(audited, caplog):
    caplog.set_level(logging.INFO, logger="anchor.audit")
    post(audited, user="")
    post(audited, user="")
    first, second = [e["payload"]["initiator"] for e in events(caplog)]
    assert first["id"] != second["id"]
    uuid.UUID(first["id"])
    assert "name" not in first


def test_same_user_same_id_across_requests(audited, caplog):
    caplog.set_level(logging.INFO, logger="anchor.audit")
    post(audited)
    post(audited, secret="wrong")
    ids = {e["payload"]["initiator"]["id"] for e in events(caplog)}
    assert len(ids) == 1


def test_no_audit_block_means_no_events(client, caplog):
    caplog.set_level(logging.DEBUG)
    assert post(client).status_int == 200
    assert events(caplog) == []
