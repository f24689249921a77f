"""config.json: lookup, parsing, the legacy flat format, and every way a
configuration can be refused at start-up.

Each refusal must be a ``settings.ConfigError`` whose message is ONE line
"<path>: <where>: <problem>", raised before the first request is served.
"""

import datetime
import json
import logging
import os

import pecan.configuration
import pytest
import webtest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import helpers
from anchor import app as anchor_app
from anchor import settings

RA = "registration_authority.default"
VALIDATORS = RA + ".validators"
CA = "signing_ca.default_ca"
AUTH = "authentication.default_auth"


# --------------------------------------------------------------------------
# helpers


def assert_one_line(message):
    assert "\n" not in message and "\r" not in message, "message is not one line: %r" % message


def check_error(exc, path, where, *problems):
    """The ConfigError names the file, the place and the problem, on one line."""
    message = str(exc)
    assert_one_line(message)
    path = os.path.abspath(path)
    if where:
        assert message.startswith("%s: %s: " % (path, where)), message
        assert exc.where == where
    else:
        assert message.startswith("%s: " % path), message
    assert exc.path == path
    for problem in problems:
        assert problem in message, "%r not in %r" % (problem, message)
    return message


def expect_error(path, where, *problems, loader=anchor_app.make_app):
    with pytest.raises(settings.ConfigError) as info:
        loader(path)
    return check_error(info.value, path, where, *problems)


def write_text(path, text, mode="w"):
    with open(path, mode) as handle:
        handle.write(text)
    return str(path)


def sign(client, cn="host.example.com", user=helpers.USER, secret=helpers.SECRET):
    form = {"user": user, "secret": secret, "encoding": "pem",
            "csr": helpers.csr_pem(helpers.make_csr(cn=cn)).decode()}
    return client.post("/v1/sign/default", form, expect_errors=True)


def client_for(path):
    return webtest.TestApp(anchor_app.make_app(path), extra_environ={"REMOTE_ADDR": "127.0.0.1"})


def legacy_config(deployment, validators=None, auth=None):
    ca_dir = os.path.dirname(deployment.ca_cert_path)
    return {
        "auth": auth if auth is not None else {"static": {"user": helpers.USER, "secret": helpers.SECRET}},
        "ca": {
            "cert_path": os.path.join(ca_dir, "root-ca.crt"),
            "key_path": os.path.join(ca_dir, "root-ca-unwrapped.key"),
            "output_path": deployment.output_dir,
            "signing_hash": "sha256",
            "valid_hours": 24,
        },
        "validators": validators if validators is not None
        else {"common_name": {"allowed_domains": [".example.com"]}},
    }


def anchor_records(caplog, level=logging.WARNING):
    return [r for r in caplog.records if r.name.startswith("anchor") and r.levelno >= level]


# --------------------------------------------------------------------------
# the baseline: the fixture's configuration is good


def test_sample_deployment_loads_and_signs(deployment):
    config = settings.load(deployment.config_path)
    assert set(config.registration_authority) == {"default"}
    ca = config.signing_ca["default_ca"]
    assert ca.valid_hours == 24
    assert ca.backdate == datetime.timedelta(minutes=settings.DEFAULT_BACKDATE_MINUTES)
    response = sign(client_for(deployment.config_path))
    assert response.status_int == 200, response.text
    assert response.text.startswith("-----BEGIN CERTIFICATE-----")


# --------------------------------------------------------------------------
# 1. not JSON, not an object, unreadable


@pytest.mark.parametrize("text, problem", [
    ("", "is not valid JSON"),
    ("{not json", "is not valid JSON"),
    ('{"authentication": {}', "is not valid JSON"),
    ("{'single': 'quotes'}", "is not valid JSON"),
    (b"\xff\xfe{\x00}", "is not valid JSON"),
    ("[]", "the top level must be a JSON object"),
    ('[{"authentication": {}}]', "the top level must be a JSON object"),
    ('"authentication"', "the top level must be a JSON object"),
    ("42", "the top level must be a JSON object"),
    ("null", "the top level must be a JSON object"),
])
def test_not_json_or_not_an_object(tmp_path, text, problem):
    path = str(tmp_path / "config.json")
    write_text(path, text, "wb" if isinstance(text, bytes) else "w")
    expect_error(path, "", problem, loader=settings.load)
    expect_error(path, "", problem)


def test_file_unreadable(tmp_path):
    # chmod 000 does not stop root, so a directory stands in for an unreadable file.
    path = str(tmp_path / "config.json")
    os.mkdir(path)
    expect_error(path, "", "cannot be read", "Is a directory", loader=settings.load)


def test_file_missing(tmp_path):
    path = str(tmp_path / "absent.json")
    expect_error(path, "", "cannot be read", "No such file or directory", loader=settings.load)


# --------------------------------------------------------------------------
# 2. and 3. the top-level blocks


@pytest.mark.parametrize("block", settings.BLOCKS)
@pytest.mark.parametrize("value", ["absent", {}, [], None, "x"])
def test_missing_or_empty_block(deployment, block, value):
    config = deployment.config()
    if value == "absent":
        del config[block]
    else:
        config[block] = value
    deployment.write_config(config)
    expect_error(deployment.config_path, block, "missing or empty block", loader=settings.load)


@pytest.mark.parametrize("block, problem", [
    ("extra", "unknown top-level block"),
    ("registration_authorities", "unknown top-level block"),
])
def test_unknown_top_level_block(deployment, block, problem):
    config = deployment.config()
    config[block] = {"anything": {}}
    deployment.write_config(config)
    expect_error(deployment.config_path, block, problem, loader=settings.load)


# --------------------------------------------------------------------------
# 4. registration authority references and options


@pytest.mark.parametrize("key, value, where, problem", [
    ("authentication", "nope", RA + ".authentication", "no authentication block named 'nope'"),
    ("signing_ca", "nope", RA + ".signing_ca", "no signing_ca block named 'nope'"),
    ("authentication", None, RA + ".authentication", "missing, or not a non-empty string"),
    ("signing_ca", "", RA + ".signing_ca", "missing, or not a non-empty string"),
    ("bogus", True, RA, "unknown option(s): bogus"),
    ("validators", [], VALIDATORS, "must be a JSON object"),
    ("fixups", "x", RA + ".fixups", "must be a JSON object"),
])
def test_registration_authority_errors(deployment, key, value, where, problem):
    config = deployment.config()
    config["registration_authority"]["default"][key] = value
    deployment.write_config(config)
    expect_error(deployment.config_path, where, problem)


def test_registration_authority_not_an_object(deployment):
    config = deployment.config()
    config["registration_authority"]["default"] = ["default_auth", "default_ca"]
    deployment.write_config(config)
    expect_error(deployment.config_path, RA, "must be a JSON object", loader=settings.load)


# --------------------------------------------------------------------------
# 5. unknown plugins: the message lists what is installed


@pytest.mark.parametrize("kind", ["validator", "fixup", "authentication backend", "signing backend"])
def test_unknown_plugin(deployment, kind):
    config = deployment.config()
    ra = config["registration_authority"]["default"]
    if kind == "validator":
        ra["validators"]["no_such_check"] = {}
        where, installed = VALIDATORS + ".no_such_check", ["common_name", "source_cidrs",
                                                           "standards_compliance", "ca_status"]
    elif kind == "fixup":
        ra["fixups"] = {"no_such_check": {}}
        where, installed = RA + ".fixups.no_such_check", ["enforce_alternative_names_present"]
    elif kind == "authentication backend":
        config["authentication"]["default_auth"]["backend"] = "no_such_check"
        where, installed = AUTH + ".backend", ["static"]
    else:
        config["signing_ca"]["default_ca"]["backend"] = "no_such_check"
        where, installed = CA + ".backend", ["anchor"]
    deployment.write_config(config)
    message = expect_error(deployment.config_path, where, "unknown %s 'no_such_check'" % kind)
    listed = message.split("installed:", 1)[1]
    for name in installed:
        assert name in listed


@pytest.mark.parametrize("block, where", [("authentication", AUTH), ("signing_ca", CA)])
def test_backend_missing(deployment, block, where):
    config = deployment.config()
    del config[block][where.split(".")[1]]["backend"]
    deployment.write_config(config)
    expect_error(deployment.config_path, where + ".backend", "missing, or not a non-empty string",
                 loader=settings.load)


# --------------------------------------------------------------------------
# 6. validator options


@pytest.mark.parametrize("validator, options, problem", [
    ("common_name", {"allowed_domains": ["example.com"]}, "must start with '.'"),
    ("common_name", {"allowed_domains": [".example.com", "other.org"]}, "'other.org' must start with '.'"),
    ("common_name", {"allowed_domains": ["."]}, "names no domain"),
    ("common_name", {"allowed_domains": ".example.com"}, "allowed_domains must be a list of strings"),
    ("common_name", {"allowed_domains": []}, "allowed_domains is empty"),
    ("common_name", {}, "allowed_domains is empty"),
    ("common_name", {"allowed_domains": [], "allow_any": False}, "allowed_domains is empty"),
    ("common_name", {"allowed_domains": [], "allow_any": "yes"}, "allow_any must be true or false"),
    ("common_name", {"allowed_domains": [".example.com"], "allowed_networks": ["10.0.0.0/33"]},
     "'10.0.0.0/33' is not an IP network"),
    ("source_cidrs", {"cidrs": ["10.0.0.300/8"]}, "cidrs entry '10.0.0.300/8' is not an IP network"),
    ("source_cidrs", {"cidrs": ["localhost"]}, "cidrs entry 'localhost' is not an IP network"),
    ("source_cidrs", {"cidrs": []}, "cidrs is empty"),
    ("standards_compliance", {"label_re": "("}, "label_re is not a valid regular expression"),
    ("standards_compliance", {"label_re": "[a-z"}, "label_re is not a valid regular expression"),
    ("ca_status", {"ca_requested": True}, "ca_requested must be false"),
])
def test_validator_option_errors(deployment, validator, options, problem):
    config = deployment.config()
    config["registration_authority"]["default"]["validators"][validator] = options
    deployment.write_config(config)
    expect_error(deployment.config_path, VALIDATORS + "." + validator, problem)


def test_allow_any_lets_empty_allowed_domains_load(deployment):
    config = deployment.config(validators={
        "common_name": {"allowed_domains": [], "allow_any": True},
        "standards_compliance": {},
    })
    deployment.write_config(config)
    client = client_for(deployment.config_path)
    # any name is allowed now, not only .example.com
    response = sign(client, cn="host.other.org")
    assert response.status_int == 200, response.text


def test_ca_status_with_ca_requested_false_loads(deployment):
    config = deployment.config()
    config["registration_authority"]["default"]["validators"]["ca_status"] = {"ca_requested": False}
    deployment.write_config(config)
    assert sign(client_for(deployment.config_path)).status_int == 200


# --------------------------------------------------------------------------
# 7. the CA certificate and key


def test_ca_certificate_missing(deployment):
    os.remove(deployment.ca_cert_path)
    expect_error(deployment.config_path, CA + ".cert_path", "cannot read", deployment.ca_cert_path,
                 "No such file or directory")


@pytest.mark.parametrize("content", ["garbage", "key", "empty"])
def test_ca_certificate_not_a_certificate(deployment, content):
    data = {"garbage": b"this is not a certificate\n", "empty": b"",
            "key": helpers.key_pem(deployment.ca_key)}[content]
    write_text(deployment.ca_cert_path, data, "wb")
    expect_error(deployment.config_path, CA + ".cert_path", "is not a PEM or DER certificate",
                 deployment.ca_cert_path)


def test_ca_key_missing(deployment):
    os.chmod(deployment.ca_key_path, 0o600)
    os.remove(deployment.ca_key_path)
    expect_error(deployment.config_path, CA + ".key_path", "cannot read", deployment.ca_key_path,
                 "No such file or directory")


def test_ca_key_path_missing_from_config(deployment):
    config = deployment.config()
    del config["signing_ca"]["default_ca"]["key_path"]
    deployment.write_config(config)
    expect_error(deployment.config_path, CA + ".key_path", "missing")


def test_ca_key_unreadable(deployment, tmp_path):
    # chmod 000 does not stop root (the tests run as root), so the
    # unreadable key is a directory instead.
    directory = tmp_path / "a-directory.key"
    directory.mkdir()
    deployment.write_config(deployment.config(key_path=str(directory)))
    expect_error(deployment.config_path, CA + ".key_path", "cannot read", str(directory),
                 "Is a directory")


@pytest.mark.parametrize("mode", [0o600, 0o444, 0o440, 0o404, 0o700, 0o000])
def test_ca_key_mode_refused(deployment, mode):
    os.chmod(deployment.ca_key_path, mode)
    expect_error(deployment.config_path, CA + ".key_path", "has mode %04o" % mode,
                 "it must be 0400", deployment.ca_key_path)


def test_ca_key_does_not_match_certificate(deployment, tmp_path):
    _, _, _, other_key_path = helpers.make_ca(str(tmp_path / "other-CA"), common_name="Other CA")
    deployment.write_config(deployment.config(key_path=other_key_path))
    expect_error(deployment.config_path, CA + ".key_path", "the key does not match the CA certificate",
                 deployment.ca_cert_path)


def test_ca_key_encrypted(deployment):
    pem = deployment.ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase"))
    os.chmod(deployment.ca_key_path, 0o600)
    write_text(deployment.ca_key_path, pem, "wb")
    os.chmod(deployment.ca_key_path, 0o400)
    expect_error(deployment.config_path, CA + ".key_path", "is encrypted", deployment.ca_key_path)


def test_ca_key_not_a_key(deployment):
    os.chmod(deployment.ca_key_path, 0o600)
    with open(deployment.ca_cert_path, "rb") as handle:
        write_text(deployment.ca_key_path, handle.read(), "wb")
    os.chmod(deployment.ca_key_path, 0o400)
    expect_error(deployment.config_path, CA + ".key_path", "is not a PEM private key")


def test_signing_ca_unknown_option(deployment):
    deployment.write_config(deployment.config(key_pass="secret"))
    expect_error(deployment.config_path, CA + ".key_pass", "unknown option for the anchor backend")


# --------------------------------------------------------------------------
# 8. valid_hours and backdate_minutes


@pytest.mark.parametrize("value", [0, -1, -0.5, "24", True, False, None, "missing", [24], {},
                                   float("nan"), float("inf"), float("-inf")],
                         ids=repr)
def test_valid_hours_refused(deployment, value):
    config = deployment.config()
    if value == "missing":
        del config["signing_ca"]["default_ca"]["valid_hours"]
    else:
        config["signing_ca"]["default_ca"]["valid_hours"] = value
    deployment.write_config(config)
    if isinstance(value, float) and value != value:
        # Python's json writes (and reads) the non-standard NaN literal
        assert '"valid_hours": NaN' in open(deployment.config_path).read()
    expect_error(deployment.config_path, CA + ".valid_hours", "must be a positive number",
                 loader=settings.load)
    expect_error(deployment.config_path, CA + ".valid_hours", "must be a positive number")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_valid_hours_non_standard_json_literals(deployment, literal):
    text = json.dumps(deployment.config(valid_hours=24)).replace('"valid_hours": 24', '"valid_hours": ' + literal)
    assert literal in text
    write_text(deployment.config_path, text)
    expect_error(deployment.config_path, CA + ".valid_hours", "must be a positive number")


@pytest.mark.parametrize("value", [1e9, 1e300])
def test_valid_hours_past_year_9999(deployment, value):
    # positive and finite, but the certificates would end after the year 9999
    deployment.write_config(deployment.config(valid_hours=value))
    expect_error(deployment.config_path, CA + ".valid_hours", repr(value))


@pytest.mark.parametrize("value", [1, 0.25, 24, 24 * 365])
def test_valid_hours_accepted(deployment, value):
    deployment.write_config(deployment.config(valid_hours=value))
    assert settings.load(deployment.config_path).signing_ca["default_ca"].valid_hours == value
    response = sign(client_for(deployment.config_path))
    assert response.status_int == 200, response.text
    cert = x509.load_pem_x509_certificate(response.body)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    backdate = datetime.timedelta(minutes=settings.DEFAULT_BACKDATE_MINUTES)
    assert abs(lifetime - backdate - datetime.timedelta(hours=value)) < datetime.timedelta(seconds=2)


@pytest.mark.parametrize("value", [-1, -0.5, "5", True, None, [5], float("nan"), float("inf"),
                                   float("-inf")], ids=repr)
def test_backdate_minutes_refused(deployment, value):
    deployment.write_config(deployment.config(backdate_minutes=value))
    expect_error(deployment.config_path, CA + ".backdate_minutes", "must be a non-negative number",
                 loader=settings.load)


@pytest.mark.parametrize("value", [1e20, 1e10])
def test_backdate_minutes_out_of_range_refused(deployment, value):
    # 1e20 minutes does not fit a timedelta; 1e10 minutes (19,000 years)
    # does, but subtracting it from now leaves year 1: every request would
    # then fail with 500.  Both must be refused at start-up.
    deployment.write_config(deployment.config(backdate_minutes=value))
    expect_error(deployment.config_path, CA + ".backdate_minutes")


@pytest.mark.parametrize("value", [0, 0.0, 1, 60])
def test_backdate_minutes_accepted(deployment, value):
    deployment.write_config(deployment.config(backdate_minutes=value))
    ca = settings.load(deployment.config_path).signing_ca["default_ca"]
    assert ca.backdate == datetime.timedelta(minutes=value)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    response = sign(client_for(deployment.config_path))
    assert response.status_int == 200, response.text
    cert = x509.load_pem_x509_certificate(response.body)
    expected = before - datetime.timedelta(minutes=value)
    assert abs(cert.not_valid_before_utc - expected) < datetime.timedelta(seconds=3)


# --------------------------------------------------------------------------
# 9. signing_hash


@pytest.mark.parametrize("value", ["md5", "sha1", "SHA256", "sha3_256", "", None, 256])
def test_signing_hash_refused(deployment, value):
    deployment.write_config(deployment.config(signing_hash=value))
    expect_error(deployment.config_path, CA + ".signing_hash", "unsupported hash %r" % (value,),
                 loader=settings.load)


@pytest.mark.parametrize("value", ["sha224", "sha256", "sha384", "sha512"])
def test_signing_hash_accepted(deployment, value):
    deployment.write_config(deployment.config(signing_hash=value))
    response = sign(client_for(deployment.config_path))
    assert response.status_int == 200, response.text
    cert = x509.load_pem_x509_certificate(response.body)
    assert cert.signature_hash_algorithm.name == value


# --------------------------------------------------------------------------
# 10. output_path


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_output_path_not_a_directory(deployment, tmp_path, kind):
    target = tmp_path / ("no-such-dir" if kind == "missing" else "a-file")
    if kind == "file":
        target.write_text("not a directory\n")
    deployment.write_config(deployment.config(output_path=str(target)))
    expect_error(deployment.config_path, CA + ".output_path", "is not a directory", str(target))


def test_output_path_optional(deployment):
    config = deployment.config()
    del config["signing_ca"]["default_ca"]["output_path"]
    deployment.write_config(config)
    assert settings.load(deployment.config_path).signing_ca["default_ca"].output_path is None
    assert sign(client_for(deployment.config_path)).status_int == 200
    assert deployment.issued_files() == []


# --------------------------------------------------------------------------
# 11. the static authentication backend


@pytest.mark.parametrize("change, problem", [
    ({"user": None}, "user must be a non-empty string"),
    ({"secret": None}, "secret must be a non-empty string"),
    ({"user": ""}, "user must be a non-empty string"),
    ({"secret": ""}, "secret must be a non-empty string"),
    ({"secret": 1234}, "secret must be a non-empty string"),
    ({"password": "x"}, "unknown option(s): password"),
])
def test_static_backend_errors(deployment, change, problem):
    config = deployment.config()
    auth = config["authentication"]["default_auth"]
    for key, value in change.items():
        if value is None:
            del auth[key]
        else:
            auth[key] = value
    deployment.write_config(config)
    expect_error(deployment.config_path, AUTH, problem)


def test_static_sample_credentials_warn(deployment, caplog):
    config = deployment.config()
    config["authentication"]["default_auth"].update(user="myusername", secret="simplepassword")
    deployment.write_config(config)
    with caplog.at_level(logging.WARNING, logger="anchor"):
        anchor_app.make_app(deployment.config_path)
    warnings = [r for r in anchor_records(caplog) if r.name == "anchor.auth.static"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "sample" in warnings[0].getMessage()


@pytest.mark.parametrize("user, secret", [(helpers.USER, helpers.SECRET),
                                          ("myusername", "another-secret"),
                                          ("someone", "simplepassword")])
def test_static_other_credentials_do_not_warn(deployment, caplog, user, secret):
    config = deployment.config()
    config["authentication"]["default_auth"].update(user=user, secret=secret)
    deployment.write_config(config)
    with caplog.at_level(logging.DEBUG, logger="anchor"):
        anchor_app.make_app(deployment.config_path)
    assert anchor_records(caplog) == []


def test_sample_config_json_loads_with_warning(tmp_path, caplog, monkeypatch):
    """The repository's config.json, dropped next to a CA, loads (and warns)."""
    with open(os.path.join(helpers.REPO, "config.json")) as handle:
        sample = json.load(handle)
    helpers.make_ca(str(tmp_path / "CA"))
    (tmp_path / "certs").mkdir()
    path = helpers.write_json(str(tmp_path / "config.json"), sample)
    monkeypatch.chdir("/")
    with caplog.at_level(logging.WARNING, logger="anchor"):
        anchor_app.make_app(path)
    assert [r.name for r in anchor_records(caplog)] == ["anchor.auth.static"]


# --------------------------------------------------------------------------
# 12. the legacy flat format


def test_legacy_mapping_form(deployment, caplog):
    deployment.write_config(legacy_config(deployment))
    with caplog.at_level(logging.WARNING, logger="anchor.settings"):
        config = settings.load(deployment.config_path)
    warnings = [r for r in caplog.records if r.name == "anchor.settings" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "deprecated" in warnings[0].getMessage()
    assert deployment.config_path in warnings[0].getMessage()

    assert set(config.registration_authority) == {"default"}
    ra = config.registration_authority["default"]
    assert config.authentication[ra.authentication].backend == "static"
    assert config.authentication[ra.authentication].options == {"user": helpers.USER, "secret": helpers.SECRET}
    ca = config.signing_ca[ra.signing_ca]
    assert ca.backend == "anchor"
    assert ca.cert_path == deployment.ca_cert_path
    assert ca.output_path == deployment.output_dir
    assert ca.valid_hours == 24
    assert [(v.name, v.options) for v in ra.validators] == [
        ("common_name", {"allowed_domains": [".example.com"]})]
    anchor_app.make_app(deployment.config_path)


def test_legacy_list_form(deployment, caplog):
    validators = [{"name": "x", "steps": [["common_name", {"allowed_domains": [".example.com"]}],
                                          ["standards_compliance", {}]]}]
    deployment.write_config(legacy_config(deployment, validators=validators))
    with caplog.at_level(logging.WARNING, logger="anchor.settings"):
        config = settings.load(deployment.config_path)
    assert any(r.name == "anchor.settings" and r.levelno == logging.WARNING and "deprecated" in r.getMessage()
               for r in caplog.records)
    ra = config.registration_authority["default"]
    assert [(v.name, v.options) for v in ra.validators] == [
        ("common_name", {"allowed_domains": [".example.com"]}), ("standards_compliance", {})]
    client = client_for(deployment.config_path)
    assert sign(client).status_int == 200
    # the translated common_name validator is in force
    assert sign(client, cn="host.other.org").status_int == 400


def test_legacy_two_validator_sets(deployment):
    validators = [{"name": "a", "steps": [["common_name", {"allowed_domains": [".example.com"]}]]},
                  {"name": "b", "steps": [["standards_compliance", {}]]}]
    deployment.write_config(legacy_config(deployment, validators=validators))
    expect_error(deployment.config_path, "validators", "only one validator set", loader=settings.load)


def test_legacy_bad_step(deployment):
    validators = [{"name": "a", "steps": ["common_name"]}]
    deployment.write_config(legacy_config(deployment, validators=validators))
    expect_error(deployment.config_path, "validators[0].steps", "each step must be [name, {options}]",
                 loader=settings.load)


@pytest.mark.parametrize("auth", [
    {"static": {"user": "a", "secret": "b"}, "keystone": {"url": "http://localhost"}},
    {},
    "static",
])
def test_legacy_auth_must_name_one_backend(deployment, auth):
    deployment.write_config(legacy_config(deployment, auth=auth))
    expect_error(deployment.config_path, "auth", "exactly one backend", loader=settings.load)


def test_legacy_ca_missing(deployment):
    config = legacy_config(deployment)
    del config["ca"]
    deployment.write_config(config)
    expect_error(deployment.config_path, "ca", "missing, or not a JSON object", loader=settings.load)


def test_legacy_unknown_block(deployment):
    config = legacy_config(deployment)
    config["extra"] = {}
    deployment.write_config(config)
    expect_error(deployment.config_path, "extra", "unknown top-level block", loader=settings.load)


def test_legacy_errors_in_translated_blocks_name_the_translation(deployment):
    config = legacy_config(deployment)
    config["ca"]["valid_hours"] = 0
    deployment.write_config(config)
    expect_error(deployment.config_path, "signing_ca.default.valid_hours", "must be a positive number")


def test_legacy_config_signs(deployment):
    deployment.write_config(legacy_config(deployment))
    client = webtest.TestApp(anchor_app.make_app(deployment.config_path),
                             extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    response = client.post("/v1/sign/default", {
        "user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
        "csr": helpers.csr_pem(helpers.make_csr()).decode(),
    })
    assert response.status_int == 200
    cert = x509.load_pem_x509_certificate(response.body)
    assert cert.issuer == deployment.ca_cert.subject
    assert len(deployment.issued_files()) == 1
    # and the legacy credentials are the ones checked
    assert sign(client, secret="wrong").status_int == 401


# --------------------------------------------------------------------------
# 13. relative paths


def test_relative_paths_resolved_against_config_directory(deployment, tmp_path, monkeypatch):
    config = deployment.config(cert_path="CA/root-ca.crt", key_path="CA/root-ca-unwrapped.key",
                               output_path="certs")
    deployment.write_config(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    loaded = settings.load(deployment.config_path).signing_ca["default_ca"]
    assert loaded.cert_path == os.path.join(deployment.root, "CA", "root-ca.crt")
    assert loaded.output_path == os.path.join(deployment.root, "certs")
    assert loaded.resolve("CA/root-ca-unwrapped.key") == deployment.ca_key_path

    client = client_for(deployment.config_path)
    assert sign(client).status_int == 200
    assert len(deployment.issued_files()) == 1
    assert os.listdir(elsewhere) == []


def test_relative_config_path_is_made_absolute(deployment, monkeypatch):
    deployment.write_config(deployment.config(cert_path="CA/root-ca.crt", key_path="CA/root-ca-unwrapped.key",
                                              output_path="certs"))
    monkeypatch.chdir(deployment.root)
    config = settings.load("config.json")
    assert os.path.isabs(config.path)
    assert os.path.samefile(config.path, deployment.config_path)
    assert os.path.isabs(config.signing_ca["default_ca"].cert_path)


def test_relative_path_error_names_resolved_path(deployment, tmp_path, monkeypatch):
    deployment.write_config(deployment.config(cert_path="CA/nope.crt"))
    monkeypatch.chdir(tmp_path)
    expect_error(deployment.config_path, CA + ".cert_path", os.path.join(deployment.root, "CA", "nope.crt"))


# --------------------------------------------------------------------------
# 14. where config.json is looked for


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty cwd, an empty HOME and an empty VIRTUAL_ENV; returns their paths."""
    cwd, home, venv = tmp_path / "cwd", tmp_path / "home", tmp_path / "venv"
    for directory in (cwd, home, venv):
        directory.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ANCHOR_CONF", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    return {"cwd": os.getcwd(), "home": str(home), "venv": str(venv), "tmp": str(tmp_path)}


def put_config(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_text(path, "{}")
    return path


def test_candidate_paths_order(places):
    environ = {"HOME": places["home"], "VIRTUAL_ENV": places["venv"]}
    assert settings.candidate_paths(environ) == [
        os.path.join(places["cwd"], "config.json"),
        os.path.join(places["home"], ".config", "anchor", "config.json"),
        os.path.join(places["venv"], "etc", "anchor", "config.json"),
        "/etc/anchor/config.json",
    ]
    assert settings.candidate_paths({"HOME": places["home"]}) == [
        os.path.join(places["cwd"], "config.json"),
        os.path.join(places["home"], ".config", "anchor", "config.json"),
        "/etc/anchor/config.json",
    ]


def test_anchor_conf_wins(places):
    explicit = put_config(os.path.join(places["tmp"], "explicit", "anchor.json"))
    put_config(os.path.join(places["cwd"], "config.json"))
    put_config(os.path.join(places["home"], ".config", "anchor", "config.json"))
    environ = {"ANCHOR_CONF": explicit, "HOME": places["home"], "VIRTUAL_ENV": places["venv"]}
    assert settings.find_config(environ) == explicit


def test_anchor_conf_missing_is_an_error(places):
    put_config(os.path.join(places["cwd"], "config.json"))
    missing = os.path.join(places["tmp"], "nowhere", "config.json")
    with pytest.raises(settings.ConfigError) as info:
        settings.find_config({"ANCHOR_CONF": missing, "HOME": places["home"]})
    check_error(info.value, missing, "", "ANCHOR_CONF", "does not exist")


def test_anchor_conf_directory_is_an_error(places):
    put_config(os.path.join(places["cwd"], "config.json"))
    with pytest.raises(settings.ConfigError) as info:
        settings.find_config({"ANCHOR_CONF": places["home"], "HOME": places["home"]})
    check_error(info.value, places["home"], "", "ANCHOR_CONF")


def test_current_directory_next(places):
    here = put_config(os.path.join(places["cwd"], "config.json"))
    put_config(os.path.join(places["home"], ".config", "anchor", "config.json"))
    put_config(os.path.join(places["venv"], "etc", "anchor", "config.json"))
    found = settings.find_config({"HOME": places["home"], "VIRTUAL_ENV": places["venv"]})
    assert found == here


def test_home_next(places):
    home = put_config(os.path.join(places["home"], ".config", "anchor", "config.json"))
    put_config(os.path.join(places["venv"], "etc", "anchor", "config.json"))
    found = settings.find_config({"HOME": places["home"], "VIRTUAL_ENV": places["venv"]})
    assert found == home


def test_virtual_env_next(places):
    venv = put_config(os.path.join(places["venv"], "etc", "anchor", "config.json"))
    assert settings.find_config({"HOME": places["home"], "VIRTUAL_ENV": places["venv"]}) == venv


def test_nothing_found(places):
    if os.path.exists("/etc/anchor/config.json"):
        raise AssertionError("this machine has /etc/anchor/config.json; the test needs it absent")
    environ = {"HOME": places["home"], "VIRTUAL_ENV": places["venv"]}
    with pytest.raises(settings.ConfigError) as info:
        settings.find_config(environ)
    message = str(info.value)
    assert_one_line(message)
    assert "not found" in message and "ANCHOR_CONF" in message
    candidates = settings.candidate_paths(environ)
    assert len(candidates) == 4
    for candidate in candidates:
        assert candidate in message


def test_make_app_without_path_uses_anchor_conf(deployment, places, monkeypatch):
    monkeypatch.setenv("ANCHOR_CONF", deployment.config_path)
    client = webtest.TestApp(anchor_app.make_app(), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert sign(client).status_int == 200


def test_load_without_path_and_nothing_found(places):
    if os.path.exists("/etc/anchor/config.json"):
        raise AssertionError("this machine has /etc/anchor/config.json; the test needs it absent")
    with pytest.raises(settings.ConfigError) as info:
        settings.load()
    assert "not found" in str(info.value)
    assert_one_line(str(info.value))


# --------------------------------------------------------------------------
# 15. start-up through Pecan's entry point


def pecan_config():
    return pecan.configuration.conf_from_dict(
        {"app": {"root": "anchor.controllers.RootController", "modules": ["anchor"]}})


@pytest.mark.parametrize("problem", ["bad-domain", "bad-json", "missing-file"])
def test_setup_app_exits_on_bad_config(deployment, monkeypatch, problem):
    path = deployment.config_path
    if problem == "bad-domain":
        deployment.write_config(deployment.config(validators={"common_name": {"allowed_domains": ["example.com"]}}))
        expected = [path, VALIDATORS + ".common_name", "must start with '.'"]
    elif problem == "bad-json":
        write_text(path, "{")
        expected = [path, "is not valid JSON"]
    else:
        path = os.path.join(deployment.root, "absent.json")
        expected = [path, "does not exist"]
    monkeypatch.setenv("ANCHOR_CONF", path)
    with pytest.raises(SystemExit) as info:
        anchor_app.setup_app(pecan_config())
    code = info.value.code
    assert isinstance(code, str)
    assert code.startswith("anchor: configuration error:")
    assert_one_line(code)
    for text in expected:
        assert text in code


def test_setup_app_good_config(deployment, monkeypatch):
    monkeypatch.setenv("ANCHOR_CONF", deployment.config_path)
    application = anchor_app.setup_app(pecan_config())
    client = webtest.TestApp(application, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert sign(client).status_int == 200


# --------------------------------------------------------------------------
# the one-line promise holds whatever the names in config.json contain


@pytest.mark.parametrize("place", ["top-level", "ra-option", "static-option", "ca-option", "validator"])
def test_error_is_one_line_even_with_newline_in_a_name(deployment, place):
    name = "bad\nname"
    config = deployment.config()
    if place == "top-level":
        config[name] = {}
    elif place == "ra-option":
        config["registration_authority"]["default"][name] = 1
    elif place == "static-option":
        config["authentication"]["default_auth"][name] = 1
    elif place == "ca-option":
        config["signing_ca"]["default_ca"][name] = 1
    else:
        config["registration_authority"]["default"]["validators"][name] = {}
    deployment.write_config(config)
    with pytest.raises(settings.ConfigError) as info:
        anchor_app.make_app(deployment.config_path)
    assert_one_line(str(info.value))
    assert deployment.config_path in str(info.value)


def test_misspelt_validator_option_is_refused(deployment):
    """A typo in an option name must not silently drop the restriction."""
    config = deployment.config(validators={
        "common_name": {"allowed_domains": [".example.com"], "alowed_networks": ["10.0.0.0/8"]}})
    deployment.write_config(config)
    with pytest.raises(settings.ConfigError) as caught:
        anchor_app.make_app(deployment.config_path)
    message = str(caught.value)
    assert "registration_authority.default.validators.common_name" in message
    assert "alowed_networks" in message and "\n" not in message


@pytest.mark.parametrize("audit, where, problem", [
    ({"target": "syslog"}, "audit.target", "must be one of log, messaging"),
    ({}, "audit.target", "must be one of log, messaging"),
    ("log", "audit", "must be a JSON object"),
    ({"target": "messaging"}, "audit.url", "missing"),
    ({"target": "messaging", "url": "rabbit://h:5672/", "timeout": 0}, "audit.timeout", "positive"),
    ({"target": "messaging", "url": "rabbit://h:5672/", "max_held_events": 0}, "audit.max_held_events",
     "at least 1"),
    ({"target": "log", "colour": "blue"}, "audit", "unknown option"),
])
def test_audit_block_errors(deployment, audit, where, problem):
    config = deployment.config()
    config["audit"] = audit
    deployment.write_config(config)
    expect_error(deployment.config_path, where, problem)


def test_malformed_messaging_url_stops_start_up(deployment):
    config = deployment.config()
    config["audit"] = {"target": "messaging", "url": "not a url"}
    deployment.write_config(config)
    message = expect_error(deployment.config_path, "audit.url", "not an oslo.messaging transport URL")
    assert "not a url" not in message
