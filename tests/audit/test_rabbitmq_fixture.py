"""The private RabbitMQ node carries oslo.messaging notifications, and survives
a stop()/start() cycle at the same URL."""

import queue
import socket
import threading
import time
import uuid

from rabbitmq import HOST, RabbitMQ, require_rabbitmq

WAIT = 30  # seconds; bound for every wait on the message path


class _Endpoint:
    def __init__(self):
        self.received = queue.Queue()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.put((publisher_id, event_type, payload))


def _call_bounded(func, timeout, what):
    """Run func() in a daemon thread; fail if it does not return in time."""
    errors = []

    def run():
        try:
            func()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "%s did not finish within %ss" % (what, timeout)
    if errors:
        raise errors[0]


def _round_trip(url, tag):
    """Start a listener, send one notification, check it arrives."""
    import oslo_messaging
    from oslo_config import cfg

    transport = oslo_messaging.get_notification_transport(cfg.ConfigOpts(), url=url)
    endpoint = _Endpoint()
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic="notifications")],
        [endpoint],
        executor="threading",
    )
    started = False
    try:
        # Start the listener first: it declares the notifications.info queue
        # on the openstack exchange; a message sent before that is dropped.
        _call_bounded(listener.start, WAIT, "listener.start()")
        started = True
        notifier = oslo_messaging.Notifier(
            transport,
            driver="messaging",
            topics=["notifications"],
            publisher_id="test",
            retry=3,
        )
        payload = {"tag": tag, "id": str(uuid.uuid4())}
        _call_bounded(
            lambda: notifier.info({}, "anchor.audit.test", payload), WAIT, "notifier.info()"
        )
        publisher_id, event_type, got = endpoint.received.get(timeout=WAIT)
        assert publisher_id == "test"
        assert event_type == "anchor.audit.test"
        assert got == payload
    finally:
        if started:
            _call_bounded(listener.stop, WAIT, "listener.stop()")
            _call_bounded(listener.wait, WAIT, "listener.wait()")
        transport.cleanup()


def _port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def test_rabbitmq_node_round_trip_and_restart(tmp_path):
    require_rabbitmq()
    broker = RabbitMQ(tmp_path / "rabbit")
    url = broker.url
    assert url == "rabbit://guest:guest@127.0.0.1:%d/" % broker.amqp_port
    ports = {broker.amqp_port, broker.dist_port, broker.epmd_port}
    assert len(ports) == 3
    assert all(20000 <= p <= 32000 for p in ports)

    timings = {}
    try:
        t0 = time.monotonic()
        broker.start()
        timings["start"] = time.monotonic() - t0
        assert _port_open(broker.amqp_port)
        _round_trip(url, "first")

        t0 = time.monotonic()
        broker.stop()
        timings["stop"] = time.monotonic() - t0
        assert not _port_open(broker.amqp_port), "AMQP port still open after stop()"
        assert _port_open(broker.epmd_port), "epmd should survive stop()"

        t0 = time.monotonic()
        broker.start()
        timings["restart"] = time.monotonic() - t0
        assert broker.url == url
        _round_trip(url, "second")
    finally:
        t0 = time.monotonic()
        broker.close()
        timings["close"] = time.monotonic() - t0
        print("rabbitmq timings: %s" % {k: round(v, 2) for k, v in timings.items()})

    assert not _port_open(broker.amqp_port)
    assert not _port_open(broker.epmd_port), "epmd still running after close()"
    broker.close()  # idempotent
