"""Validators: plain functions that accept or refuse a request.

A validator is registered as an entry point in the ``anchor.validators``
namespace.  It is called with the keyword arguments ``csr`` (the
:class:`~anchor.x509.request.CertificateRequest` as it will be signed),
``auth_result`` (:class:`~anchor.auth.AuthResult`), ``conf`` (the
registration authority's settings) and ``request`` (the WebOb request), plus
the options given for it in config.json, and must accept ``**kwargs``.  It
returns nothing when the request is acceptable and raises
:class:`ValidationError` with a reason when it is not.

A validator may check and precompute its options once at start-up: give it a
``prepare_options`` attribute (the :func:`options` decorator does that), a
function that takes the options from config.json as keyword arguments and
returns the dict of options to call the validator with, or raises
``ValueError`` naming what is wrong.  Anchor then refuses to start.
"""


class ValidationError(Exception):
    """The request does not satisfy the policy; the message says why."""


def options(prepare):
    """Attach an option-preparing function to a validator or fixup."""

    def attach(plugin):
        plugin.prepare_options = prepare
        return plugin

    return attach


def string_list(value, option):
    """``value`` as a tuple of strings, or ValueError naming ``option``."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError("%s must be a list of strings" % option)
    if not all(isinstance(item, str) for item in value):
        raise ValueError("%s must be a list of strings" % option)
    return tuple(value)
