"""The ``ldap`` backend: bind to a directory as the user (ldap3).

Three ways to find the user, by option:

``domain`` (Active Directory, as the original Anchor)
    bind as ``user@domain`` (a UPN), search ``(sAMAccountName=<user>)``
    under ``base``, and take as groups the first RDN value of each
    ``memberOf`` DN whose parent is ``OU=Groups``.
``user_dn_template`` (OpenLDAP, FreeIPA)
    bind as the template with ``{user}`` replaced, e.g.
    ``uid={user},ou=People,dc=example,dc=com``, and read the user's own
    entry.
``user_filter``
    search ``base`` for the filter with ``{user}`` replaced, e.g.
    ``(uid={user})``, anonymously or as ``bind_dn``/``bind_password``;
    then bind as the one entry found.

In the last two, groups are the first RDN value of each DN in
``group_attribute`` (default ``memberOf``).  Other options: ``host``,
``port`` (default 389, or 636 with ``ssl``), ``ssl`` (LDAPS), ``starttls``,
``ca_file`` (CA bundle to verify the server; system CAs otherwise),
``timeout`` (seconds for connecting and for each answer, default 5).

Every user-supplied value is escaped: as an RDN value in DNs, as a filter
value in filters.  An empty password is refused before the server is
contacted (a simple bind with an empty password is an anonymous bind).
Wrong credentials give 401; the server unreachable or timing out, 503.
"""

import logging
import ssl as ssl_module

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from anchor.auth import AuthenticationFailed, AuthenticationUnavailable, AuthResult

LOG = logging.getLogger(__name__)


def group_names(dns, only_under_groups_ou=False):
    """The first RDN value of each group DN (each parsed once); with
    ``only_under_groups_ou``, only groups whose parent is ``OU=Groups``.
    Malformed DNs from the directory are skipped."""
    names = []
    for dn in dns:
        try:
            parts = parse_dn(dn)
        # A malformed DN from the directory: skip it.
        except Exception:  # nosec B112
            continue
        if not parts:
            continue
        if only_under_groups_ou and not (len(parts) > 1 and parts[1][0].lower() == "ou"
                                         and parts[1][1].lower() == "groups"):
            continue
        names.append(parts[0][1])
    return names


class LDAPAuthenticator:
    def __init__(self, host=None, port=None, ssl=False, starttls=False, ca_file=None, timeout=5,
                 base=None, domain=None, user_dn_template=None, user_filter=None,
                 group_attribute="memberOf", bind_dn=None, bind_password=None):
        if not isinstance(host, str) or not host:
            raise ValueError("host must be the directory's host name")
        for option, value in (("ssl", ssl), ("starttls", starttls)):
            if not isinstance(value, bool):
                raise ValueError("%s must be true or false" % option)
        if ssl and starttls:
            raise ValueError("use either ssl (LDAPS) or starttls, not both")
        if port is None:
            port = 636 if ssl else 389
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("port must be a TCP port number")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError("timeout must be a positive number")
        modes = [name for name, value in (("domain", domain), ("user_dn_template", user_dn_template),
                                          ("user_filter", user_filter)) if value]
        if len(modes) != 1:
            raise ValueError("give exactly one of domain (Active Directory), user_dn_template or user_filter")
        self.mode = modes[0]
        if self.mode in ("domain", "user_filter") and not base:
            raise ValueError("base (the search base) is required with %s" % self.mode)
        for option, value in (("user_dn_template", user_dn_template), ("user_filter", user_filter)):
            if value and "{user}" not in value:
                raise ValueError("%s must contain {user}" % option)
        if (bind_dn is None) != (bind_password is None):
            raise ValueError("give both bind_dn and bind_password, or neither")

        tls = None
        if ssl or starttls:
            tls = ldap3.Tls(validate=ssl_module.CERT_REQUIRED, ca_certs_file=ca_file)
        # A fresh ldap3.Server for every bind: a Server object remembers an
        # address that failed and does not try it again for minutes, which
        # would turn a short directory outage into a long one for Anchor.
        self._server_options = dict(host=host, port=port, use_ssl=ssl, tls=tls, connect_timeout=timeout,
                                    get_info=ldap3.NONE)
        self.host, self.port = host, port
        self.starttls, self.timeout = starttls, timeout
        self.base, self.domain = base, domain
        self.user_dn_template, self.user_filter = user_dn_template, user_filter
        self.group_attribute = group_attribute
        self.bind_dn, self.bind_password = bind_dn, bind_password

    def authenticate(self, user, secret):
        if not user or not secret:
            # An empty password makes a simple bind anonymous: never let it authenticate.
            raise AuthenticationFailed("user name or password empty")
        try:
            if self.mode == "domain":
                connection = self._bind("%s@%s" % (user, self.domain), secret)
                entry = self._one(connection, self.base, "(sAMAccountName=%s)" % escape_filter_chars(user))
                groups = group_names(entry.get(self.group_attribute, []), only_under_groups_ou=True)
            elif self.mode == "user_dn_template":
                user_dn = self.user_dn_template.format(user=escape_rdn(user))
                connection = self._bind(user_dn, secret)
                entry = self._one(connection, user_dn, "(objectClass=*)", base_scope=True)
                groups = group_names(entry.get(self.group_attribute, []))
            else:
                finder = self._bind(self.bind_dn, self.bind_password, service=True)
                entry = self._one(finder, self.base, self.user_filter.format(user=escape_filter_chars(user)),
                                  attributes=[])
                finder.unbind()
                connection = self._bind(entry["dn"], secret)
                entry = self._one(connection, entry["dn"], "(objectClass=*)", base_scope=True)
                groups = group_names(entry.get(self.group_attribute, []))
            connection.unbind()
        except LDAPException as exc:
            raise AuthenticationUnavailable("LDAP server %s:%s unreachable: %s"
                                            % (self.host, self.port, type(exc).__name__)) from None
        return AuthResult(username=user, groups=frozenset(g for g in groups if g))

    def _bind(self, dn, password, service=False):
        """An open connection bound as ``dn``; AuthenticationFailed on refused credentials."""
        connection = ldap3.Connection(ldap3.Server(**self._server_options), user=dn, password=password, read_only=True,
                                      receive_timeout=self.timeout, raise_exceptions=False,
                                      auto_bind=ldap3.AUTO_BIND_NONE)
        connection.open()
        if self.starttls:
            connection.start_tls()
        if dn is None:
            return connection  # anonymous search for user_filter without bind_dn
        if not connection.bind():
            description = connection.result.get("description") if connection.result else "no answer"
            connection.unbind()
            if service:
                LOG.error("the LDAP server refused bind_dn's credentials: %s", description)
                raise AuthenticationUnavailable("LDAP service bind refused")
            raise AuthenticationFailed("LDAP bind refused: %s" % description)
        return connection

    def _one(self, connection, base, search_filter, base_scope=False, attributes=None):
        """The single entry found, as a dict with its ``dn``; AuthenticationFailed otherwise."""
        found = connection.search(base, search_filter, search_scope=ldap3.BASE if base_scope else ldap3.SUBTREE,
                                  attributes=[self.group_attribute] if attributes is None else attributes,
                                  size_limit=2)
        entries = connection.response or []
        entries = [e for e in entries if e.get("type") == "searchResEntry"]
        if not found or len(entries) != 1:
            connection.unbind()
            raise AuthenticationFailed("LDAP search found %d entries for the user" % len(entries))
        values = {key: value for key, value in entries[0].get("attributes", {}).items()}
        values["dn"] = entries[0]["dn"]
        for key, value in list(values.items()):
            if key.lower() == self.group_attribute.lower() and key != self.group_attribute:
                values[self.group_attribute] = value
        return values
