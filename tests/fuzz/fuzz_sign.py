#!/usr/bin/env python3
"""Coverage-guided fuzz target (atheris) for everything a client controls.

The input bytes are split into the form fields (user, secret, encoding,
csr) of a signing request and posted to the Anchor WSGI app in-process; the
CSR bytes reach PEM/DER decoding, CMC unwrapping, the request model, every
validator and the fixup of a broad policy.  The property: the answer is 2xx
or 4xx, never 5xx.  Run it through tools/fuzz (bounded time); the seed
corpus is tests/fuzz/corpus/.
"""

import logging
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    import webtest

    from anchor import app as anchor_app

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import helpers  # noqa: E402

SEPARATOR = b"\n--field--\n"


def build_app():
    root = tempfile.mkdtemp(prefix="anchor-fuzz-")
    helpers.make_ca(os.path.join(root, "CA"), "p256")
    os.makedirs(os.path.join(root, "certs"))
    config = helpers.sample_config(os.path.join(root, "CA"), os.path.join(root, "certs"),
                                   validators=helpers.BROAD_POLICY, fixups=helpers.BROAD_FIXUPS)
    config["registration_authority"]["default"]["explain_failures"] = True
    path = helpers.write_json(os.path.join(root, "config.json"), config)
    return anchor_app.make_app(path)


APP = None


def split(data):
    """user, secret, encoding, csr from the fuzzer's bytes."""
    parts = data.split(SEPARATOR, 3)
    while len(parts) < 4:
        parts.insert(0, b"")
    return parts


def post(fields):
    boundary = b"fuzz-boundary"
    body = b"".join(b'--%s\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
                    % (boundary, name, b'; filename="x"' if name == b"csr" else b"", value)
                    for name, value in fields) + b"--%s--\r\n" % boundary
    request = webtest.TestRequest.blank("/v1/sign/default", {"REMOTE_ADDR": "127.0.0.1"}, method="POST",
                                        body=body, content_type="multipart/form-data; boundary=fuzz-boundary")
    return request.get_response(APP)


def test_one_input(data):
    user, secret, encoding, csr = split(data)
    if not user:
        user, secret = helpers.USER.encode(), helpers.SECRET.encode()
    response = post([(b"user", user), (b"secret", secret), (b"encoding", encoding or b"der"), (b"csr", csr)])
    if response.status_int >= 500:
        raise AssertionError("status %s for input %r: %r" % (response.status, data[:200], response.body[:200]))


def main():
    global APP
    APP = build_app()
    logging.disable(logging.WARNING)  # every refusal is logged; keep the fuzzer's output readable
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
