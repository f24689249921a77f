"""The ``static`` backend: one user and secret from config.json."""

import hmac
import logging

from anchor.auth import AuthenticationFailed, AuthResult

LOG = logging.getLogger(__name__)

# The values of the sample config.json: fine for a first try, never for use.
SAMPLE_CREDENTIALS = ("myusername", "simplepassword")


class StaticAuthenticator:
    def __init__(self, user=None, secret=None, **extra):
        for option, value in (("user", user), ("secret", secret)):
            if not isinstance(value, str) or not value:
                raise ValueError("%s must be a non-empty string" % option)
        if extra:
            raise ValueError("unknown option(s): %s" % ", ".join(sorted(extra)))
        self._user = user.encode("utf-8")
        self._secret = secret.encode("utf-8")
        if (user, secret) == SAMPLE_CREDENTIALS:
            LOG.warning(
                "static authentication uses the sample user and secret of "
                "config.json; anyone who read the README can get certificates"
            )

    def authenticate(self, user, secret):
        # Compare both values, always, in constant time: neither the user
        # name nor the length of a matching prefix may show in the timing.
        user_ok = hmac.compare_digest(user.encode("utf-8"), self._user)
        secret_ok = hmac.compare_digest(secret.encode("utf-8"), self._secret)
        if not (user_ok and secret_ok and secret):
            raise AuthenticationFailed("static credentials do not match")
        return AuthResult(username=user)
