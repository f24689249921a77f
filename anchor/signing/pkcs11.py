"""The ``pkcs11`` backend: the CA key stays in an HSM, a TPM or SoftHSM2.

Options of the ``signing_ca`` block besides the common ones:

``pkcs11_path``
    the PKCS#11 module (e.g. ``/usr/lib/softhsm/libsofthsm2.so``).
``token_label`` or ``slot``
    which token: by label (stable) or by slot number (changes when tokens
    are added).
``pin`` or ``pin_file``
    the user PIN, or a file holding it (so it need not sit in config.json).
``key_id``
    the private key's CKA_ID, in hex.

The certificate is built exactly as for the ``anchor`` backend
(:class:`anchor.signing.Signer`); only the signature is computed by the
token, through private-key objects that ``cryptography`` accepts but whose
``sign`` asks the token.  RSA keys sign with PKCS#1 v1.5 (CKM_SHA*_RSA_PKCS),
EC keys with CKM_ECDSA over a digest computed here.

Each process opens and logs in its own session on first use (a session must
not cross a fork, and uwsgi forks workers after loading the app); signing
is serialised on it.  When the token drops the session (reset, removed),
the request that hits it fails and the next one opens a new session.  The
PIN never appears in a log line or an error message.
"""

import logging
import os
import threading

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from anchor.settings import OptionError
from anchor.signing import Signer

try:
    import PyKCS11
except ImportError:  # an optional extra: pip install anchor[pkcs11]
    PyKCS11 = None

LOG = logging.getLogger(__name__)

RSA_MECHANISMS = {
    "sha224": "CKM_SHA224_RSA_PKCS",
    "sha256": "CKM_SHA256_RSA_PKCS",
    "sha384": "CKM_SHA384_RSA_PKCS",
    "sha512": "CKM_SHA512_RSA_PKCS",
}
# Return values after which the session is gone and must be opened anew.
SESSION_LOST = ("CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_CLOSED", "CKR_DEVICE_REMOVED",
                "CKR_TOKEN_NOT_PRESENT", "CKR_DEVICE_ERROR", "CKR_USER_NOT_LOGGED_IN",
                "CKR_CRYPTOKI_NOT_INITIALIZED", "CKR_OBJECT_HANDLE_INVALID", "CKR_KEY_HANDLE_INVALID")


class TokenError(Exception):
    """The token refused or failed an operation (the PIN is never in the message)."""


class Token:
    """A logged-in session on one token and the handle of one private key."""

    def __init__(self, library_path, pin, key_id, slot=None, token_label=None, pin_option="pin"):
        self.library_path, self.key_id = library_path, key_id
        self.slot_number, self.token_label = slot, token_label
        self._pin, self._pin_option = pin, pin_option
        self._lock = threading.Lock()
        self._pid = None
        self._library = self._session = self._key = None

    def describe(self):
        which = "token %r" % self.token_label if self.token_label is not None else "slot %s" % self.slot_number
        return "%s in %s" % (which, self.library_path)

    def _open(self):
        """Load the module, find the token, log in and find the key; OptionError on failure."""
        if not os.path.isfile(self.library_path):
            raise OptionError("pkcs11_path", "no PKCS#11 module at %s" % self.library_path)
        library = PyKCS11.PyKCS11Lib()
        try:
            library.load(self.library_path)
        except PyKCS11.PyKCS11Error as exc:
            raise OptionError("pkcs11_path", "cannot load PKCS#11 module %s: %s"
                              % (self.library_path, exc)) from None
        slot = self._find_slot(library)
        try:
            session = library.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
        except PyKCS11.PyKCS11Error as exc:
            raise OptionError("slot", "cannot open a session on %s: %s" % (self.describe(), exc)) from None
        try:
            session.login(self._pin)
        except PyKCS11.PyKCS11Error as exc:
            if exc.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                session.closeSession()
                raise OptionError(self._pin_option, "login to %s failed: %s" % (self.describe(), _code(exc))) from None
        keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
                                    (PyKCS11.CKA_ID, tuple(self.key_id))])
        if len(keys) != 1:
            session.closeSession()
            raise OptionError("key_id", "%s holds %s private key with CKA_ID %s"
                              % (self.describe(), "no" if not keys else "more than one", self.key_id.hex()))
        key_type = session.getAttributeValue(keys[0], [PyKCS11.CKA_KEY_TYPE])[0]
        self._library, self._session, self._key = library, session, keys[0]
        self.key_type = {PyKCS11.CKK_RSA: "RSA", PyKCS11.CKK_EC: "EC"}.get(key_type, "other")
        self._pid = os.getpid()

    def _find_slot(self, library):
        slots = library.getSlotList(tokenPresent=True)
        if self.token_label is not None:
            for slot in slots:
                if library.getTokenInfo(slot).label.strip() == self.token_label:
                    return slot
            raise OptionError("token_label", "no token labelled %r in %s" % (self.token_label, self.library_path))
        if self.slot_number not in slots:
            raise OptionError("slot", "no token in slot %s of %s (slots with tokens: %s)"
                              % (self.slot_number, self.library_path, ", ".join(map(str, slots)) or "none"))
        return self.slot_number

    def close(self):
        with self._lock:
            self._drop()

    def _drop(self):
        """Close the session and unload the module, so the next use starts afresh."""
        if self._session is not None and self._pid == os.getpid():
            try:
                self._session.closeSession()
            except PyKCS11.PyKCS11Error:
                pass  # already gone
            self._library.unload()
        self._library = self._session = self._key = None

    def sign(self, data, mechanism_name):
        """The token's signature of ``data``; TokenError on failure."""
        mechanism = PyKCS11.Mechanism(getattr(PyKCS11, mechanism_name), None)
        with self._lock:
            if self._session is None or self._pid != os.getpid():
                self._session = None  # a parent's session is not ours to use or close
                try:
                    self._open()
                except OptionError as exc:
                    raise TokenError("cannot reopen %s: %s" % (self.describe(), exc)) from None
            try:
                return bytes(self._session.sign(self._key, data, mechanism))
            except PyKCS11.PyKCS11Error as exc:
                if _code(exc) in SESSION_LOST:
                    LOG.warning("%s dropped the session (%s); it is reopened on the next request",
                                self.describe(), _code(exc))
                    self._drop()
                raise TokenError("%s failed to sign: %s" % (self.describe(), _code(exc))) from None


def _code(exc):
    return PyKCS11.CKR.get(exc.value, "0x%08X" % exc.value) if hasattr(exc, "value") else str(exc)


class _TokenKey:
    """What the two token-backed key classes share: no export, no copies."""

    def __init__(self, token, public_key):
        self._token, self._public_key = token, public_key

    def public_key(self):
        return self._public_key

    @property
    def key_size(self):
        return self._public_key.key_size

    def private_numbers(self):
        raise TypeError("the key is in an HSM and cannot be exported")

    def private_bytes(self, *args, **kwargs):
        raise TypeError("the key is in an HSM and cannot be exported")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class TokenRSAKey(_TokenKey, rsa.RSAPrivateKey):
    def sign(self, data, pad, algorithm):
        if not isinstance(pad, padding.PKCS1v15) or algorithm.name not in RSA_MECHANISMS:
            raise ValueError("the token signs PKCS#1 v1.5 with SHA-2 only")
        return self._token.sign(data, RSA_MECHANISMS[algorithm.name])

    def decrypt(self, ciphertext, pad):
        raise TypeError("the CA key only signs")


class TokenECKey(_TokenKey, ec.EllipticCurvePrivateKey):
    @property
    def curve(self):
        return self._public_key.curve

    def sign(self, data, signature_algorithm):
        digest = hashes.Hash(signature_algorithm.algorithm)
        digest.update(data)
        raw = self._token.sign(digest.finalize(), "CKM_ECDSA")
        half = len(raw) // 2  # the token answers r || s
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))

    def exchange(self, algorithm, peer_public_key):
        raise TypeError("the CA key only signs")


class PKCS11Signer(Signer):
    def __init__(self, settings):
        if PyKCS11 is None:
            raise OptionError("backend", "the pkcs11 backend needs PyKCS11: pip install 'anchor[pkcs11]'")
        options = dict(settings.options)
        token = Token(
            library_path=settings.resolve(_required(options, "pkcs11_path")),
            pin=_pin(options, settings),
            key_id=_key_id(options.pop("key_id", None)),
            pin_option="pin_file" if "pin_file" in settings.options else "pin",
            **_which_token(options),
        )
        if options:
            raise OptionError(sorted(options)[0], "unknown option for the pkcs11 backend")
        super().__init__(settings)
        public_key = self.certificate.public_key()
        token._open()
        if isinstance(public_key, rsa.RSAPublicKey) and token.key_type == "RSA":
            self.private_key = TokenRSAKey(token, public_key)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and token.key_type == "EC":
            self.private_key = TokenECKey(token, public_key)
        else:
            token.close()
            raise OptionError("key_id", "the token's %s key does not match the %s key of %s"
                              % (token.key_type, type(public_key).__name__, settings.cert_path))
        self._check_key(public_key)
        # Each worker opens its own session and loads the module itself: a
        # PKCS#11 session or initialisation must never cross a fork.
        token.close()

    def _check_key(self, public_key):
        """Sign a test message on the token and verify it with the certificate's key."""
        message = b"anchor pkcs11 key check"
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                signature = self.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
                public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            else:
                signature = self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))
                public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            self.private_key._token.close()
            raise OptionError("key_id", "the token's key does not match the CA certificate %s"
                              % self.settings.cert_path) from None
        except TokenError as exc:
            self.private_key._token.close()
            raise OptionError("key_id", str(exc)) from None


def _required(options, name):
    value = options.pop(name, None)
    if not isinstance(value, str) or not value:
        raise OptionError(name, "missing, or not a non-empty string")
    return value


def _which_token(options):
    slot, label = options.pop("slot", None), options.pop("token_label", None)
    if (slot is None) == (label is None):
        raise OptionError("token_label", "give exactly one of token_label (preferred) and slot")
    if label is not None:
        if not isinstance(label, str) or not label:
            raise OptionError("token_label", "must be a non-empty string")
        return {"token_label": label}
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
        raise OptionError("slot", "must be a slot number")
    return {"slot": slot}


def _pin(options, settings):
    pin, pin_file = options.pop("pin", None), options.pop("pin_file", None)
    if (pin is None) == (pin_file is None):
        raise OptionError("pin", "give exactly one of pin and pin_file")
    if pin is not None:
        if not isinstance(pin, str) or not pin:
            raise OptionError("pin", "must be a non-empty string")
        return pin
    if not isinstance(pin_file, str) or not pin_file:
        raise OptionError("pin_file", "must be a path")
    path = settings.resolve(pin_file)
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    except (OSError, UnicodeError) as exc:
        raise OptionError("pin_file", "cannot read %s: %s" % (path, getattr(exc, "strerror", exc))) from None
    if not value:
        raise OptionError("pin_file", "%s is empty" % path)
    return value


def _key_id(value):
    if not isinstance(value, str) or not value:
        raise OptionError("key_id", "missing; give the key's CKA_ID in hex")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise OptionError("key_id", "%r is not hexadecimal" % value) from None
