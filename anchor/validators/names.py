"""Validators that look at the names a certificate will carry.

Domain suffixes in config start with a dot (``.example.com``) and match at a
label boundary: ``.example.com`` allows ``www.example.com`` but neither
``example.com`` nor ``evilexample.com``.  Names are compared case-
insensitively, with one trailing dot ignored and Unicode labels in their
IDNA 2008 A-label form (``bücher.example.com`` is
``xn--bcher-kva.example.com``); a name that is not valid IDNA is refused.

Every validator here checks and precomputes its options once, at start-up,
into immutable structures (frozensets, tuples, tries), so checking a request
costs time linear in the number of names it carries, whatever the size of
the allow lists, and no request can change the configuration.
"""

import ipaddress
import re

import idna
from anchor.validators import ValidationError, options, string_list
from anchor.x509.request import ip_address_or_none


def normalize_dns_name(name):
    """Lower-case A-label form of ``name`` without a trailing dot.

    Raises ValidationError when the name is not valid IDNA.
    """
    if name.endswith("."):
        name = name[:-1]
    if name.isascii():
        lowered = name.lower()
        if "xn--" not in lowered:
            if not all(0 < len(label) <= 63 for label in lowered.split(".")):
                raise ValidationError("name %r has an empty label or one over 63 characters" % name)
            return lowered  # nothing more for IDNA to check or convert
    labels = []
    for label in name.split("."):
        if not label:
            raise ValidationError("name %r has an empty label" % name)
        try:
            if not label.isascii():
                label = idna.encode(label, uts46=True).decode("ascii")
            elif label[:4].lower() == "xn--":
                idna.decode(label)  # a punycode label must decode to a valid U-label
        except (UnicodeError, ValueError):
            raise ValidationError("name %r is not a valid internationalized domain name" % name) from None
        labels.append(label.lower())
    return ".".join(labels)


class DomainSuffixes:
    """A set of domain suffixes, matched in time linear in a name's labels."""

    def __init__(self, suffixes, option="allowed_domains", leading_dot=True):
        prepared = set()
        for suffix in string_list(suffixes, option):
            if leading_dot and not suffix.startswith("."):
                raise ValueError("%s entry %r must start with '.' (e.g. '.example.com')" % (option, suffix))
            bare = suffix[1:] if suffix.startswith(".") else suffix
            if not bare.strip("."):
                raise ValueError("%s entry %r names no domain" % (option, suffix))
            try:
                prepared.add(normalize_dns_name(bare))
            except ValidationError as exc:
                raise ValueError("%s entry %r: %s" % (option, suffix, exc)) from None
        self._domains = frozenset(prepared)

    def __bool__(self):
        return bool(self._domains)

    def under(self, name):
        """Whether normalized ``name`` lies strictly below one of the domains."""
        position = name.find(".")
        while position != -1:
            if name[position + 1:] in self._domains:
                return True
            position = name.find(".", position + 1)
        return False

    def at_or_under(self, name):
        """Whether normalized ``name`` is one of the domains or lies below one."""
        return name in self._domains or self.under(name)


def networks(value, option="allowed_networks"):
    """A tuple of ip_network objects from a list of CIDR strings."""
    result = []
    for text in string_list(value, option):
        try:
            result.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError("%s entry %r is not an IP network (e.g. '10.0.0.0/8')" % (option, text)) from None
    return tuple(result)


def in_networks(address, allowed):
    return any(address in network for network in allowed)


def _flag(value, option):
    if not isinstance(value, bool):
        raise ValueError("%s must be true or false" % option)
    return value


def _domain_options(allowed_domains=(), allow_any=False):
    _flag(allow_any, "allow_any")
    domains = DomainSuffixes(allowed_domains)
    if not domains and not allow_any:
        raise ValueError(
            "allowed_domains is empty: list the domain suffixes to allow, "
            "or set \"allow_any\": true to allow every name"
        )
    return {"allowed_domains": domains, "allow_any": allow_any}


def _domain_network_options(allowed_domains=(), allowed_networks=(), allow_any=False):
    return dict(_domain_options(allowed_domains, allow_any),
                allowed_networks=networks(allowed_networks))


def check_dns_name(name, allowed_domains, allow_any):
    normalized = normalize_dns_name(name)
    if not allow_any and not allowed_domains.under(normalized):
        raise ValidationError("domain %r is not allowed" % name)


def check_ip_address(address, allowed_networks):
    if not in_networks(address, allowed_networks):
        raise ValidationError("address %s is not in an allowed network" % address)


def _refuse_other_alt_names(csr, allow_ip):
    """Refuse subjectAltName entries other than DNS names (and IP addresses
    when ``allow_ip``)."""
    if csr.other_alt_names:
        raise ValidationError("subjectAltName entry %s is not allowed" % _describe(csr.other_alt_names[0]))
    if csr.ip_addresses and not allow_ip:
        raise ValidationError("subjectAltName IP address %s is not allowed" % csr.ip_addresses[0])


def _describe(entry):
    return "%s %r" % (type(entry).__name__, getattr(entry, "value", entry))


@options(_domain_network_options)
def common_name(csr, allowed_domains, allowed_networks=(), allow_any=False, **kwargs):
    """The subject has one common name (none needed when a subjectAltName is
    present); an IP address must lie in ``allowed_networks``, a name must end
    with one of ``allowed_domains``."""
    names = csr.common_names
    if not names:
        if csr.subject_alt_names:
            return
        raise ValidationError("the subject has no common name and the request no subjectAltName")
    if len(names) > 1:
        raise ValidationError("the subject has %d common names; one is allowed" % len(names))
    address = ip_address_or_none(names[0])
    if address is not None:
        check_ip_address(address, allowed_networks)
    else:
        check_dns_name(names[0], allowed_domains, allow_any)


@options(_domain_options)
def alternative_names(csr, allowed_domains, allow_any=False, **kwargs):
    """Every subjectAltName entry is a DNS name under one of ``allowed_domains``."""
    _refuse_other_alt_names(csr, allow_ip=False)
    for name in csr.dns_names:
        check_dns_name(name, allowed_domains, allow_any)


@options(_domain_network_options)
def alternative_names_ip(csr, allowed_domains, allowed_networks=(), allow_any=False, **kwargs):
    """Every subjectAltName entry is a DNS name under one of ``allowed_domains``
    or an IP address in one of ``allowed_networks``."""
    _refuse_other_alt_names(csr, allow_ip=True)
    for name in csr.dns_names:
        check_dns_name(name, allowed_domains, allow_any)
    for address in csr.ip_addresses:
        check_ip_address(address, allowed_networks)


def _blacklist_options(domains=()):
    listed = DomainSuffixes(domains, "domains", leading_dot=False)
    if not listed:
        raise ValueError("domains is empty: list the domains to refuse")
    return {"domains": listed}


@options(_blacklist_options)
def blacklist_names(csr, domains, **kwargs):
    """Neither the common name nor any subjectAltName DNS name is one of
    ``domains`` or lies below one (``example.com`` and ``.example.com``
    both refuse ``example.com`` and ``www.example.com``)."""
    for name in csr.common_names + csr.dns_names:
        if ip_address_or_none(name) is None and domains.at_or_under(normalize_dns_name(name)):
            raise ValidationError("name %r is in a refused domain" % name)


class _Node:
    __slots__ = ("exact", "patterns", "terminal")

    def __init__(self):
        self.exact = {}  # label -> _Node
        self.patterns = []  # (compiled label expression, _Node)
        self.terminal = False  # a whole entry ends here


class NamePatterns:
    """The ``names`` of whitelist_names: exact names, ``%`` patterns, IPs and ranges.

    Names and patterns live in a trie keyed by label from the right, each
    node holding exact labels in a dict and ``%`` labels as compiled
    expressions, so a name is matched by walking its labels once.
    """

    def __init__(self, entries):
        self._root = _Node()
        addresses, ranges = set(), []
        for entry in string_list(entries, "names"):
            address = ip_address_or_none(entry)
            if address is not None:
                addresses.add(address)
                continue
            try:
                ranges.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._add(entry)
        self._addresses, self._ranges = frozenset(addresses), tuple(ranges)

    def _add(self, entry):
        node = self._root
        for label in reversed((entry[:-1] if entry.endswith(".") else entry).split(".")):
            if "%" in label:
                parts = [re.escape(self._normal(part, entry)) for part in label.split("%")]
                expression = "(?:%s)\\Z" % "[^.]+".join(parts)
                for existing, child in node.patterns:
                    if existing.pattern == expression:
                        break
                else:
                    child = _Node()
                    node.patterns.append((re.compile(expression), child))
                node = child
            else:
                node = node.exact.setdefault(self._normal(label, entry), _Node())
        node.terminal = True

    @staticmethod
    def _normal(text, entry):
        if text in ("", "*"):
            if text == "" and "%" not in entry:
                raise ValueError("names entry %r has an empty label" % entry)
            return text
        try:
            return normalize_dns_name(text)
        except ValidationError:
            raise ValueError("names entry %r is not a valid domain name or pattern" % entry) from None

    def matches_name(self, name, allow_wildcard):
        """Whether normalized ``name`` matches an entry; a ``*`` left-most label
        is matched by ``%`` only when ``allow_wildcard``."""
        labels = name.split(".")
        nodes = [self._root]
        for position, label in enumerate(reversed(labels)):
            wildcard = label == "*" and position == len(labels) - 1
            if "*" in label and not wildcard:
                return False  # a wildcard only ever stands as the whole left-most label
            following = []
            for node in nodes:
                if label in node.exact:
                    following.append(node.exact[label])
                if wildcard and not allow_wildcard:
                    continue
                following.extend(child for expression, child in node.patterns if expression.match(label))
            if not following:
                return False
            nodes = following
        return any(node.terminal for node in nodes)

    def matches_address(self, address):
        return address in self._addresses or in_networks(address, self._ranges)


def _whitelist_options(names=(), allow_cn_id=False, allow_dns_id=False, allow_ip_id=False,
                       allow_wildcard=False):
    flags = {"allow_cn_id": allow_cn_id, "allow_dns_id": allow_dns_id,
             "allow_ip_id": allow_ip_id, "allow_wildcard": allow_wildcard}
    for option, value in flags.items():
        _flag(value, option)
    if not names:
        raise ValueError("names is empty: list the names, patterns and addresses to allow")
    return dict(flags, names=NamePatterns(names))


@options(_whitelist_options)
def whitelist_names(csr, names, allow_cn_id=False, allow_dns_id=False, allow_ip_id=False,
                    allow_wildcard=False, **kwargs):
    """Every identity matches an entry of ``names``; identities in a slot that
    is not allowed (CN, SAN DNS, SAN IP) are refused, and so are other SAN
    types.  ``%`` in an entry matches within one label, and matches a ``*``
    wildcard label only when ``allow_wildcard``."""
    identities = []
    if csr.common_names:
        if not allow_cn_id:
            raise ValidationError("a common name is not allowed by this RA")
        identities.extend(csr.common_names)
    _refuse_other_alt_names(csr, allow_ip=allow_ip_id)
    if csr.dns_names and not allow_dns_id:
        raise ValidationError("subjectAltName DNS names are not allowed by this RA")
    identities.extend(csr.dns_names)
    for identity in identities:
        address = ip_address_or_none(identity)
        if address is not None:
            if not names.matches_address(address):
                raise ValidationError("address %s is not in the allowed names" % address)
        elif "*" in identity and not allow_wildcard:
            raise ValidationError("wildcard name %r is not allowed" % identity)
        elif not names.matches_name(normalize_dns_name(identity), allow_wildcard):
            raise ValidationError("name %r is not in the allowed names" % identity)
    for address in csr.ip_addresses:
        if not names.matches_address(address):
            raise ValidationError("address %s is not in the allowed names" % address)


def _server_group_options(group_prefixes=None):
    if not isinstance(group_prefixes, dict) or not group_prefixes:
        raise ValueError("group_prefixes must be a non-empty object mapping a name prefix to a group")
    if not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in group_prefixes.items()):
        raise ValueError("group_prefixes must map non-empty strings to non-empty strings")
    return {"group_prefixes": {prefix.lower(): group for prefix, group in group_prefixes.items()}}


@options(_server_group_options)
def server_group(csr, auth_result, group_prefixes, **kwargs):
    """A common name ``prefix-rest.domain`` whose prefix is listed in
    ``group_prefixes`` (compared case-insensitively, as host names are) may
    only be requested by a member of the mapped group."""
    for name in csr.common_names:
        prefix, dash, _ = name.partition("-")
        if not dash or "." in prefix:
            continue
        group = group_prefixes.get(prefix.lower())
        if group is not None and group not in auth_result.groups:
            raise ValidationError("only members of group %r may request %r" % (group, name))
