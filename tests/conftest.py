"""Shared fixtures: a test CA and an Anchor WSGI app driven by WebTest."""

import dataclasses
import os

import pytest
import webtest

import helpers
from anchor import app as anchor_app


@dataclasses.dataclass
class Deployment:
    """A CA, an output directory and a config.json in a temporary directory."""

    root: str
    ca_cert: object
    ca_key: object
    ca_cert_path: str
    ca_key_path: str
    output_dir: str
    config_path: str

    def write_config(self, data):
        return helpers.write_json(self.config_path, data)

    def config(self, **kwargs):
        return helpers.sample_config(os.path.dirname(self.ca_cert_path), self.output_dir, **kwargs)

    def issued_files(self):
        return sorted(name for name in os.listdir(self.output_dir) if not name.startswith("."))


def make_deployment(root, kind="p256", **config_kwargs):
    ca_dir = os.path.join(root, "CA")
    cert, key, cert_path, key_path = helpers.make_ca(ca_dir, kind)
    output_dir = os.path.join(root, "certs")
    os.makedirs(output_dir, exist_ok=True)
    deployment = Deployment(str(root), cert, key, cert_path, key_path, output_dir,
                            os.path.join(root, "config.json"))
    deployment.write_config(deployment.config(**config_kwargs))
    return deployment


@pytest.fixture
def deployment(tmp_path):
    return make_deployment(str(tmp_path))


def webtest_app(deployment, remote_addr="127.0.0.1"):
    application = anchor_app.make_app(deployment.config_path)
    return webtest.TestApp(application, extra_environ={"REMOTE_ADDR": remote_addr})


@pytest.fixture
def client(deployment):
    """WebTest client of an app on the sample policy, as a client from 127.0.0.1."""
    return webtest_app(deployment)
