"""The messaging target against a real RabbitMQ node: events arrive as
oslo.messaging notifications, and survive the broker going away."""

import logging
import queue
import time

import pytest

import helpers
from conftest import make_deployment, webtest_app
from rabbitmq import RabbitMQ, require_rabbitmq

WAIT = 30  # seconds; bound for every wait on the message path


class Collector:
    """A notification listener endpoint that keeps what it receives."""

    def __init__(self):
        self.received = queue.Queue()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self.received.put((publisher_id, event_type, payload))

    def take(self, count):
        events = []
        deadline = time.monotonic() + WAIT
        while len(events) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "received only %r of %d events" % (events, count)
            try:
                events.append(self.received.get(timeout=remaining))
            except queue.Empty:
                pass
        return events


class Listener:
    def __init__(self, url):
        import oslo_messaging
        from oslo_config import cfg

        self.collector = Collector()
        transport = oslo_messaging.get_notification_transport(cfg.ConfigOpts(), url=url)
        self._listener = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(topic="notifications")], [self.collector],
            executor="threading")
        self._listener.start()

    def close(self):
        self._listener.stop()
        self._listener.wait()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    require_rabbitmq()
    node = RabbitMQ(str(tmp_path_factory.mktemp("rabbitmq")))
    with node:
        yield node


@pytest.fixture
def listener(broker):
    listening = Listener(broker.url)
    yield listening
    listening.close()


def audited_app(tmp_path, url, timeout=1.0):
    deployment = make_deployment(str(tmp_path))
    config = deployment.config()
    config["audit"] = {"target": "messaging", "url": url, "timeout": timeout}
    deployment.write_config(config)
    return webtest_app(deployment)


def post(client, cn="bus.example.com"):
    return client.post("/v1/sign/default", {"user": helpers.USER, "secret": helpers.SECRET, "encoding": "pem",
                                            "csr": helpers.csr_pem(helpers.make_csr(cn)).decode()},
                       expect_errors=True)


def outage_warnings(caplog):
    return len([r for r in caplog.records if "cannot send to the message bus" in r.getMessage()])


def wait_for(condition, what):
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "no %s within %d s" % (what, WAIT)
        time.sleep(0.1)


def test_signing_sends_both_events(tmp_path, broker, listener):
    client = audited_app(tmp_path, broker.url)
    assert post(client).status_int == 200
    (pub1, type1, auth), (pub2, type2, sign) = listener.collector.take(2)
    assert (pub1, type1) == ("anchor", "audit.auth")
    assert (pub2, type2) == ("anchor", "audit.sign")
    assert auth["action"] == "authenticate" and auth["outcome"] == "success"
    assert sign["action"] == "evaluate" and sign["outcome"] == "success"
    assert sign["target"]["id"].startswith("certificate:")
    assert sign["attachments"][0]["content"]["subject"] == "CN=bus.example.com"


def test_events_held_while_the_broker_is_down_arrive_when_it_is_back(tmp_path, broker, caplog):
    caplog.set_level(logging.INFO)
    client = audited_app(tmp_path, broker.url, timeout=0.5)
    broker.stop()
    try:
        started = time.monotonic()
        assert post(client, "held1.example.com").status_int == 200
        assert post(client, "held2.example.com").status_int == 200
        # Never held up for long by the bus (two requests, two events each, 0.5 s bound each).
        assert time.monotonic() - started < 10
        logged = [r.getMessage() for r in caplog.records if r.name == "anchor.audit"]
        assert len(logged) == 4, "\n".join(line[:60] + line[-120:] for line in logged)  # every held event is in the audit log at once
        assert any("held2.example.com" in line for line in logged)
        # The sender notices the outage (once) and keeps retrying.
        wait_for(lambda: outage_warnings(caplog) >= 1, "the outage warning")
        time.sleep(2)  # let it retry a few times more: still a single warning
        assert outage_warnings(caplog) == 1
    finally:
        broker.start()
    listening = Listener(broker.url)
    try:
        events = listening.collector.take(4)
        assert [event_type for _, event_type, _ in events] == ["audit.auth", "audit.sign"] * 2
        subjects = [payload["attachments"][0]["content"]["subject"]
                    for _, event_type, payload in events if event_type == "audit.sign"]
        assert subjects == ["CN=held1.example.com", "CN=held2.example.com"]
    finally:
        listening.close()
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert helpers.SECRET not in caplog.text
