"""The event layer: outbox, relay, dispatch, inbox, poison guard, exceptions queue.

Effects in these tests are gapless counter increments (``next_number``): a real
tenant-scoped write, so N events processed exactly once leave the counter at N.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest
from dramatiq import Message
from dramatiq.middleware import SkipMessage
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.db import db
from app.events import services as events
from app.events.models import InboxEntry, OutboxEvent, WorkException
from tenants import services
from tenants.context import tenant_scope
from tenants.models import DocumentCounter
from workers import dispatch as dispatch_mod
from workers.dispatch import consumer, dispatch, run_consumer
from workers.middleware import TenantMiddleware
from workers.relay import Relay

from .conftest import TenantFixture, make_tenant

RABBIT = "amqp://guest:guest@127.0.0.1:5672/"
FLAGS: dict[str, str] = {}  # test-controlled behaviour of the test consumer


@consumer("test.counter", "test.ping", max_attempts=3)
def count_ping(session: Session, event: OutboxEvent) -> None:
    mode = FLAGS.get(event.payload.get("key", ""), "")
    services.next_number(session, "ping")
    if mode == "attention":
        raise events.NeedsAttention("not enough stock for SKU X-1", sku="X-1", short=3)
    if mode == "boom":
        raise RuntimeError("downstream exploded")


def _counter(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(DocumentCounter.last_value), 0))
                          .where(DocumentCounter.doc_type == "ping")) or 0


@pytest.fixture
def committed(app) -> Iterator[Callable[[], Session]]:
    """A session factory on the real engine (commits are real), and cleanup of FLAGS."""
    with app.app_context():
        engine = db.engine

        def factory() -> Session:
            return Session(engine, expire_on_commit=False)

        yield factory
    FLAGS.clear()


@pytest.fixture
def tenant(app, committed) -> TenantFixture:
    with committed() as session:
        t = make_tenant(session, f"ev-{secrets.token_hex(4)}")
        session.commit()
    return t


def _publish(factory, t: TenantFixture, n: int = 1, key: str = "") -> list[uuid.UUID]:
    with tenant_scope(t.ctx), factory() as session:
        ids = [events.publish(session, "test.ping", {"key": key, "n": i}).id for i in range(n)]
        session.commit()
    return ids


# --- outbox ------------------------------------------------------------------------------


def test_publish_commits_with_the_change_or_not_at_all(tenant, committed):
    with tenant_scope(tenant.ctx), committed() as session:
        services.next_number(session, "order")
        events.publish(session, "test.ping", {"k": 1})
        session.rollback()
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert session.execute(text("SELECT count(*) FROM events.pending_tenants"
                                    " WHERE tenant_id = :t"), {"t": tenant.id}).scalar() == 0
        event = events.publish(session, "test.ping", {"k": 2})
        session.commit()
        assert event.correlation_id
        marker = session.execute(text("SELECT version FROM events.pending_tenants"
                                      " WHERE tenant_id = :t"), {"t": tenant.id}).scalar()
        assert marker == 1


def test_publish_needs_a_tenant_and_a_dotted_type(tenant, committed):
    from tenants.context import NoTenantContext

    with committed() as session:
        with pytest.raises(NoTenantContext):
            events.publish(session, "test.ping")
    with tenant_scope(tenant.ctx), committed() as session:
        with pytest.raises(events.EventError, match=r"domain\.name"):
            events.publish(session, "ping")


# --- dispatch semantics (no broker) ----------------------------------------------------------


def test_dispatch_processes_once_and_counts_duplicates(tenant, committed):
    (event_id,) = _publish(committed, tenant)
    before = dispatch_mod.STATS.counts["duplicate:test.counter"]
    with tenant_scope(tenant.ctx):
        assert dispatch(committed, event_id)["test.counter"] == "done"
        # the same message delivered twice more (crash after commit, before ack)
        assert dispatch(committed, event_id)["test.counter"] == "duplicate"
        assert dispatch(committed, event_id)["test.counter"] == "duplicate"
        with committed() as session:
            assert _counter(session) == 1
            assert session.scalar(select(func.count()).select_from(InboxEntry)
                                  .where(InboxEntry.consumer == "test.counter")) == 1
    assert dispatch_mod.STATS.counts["duplicate:test.counter"] - before == 2


def test_message_of_tenant_a_with_tenant_b_event_writes_nothing(app, committed):
    with committed() as session:
        a = make_tenant(session, f"ev-a-{secrets.token_hex(3)}")
        b = make_tenant(session, f"ev-b-{secrets.token_hex(3)}")
        session.commit()
    (b_event,) = _publish(committed, b)
    with tenant_scope(a.ctx):
        assert dispatch(committed, b_event) == {}
        with committed() as session:
            assert _counter(session) == 0
            assert session.scalar(select(func.count()).select_from(InboxEntry)
                                  .where(InboxEntry.consumer == "test.counter")) == 0
    with tenant_scope(b.ctx), committed() as session:
        assert _counter(session) == 0


def test_needs_attention_opens_an_exception_and_retry_completes(tenant, committed):
    FLAGS["short"] = "attention"
    (event_id,) = _publish(committed, tenant, key="short")
    with tenant_scope(tenant.ctx):
        assert dispatch(committed, event_id)["test.counter"] == "attention"
        with committed() as session:
            assert _counter(session) == 0  # nothing half-written
            (item,) = events.open_exceptions(session)
            assert (item.kind, item.reason, item.status) == (
                "attention", "not enough stock for SKU X-1", "open")
            assert item.context == {"sku": "X-1", "short": 3}
            FLAGS["short"] = ""  # a person fixed the cause (e.g. goods received)
            retry_row = events.retry_exception(session, item.id)
            session.commit()
            retry_id = session.scalar(select(OutboxEvent.id).where(
                OutboxEvent.event_type == events.REDELIVER,
                OutboxEvent.causation_id == event_id))
        assert retry_row.status == "retrying"
        assert dispatch(committed, retry_id) == {"test.counter": "done"}  # only that consumer
        with committed() as session:
            assert _counter(session) == 1
            item = session.scalar(select(WorkException))
            assert item.status == "resolved" and item.resolved_at is not None
            with pytest.raises(events.EventError, match="already resolved"):
                events.retry_exception(session, item.id)


def test_poison_guard_quarantines_after_max_attempts(tenant, committed):
    FLAGS["bad"] = "boom"
    (event_id,) = _publish(committed, tenant, key="bad")
    c = dispatch_mod.CONSUMERS["test.counter"]
    with tenant_scope(tenant.ctx), committed() as session:
        event = session.get(OutboxEvent, (tenant.id, event_id))
        outcomes = [run_consumer(committed, c, event) for _ in range(5)]
        assert outcomes == ["retry", "retry", "retry", "quarantined", "quarantined"]
        item = session.scalar(select(WorkException))
        assert item.kind == "poison" and "3 failed attempts" in item.reason
        assert _counter(session) == 0
        last_error = session.execute(text("SELECT last_error FROM events.deliveries")).scalar()
        assert last_error == "RuntimeError: downstream exploded"
        with pytest.raises(dispatch_mod.DispatchFailed):
            FLAGS["bad"] = "boom"
            # a fresh event still fails and asks Dramatiq for a retry
            (other,) = _publish(committed, tenant, key="bad")
            dispatch(committed, other)


def test_replay_redrives_consumers_without_doubling(tenant, committed):
    ids = _publish(committed, tenant, n=3)
    with tenant_scope(tenant.ctx):
        for event_id in ids[:2]:  # the third was "lost" before reaching its consumer
            dispatch(committed, event_id)
        with committed() as session:
            since = session.scalar(select(func.min(OutboxEvent.created_at)))
            assert events.replay(session, since) == 3
            session.commit()
            redeliveries = session.scalars(select(OutboxEvent.id).where(
                OutboxEvent.event_type == events.REDELIVER)).all()
        outcomes = [dispatch(committed, r)["test.counter"] for r in redeliveries]
        assert sorted(outcomes) == ["done", "duplicate", "duplicate"]
        with committed() as session:
            assert _counter(session) == 3


def test_middleware_fails_messages_without_a_valid_tenant(app, tenant):
    mw = TenantMiddleware(app)

    @dataclasses.dataclass
    class FakeMessage:
        options: dict
        message_id: str = "m-1"
        failed: bool = False

        def fail(self) -> None:
            self.failed = True

    for bad in (None, "not-a-uuid", str(uuid.uuid4())):
        msg = FakeMessage(options={"tenant_id": bad})
        with pytest.raises(SkipMessage):
            mw.before_process_message(None, msg)
        assert msg.failed, bad
    ok = FakeMessage(options={"tenant_id": str(tenant.id), "correlation_id": "corr-123456"})
    mw.before_process_message(None, ok)
    from tenants.context import current_context, current_request_id

    try:
        assert current_context().tenant_id == tenant.id
        assert current_request_id() == "corr-123456"
    finally:
        mw.after_process_message(None, ok)
    assert current_context() is None


# --- relay ---------------------------------------------------------------------------------


class RecordingBroker:
    """Stands in for a broker to observe what the relay sends (and to fail on cue)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[Message] = []
        self.delays: list[int | None] = []
        self.fail_after = fail_after

    def enqueue(self, message: Message, delay: int | None = None) -> Message:
        self.delays.append(delay)
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectionError("broker went away")
        self.sent.append(message)
        return message


def test_relay_republishes_the_same_ids_after_a_crash_and_never_skips(app, tenant, committed):
    Relay(app, RecordingBroker(), "q").run_once()  # earlier tests' backlog out of the way
    ids = _publish(committed, tenant, n=5)
    flaky = RecordingBroker(fail_after=2)
    relay = Relay(app, flaky, "q", batch=10)
    with pytest.raises(ConnectionError):
        relay.run_once()
    assert [m.message_id for m in flaky.sent] == [str(i) for i in ids[:2]]
    good = RecordingBroker()
    relay.broker = good
    assert relay.run_once() == 5
    assert [m.message_id for m in good.sent] == [str(i) for i in ids]  # same ids, in order
    msg = good.sent[0]
    assert msg.options["tenant_id"] == str(tenant.id) and msg.options["correlation_id"]
    assert msg.kwargs == {"event_id": str(ids[0])}
    assert relay.run_once() == 0  # published rows are not sent again
    with tenant_scope(tenant.ctx), committed() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)
                              .where(OutboxEvent.published_at.is_(None))) == 0


def test_relay_keeps_the_marker_when_an_event_arrives_during_the_drain(app, tenant, committed):
    _publish(committed, tenant)
    with committed() as session:
        version = session.execute(text("SELECT version FROM events.pending_tenants"
                                       " WHERE tenant_id = :t"), {"t": tenant.id}).scalar()
    _publish(committed, tenant)  # bumps the version: the drain below started before it
    relay = Relay(app, RecordingBroker(), "q")
    with app.app_context():
        relay._drain(tenant.id, tenant.slug, version)
    with committed() as session:
        left = session.execute(text("SELECT version FROM events.pending_tenants"
                                    " WHERE tenant_id = :t"), {"t": tenant.id}).scalar()
    assert left == version + 1


# --- real brokers ------------------------------------------------------------------------------


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the workers"
        time.sleep(0.05)


REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["postgres", "rabbitmq", "redis"])
def runtime(request, app, database):
    from workers import runtime as rt

    prefix = f"t{secrets.token_hex(4)}"
    broker_url = {"rabbitmq": RABBIT, "redis": REDIS}.get(request.param)
    settings = dataclasses.replace(database.settings, broker_url=broker_url,
                                   queue_prefix=prefix)
    handle = rt.start(settings, threads=2, app=app)
    handle.relay.poll_interval = 0.2
    yield handle
    handle.stop()
    if request.param == "rabbitmq":
        conn = pika.BlockingConnection(pika.URLParameters(RABBIT))
        channel = conn.channel()
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(f"{prefix}_events{suffix}")
        conn.close()
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}-dramatiq*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_events_flow_through_a_real_broker_exactly_once(runtime, tenant, committed):
    n = 20
    _publish(committed, tenant, n=n)

    def processed() -> int:
        with tenant_scope(tenant.ctx), committed() as session:
            return session.scalar(select(func.count()).select_from(InboxEntry)
                                  .where(InboxEntry.consumer == "test.counter"))

    _wait_for(lambda: processed() == n)
    with tenant_scope(tenant.ctx), committed() as session:
        assert _counter(session) == n
        assert session.scalar(select(func.count()).select_from(OutboxEvent)
                              .where(OutboxEvent.published_at.is_(None))) == 0


def test_same_message_delivered_three_times_has_one_effect(runtime, tenant, committed):
    (event_id,) = _publish(committed, tenant)
    runtime.relay.run_once()
    message = Message(queue_name=runtime.relay.queue_name, actor_name="dispatch_event", args=(),
                      kwargs={"event_id": str(event_id)},
                      options={"tenant_id": str(tenant.id), "correlation_id": "dup-test"},
                      message_id=str(uuid.uuid4()))
    for _ in range(2):  # two more deliveries of the same event, as a broker may do
        runtime.broker.enqueue(message.copy(message_id=str(uuid.uuid4())))
    before = dispatch_mod.STATS.counts["duplicate:test.counter"]
    _wait_for(lambda: dispatch_mod.STATS.counts["duplicate:test.counter"] - before >= 2)
    with tenant_scope(tenant.ctx), committed() as session:
        assert _counter(session) == 1
        assert session.scalar(select(func.count()).select_from(InboxEntry)
                                  .where(InboxEntry.consumer == "test.counter")) == 1


def test_metrics_report_backlog_exceptions_and_consumer_outcomes(app, tenant, committed):
    from workers import metrics

    metrics._cache["gauges"] = None
    FLAGS["m"] = "attention"
    ids = _publish(committed, tenant, n=3, key="m")
    with tenant_scope(tenant.ctx):
        dispatch(committed, ids[0])
    text_out = metrics.render(committed)
    values = dict(line.rsplit(" ", 1) for line in text_out.splitlines()
                  if line and not line.startswith("#"))
    assert float(values["erp_outbox_backlog"]) >= 3
    assert float(values["erp_outbox_pending_tenants"]) >= 1
    assert float(values["erp_outbox_oldest_pending_seconds"]) >= 0
    assert float(values["erp_exceptions_open"]) >= 1
    key = 'erp_consumer_events_total{consumer="test.counter",outcome="attention"}'
    assert int(values[key]) >= 1
    assert "erp_events_duplicates_total" in values


def test_metrics_endpoint_serves_prometheus_text(client, app, monkeypatch):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code \
        == 403  # not from loopback, and no token configured
    settings = dataclasses.replace(app.config["ERP_SETTINGS"], metrics_token="t" * 20)
    monkeypatch.setitem(app.config, "ERP_SETTINGS", settings)
    assert client.get("/metrics").status_code == 401
    resp = client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 20},
                      environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE erp_outbox_backlog gauge" in resp.get_data(as_text=True)


# --- scheduler -----------------------------------------------------------------------------


def test_doubled_scheduler_claims_each_tenant_job_period_once(app, tenant, committed):
    import datetime as dt

    from workers.scheduler import Scheduler

    now = dt.datetime(2031, 5, 4, 10, 30, tzinfo=dt.UTC)
    first, second = Scheduler(app), Scheduler(app)
    assert first.tick(now) >= 1
    assert second.tick(now) == 0  # the same runs were already claimed
    assert first.tick(now) == 0  # and the same period is not even retried
    with tenant_scope(tenant.ctx), committed() as session:
        runs = session.execute(text("SELECT job, period FROM events.scheduled_runs"
                                    " ORDER BY job")).all()
        assert runs == [("audit.seal", "2031-05-04T10"),
                        ("events.prune_deliveries", "2031-05-04")]
        (job_event,) = session.scalars(select(OutboxEvent).where(
            OutboxEvent.event_type == "events.prune_due")).all()
        assert job_event.payload == {"job": "events.prune_deliveries", "period": "2031-05-04"}
    assert second.tick(now + dt.timedelta(days=1)) >= 1


def test_prune_deletes_only_old_attempt_rows_of_finished_work(app, tenant, committed):
    old_done, old_open, new_done = (uuid.uuid4() for _ in range(3))
    with tenant_scope(tenant.ctx), committed() as session:
        for event_id, age in ((old_done, 40), (old_open, 40), (new_done, 1)):
            session.execute(text(
                "INSERT INTO events.deliveries (tenant_id, consumer, event_id, attempts,"
                " updated_at) VALUES (app.current_tenant_id(), 'c', :e, 1,"
                " now() - make_interval(days => :a))"), {"e": event_id, "a": age})
        for event_id in (old_done, new_done):
            session.execute(text("INSERT INTO events.inbox (tenant_id, consumer, event_id)"
                                 " VALUES (app.current_tenant_id(), 'c', :e)"), {"e": event_id})
        job = events.publish(session, "events.prune_due", {"period": "x"})
        session.commit()
        dispatch(committed, job.id)
        left = set(session.execute(text("SELECT event_id FROM events.deliveries"
                                        " WHERE consumer = 'c'")).scalars())
    assert left == {old_open, new_done}


def test_marker_survives_while_another_relay_holds_rows(app, tenant, committed, database):
    """Relay A locks rows and dies before committing; relay B must not drop the marker."""
    Relay(app, RecordingBroker(), "q").run_once()
    ids = _publish(committed, tenant, n=3)
    with database.app_connect() as a_conn:
        a_conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))
        a_conn.execute("SELECT id FROM events.outbox WHERE published_at IS NULL"
                       " FOR UPDATE").fetchall()
        b = RecordingBroker()
        Relay(app, b, "q").run_once()  # sees nothing: the rows are locked by A
        assert [m for m in b.sent if m.options["tenant_id"] == str(tenant.id)] == []
        a_conn.rollback()  # relay A "dies" without publishing
    with committed() as session:
        assert session.execute(text("SELECT count(*) FROM events.pending_tenants"
                                    " WHERE tenant_id = :t"), {"t": tenant.id}).scalar() == 1
    again = RecordingBroker()
    Relay(app, again, "q").run_once()
    assert [m.message_id for m in again.sent] == [str(i) for i in ids]


def test_sweep_remarks_tenants_with_unpublished_events(app, tenant, committed):
    Relay(app, RecordingBroker(), "q").run_once()
    ids = _publish(committed, tenant, n=2)
    with committed() as session:  # the marker is lost (a bug, a hand edit)
        session.execute(text("DELETE FROM events.pending_tenants WHERE tenant_id = :t"),
                        {"t": tenant.id})
        session.commit()
    relay = Relay(app, RecordingBroker(), "q")
    assert relay.run_once() == 0
    assert relay.sweep() == 1
    assert relay.run_once() == 2
    assert relay.sweep() == 0
    assert {m.message_id for m in relay.broker.sent} == {str(i) for i in ids}


def test_suspended_tenants_events_wait_in_the_outbox(app, tenant, committed):
    from tenants.models import Tenant

    Relay(app, RecordingBroker(), "q").run_once()
    ids = _publish(committed, tenant, n=2)
    with committed() as session:
        session.get(Tenant, tenant.id).status = "suspended"
        session.commit()
    relay = Relay(app, RecordingBroker(), "q")
    assert relay.run_once() == 0
    with committed() as session:
        session.get(Tenant, tenant.id).status = "active"
        session.commit()
    assert relay.run_once() == 2
    assert [m.message_id for m in relay.broker.sent] == [str(i) for i in ids]


def test_retry_of_a_quarantined_event_gets_a_fresh_attempt_budget(tenant, committed):
    FLAGS["q"] = "boom"
    (event_id,) = _publish(committed, tenant, key="q")
    c = dispatch_mod.CONSUMERS["test.counter"]
    with tenant_scope(tenant.ctx), committed() as session:
        event = session.get(OutboxEvent, (tenant.id, event_id))
        while run_consumer(committed, c, event) != "quarantined":
            pass
        item = session.scalar(select(WorkException))
        FLAGS["q"] = ""  # the cause is fixed; a person presses Retry
        events.retry_exception(session, item.id)
        session.commit()
        retry_id = session.scalar(select(OutboxEvent.id).where(
            OutboxEvent.event_type == events.REDELIVER))
    with tenant_scope(tenant.ctx):
        assert dispatch(committed, retry_id) == {"test.counter": "done"}
        with committed() as session:
            assert _counter(session) == 1


def test_repeated_attention_never_turns_into_poison(tenant, committed):
    FLAGS["short2"] = "attention"
    (event_id,) = _publish(committed, tenant, key="short2")
    with tenant_scope(tenant.ctx):
        for _ in range(6):  # stock still short at every retry
            assert dispatch(committed, event_id)["test.counter"] == "attention"
            with committed() as session:
                item = session.scalar(select(WorkException))
                assert item.kind == "attention"
                assert item.reason == "not enough stock for SKU X-1"


def test_database_outage_is_retried_for_as_long_as_it_lasts(database, tmp_path):
    """A committed event must not be dead-lettered because the database was down
    longer than the retry budget (review finding 1)."""
    from dramatiq.brokers.stub import StubBroker

    from app import create_app
    from workers.dispatch import (
        MAX_RETRIES,
        DatabaseUnavailable,
        declare_actors,
        retry_when,
    )

    down = dataclasses.replace(database.settings,
                               database_url="postgresql://nobody@127.0.0.1:1/none")
    broken = create_app(down)
    broker = StubBroker()
    actor = declare_actors(broker, broken, "q")
    from tenants.context import TenantContext

    with tenant_scope(TenantContext(tenant_id=uuid.uuid4(), tenant_slug="t")), \
            pytest.raises(DatabaseUnavailable):
        actor.fn(event_id=str(uuid.uuid4()))
    mw = TenantMiddleware(broken)

    class Msg:
        options = {"tenant_id": str(uuid.uuid4())}
        message_id = "m"

        def fail(self) -> None:
            raise AssertionError("a database outage must not fail the message")

    with pytest.raises(DatabaseUnavailable):
        mw.before_process_message(None, Msg())
    assert retry_when(10_000, DatabaseUnavailable("down"))
    assert retry_when(MAX_RETRIES - 1, RuntimeError("bug"))
    assert not retry_when(MAX_RETRIES, RuntimeError("bug"))
    broker.close()


def test_queued_message_of_a_suspended_tenant_is_parked_not_failed(app, tenant, committed):
    from tenants.models import Tenant

    (event_id,) = _publish(committed, tenant)
    Relay(app, RecordingBroker(), "q").run_once()  # published, "in the broker"
    with committed() as session:
        session.get(Tenant, tenant.id).status = "suspended"
        session.commit()

    @dataclasses.dataclass
    class Msg:
        options: dict
        kwargs: dict
        message_id: str = "m-2"
        failed: bool = False

        def fail(self) -> None:
            self.failed = True

    msg = Msg(options={"tenant_id": str(tenant.id)}, kwargs={"event_id": str(event_id)})
    with pytest.raises(SkipMessage):
        TenantMiddleware(app).before_process_message(None, msg)
    assert not msg.failed  # acknowledged, not dead-lettered
    relay = Relay(app, RecordingBroker(), "q")
    assert relay.run_once() == 0  # waits while suspended
    with committed() as session:
        session.get(Tenant, tenant.id).status = "active"
        session.commit()
    relay.run_once()
    assert str(event_id) in {m.message_id for m in relay.broker.sent}


def test_one_tenants_burst_does_not_hold_back_the_others(app, committed):
    with committed() as session:
        big = make_tenant(session, f"big-{secrets.token_hex(3)}")
        small = make_tenant(session, f"small-{secrets.token_hex(3)}")
        session.commit()
    Relay(app, RecordingBroker(), "q").run_once()
    _publish(committed, big, n=30)
    _publish(committed, small)
    relay = Relay(app, RecordingBroker(), "q", batch=5, batches_per_tenant=2)
    relay.run_once()
    sent = [m.options["tenant_id"] for m in relay.broker.sent]
    assert sent.count(str(big.id)) == 10  # capped at 2 batches of 5
    assert str(small.id) in sent  # served in the same pass
    assert relay.backlog_left
    while relay.backlog_left:
        relay.run_once()
    assert [m.options["tenant_id"] for m in relay.broker.sent].count(str(big.id)) == 30
