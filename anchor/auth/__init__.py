"""Authentication backends.

A backend is registered as an entry point in the ``anchor.authentication``
namespace.  The entry point is a class (or factory) that Anchor calls once at
start-up with the options of an ``authentication`` block of config.json as
keyword arguments (everything but ``backend``); it raises ``ValueError``
naming the problem when they are wrong, and Anchor refuses to start.  The
object it returns has one method::

    authenticate(user, secret) -> AuthResult

which raises :class:`AuthenticationFailed` when the credentials are wrong and
:class:`AuthenticationUnavailable` when the identity service cannot be asked
(the client gets 503 and may retry).  A backend must never log the secret.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class AuthResult:
    """Who the caller is, as far as the authentication backend knows."""

    username: str
    groups: frozenset = frozenset()
    user_id: str | None = None
    project_id: str | None = None


class AuthenticationFailed(Exception):
    """The credentials were refused.  The message is for the log only."""


class AuthenticationUnavailable(Exception):
    """The identity service could not be reached or did not answer in time."""
