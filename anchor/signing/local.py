"""The ``anchor`` backend: a CA key in a local PEM file.

Options of the ``signing_ca`` block besides the common ones: ``key_path``,
the unencrypted PKCS#8 or traditional PEM key (RSA, ECDSA or Ed25519),
which must be readable by its owner only (mode 0400).
"""

import os
import stat

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from anchor.settings import OptionError
from anchor.signing import Signer

SUPPORTED_KEYS = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                  ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


class LocalSigner(Signer):
    def __init__(self, settings):
        options = dict(settings.options)
        key_path = options.pop("key_path", None)
        if options:
            raise OptionError(sorted(options)[0], "unknown option for the anchor backend")
        if not isinstance(key_path, str) or not key_path:
            raise OptionError("key_path", "missing, or not a non-empty string")
        super().__init__(settings)
        self.private_key = load_private_key(settings.resolve(key_path))
        self.check_key_matches_certificate("key_path")


def load_private_key(path):
    try:
        with open(path, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            data = handle.read()
    except OSError as exc:
        raise OptionError("key_path", "cannot read %s: %s" % (path, exc.strerror)) from None
    if mode != 0o400:
        raise OptionError("key_path", "%s has mode %04o; it must be 0400 (readable by its owner only)"
                          % (path, mode))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise OptionError("key_path", "%s is encrypted; Anchor needs an unencrypted key" % path) from None
    except ValueError:
        raise OptionError("key_path", "%s is not a PEM private key" % path) from None
    if not isinstance(key, SUPPORTED_KEYS):
        raise OptionError("key_path", "%s holds a %s key; use RSA, ECDSA or Ed25519"
                          % (path, type(key).__name__))
    return key
