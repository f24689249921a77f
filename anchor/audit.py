"""Audit: a CADF event for every authentication and every signing decision.

:mod:`anchor.issuance` reports here; this module builds the events with
pycadf and hands them to the configured target:

``{"target": "log"}``
    each event is one JSON line on the ``anchor.audit`` logger, which an
    operator can route to a file of its own (config.py ``logging``).
``{"target": "messaging", "url": "rabbit://..."}``
    each event is an oslo.messaging notification (publisher ``anchor``,
    event type ``audit.auth`` or ``audit.sign``, payload the CADF event as
    a dict, topic ``notifications``), as OpenStack services send them, so
    Ceilometer and Panko pick them up.

No ``audit`` block means no audit.  Events never carry a secret, token or
PIN: only what the backends report (user name, reason) and what was signed.

Sending to the bus never holds a request for longer than ``timeout``
(default 1 s): a background thread per process sends, in order.  While the
bus is unreachable, events are held in memory (up to ``max_held_events``,
then the oldest are dropped, with an error in the log), each held event is
also written to the ``anchor.audit`` log at once, a warning is logged once
per outage, and the held events are sent when the bus is back.  What is not
guaranteed: events held in memory are lost if the process dies before the
bus returns (they are in the ``anchor.audit`` log, though), and an event
may be delivered twice if the bus fails after receiving it but before
acknowledging it.
"""

import collections
import datetime
import json
import logging
import os
import threading
import uuid
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID
from pycadf import attachment, cadftaxonomy, event, resource

from anchor import settings

# Operational messages (outages, drops); "anchor.audit" itself carries only events.
LOG = logging.getLogger("anchor.notifier")
AUDIT_LOG = logging.getLogger("anchor.audit")

# pycadf warns about every identifier that is not a UUID; Anchor's observer
# and target identifiers are URIs by design (anchor://..., certificate:...).
warnings.filterwarnings("ignore", message="Invalid uuid", module="pycadf.identifier")

USER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "anchor://users")


def user_resource(user):
    """The initiator: a stable UUIDv5 of the user name, or a random id without one."""
    identifier = uuid.uuid5(USER_NAMESPACE, user) if user else uuid.uuid4()
    return resource.Resource(id=str(identifier), typeURI=cadftaxonomy.ACCOUNT_USER, name=user or None)


def auth_event(ra_name, success, user, reason=None):
    """The CADF dict of an ``audit.auth`` event."""
    service = resource.Resource(id="anchor://authentication", typeURI="service/security", domain=ra_name)
    cadf = event.Event(
        action=cadftaxonomy.ACTION_AUTHENTICATE,
        outcome=cadftaxonomy.OUTCOME_SUCCESS if success else cadftaxonomy.OUTCOME_FAILURE,
        initiator=user_resource(user), observer=service, target=service)
    if not success:
        _attach(cadf, "failure", {"stage": "auth", "reason": reason or "authentication failed"})
    return cadf.as_dict()


def sign_event(ra_name, success, user, certificate=None, ca_name=None, stage=None, reason=None):
    """The CADF dict of an ``audit.sign`` event."""
    policy = resource.Resource(id="anchor://certificates/policy", typeURI="service/security", domain=ra_name)
    if certificate is not None:
        target_id = "certificate:" + certificate.fingerprint(hashes.SHA256()).hex()
    else:
        target_id = "certificate:none"
    target = resource.Resource(id=target_id, typeURI="data/security/credential")
    cadf = event.Event(
        action=cadftaxonomy.ACTION_EVALUATE,
        outcome=cadftaxonomy.OUTCOME_SUCCESS if success else cadftaxonomy.OUTCOME_FAILURE,
        initiator=user_resource(user), observer=policy, target=target)
    if certificate is not None:
        _attach(cadf, "certificate", certificate_summary(certificate, ca_name))
    if not success:
        _attach(cadf, "failure", {"stage": stage or "unknown", "reason": reason or ""})
    return cadf.as_dict()


def certificate_summary(certificate, ca_name):
    try:
        names = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        alt_names = [str(getattr(name, "value", name)) for name in names]
    except x509.ExtensionNotFound:
        alt_names = []
    return {
        "serial": "%x" % certificate.serial_number,
        "subject": certificate.subject.rfc4514_string(),
        "subject_alt_names": alt_names,
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "signing_ca": ca_name,
    }


def _attach(cadf, name, content):
    cadf.add_attachment(attachment.Attachment(typeURI="mime:application/json", content=content, name=name))


def log_line(event_type, payload):
    """One JSON line for the ``anchor.audit`` logger."""
    return json.dumps({"event_type": event_type, "payload": payload}, sort_keys=True)


class Audit:
    """Builds the events and hands them to ``emit(event_type, payload)``; no
    emitter means no audit (and no cost)."""

    def __init__(self, emit=None):
        self._emit = emit

    def auth(self, ra_name, success, user, reason=None):
        if self._emit is not None:
            self._emit("audit.auth", auth_event(ra_name, success, user, reason))

    def sign(self, ra_name, success, user, certificate=None, ca_name=None, stage=None, reason=None):
        if self._emit is not None:
            self._emit("audit.sign", sign_event(ra_name, success, user, certificate, ca_name, stage, reason))


NO_AUDIT = Audit()


def to_log(event_type, payload):
    AUDIT_LOG.info(log_line(event_type, payload))


class _Held:
    __slots__ = ("event_type", "payload", "sent", "logged")

    def __init__(self, event_type, payload):
        self.event_type, self.payload = event_type, payload
        self.sent = threading.Event()
        self.logged = False


class MessagingEmitter:
    """Sends events as oslo.messaging notifications from a background thread."""

    def __init__(self, url, timeout, max_held_events, topics=("notifications",)):
        try:
            import oslo_messaging
            from oslo_config import cfg
        except ImportError:
            raise ValueError("the messaging target needs oslo.messaging: pip install 'anchor[messaging]'") from None
        _require_threads()

        self.url, self.timeout, self.max_held = url, timeout, max_held_events
        self.topics = list(topics)
        # Parse the URL now, so a malformed one stops start-up; connect later.
        try:
            oslo_messaging.TransportURL.parse(cfg.ConfigOpts(), url)
        except oslo_messaging.InvalidTransportURL:
            # The message would repeat the URL, password included: keep it out.
            raise settings.OptionError("url", "not an oslo.messaging transport URL "
                                       "(e.g. rabbit://user:password@host:5672/)") from None
        self._held = collections.deque()
        self._condition = threading.Condition()
        self._pid = None
        self._outage = False

    def __call__(self, event_type, payload):
        item = _Held(event_type, payload)
        with self._condition:
            self._ensure_sender()
            if len(self._held) >= self.max_held:
                dropped = self._held.popleft()
                LOG.error("audit: %d events held while the bus is unreachable; dropping the oldest "
                          "(%s, in the anchor.audit log)", self.max_held, dropped.event_type)
            self._held.append(item)
            self._condition.notify()
        if not item.sent.wait(self.timeout):
            self._log_once(item)

    def _log_once(self, item):
        with self._condition:
            if item.logged or item.sent.is_set():
                return
            item.logged = True
        to_log(item.event_type, item.payload)

    def _ensure_sender(self):
        """Start this process's sender thread (threads do not survive a fork)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            thread = threading.Thread(target=self._send_forever, name="anchor-audit", daemon=True)
            thread.start()

    def _sender(self):
        """A function sending one notification, raising when the bus does not take it.

        oslo.messaging's Notifier and its notification drivers log and swallow
        delivery errors, which would lose held events; this calls the same
        transport method as its ``messaging`` driver (message format 1.0)
        but lets the error through.
        """
        import oslo_messaging
        from oslo_config import cfg

        transport = oslo_messaging.get_notification_transport(cfg.ConfigOpts(), url=self.url)
        targets = [oslo_messaging.Target(topic="%s.info" % topic) for topic in self.topics]

        def send(message):
            for target in targets:
                transport._send_notification(target, {}, message, version=1.0, retry=0)

        return send

    def _send_forever(self):
        send, delay = None, 0.5
        while True:
            with self._condition:
                while not self._held:
                    self._condition.wait()
                item = self._held[0]
            try:
                send = send or self._sender()
                send(self._message(item))
            except Exception as exc:  # the bus is down or refuses: hold and retry
                self._failed(exc)
                with self._condition:
                    self._condition.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            with self._condition:
                if self._held and self._held[0] is item:
                    self._held.popleft()
                item.sent.set()
                remaining = len(self._held)
            if self._outage:
                self._outage = False
                LOG.warning("audit: the message bus is reachable again; sending %d held events", remaining)
            delay = 0.5

    def _failed(self, exc):
        with self._condition:
            unlogged = [item for item in self._held if not item.logged]
            for item in unlogged:
                item.logged = True
        for item in unlogged:
            to_log(item.event_type, item.payload)
        if not self._outage:
            self._outage = True
            LOG.warning("audit: cannot send to the message bus (%s); events are held in memory "
                        "(up to %d) and written to the anchor.audit log until it is back",
                        type(exc).__name__, self.max_held)

    @staticmethod
    def _message(item):
        return {
            "message_id": str(uuid.uuid4()),
            "publisher_id": "anchor",
            "event_type": item.event_type,
            "priority": "INFO",
            "payload": item.payload,
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        }


def _require_threads():
    """The sender is a thread; under uwsgi, threads run only with --enable-threads."""
    try:
        import uwsgi
    except ImportError:
        return  # not under uwsgi: threads always run
    options = {key.decode() if isinstance(key, bytes) else key: value for key, value in uwsgi.opt.items()}
    if not (options.get("enable-threads") or options.get("threads")):
        raise ValueError("the messaging target sends from a thread: start uwsgi with --enable-threads")


def from_settings(audit_settings):
    """The Audit for config.json's ``audit`` block (None: no audit)."""
    if audit_settings is None:
        return NO_AUDIT
    if audit_settings.target == "log":
        return Audit(to_log)
    return Audit(MessagingEmitter(audit_settings.url, audit_settings.timeout,
                                  audit_settings.max_held_events))
