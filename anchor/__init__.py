"""Anchor: an ephemeral PKI service.

Clients post certificate signing requests to a registration authority; Anchor
authenticates them, applies the authority's policy and signs a certificate
that lives for hours.  Revocation is passive: a certificate that must stop
being trusted is simply not renewed.
"""

__version__ = "0.5.0"
