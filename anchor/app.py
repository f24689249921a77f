"""Start-up: read config.json, load every plugin, build the WSGI application.

Pecan calls :func:`setup_app` (``app.modules = ['anchor']`` in config.py),
both under ``pecan serve config.py`` and under ``uwsgi --pecan config.py``.
Everything that can be wrong in config.json is found here, before the first
request: the service exits with a one-line error instead of starting.
"""

import functools
import inspect
import io
import logging
import logging.config
import sys
import wsgiref.simple_server

import pecan
import pecan.configuration
import stevedore
import webob
from cryptography.hazmat.primitives.serialization import Encoding

from anchor import audit, issuance, settings
from anchor.controllers import RootController
from anchor.store import CertificateStore

LOG = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

NAMESPACES = {
    "validator": "anchor.validators",
    "fixup": "anchor.fixups",
    "authentication backend": "anchor.authentication",
    "signing backend": "anchor.signing_backends",
}


class Plugins:
    """Entry points of Anchor's namespaces, each namespace scanned once."""

    def __init__(self):
        self._managers = {}

    def get(self, kind, name):
        if kind not in self._managers:
            self._managers[kind] = stevedore.ExtensionManager(
                NAMESPACES[kind], on_load_failure_callback=self._failed)
        manager = self._managers[kind]
        if name not in manager.names():
            raise ValueError("unknown %s %r (installed: %s)"
                             % (kind, name, ", ".join(sorted(manager.names())) or "none"))
        return manager[name].plugin

    @staticmethod
    def _failed(manager, entrypoint, exception):
        LOG.warning("could not load plugin %s: %s", entrypoint, exception)


def _configured(path, where, build, *args):
    """Call ``build(*args)``, turning a plugin's ValueError into ConfigError."""
    try:
        return build(*args)
    except settings.OptionError as exc:
        raise settings.ConfigError(path, "%s.%s" % (where, exc.option), str(exc)) from None
    except ValueError as exc:
        raise settings.ConfigError(path, where, str(exc)) from None


def _prepared_plugin(path, plugins, kind, conf):
    function = _configured(path, conf.where, plugins.get, kind, conf.name)
    prepare = getattr(function, "prepare_options", None)
    options = dict(conf.options)
    if prepare is not None:
        try:
            inspect.signature(prepare).bind(**options)
        except TypeError as exc:
            raise settings.ConfigError(path, conf.where, "invalid options: %s" % exc) from None
        options = _configured(path, conf.where, lambda: prepare(**conf.options))
    return issuance.Plugin(conf.name, function, options)


def build_authorities(config):
    """Every registration authority of ``config`` with its plugins loaded.

    Authentication backends, signing backends and stores are built once per
    block of config.json and shared by the RAs that name them.
    """
    path = config.path
    plugins = Plugins()
    authenticators = {}
    for name, auth in config.authentication.items():
        factory = _configured(path, auth.where + ".backend", plugins.get, "authentication backend", auth.backend)
        authenticators[name] = _configured(path, auth.where, lambda: factory(**auth.options))
    signers, stores = {}, {}
    for name, ca in config.signing_ca.items():
        factory = _configured(path, ca.where + ".backend", plugins.get, "signing backend", ca.backend)
        signers[name] = _configured(path, ca.where, factory, ca)
        stores[name] = (_configured(path, ca.where + ".output_path", CertificateStore, ca.output_path)
                        if ca.output_path else None)

    auditor = _configured(path, "audit", audit.from_settings, config.audit)
    authorities = {}
    for name, ra in config.registration_authority.items():
        signer = signers[ra.signing_ca]
        authorities[name] = issuance.RegistrationAuthority(
            name=name,
            settings=ra,
            authenticator=authenticators[ra.authentication],
            signer=signer,
            store=stores[ra.signing_ca],
            validators=tuple(_prepared_plugin(path, plugins, "validator", v) for v in ra.validators),
            fixups=tuple(_prepared_plugin(path, plugins, "fixup", f) for f in ra.fixups),
            ca_pem=signer.certificate.public_bytes(Encoding.PEM),
            audit=auditor,
        )
    return authorities


class RequestGuard:
    """WSGI middleware keeping bad requests away from Pecan.

    - A body over ``limit`` bytes gets 413: a declared Content-Length over
      the limit before any of the body is read, a chunked body as soon as it
      goes past the limit.
    - A POST body that is not a readable form gets 400.  Pecan reads the form
      while routing, before any controller could catch the error; parsing it
      here first (WebOb caches the result in the environ) keeps that a 400.
    - Anything that still escapes is logged and answered with a bare 500, so
      no traceback ever reaches a client.
    """

    def __init__(self, app, limit):
        self.app, self.limit = app, limit

    def __call__(self, environ, start_response):
        length = environ.get("CONTENT_LENGTH") or ""
        if length:
            if not length.isdigit():
                return _plain(start_response, "400 Bad Request", b"invalid Content-Length\n")
            if int(length) > self.limit:
                return self._too_large(start_response)
        elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            body = environ["wsgi.input"].read(self.limit + 1)
            if len(body) > self.limit:
                return self._too_large(start_response)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                webob.Request(environ).POST
            except (ValueError, LookupError, UnicodeError, TypeError):
                return _plain(start_response, "400 Bad Request", b"the request body is not a readable form\n")
        try:
            return self.app(environ, start_response)
        except Exception:
            LOG.exception("unhandled error serving %s %s", environ.get("REQUEST_METHOD"),
                          environ.get("PATH_INFO"))
            return _plain(start_response, "500 Internal Server Error", b"internal error\n",
                          exc_info=sys.exc_info())

    def _too_large(self, start_response):
        return _plain(start_response, "413 Request Entity Too Large",
                      b"request body larger than %d bytes\n" % self.limit)


def _plain(start_response, status, body, exc_info=None):
    # No Connection header: PEP 3333 leaves hop-by-hop headers to the server.
    headers = [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers, exc_info)
    return [body]


def _remember_controller_signatures():
    """Pecan inspects the controller's signature on every request
    (pecan.core calls pecan.util.getargspec, which builds a new namedtuple
    class each time): a seventh of a request's CPU time.  Controllers never
    change, so the answer is remembered per controller."""
    import pecan.core

    if not hasattr(pecan.core.getargspec, "cache_info"):
        pecan.core.getargspec = functools.lru_cache(maxsize=256)(pecan.core.getargspec)


def make_app(config_path=None, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
    """The complete WSGI application for the config.json at ``config_path``
    (found the usual way when None).  Raises ConfigError."""
    config = settings.load(config_path)
    authorities = build_authorities(config)
    LOG.info("Anchor ready with %d registration authorities from %s", len(authorities), config.path)
    _remember_controller_signatures()
    app = pecan.make_app(RootController(authorities), debug=False, guess_content_type_from_ext=False)
    return RequestGuard(app, max_body_bytes)


def configure_logging(logging_config):
    """Apply config.py's ``logging`` dict (before config.json is read, so its
    warnings reach the configured handlers)."""
    if isinstance(logging_config, pecan.configuration.Config):
        logging_config = logging_config.to_dict()
    if logging_config:
        logging.config.dictConfig(dict({"version": 1}, **logging_config))


def setup_app(config):
    """Pecan's entry point: ``config`` is the Pecan configuration (config.py)."""
    app_conf = config.app
    # `pecan serve` runs wsgiref's single-threaded server, whose listen
    # backlog is 5: a burst of clients would see connections dropped or
    # reset.  A deeper queue lets them wait their turn instead.
    wsgiref.simple_server.WSGIServer.request_queue_size = 128
    configure_logging(getattr(config, "logging", {}))
    try:
        return make_app(max_body_bytes=int(getattr(app_conf, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)))
    except settings.ConfigError as exc:
        LOG.critical("configuration error: %s", exc)
        sys.exit("anchor: configuration error: %s" % exc)
