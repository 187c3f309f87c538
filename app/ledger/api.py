"""``/api/v1/ledger/...``: chart of accounts, exchange rates, periods, journal entries
and the reports, for accounting integrations.

Journal entries are created as drafts or posted at once (``"post": true``); an
unbalanced entry, a posting into a closed period or a change to a posted entry is
refused with 422 and the ledger's own sentence, and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.resources import (
    dump,
    list_model,
    load,
    out_model,
    page_model,
    parse_id,
    service_errors,
)
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError

from . import services
from .models import ACCOUNT_TYPES, Account, ExchangeRate, JournalEntry, JournalLine, Period

AccountOut = out_model(Account, name="LedgerAccountOut")
RateOut = out_model(ExchangeRate)
PeriodOut = out_model(Period)
LineOut = out_model(JournalLine, name="JournalLineOut")
EntryOut = out_model(JournalEntry, name="JournalEntryOut", extra={
    "lines": (list[LineOut], ...),  # type: ignore[valid-type]
    "total_debit": (str, ...), "total_credit": (str, ...)})
EntrySummary = out_model(JournalEntry, name="JournalEntrySummary")
AccountList = list_model(AccountOut, "LedgerAccountList")
RateList = list_model(RateOut)
PeriodList = list_model(PeriodOut)
EntryPage = page_model(EntrySummary, "JournalEntryPage")


class AccountIn(Input):
    code: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=200)
    type: Literal[ACCOUNT_TYPES]  # type: ignore[valid-type]
    description: str = Field(default="", max_length=2000)


class AccountPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    is_active: bool | None = None


class RateIn(Input):
    currency: str = Field(min_length=3, max_length=3)
    rate_date: dt.date
    rate: Decimal = Field(gt=0, max_digits=18, decimal_places=8)


class LineIn(Input):
    account_id: uuid.UUID
    debit: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    credit: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    rate: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=8)
    description: str = Field(default="", max_length=500)


class EntryIn(Input):
    entry_date: dt.date
    description: str = Field(default="", max_length=500)
    lines: list[LineIn] = Field(min_length=2, max_length=500)
    post: bool = Field(default=False, description="Post at once instead of saving a draft")


class EntryQuery(Input):
    status: Literal["draft", "posted"] | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ReverseIn(Input):
    on_date: dt.date | None = None
    description: str | None = Field(default=None, max_length=500)


class AsOfQuery(Input):
    as_of: dt.date = Field(default_factory=lambda: dt.date.today())


class RangeQuery(Input):
    start: dt.date
    end: dt.date


class BalanceRow(BaseModel):
    account_id: uuid.UUID
    code: str
    name: str
    type: str
    debit: str
    credit: str
    balance: str


class TrialBalanceOut(BaseModel):
    as_of: dt.date
    currency: str
    rows: list[BalanceRow]
    total_debit: str
    total_credit: str
    balanced: bool


class SectionOut(BaseModel):
    title: str
    rows: list[BalanceRow]
    total: str


class BalanceSheetOut(BaseModel):
    as_of: dt.date
    currency: str
    assets: SectionOut
    liabilities: SectionOut
    equity: SectionOut
    current_earnings: str
    total_liabilities_and_equity: str
    balanced: bool


class ProfitAndLossOut(BaseModel):
    start: dt.date
    end: dt.date
    currency: str
    revenue: SectionOut
    cogs: SectionOut
    expenses: SectionOut
    gross_profit: str
    net_profit: str


class LedgerRowOut(BaseModel):
    entry_id: uuid.UUID
    number: str | None
    entry_date: dt.date
    description: str
    debit: str
    credit: str
    balance: str


class GeneralLedgerOut(BaseModel):
    account_id: uuid.UUID
    code: str
    name: str
    start: dt.date
    end: dt.date
    currency: str
    opening: str
    closing: str
    rows: list[LedgerRowOut]


def _s(value: Decimal) -> str:
    text = format(value, "f")
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def _entry_out(entry: JournalEntry) -> dict:
    lines = services.entry_lines(db.session, entry.id)
    return dump(entry, EntryOut, lines=[dump(ln, LineOut) for ln in lines],
                total_debit=_s(sum((ln.base_debit for ln in lines), Decimal(0))),
                total_credit=_s(sum((ln.base_credit for ln in lines), Decimal(0))))


def _row(b: services.AccountBalance) -> dict:
    return {"account_id": b.account.id, "code": b.account.code, "name": b.account.name,
            "type": b.account.type, "debit": _s(b.debit), "credit": _s(b.credit),
            "balance": _s(b.balance)}


def _section(section: services.Section) -> dict:
    return {"title": section.title, "rows": [_row(r) for r in section.rows],
            "total": _s(section.total)}


# --- accounts, rates, periods -----------------------------------------------------------


@bp.get("/ledger/accounts")
@api_auth("ledger:read")
@doc(summary="The chart of accounts", response=AccountList, tags=["ledger"])
def ledger_list_accounts() -> ResponseReturnValue:
    return jsonify(items=[dump(a, AccountOut) for a in services.list_accounts(db.session)])


@bp.post("/ledger/accounts")
@api_auth("ledger:post")
@idempotent
@doc(summary="Add an account", body=AccountIn, response=AccountOut, status=201,
     tags=["ledger"])
def ledger_create_account() -> ResponseReturnValue:
    body = parse_body(AccountIn)
    with service_errors():
        account = services.create_account(db.session, body.model_dump())
    return jsonify(dump(account, AccountOut)), 201


@bp.patch("/ledger/accounts/<account_id>")
@api_auth("ledger:post")
@doc(summary="Rename, describe, activate or deactivate an account", body=AccountPatch,
     response=AccountOut, errors=(409,), tags=["ledger"])
def ledger_update_account(account_id: str) -> ResponseReturnValue:
    account = load(services.get_account, account_id, "account")
    body = parse_body(AccountPatch)
    with service_errors():
        services.update_account(db.session, account, body.model_dump(exclude_unset=True))
    return jsonify(dump(account, AccountOut))


@bp.get("/ledger/exchange-rates")
@api_auth("ledger:read")
@doc(summary="Exchange rates, newest first", response=RateList, tags=["ledger"])
def ledger_list_rates() -> ResponseReturnValue:
    return jsonify(items=[dump(r, RateOut) for r in services.list_rates(db.session)])


@bp.post("/ledger/exchange-rates")
@api_auth("ledger:post")
@idempotent
@doc(summary="Record (or correct) a rate: one unit of the currency in base currency",
     body=RateIn, response=RateOut, status=201, tags=["ledger"])
def ledger_set_rate() -> ResponseReturnValue:
    body = parse_body(RateIn)
    with service_errors():
        rate = services.set_rate(db.session, body.currency, body.rate_date, body.rate)
    return jsonify(dump(rate, RateOut)), 201


@bp.get("/ledger/periods")
@api_auth("ledger:read")
@doc(summary="Accounting periods (months) and whether they are closed", response=PeriodList,
     tags=["ledger"])
def ledger_list_periods() -> ResponseReturnValue:
    return jsonify(items=[dump(p, PeriodOut) for p in services.list_periods(db.session)])


def _month(raw: str) -> tuple[int, int]:
    try:
        year, month = (int(x) for x in raw.split("-"))
        dt.date(year, month, 1)
    except ValueError:
        raise ApiError(404, "no such period: use YYYY-MM") from None
    return year, month


@bp.post("/ledger/periods/<month>/close")
@api_auth("ledger:close")
@idempotent
@doc(summary="Close a month (YYYY-MM): no posting dated in it is accepted afterwards",
     response=PeriodOut, tags=["ledger"])
def ledger_close_period(month: str) -> ResponseReturnValue:
    year, number = _month(month)
    with service_errors():
        period = services.close_period(db.session, year, number)
    return jsonify(dump(period, PeriodOut))


@bp.post("/ledger/periods/<month>/reopen")
@api_auth("ledger:close")
@idempotent
@doc(summary="Reopen a closed month (YYYY-MM)", response=PeriodOut, tags=["ledger"])
def ledger_reopen_period(month: str) -> ResponseReturnValue:
    year, number = _month(month)
    with service_errors():
        period = services.reopen_period(db.session, year, number)
    return jsonify(dump(period, PeriodOut))


# --- journal entries ----------------------------------------------------------------------


@bp.get("/ledger/entries")
@api_auth("ledger:read")
@doc(summary="Journal entries, newest first", query=EntryQuery, response=EntryPage,
     tags=["ledger"])
def ledger_list_entries() -> ResponseReturnValue:
    query = parse_query(EntryQuery)
    page = services.list_entries(db.session, **query.model_dump())
    return jsonify(items=[dump(e, EntrySummary) for e in page.items], total=page.total,
                   page=page.page, per_page=page.per_page)


@bp.post("/ledger/entries")
@api_auth("ledger:post")
@idempotent
@doc(summary="Save a draft entry, or post it at once with \"post\": true (it must "
             "balance in base currency)", body=EntryIn, response=EntryOut, status=201,
     tags=["ledger"])
def ledger_create_entry() -> ResponseReturnValue:
    body = parse_body(EntryIn)
    lines = [services.LineInput(account_id=ln.account_id, debit=ln.debit, credit=ln.credit,
                                currency=ln.currency, rate=ln.rate, description=ln.description)
             for ln in body.lines]
    save = services.post_entry if body.post else services.save_draft
    with service_errors():
        entry = save(db.session, entry_date=body.entry_date, description=body.description,
                     lines=lines)
    return jsonify(_entry_out(entry)), 201


@bp.get("/ledger/entries/<entry_id>")
@api_auth("ledger:read")
@doc(summary="A journal entry with its lines", response=EntryOut, tags=["ledger"])
def ledger_get_entry(entry_id: str) -> ResponseReturnValue:
    return jsonify(_entry_out(load(services.get_entry, entry_id, "journal entry")))


@bp.post("/ledger/entries/<entry_id>/post")
@api_auth("ledger:post")
@idempotent
@doc(summary="Post a draft entry", response=EntryOut, tags=["ledger"])
def ledger_post_entry(entry_id: str) -> ResponseReturnValue:
    entry = load(services.get_entry, entry_id, "journal entry")
    with service_errors():
        services.post(db.session, entry)
    return jsonify(_entry_out(entry))


@bp.post("/ledger/entries/<entry_id>/reverse")
@api_auth("ledger:post")
@idempotent
@doc(summary="Reverse a posted entry with a new, linked entry", body=ReverseIn,
     response=EntryOut, status=201, tags=["ledger"])
def ledger_reverse_entry(entry_id: str) -> ResponseReturnValue:
    entry = load(services.get_entry, entry_id, "journal entry")
    body = parse_body(ReverseIn)
    with service_errors():
        reversal = services.reverse(db.session, entry, body.on_date, body.description)
    return jsonify(_entry_out(reversal)), 201


@bp.delete("/ledger/entries/<entry_id>")
@api_auth("ledger:post")
@doc(summary="Delete a draft entry (posted entries are reversed, never deleted)",
     status=204, errors=(409, 422), tags=["ledger"])
def ledger_delete_entry(entry_id: str) -> ResponseReturnValue:
    entry = load(services.get_entry, entry_id, "journal entry")
    with service_errors():
        services.delete_draft(db.session, entry)
    return "", 204


# --- reports ------------------------------------------------------------------------------


@bp.get("/ledger/reports/trial-balance")
@api_auth("ledger:read")
@doc(summary="Trial balance as of a date (base currency)", query=AsOfQuery,
     response=TrialBalanceOut, tags=["ledger"])
def ledger_trial_balance() -> ResponseReturnValue:
    query = parse_query(AsOfQuery)
    tb = services.trial_balance(db.session, query.as_of)
    return jsonify(TrialBalanceOut(
        as_of=tb.as_of, currency=tb.currency, rows=[_row(r) for r in tb.rows],
        total_debit=_s(tb.total_debit), total_credit=_s(tb.total_credit),
        balanced=tb.total_debit == tb.total_credit).model_dump(mode="json"))


@bp.get("/ledger/reports/balance-sheet")
@api_auth("ledger:read")
@doc(summary="Balance sheet as of a date", query=AsOfQuery, response=BalanceSheetOut,
     tags=["ledger"])
def ledger_balance_sheet() -> ResponseReturnValue:
    query = parse_query(AsOfQuery)
    bs = services.balance_sheet(db.session, query.as_of)
    return jsonify(BalanceSheetOut(
        as_of=bs.as_of, currency=bs.currency, assets=_section(bs.assets),
        liabilities=_section(bs.liabilities), equity=_section(bs.equity),
        current_earnings=_s(bs.earnings),
        total_liabilities_and_equity=_s(bs.total_liabilities_and_equity),
        balanced=bs.balanced).model_dump(mode="json"))


@bp.get("/ledger/reports/profit-and-loss")
@api_auth("ledger:read")
@doc(summary="Profit and loss between two dates (inclusive)", query=RangeQuery,
     response=ProfitAndLossOut, tags=["ledger"])
def ledger_profit_and_loss() -> ResponseReturnValue:
    query = parse_query(RangeQuery)
    if query.end < query.start:
        raise ApiError(422, "the end is before the start", "invalid", {"end": "before start"})
    pl = services.profit_and_loss(db.session, query.start, query.end)
    return jsonify(ProfitAndLossOut(
        start=pl.start, end=pl.end, currency=pl.currency, revenue=_section(pl.revenue),
        cogs=_section(pl.cogs), expenses=_section(pl.expenses),
        gross_profit=_s(pl.gross_profit), net_profit=_s(pl.net_profit)).model_dump(mode="json"))


@bp.get("/ledger/accounts/<account_id>/ledger")
@api_auth("ledger:read")
@doc(summary="General ledger of one account between two dates, with running balance",
     query=RangeQuery, response=GeneralLedgerOut, tags=["ledger"])
def ledger_general_ledger(account_id: str) -> ResponseReturnValue:
    account = services.get_account(db.session, parse_id(account_id, "account"))
    if account is None:
        raise ApiError(404, "no such account")
    query = parse_query(RangeQuery)
    if query.end < query.start:
        raise ApiError(422, "the end is before the start", "invalid", {"end": "before start"})
    gl = services.general_ledger(db.session, account, query.start, query.end)
    rows = [LedgerRowOut(entry_id=r.entry.id, number=r.entry.number,
                         entry_date=r.entry.entry_date, description=r.entry.description,
                         debit=_s(r.line.base_debit), credit=_s(r.line.base_credit),
                         balance=_s(r.balance)) for r in gl.rows]
    return jsonify(GeneralLedgerOut(
        account_id=account.id, code=account.code, name=account.name, start=gl.start,
        end=gl.end, currency=gl.currency, opening=_s(gl.opening), closing=_s(gl.closing),
        rows=rows).model_dump(mode="json"))
