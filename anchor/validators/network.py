"""Validators that look at where the request came from."""

from anchor.validators import ValidationError, options
from anchor.validators.names import in_networks, networks
from anchor.x509.request import ip_address_or_none


def _source_cidrs_options(cidrs=()):
    allowed = networks(cidrs, "cidrs")
    if not allowed:
        raise ValueError("cidrs is empty: list the client networks allowed to use this RA")
    return {"cidrs": allowed}


@options(_source_cidrs_options)
def source_cidrs(request, cidrs, **kwargs):
    """The client's address lies in one of ``cidrs``.

    The address is the TCP peer (``REMOTE_ADDR``).  X-Forwarded-For is not
    honoured: behind a reverse proxy every client has the proxy's address.
    """
    address = ip_address_or_none(request.remote_addr or "")
    if address is None:
        raise ValidationError("client address %r is unknown" % request.remote_addr)
    if not in_networks(address, cidrs):
        raise ValidationError("client address %s is not in an allowed network" % address)
