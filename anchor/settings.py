"""config.json: where it is, what it says, and whether that makes sense.

The file is read once, at start-up, into the small frozen dataclasses below.
Anything wrong is reported as a :class:`ConfigError` whose message names the
file, the place in it and the problem, on one line; the service then refuses
to start.  Checks that need a plugin (does the validator exist, do its
options make sense, can the CA key be read) happen when :mod:`anchor.app`
builds the plugins from these settings.

Relative paths are taken relative to the directory holding config.json.
"""

import dataclasses
import datetime
import json
import logging
import math
import os
import re

LOG = logging.getLogger(__name__)

SIGNING_HASHES = ("sha224", "sha256", "sha384", "sha512")
DEFAULT_BACKDATE_MINUTES = 5
LEGACY_KEYS = ("auth", "ca", "validators")
BLOCKS = ("authentication", "signing_ca", "registration_authority")
AUDIT_TARGETS = ("log", "messaging")
DEFAULT_AUDIT_TIMEOUT = 1.0
DEFAULT_MAX_HELD_EVENTS = 10000


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ConfigError(Exception):
    """config.json is unusable; the message is one line naming the problem."""

    def __init__(self, path, where, problem):
        self.path, self.where, self.problem = path, where, problem
        text = "%s: %s: %s" % (path, where, problem) if where else "%s: %s" % (path, problem)
        # Names come from the file and may hold line breaks; keep the message on one line.
        super().__init__(_CONTROL.sub(lambda match: repr(match.group())[1:-1], text))


class OptionError(ValueError):
    """A plugin's option is wrong; raised by plugins while Anchor starts."""

    def __init__(self, option, problem):
        self.option = option
        super().__init__(problem)


@dataclasses.dataclass(frozen=True)
class PluginSettings:
    """One validator or fixup of an RA, with its options from config.json."""

    name: str
    options: dict
    where: str


@dataclasses.dataclass(frozen=True)
class AuthenticationSettings:
    name: str
    backend: str
    options: dict
    where: str


@dataclasses.dataclass(frozen=True)
class SigningCASettings:
    name: str
    backend: str
    cert_path: str
    output_path: str | None
    signing_hash: str
    valid_hours: float
    backdate: datetime.timedelta
    options: dict  # backend-specific, e.g. key_path for "anchor"
    base_dir: str
    where: str

    def resolve(self, path):
        """A path from this block, made absolute against config.json's directory."""
        return os.path.join(self.base_dir, os.path.expanduser(path))


@dataclasses.dataclass(frozen=True)
class RegistrationAuthoritySettings:
    name: str
    authentication: str
    signing_ca: str
    validators: tuple
    fixups: tuple
    explain_failures: bool
    where: str


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    target: str  # "log" or "messaging"
    url: str | None
    timeout: float
    max_held_events: int


@dataclasses.dataclass(frozen=True)
class Settings:
    path: str
    authentication: dict
    signing_ca: dict
    registration_authority: dict
    audit: AuditSettings | None = None


def candidate_paths(environ=None):
    """Where config.json is looked for, in order (ANCHOR_CONF excluded)."""
    environ = os.environ if environ is None else environ
    paths = [os.path.join(os.getcwd(), "config.json")]
    home = environ.get("HOME") or os.path.expanduser("~")
    paths.append(os.path.join(home, ".config", "anchor", "config.json"))
    if environ.get("VIRTUAL_ENV"):
        paths.append(os.path.join(environ["VIRTUAL_ENV"], "etc", "anchor", "config.json"))
    paths.append("/etc/anchor/config.json")
    return paths


def find_config(environ=None):
    """The path of config.json: ``$ANCHOR_CONF``, else the first candidate that exists."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("ANCHOR_CONF")
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(explicit, "", "ANCHOR_CONF names a file that does not exist")
        return explicit
    for path in candidate_paths(environ):
        if os.path.isfile(path):
            return path
    raise ConfigError("config.json", "", "not found; set ANCHOR_CONF or create one of: "
                      + ", ".join(candidate_paths(environ)))


def load(path=None):
    """Read and check config.json (found with :func:`find_config` if no path)."""
    path = os.path.abspath(path or find_config())
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ConfigError(path, "", "cannot be read: %s" % exc.strerror) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", "is not valid JSON: %s" % exc) from None
    return parse(data, path)


def parse(data, path):
    """Check a decoded config.json and turn it into :class:`Settings`."""
    if not isinstance(data, dict):
        raise ConfigError(path, "", "the top level must be a JSON object")
    if any(key in data for key in LEGACY_KEYS) and not any(key in data for key in BLOCKS):
        LOG.warning("%s uses the deprecated flat format (auth, ca, validators); it is read as "
                    "a single registration authority named 'default'. Convert it to "
                    "authentication / signing_ca / registration_authority blocks.", path)
        data = translate_legacy(data, path)
    unknown = sorted(set(data) - set(BLOCKS) - {"audit"})
    if unknown:
        raise ConfigError(path, unknown[0], "unknown top-level block")
    for block in BLOCKS:
        if not isinstance(data.get(block), dict) or not data[block]:
            raise ConfigError(path, block, "missing or empty block; it must name at least one entry")

    base_dir = os.path.dirname(path)
    checker = _Checker(path)
    authentication = {name: checker.authentication(name, conf)
                      for name, conf in data["authentication"].items()}
    signing_ca = {name: checker.signing_ca(name, conf, base_dir)
                  for name, conf in data["signing_ca"].items()}
    authorities = {}
    for name, conf in data["registration_authority"].items():
        ra = checker.registration_authority(name, conf)
        if ra.authentication not in authentication:
            raise ConfigError(path, ra.where + ".authentication",
                              "no authentication block named %r" % ra.authentication)
        if ra.signing_ca not in signing_ca:
            raise ConfigError(path, ra.where + ".signing_ca", "no signing_ca block named %r" % ra.signing_ca)
        authorities[name] = ra
    audit = checker.audit(data["audit"]) if "audit" in data else None
    return Settings(path, authentication, signing_ca, authorities, audit)


class _Checker:
    """Checks for each kind of block; every error names the file and the place."""

    def __init__(self, path):
        self.path = path

    def fail(self, where, problem):
        raise ConfigError(self.path, where, problem)

    def object(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, "must be a JSON object")
        return dict(value)

    def string(self, conf, key, where, required=True):
        value = conf.pop(key, None)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            self.fail("%s.%s" % (where, key), "missing, or not a non-empty string")
        return value

    def number(self, conf, key, where, default=None, allow_zero=False):
        value = conf.pop(key, default)
        valid = (isinstance(value, (int, float)) and not isinstance(value, bool)
                 and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
        if not valid:
            self.fail("%s.%s" % (where, key), "must be a %s number, not %r"
                      % ("non-negative" if allow_zero else "positive", value))
        return value

    def authentication(self, name, conf):
        where = "authentication.%s" % name
        conf = self.object(conf, where)
        backend = self.string(conf, "backend", where)
        return AuthenticationSettings(name, backend, conf, where)

    def signing_ca(self, name, conf, base_dir):
        where = "signing_ca.%s" % name
        conf = self.object(conf, where)
        backend = self.string(conf, "backend", where)
        cert_path = self.string(conf, "cert_path", where)
        output_path = self.string(conf, "output_path", where, required=False)
        signing_hash = conf.pop("signing_hash", "sha256")
        if signing_hash not in SIGNING_HASHES:
            self.fail(where + ".signing_hash", "unsupported hash %r; use one of %s"
                      % (signing_hash, ", ".join(SIGNING_HASHES)))
        valid_hours = self.number(conf, "valid_hours", where)
        backdate = self.number(conf, "backdate_minutes", where, DEFAULT_BACKDATE_MINUTES, allow_zero=True)
        for key, delta in (("valid_hours", {"hours": valid_hours}), ("backdate_minutes", {"minutes": backdate})):
            try:
                datetime.datetime.now() + datetime.timedelta(**delta)
                datetime.datetime.now() - datetime.timedelta(**delta)
            except OverflowError:
                self.fail("%s.%s" % (where, key), "%r is too large a span of time" % delta.popitem()[1])
        ca = SigningCASettings(
            name=name, backend=backend, cert_path="", output_path=None,
            signing_hash=signing_hash, valid_hours=valid_hours,
            backdate=datetime.timedelta(minutes=backdate), options=conf,
            base_dir=base_dir, where=where,
        )
        return dataclasses.replace(
            ca, cert_path=ca.resolve(cert_path),
            output_path=ca.resolve(output_path) if output_path else None,
        )

    def registration_authority(self, name, conf):
        where = "registration_authority.%s" % name
        conf = self.object(conf, where)
        authentication = self.string(conf, "authentication", where)
        signing_ca = self.string(conf, "signing_ca", where)
        validators = self.plugins(conf.pop("validators", {}), where + ".validators")
        fixups = self.plugins(conf.pop("fixups", {}), where + ".fixups")
        explain_failures = conf.pop("explain_failures", False)
        if not isinstance(explain_failures, bool):
            self.fail(where + ".explain_failures", "must be true or false")
        if conf:
            self.fail(where, "unknown option(s): %s" % ", ".join(sorted(conf)))
        return RegistrationAuthoritySettings(name, authentication, signing_ca, validators, fixups,
                                             explain_failures, where)

    def audit(self, conf):
        conf = self.object(conf, "audit")
        target = conf.pop("target", None)
        if target not in AUDIT_TARGETS:
            self.fail("audit.target", "must be one of %s, not %r" % (", ".join(AUDIT_TARGETS), target))
        url = self.string(conf, "url", "audit", required=target == "messaging")
        timeout = self.number(conf, "timeout", "audit", DEFAULT_AUDIT_TIMEOUT)
        held = conf.pop("max_held_events", DEFAULT_MAX_HELD_EVENTS)
        if isinstance(held, bool) or not isinstance(held, int) or held < 1:
            self.fail("audit.max_held_events", "must be a whole number of at least 1")
        if conf:
            self.fail("audit", "unknown option(s): %s" % ", ".join(sorted(conf)))
        return AuditSettings(target, url, timeout, held)

    def plugins(self, value, where):
        value = self.object(value, where)
        result = []
        for name, options in value.items():
            options = {} if options is None else options
            result.append(PluginSettings(name, self.object(options, "%s.%s" % (where, name)),
                                         "%s.%s" % (where, name)))
        return tuple(result)


def translate_legacy(data, path):
    """The flat format of early Anchor releases as one RA named ``default``.

    ``auth`` holds one backend keyed by its name (``{"static": {...}}``),
    ``ca`` the local CA, and ``validators`` either a mapping of validator
    names to options or a list holding one validator set whose ``steps`` are
    ``[name, options]`` pairs.
    """
    auth = data.get("auth")
    if not isinstance(auth, dict) or len(auth) != 1:
        raise ConfigError(path, "auth", "must name exactly one backend, e.g. {\"static\": {...}}")
    (backend, auth_options), = auth.items()
    if not isinstance(auth_options, dict):
        raise ConfigError(path, "auth." + backend, "must be a JSON object")
    ca = data.get("ca")
    if not isinstance(ca, dict):
        raise ConfigError(path, "ca", "missing, or not a JSON object")

    validators = data.get("validators", {})
    if isinstance(validators, list):
        if len(validators) != 1 or not isinstance(validators[0], dict):
            raise ConfigError(path, "validators", "only one validator set can be translated; "
                              "express several as separate registration authorities")
        steps = validators[0].get("steps", [])
        if not all(isinstance(step, list) and len(step) in (1, 2) and isinstance(step[0], str)
                   for step in steps):
            raise ConfigError(path, "validators[0].steps", "each step must be [name, {options}]")
        validators = {step[0]: (step[1] if len(step) == 2 else {}) for step in steps}

    translated = {
        "authentication": {"default": dict(auth_options, backend=backend)},
        "signing_ca": {"default": dict({"backend": "anchor"}, **ca)},
        "registration_authority": {"default": {
            "authentication": "default",
            "signing_ca": "default",
            "validators": validators,
            "fixups": data.get("fixups", {}),
        }},
    }
    extra = sorted(set(data) - set(LEGACY_KEYS) - {"fixups"})
    if extra:
        raise ConfigError(path, extra[0], "unknown top-level block in the flat format")
    return translated
