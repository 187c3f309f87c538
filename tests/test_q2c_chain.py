"""Quote-to-cash as a chain of outbox consumers, driven by the real dispatcher
in-process (no broker): from a ``crm.deal.won`` outbox row to a paid invoice,
exactly once, with refusals that leave nothing half-written."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.billing import services as billing
from app.billing.models import Invoice
from app.db import db
from app.events import services as events
from app.events.models import OutboxEvent, WorkException
from app.inventory import services as inv
from app.inventory.models import Reservation
from app.ledger import services as ledger
from app.sales import consumers as chain
from app.sales import services as sales
from app.sales.models import SalesOrder
from tenants.context import tenant_scope
from workers.dispatch import dispatch

from .conftest import TenantFixture, make_tenant
from .q2c_support import account, balance, line, product, quote

D = Decimal


@pytest.fixture
def committed(app) -> Iterator[Callable[[], Session]]:
    with app.app_context():
        engine = db.engine

        def factory() -> Session:
            return Session(engine, expire_on_commit=False)

        yield factory


@pytest.fixture
def tenant(app, committed) -> TenantFixture:
    with committed() as session:
        t = make_tenant(session, f"q2c-{secrets.token_hex(4)}")
        session.commit()
    return t


def drain(factory, t: TenantFixture, seen: set[uuid.UUID]) -> dict[str, list[str]]:
    """Dispatch every outbox row not dispatched yet, in order, until none is left
    (each step's next event is a new row): what the relay and workers do."""
    outcomes: dict[str, list[str]] = {}
    with tenant_scope(t.ctx):
        while True:
            with factory() as s:
                rows = s.execute(select(OutboxEvent.id, OutboxEvent.event_type)
                                 .order_by(OutboxEvent.id)).all()
            fresh = [(i, kind) for i, kind in rows if i not in seen]
            if not fresh:
                return outcomes
            for event_id, kind in fresh:
                seen.add(event_id)
                for name, outcome in dispatch(factory, event_id).items():
                    outcomes.setdefault(f"{kind}>{name}", []).append(outcome)


def _setup(factory, t, *, stock="10", auto_deliver=True, send=True, deal=None):
    with tenant_scope(t.ctx), factory() as s:
        acct = account(s, payment_terms_days=30)
        p = product(s, "CH-1", stock=stock, cost="4.00")
        deal = deal or uuid.uuid4()
        q = quote(s, acct, [line(p, "3", "10.00", tax="20")], source_deal_id=deal)
        if send:
            sales.send_quote(s, q)
        if auto_deliver:
            sales.set_auto_deliver(s, True)
        s.commit()
        return acct.id, p.id, deal, q.id


def _win(factory, t, deal, account_id) -> uuid.UUID:
    """The CRM's won deal, written straight into the outbox."""
    with tenant_scope(t.ctx), factory() as s:
        event = events.publish(s, "crm.deal.won", {
            "deal_id": str(deal), "account_id": str(account_id), "contact_id": None,
            "value": "36.00", "currency": "EUR", "won_at": dt.datetime.now(dt.UTC).isoformat()})
        s.commit()
        return event.id


def _count(s, model, *where) -> int:
    return s.scalar(select(func.count()).select_from(model).where(*where))


def test_won_deal_to_paid_invoice(tenant, committed):
    account_id, product_id, deal, quote_id = _setup(committed, tenant)
    seen: set[uuid.UUID] = set()
    _win(committed, tenant, deal, account_id)
    outcomes = drain(committed, tenant, seen)
    assert outcomes["crm.deal.won>sales.order_from_deal"] == ["done"]
    assert outcomes["sales.order.confirmed>sales.auto_deliver"] == ["done"]
    assert outcomes["sales.delivery.done>billing.invoice_delivery"] == ["done"]
    with tenant_scope(tenant.ctx), committed() as s:
        order = s.scalar(select(SalesOrder))
        assert (order.status, order.source_deal_id, order.source_quote_id) == (
            "invoiced", deal, quote_id)
        assert sales.get_quote(s, quote_id).status == "accepted"
        invoice = s.scalar(select(Invoice))
        assert (invoice.status, invoice.total, invoice.sales_order_id) == (
            "unpaid", D("36.00"), order.id)
        assert s.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.event_type == billing.INVOICE_ISSUED)) == 1
        assert inv.product_totals(s, product_id).on_hand == D(7)
        assert inv.product_totals(s, product_id).reserved == 0
        assert balance(s, "receivables") == D("36.00") and balance(s, "cogs") == D("12.00")
        # the customer pays; the chain allocates it and closes the receivable
        billing.record_payment(s, account_id=account_id, amount="36.00", currency="EUR")
        s.commit()
    outcomes = drain(committed, tenant, seen)
    assert outcomes["billing.payment.received>billing.allocate_payment"] == ["done"]
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(Invoice.status)) == "paid"
        assert balance(s, "receivables") == 0 and balance(s, "bank") == D("36.00")
        trial = ledger.trial_balance(s, dt.date.today() + dt.timedelta(days=1))
        assert trial.total_debit == trial.total_credit
        assert _count(s, WorkException) == 0


def test_duplicate_delivery_of_every_message_changes_nothing(tenant, committed):
    account_id, product_id, deal, _ = _setup(committed, tenant)
    won = _win(committed, tenant, deal, account_id)
    seen: set[uuid.UUID] = set()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        before = (_count(s, SalesOrder), _count(s, Invoice), _count(s, OutboxEvent),
                  inv.product_totals(s, product_id).on_hand, balance(s, "receivables"))
        event_ids = list(s.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id)))
    with tenant_scope(tenant.ctx):
        # every message of the chain delivered again (crash after commit, before ack)
        for event_id in event_ids:
            assert set(dispatch(committed, event_id).values()) <= {"duplicate", "skipped"}
        # and the consumers themselves, past the inbox: the natural keys hold
        with committed() as s:
            event = s.get(OutboxEvent, (tenant.id, won))
            chain.order_from_won_deal(s, event)
            order = s.scalar(select(SalesOrder))
            for kind, handler in [(sales.ORDER_CONFIRMED, chain.auto_deliver)]:
                again = s.scalar(select(OutboxEvent).where(OutboxEvent.event_type == kind))
                handler(s, again)
            from app.billing import consumers as billing_chain

            done = s.scalar(select(OutboxEvent).where(
                OutboxEvent.event_type == sales.DELIVERY_DONE))
            billing_chain.invoice_delivery(s, done)
            s.commit()
            assert order.status == "invoiced"
    with tenant_scope(tenant.ctx), committed() as s:
        after = (_count(s, SalesOrder), _count(s, Invoice), _count(s, OutboxEvent),
                 inv.product_totals(s, product_id).on_hand, balance(s, "receivables"))
    assert after == before


def test_quote_accepted_and_deal_won_make_one_order(tenant, committed):
    account_id, _, deal, quote_id = _setup(committed, tenant, auto_deliver=False)
    with tenant_scope(tenant.ctx), committed() as s:
        sales.accept_quote(s, sales.get_quote(s, quote_id))
        s.commit()
    _win(committed, tenant, deal, account_id)
    seen: set[uuid.UUID] = set()
    outcomes = drain(committed, tenant, seen)
    assert outcomes["sales.quote.accepted>sales.order_from_quote"] == ["done"]
    assert outcomes["crm.deal.won>sales.order_from_deal"] == ["done"]
    with tenant_scope(tenant.ctx), committed() as s:
        (order,) = s.scalars(select(SalesOrder)).all()
        assert (order.status, order.source_deal_id) == ("confirmed", deal)
        # no automatic delivery: the warehouse confirms from its pick list
        warehouse = inv.list_warehouses(s)[0]
        (pick,) = sales.pick_list(s, warehouse.id)
        sales.deliver(s, pick.order, warehouse.id)
        s.commit()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(SalesOrder.status)) == "invoiced"
        assert _count(s, Invoice) == 1


def test_won_deal_without_a_quote_needs_attention_and_retry_completes(tenant, committed):
    account_id, _, deal, quote_id = _setup(committed, tenant, send=False)
    _win(committed, tenant, deal, account_id)
    seen: set[uuid.UUID] = set()
    outcomes = drain(committed, tenant, seen)
    assert outcomes["crm.deal.won>sales.order_from_deal"] == ["attention"]
    with tenant_scope(tenant.ctx), committed() as s:
        assert _count(s, SalesOrder) == 0  # nothing written
        (item,) = events.open_exceptions(s)
        assert item.consumer == "sales.order_from_deal"
        assert f"deal {deal} was won but has no sent or accepted quote" in item.reason
        assert item.context["deal_id"] == str(deal)
        sales.send_quote(s, sales.get_quote(s, quote_id))  # a person sends the quote
        events.retry_exception(s, item.id)
        s.commit()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(SalesOrder.status)) == "invoiced"
        assert s.scalar(select(WorkException.status)) == "resolved"


def test_insufficient_stock_waits_with_an_exception_and_retry_completes(tenant, committed):
    account_id, product_id, deal, _ = _setup(committed, tenant, stock="2")
    _win(committed, tenant, deal, account_id)
    seen: set[uuid.UUID] = set()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        order = s.scalar(select(SalesOrder))
        assert order.status == "waiting_for_stock"
        assert "not enough stock of CH-1 in MAIN: 2 available, 3 requested" in order.hold_reason
        assert _count(s, Reservation) == 0 and _count(s, Invoice) == 0
        assert inv.product_totals(s, product_id).reserved == 0
        (item,) = events.open_exceptions(s)
        assert (item.consumer, item.kind) == (chain.HOLD_CONSUMER, "attention")
        assert item.context["sku"] == "CH-1" and order.number in item.reason
        # goods arrive; a person retries from the exceptions queue
        inv.receive(s, [inv.MoveLine(product_id, inv.list_warehouses(s)[0].id, D(5), D(4))])
        events.retry_exception(s, item.id)
        s.commit()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(SalesOrder.status)) == "invoiced"
        assert s.scalar(select(WorkException.status)) == "resolved"
        assert inv.product_totals(s, product_id).on_hand == D(4)


def test_other_tenants_deal_writes_nothing(app, committed):
    with committed() as session:
        a = make_tenant(session, f"q2c-a-{secrets.token_hex(3)}")
        b = make_tenant(session, f"q2c-b-{secrets.token_hex(3)}")
        session.commit()
    b_account, _, b_deal, _ = _setup(committed, b)
    # tenant A's outbox names tenant B's deal and account
    _win(committed, a, b_deal, b_account)
    outcomes = drain(committed, a, set())
    assert outcomes["crm.deal.won>sales.order_from_deal"] == ["attention"]
    for t in (a, b):
        with tenant_scope(t.ctx), committed() as s:
            assert _count(s, SalesOrder) == 0


def test_invoicing_refused_writes_nothing_and_retry_completes(tenant, committed):
    """A step that cannot finish (no exchange rate for the order's currency) leaves
    the delivery done and no invoice, no ledger entry, no next event."""
    with tenant_scope(tenant.ctx), committed() as s:
        acct = account(s, currency="GBP")
        p = product(s, "GB-1", stock="5")
        q = quote(s, acct, [line(p, "1", "10.00", tax="0")])
        sales.set_auto_deliver(s, True)
        s.commit()
        quote_id = q.id
    with tenant_scope(tenant.ctx), committed() as s:
        sales.accept_quote(s, sales.get_quote(s, quote_id))
        s.commit()
    seen: set[uuid.UUID] = set()
    outcomes = drain(committed, tenant, seen)
    assert outcomes["sales.delivery.done>billing.invoice_delivery"] == ["attention"]
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(SalesOrder.status)) == "delivered"
        assert _count(s, Invoice) == 0 and balance(s, "receivables") == 0
        assert _count(s, OutboxEvent, OutboxEvent.event_type == billing.INVOICE_ISSUED) == 0
        (item,) = events.open_exceptions(s)
        assert "no exchange rate for GBP" in item.reason
        ledger.set_rate(s, "GBP", dt.date.today() - dt.timedelta(days=3), D("1.15"))
        events.retry_exception(s, item.id)
        s.commit()
    drain(committed, tenant, seen)
    with tenant_scope(tenant.ctx), committed() as s:
        assert s.scalar(select(SalesOrder.status)) == "invoiced"
        assert s.scalar(select(Invoice.rate)) == D("1.15")
        assert balance(s, "receivables") == D("11.50")
