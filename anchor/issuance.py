"""The signing flow, from a posted form to a recorded certificate.

    authenticate -> parse -> fix up -> validate -> sign -> record -> audit

Each stage that refuses raises an :class:`IssuanceError` carrying the HTTP
status, a short message for the client and the detail for the log.  Fixups
run before validators, so the validators judge exactly what will be signed.
The certificate is on disk (when the CA has an ``output_path``) before it is
returned.
"""

import dataclasses
import logging

from cryptography.hazmat.primitives import serialization

from anchor.audit import NO_AUDIT
from anchor.auth import AuthenticationFailed, AuthenticationUnavailable
from anchor.validators import ValidationError
from anchor.validators.extensions import ca_status, critical_extensions_understood
from anchor.validators.standards import self_signature
from anchor.x509.decoding import DecodeError, decode_request
from anchor.x509.request import CertificateRequest

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Plugin:
    """A validator or fixup with the options it was configured with."""

    name: str
    function: object
    options: dict

    def __call__(self, **context):
        return self.function(**context, **self.options)


# Checks every RA runs first, whatever its configuration.
ALWAYS_ON = (
    Plugin("self_signature", self_signature, {}),
    Plugin("ca_status", ca_status, {}),
    Plugin("critical_extensions", critical_extensions_understood, {}),
)


@dataclasses.dataclass(frozen=True)
class RegistrationAuthority:
    """An RA with its plugins loaded, ready to serve requests."""

    name: str
    settings: object
    authenticator: object
    signer: object
    store: object  # CertificateStore, or None without output_path
    validators: tuple
    fixups: tuple
    ca_pem: bytes
    audit: object = NO_AUDIT


@dataclasses.dataclass(frozen=True)
class PostedRequest:
    """The fields of the signing form; any may be None when absent."""

    user: str | None
    secret: str | None
    encoding: str | None
    csr: str | bytes | None


class IssuanceError(Exception):
    status = 500

    def __init__(self, stage, public, detail=None):
        super().__init__(detail or public)
        self.stage, self.public, self.detail = stage, public, detail or public


class Unauthorized(IssuanceError):
    status = 401


class BadRequest(IssuanceError):
    status = 400


class Unavailable(IssuanceError):
    status = 503


def issue(ra, posted, request):
    """Run the flow for RA ``ra``; return the certificate in PEM.

    ``request`` is the WebOb request, for validators that look at the
    connection (``source_cidrs``).  Raises IssuanceError.
    """
    user = posted.user or ""
    try:
        auth_result = _authenticate(ra, posted)
        user = auth_result.username or user  # who the backend says it is (Keystone: the token's user)
        csr = _parse(posted)
        context = {"auth_result": auth_result, "conf": ra.settings, "request": request}
        for fixup in ra.fixups:
            csr = _fix_up(fixup, csr, context)
        for validator in ALWAYS_ON + ra.validators:
            _validate(validator, csr, context)
        certificate = _sign(ra, csr)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        _record(ra, certificate, pem)
    except IssuanceError as error:
        LOG.warning("RA %s refused a request from user %r at stage %s: %s",
                    ra.name, user, error.stage, error.detail)
        if error.stage != "auth":
            ra.audit.sign(ra.name, False, user, ca_name=ra.settings.signing_ca, stage=error.stage,
                          reason=error.detail)
        raise
    LOG.info("RA %s issued serial %x to user %r: %s, valid until %s",
             ra.name, certificate.serial_number, user, certificate.subject.rfc4514_string(),
             certificate.not_valid_after_utc.isoformat())
    ra.audit.sign(ra.name, True, user, certificate=certificate, ca_name=ra.settings.signing_ca)
    return pem


def _authenticate(ra, posted):
    try:
        if not posted.secret:
            raise AuthenticationFailed("no secret given")
        # The user may be empty: some backends ignore it (Keystone takes the
        # user from the token); the others refuse an empty one themselves.
        result = ra.authenticator.authenticate(posted.user or "", posted.secret)
    except AuthenticationFailed as exc:
        ra.audit.auth(ra.name, False, posted.user, reason=str(exc))
        raise Unauthorized("auth", "authentication failed", str(exc)) from None
    except AuthenticationUnavailable as exc:
        ra.audit.auth(ra.name, False, posted.user, reason=str(exc))
        raise Unavailable("auth", "authentication service unavailable, retry later", str(exc)) from None
    except Exception:
        LOG.exception("authentication backend of RA %s crashed", ra.name)
        ra.audit.auth(ra.name, False, posted.user, reason="backend error")
        raise IssuanceError("auth", "authentication error", "authentication backend crashed") from None
    ra.audit.auth(ra.name, True, result.username or posted.user)
    return result


def _parse(posted):
    if posted.csr is None:
        raise BadRequest("parse", "missing csr field")
    try:
        return decode_request(posted.csr, posted.encoding or "pem")
    except DecodeError as exc:
        raise BadRequest("parse", "invalid certificate request: %s" % exc,
                         "invalid certificate request: %s" % exc.detail) from None


def _fix_up(fixup, csr, context):
    try:
        result = fixup(csr=csr, **context)
    except ValidationError as exc:
        raise _refused(context, "fixup " + fixup.name, exc) from None
    except Exception:
        LOG.exception("fixup %s crashed", fixup.name)
        raise IssuanceError("fixup " + fixup.name, "Internal Validation Error", "fixup crashed") from None
    if not isinstance(result, CertificateRequest):
        LOG.error("fixup %s returned %r instead of a request", fixup.name, type(result).__name__)
        raise IssuanceError("fixup " + fixup.name, "Internal Validation Error", "fixup returned no request")
    return result


def _refused(context, stage, exc):
    """The 400 for a policy refusal; it says which check and why only when
    the RA sets ``explain_failures``."""
    public = "request refused by policy"
    if context["conf"].explain_failures:
        public = "%s: %s: %s" % (public, stage, exc)
    return BadRequest(stage, public, str(exc))


def _validate(validator, csr, context):
    try:
        validator(csr=csr, **context)
    except ValidationError as exc:
        raise _refused(context, "validator " + validator.name, exc) from None
    except Exception:
        LOG.exception("validator %s crashed", validator.name)
        raise IssuanceError("validator " + validator.name, "Internal Validation Error",
                            "validator crashed") from None


def _sign(ra, csr):
    try:
        return ra.signer.sign(csr)
    except Exception:
        LOG.exception("signing CA %s failed to sign", ra.settings.signing_ca)
        raise IssuanceError("signing", "certificate signing error", "signing backend failed") from None


def _record(ra, certificate, pem):
    if ra.store is None:
        return
    try:
        ra.store.record(certificate, pem)
    except OSError as exc:
        LOG.error("could not record certificate serial %x in %s: %s; not returning it",
                  certificate.serial_number, ra.store.path, exc)
        raise IssuanceError("record", "certificate signing error",
                            "certificate could not be recorded: %s" % exc.strerror) from None

