"""Audit hook.

:mod:`anchor.issuance` reports every authentication and every signing
decision here.  This version records nothing: CADF events to the log and to
the message bus are yet to come, and config.json's ``audit`` block is
refused at start-up until they do.  An implementation overrides both
methods; neither may raise nor block the request for long, and neither is
ever given a secret.
"""


class Audit:
    def auth(self, ra_name, success, user, reason=None):
        """An authentication attempt against RA ``ra_name`` (event audit.auth)."""

    def sign(self, ra_name, success, user, certificate=None, stage=None, reason=None):
        """A signing decision (event audit.sign): the certificate on success,
        the refusing stage and its reason on failure."""


NO_AUDIT = Audit()
