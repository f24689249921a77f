"""Validators that look at the names a certificate will carry.

Domain suffixes in config start with a dot (``.example.com``) and match at a
label boundary: ``.example.com`` allows ``www.example.com`` but neither
``example.com`` nor ``evilexample.com``.  Names are compared case-
insensitively, with one trailing dot ignored and Unicode labels in their
IDNA (A-label) form.
"""

import ipaddress

from anchor.validators import ValidationError, options, string_list
from anchor.x509.request import ip_address_or_none


def normalize_dns_name(name):
    """Lower-case A-label form of ``name`` without a trailing dot.

    Raises ValidationError when the name cannot be expressed in IDNA.
    """
    if name.endswith("."):
        name = name[:-1]
    if name.isascii():
        return name.lower()
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValidationError("name %r is not a valid internationalized domain name" % name) from None


class DomainSuffixes:
    """A set of allowed domain suffixes, matched in time linear in the labels."""

    def __init__(self, suffixes, option="allowed_domains"):
        prepared = set()
        for suffix in string_list(suffixes, option):
            if not suffix.startswith(".") or suffix.strip(".") == "":
                raise ValueError("%s entry %r must start with '.' (e.g. '.example.com')" % (option, suffix))
            try:
                prepared.add("." + normalize_dns_name(suffix[1:]))
            except ValidationError as exc:
                raise ValueError("%s entry %r: %s" % (option, suffix, exc)) from None
        self._suffixes = frozenset(prepared)

    def __bool__(self):
        return bool(self._suffixes)

    def matches(self, name):
        """Whether the normalized ``name`` lies under one of the suffixes."""
        position = name.find(".")
        while position != -1:
            if name[position:] in self._suffixes:
                return True
            position = name.find(".", position + 1)
        return False


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


def _name_options(allowed_domains=(), allowed_networks=(), allow_any=False):
    if not isinstance(allow_any, bool):
        raise ValueError("allow_any must be true or false")
    domains = DomainSuffixes(allowed_domains)
    if not domains and not allow_any:
        raise ValueError(
            "allowed_domains is empty: list the domain suffixes to allow, "
            "or set \"allow_any\": true to allow every name"
        )
    return {
        "allowed_domains": domains,
        "allowed_networks": networks(allowed_networks),
        "allow_any": allow_any,
    }


def check_dns_name(name, allowed_domains, allow_any):
    normalized = normalize_dns_name(name)
    if not allow_any and not allowed_domains.matches(normalized):
        raise ValidationError("domain %r is not allowed" % name)


def check_ip_address(address, allowed_networks):
    if not in_networks(address, allowed_networks):
        raise ValidationError("address %s is not in an allowed network" % address)


@options(_name_options)
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
