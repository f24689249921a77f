"""Validators that look at where the request came from."""

from anchor.validators import ValidationError, options
from anchor.validators.names import in_networks, networks
from anchor.x509.request import ip_address_or_none


def client_address(request, trusted_proxies=()):
    """The client's IP address, or None when it cannot be told.

    It is the TCP peer (REMOTE_ADDR), unless the peer is one of
    ``trusted_proxies``: then the right-most address of X-Forwarded-For that
    is not itself a trusted proxy.  Only the trusted proxies' own entries are
    believed; whatever a client wrote further left is ignored.
    """
    address = ip_address_or_none(request.remote_addr or "")
    if address is None or not in_networks(address, trusted_proxies):
        return address
    forwarded = request.headers.get("X-Forwarded-For", "")
    for hop in reversed([part.strip() for part in forwarded.split(",")]):
        address = ip_address_or_none(hop)
        if address is None or not in_networks(address, trusted_proxies):
            return address
    return address


def _source_cidrs_options(cidrs=(), trusted_proxies=()):
    allowed = networks(cidrs, "cidrs")
    if not allowed:
        raise ValueError("cidrs is empty: list the client networks allowed to use this RA")
    return {"cidrs": allowed, "trusted_proxies": networks(trusted_proxies, "trusted_proxies")}


@options(_source_cidrs_options)
def source_cidrs(request, cidrs, trusted_proxies=(), **kwargs):
    """The client's address lies in one of ``cidrs``.

    The address is the TCP peer.  Behind a reverse proxy that sets
    X-Forwarded-For, list the proxy in ``trusted_proxies``; the header is
    never honoured from anyone else.
    """
    address = client_address(request, trusted_proxies)
    if address is None:
        raise ValidationError("client address is unknown (peer %r, X-Forwarded-For %r)"
                              % (request.remote_addr, request.headers.get("X-Forwarded-For")))
    if not in_networks(address, cidrs):
        raise ValidationError("client address %s is not in an allowed network" % address)
