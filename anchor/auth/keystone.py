"""The ``keystone`` backend: the form's secret is a Keystone token.

The form's ``user`` is ignored.  Anchor validates the token with the
Identity v3 API (``GET /v3/auth/tokens``, the token as ``X-Subject-Token``)
through a keystoneauth1 session and takes the user name and id, the project
id and the role names (as the groups ``server_group`` checks).

Options:

``url``
    Keystone's public endpoint (``https://keystone.example.com``, with or
    without ``/v3``).
``auth_url``, ``username``, ``password``, ``project_name``, ``user_domain_name``, ``project_domain_name``
    optional service credentials, for clouds whose policy does not let a
    token validate itself; without them the token validates itself.
``cache_seconds``
    how long a validated token is remembered (default 60; never past the
    token's own expiry; 0 disables the cache).
``timeout``
    seconds for each call to Keystone (default 5).
``cafile`` / ``insecure``
    TLS verification of an https ``url``.

An expired, revoked or unknown token gives 401; Keystone unreachable, timing
out or failing gives 503.  Tokens are never logged; the cache keys them by
their SHA-256.
"""

import collections
import datetime
import hashlib
import logging
import threading
import time

from keystoneauth1 import exceptions, session
from keystoneauth1.identity import v3

from anchor.auth import AuthenticationFailed, AuthenticationUnavailable, AuthResult

LOG = logging.getLogger(__name__)

SERVICE_OPTIONS = ("auth_url", "username", "password", "project_name", "user_domain_name",
                   "project_domain_name")
CACHE_ENTRIES = 10000


class KeystoneAuthenticator:
    def __init__(self, url=None, cache_seconds=60, timeout=5, cafile=None, insecure=False, **service):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be Keystone's http(s) endpoint, e.g. https://keystone.example.com")
        unknown = sorted(set(service) - set(SERVICE_OPTIONS))
        if unknown:
            raise ValueError("unknown option(s): %s" % ", ".join(unknown))
        for option, value in (("cache_seconds", cache_seconds), ("timeout", timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                    option == "timeout" and value == 0):
                raise ValueError("%s must be a %s number" % (option, "positive" if option == "timeout" else
                                                             "non-negative"))
        if not isinstance(insecure, bool):
            raise ValueError("insecure must be true or false")
        base = url.rstrip("/")
        self.tokens_url = (base if base.endswith("/v3") else base + "/v3") + "/auth/tokens"
        self.cache_seconds, self.timeout = cache_seconds, timeout
        verify = False if insecure else (cafile or True)

        plugin = None
        if service:
            missing = [o for o in ("auth_url", "username", "password", "project_name") if not service.get(o)]
            if missing:
                raise ValueError("service credentials need %s" % ", ".join(missing))
            plugin = v3.Password(
                auth_url=service["auth_url"], username=service["username"], password=service["password"],
                project_name=service["project_name"],
                user_domain_name=service.get("user_domain_name", "Default"),
                project_domain_name=service.get("project_domain_name", "Default"))
        self._session = session.Session(auth=plugin, verify=verify, timeout=timeout)
        self._uses_service_credentials = plugin is not None
        self._cache = collections.OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, user, secret):
        if not secret:
            raise AuthenticationFailed("no token given")
        key = hashlib.sha256(secret.encode("utf-8")).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached
        body, expires = self._validate(secret)
        token = body.get("token", {})
        result = AuthResult(
            username=token.get("user", {}).get("name", ""),
            groups=frozenset(role.get("name") for role in token.get("roles", []) if role.get("name")),
            user_id=token.get("user", {}).get("id"),
            project_id=token.get("project", {}).get("id"),
        )
        self._remember(key, result, expires)
        return result

    def _validate(self, token):
        headers = {"X-Subject-Token": token}
        if not self._uses_service_credentials:
            headers["X-Auth-Token"] = token  # the token validates itself
        try:
            response = self._session.get(self.tokens_url, headers=headers, raise_exc=False)
        except exceptions.Unauthorized:
            LOG.error("Keystone refused Anchor's service credentials")
            raise AuthenticationUnavailable("service credentials refused") from None
        except (exceptions.ConnectionError, exceptions.RequestTimeout, exceptions.ClientException) as exc:
            raise AuthenticationUnavailable("Keystone unreachable: %s" % type(exc).__name__) from None
        if response.status_code == 200:
            try:
                body = response.json()
            except ValueError:
                raise AuthenticationUnavailable("Keystone answered with something that is not JSON") from None
            return body, _expiry(body)
        if response.status_code == 404 or (response.status_code == 401 and not self._uses_service_credentials):
            raise AuthenticationFailed("token invalid, expired or revoked (Keystone %d)" % response.status_code)
        if response.status_code in (401, 403):
            LOG.error("Keystone answered %d to token validation: %s", response.status_code,
                      "check the service credentials" if self._uses_service_credentials else
                      "its policy may forbid self-validation; configure service credentials")
        raise AuthenticationUnavailable("Keystone answered %d" % response.status_code)

    def _cached(self, key):
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            result, until = entry
            if time.monotonic() >= until:
                del self._cache[key]
                return None
            return result

    def _remember(self, key, result, expires):
        lifetime = self.cache_seconds
        if expires is not None:
            remaining = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            lifetime = min(lifetime, remaining)
        if lifetime <= 0:
            return
        with self._lock:
            self._cache[key] = (result, time.monotonic() + lifetime)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)


def _expiry(body):
    text = body.get("token", {}).get("expires_at")
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
