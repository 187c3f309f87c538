"""General ledger services: accounts, rates, periods, posting, reversing, reports.

Every other domain records money through ``post_entry``: it validates the lines,
converts them to base currency at the rate of the entry date, checks the balance,
takes the next gapless number and posts, all in the caller's transaction. The
database re-checks the balance at commit and refuses postings into closed periods
and any change to a posted entry, so a bug here cannot corrupt the books; these
checks exist to give the user a clear sentence instead of a database error.

Services never commit. When one raises ``LedgerError`` the caller must roll back:
part of the work may have been flushed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.money import CURRENCIES, UnknownCurrency, quantize, validate_currency
from tenants.context import require_context
from tenants.models import Tenant
from tenants.services import format_number, next_number

from .chart import DEFAULT_CHART
from .models import (
    ACCOUNT_TYPES,
    DEBIT_NORMAL,
    Account,
    ExchangeRate,
    JournalEntry,
    JournalLine,
    Period,
)

ZERO = Decimal(0)
ONE = Decimal(1)
# SQLSTATEs raised by the ledger's triggers (migration 0200_ledger).
DB_REFUSALS = {"LGPER", "LGIMM", "LGBAL", "LGCUR"}


class LedgerError(ValueError):
    """Refused input; the message is a sentence fit for the user, ``field`` the form
    field it belongs to (``lines`` for the entry as a whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def db_refusal(exc: BaseException) -> str | None:
    """The message of a ledger trigger's refusal, or None for any other error."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in DB_REFUSALS:
        return orig.diag.message_primary  # type: ignore[union-attr]
    return None


# --- tenant and accounts ------------------------------------------------------------------


def base_currency(session: Session) -> str:
    tenant = session.get(Tenant, require_context().tenant_id)
    if tenant is None:  # pragma: no cover - the context comes from an existing tenant
        raise LedgerError("unknown tenant")
    return tenant.base_currency


def seed_chart_of_accounts(session: Session, _tenant: Tenant) -> None:
    """Tenant seeder: the default chart (see ``chart.py``)."""
    session.add_all(Account(code=code, name=name, type=type_, role=role)
                    for code, name, type_, role in DEFAULT_CHART)
    session.flush()


def list_accounts(session: Session, *, active_only: bool = False) -> list[Account]:
    query = select(Account).order_by(Account.code)
    if active_only:
        query = query.where(Account.is_active.is_(True))
    return list(session.scalars(query))


def get_account(session: Session, account_id: uuid.UUID) -> Account | None:
    return session.scalar(select(Account).where(Account.id == account_id))


def account_for(session: Session, role: str) -> Account:
    """The active account the system uses for ``role`` (``inventory``, ``cogs``...)."""
    account = session.scalar(select(Account).where(Account.role == role))
    if account is None or not account.is_active:
        raise LedgerError(f"the chart of accounts has no active account for {role!r}: give "
                          "one account that role under Ledger, Chart of accounts", "account")
    return account


def accounts_for(session: Session, *roles: str) -> dict[str, Account]:
    found = {a.role: a for a in session.scalars(select(Account).where(Account.role.in_(roles)))}
    for role in roles:
        if role not in found or not found[role].is_active:
            account_for(session, role)  # raises the explanatory error
    return found  # type: ignore[return-value]


ACCOUNT_FIELDS = ("code", "name", "type", "role", "description", "is_active")


def _clean_account(data: dict[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in data.items() if k in ACCOUNT_FIELDS}
    if "code" in clean:
        clean["code"] = (clean["code"] or "").strip()
        if not clean["code"]:
            raise LedgerError("the account needs a code", "code")
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"]:
            raise LedgerError("the account needs a name", "name")
    if "type" in clean and clean["type"] not in ACCOUNT_TYPES:
        raise LedgerError(f"the type must be one of {', '.join(ACCOUNT_TYPES)}", "type")
    if "role" in clean:
        clean["role"] = (clean["role"] or "").strip() or None
    return clean


def _flush_account(session: Session, new: Account | None = None) -> None:
    try:
        with session.begin_nested():  # a refusal leaves the caller's transaction usable
            if new is not None:
                session.add(new)
            session.flush()
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", "") or ""
        if "role" in constraint:
            raise LedgerError("another account already has this role", "role") from None
        if "code" in constraint:
            raise LedgerError("the code must be 1-20 letters, digits, '.' or '-', and not "
                              "used by another account", "code") from None
        raise


def create_account(session: Session, data: dict[str, Any]) -> Account:
    clean = _clean_account(data)
    for required in ("code", "name", "type"):
        if not clean.get(required):
            raise LedgerError(f"the account needs a {required}", required)
    if session.scalar(select(Account.id).where(Account.code == clean["code"])):
        raise LedgerError(f"account code {clean['code']} is taken", "code")
    account = Account(**clean)
    _flush_account(session, account)
    return account


def account_has_postings(session: Session, account_id: uuid.UUID) -> bool:
    return session.scalar(select(JournalLine.id).where(JournalLine.account_id == account_id)
                          .limit(1)) is not None


def update_account(session: Session, account: Account, data: dict[str, Any]) -> Account:
    clean = _clean_account(data)
    if ("type" in clean and clean["type"] != account.type
            and account_has_postings(session, account.id)):
        raise LedgerError("the account has postings: its type cannot change (open a new "
                          "account and move the balance with a journal entry)", "type")
    if "code" in clean and clean["code"] != account.code and session.scalar(
            select(Account.id).where(Account.code == clean["code"], Account.id != account.id)):
        raise LedgerError(f"account code {clean['code']} is taken", "code")
    for key, value in clean.items():
        setattr(account, key, value)
    _flush_account(session)
    return account


# --- exchange rates -----------------------------------------------------------------------


def _currency(code: str, field_name: str = "currency") -> str:
    try:
        return validate_currency(code)
    except UnknownCurrency as exc:
        raise LedgerError(str(exc), field_name) from None


def set_rate(session: Session, currency: str, rate_date: dt.date, rate: Decimal
             ) -> ExchangeRate:
    """Record (or correct) the rate of ``currency`` on ``rate_date``: one unit of it
    is worth ``rate`` units of base currency. Entries already posted keep the rate
    they stored."""
    currency = _currency(currency)
    if currency == base_currency(session):
        raise LedgerError("the base currency always has rate 1", "currency")
    rate = _decimal(rate, "rate")
    if rate <= 0:
        raise LedgerError("the rate must be greater than zero", "rate")
    existing = session.scalar(select(ExchangeRate).where(
        ExchangeRate.currency == currency, ExchangeRate.rate_date == rate_date))
    if existing is None:
        existing = ExchangeRate(currency=currency, rate_date=rate_date, rate=rate)
        session.add(existing)
    else:
        existing.rate = rate
    session.flush()
    return existing


def rate_for(session: Session, currency: str, on: dt.date) -> Decimal:
    """The rate in force on ``on``: the latest one recorded on or before that day."""
    currency = _currency(currency)
    if currency == base_currency(session):
        return ONE
    rate = session.scalar(
        select(ExchangeRate.rate)
        .where(ExchangeRate.currency == currency, ExchangeRate.rate_date <= on)
        .order_by(ExchangeRate.rate_date.desc()).limit(1))
    if rate is None:
        raise LedgerError(f"no exchange rate for {currency} on or before {on.isoformat()}: "
                          "add one under Ledger, Exchange rates", "currency")
    return rate


def list_rates(session: Session, limit: int = 200) -> list[ExchangeRate]:
    return list(session.scalars(select(ExchangeRate).order_by(
        ExchangeRate.rate_date.desc(), ExchangeRate.currency).limit(limit)))


# --- periods ------------------------------------------------------------------------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def period_is_closed(session: Session, day: dt.date) -> bool:
    return session.scalar(select(Period.status).where(
        Period.period_start == month_start(day))) == "closed"


def _period(session: Session, start: dt.date) -> Period:
    period = session.scalar(select(Period).where(Period.period_start == start)
                            .with_for_update())
    if period is None:
        period = Period(period_start=start, status="open")
        session.add(period)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # a posting created it meanwhile
            period = session.scalar(select(Period).where(Period.period_start == start)
                                    .with_for_update())
    return period  # type: ignore[return-value]


def close_period(session: Session, year: int, month: int) -> Period:
    """Close a month: from commit on, the database refuses postings dated in it.

    The row lock waits for postings into the month that are still running, so none
    can land after the close.
    """
    start = _month(year, month)
    period = _period(session, start)
    if period.status == "closed":
        raise LedgerError(f"{start:%Y-%m} is already closed", "period")
    period.status, period.closed_at = "closed", utcnow()
    period.closed_by = require_context().user_id
    session.flush()
    return period


def drafts_in_month(session: Session, start: dt.date) -> int:
    """Drafts dated in a month: after it closes they can only be re-dated or deleted."""
    return session.scalar(select(func.count()).select_from(JournalEntry).where(
        JournalEntry.status == "draft", JournalEntry.entry_date >= start,
        JournalEntry.entry_date < _next_month(start))) or 0


def reopen_period(session: Session, year: int, month: int) -> Period:
    start = _month(year, month)
    period = _period(session, start)
    if period.status != "closed":
        raise LedgerError(f"{start:%Y-%m} is not closed", "period")
    period.status, period.closed_at, period.closed_by = "open", None, None
    session.flush()
    return period


def list_periods(session: Session) -> list[Period]:
    return list(session.scalars(select(Period).order_by(Period.period_start.desc())))


def _month(year: int, month: int) -> dt.date:
    try:
        return dt.date(int(year), int(month), 1)
    except (TypeError, ValueError):
        raise LedgerError("choose a valid year and month", "period") from None


def _next_month(start: dt.date) -> dt.date:
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


# --- entries ------------------------------------------------------------------------------


@dataclass
class LineInput:
    """One line as a caller gives it: a debit or a credit in ``currency`` (the base
    currency when None), converted at ``rate`` (the entry date's rate when None)."""

    account_id: uuid.UUID
    debit: Decimal | int | str = ZERO
    credit: Decimal | int | str = ZERO
    currency: str | None = None
    rate: Decimal | None = None
    description: str = ""
    partner_type: str | None = None
    partner_id: uuid.UUID | None = None


@dataclass
class Totals:
    debit: Decimal = ZERO
    credit: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.debit - self.credit


@dataclass
class PreparedEntry:
    lines: list[JournalLine] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    base: str = ""


def _decimal(value: Any, field_name: str) -> Decimal:
    if isinstance(value, float):
        raise LedgerError("amounts must be exact decimals, not floating point", field_name)
    try:
        result = Decimal(str(value).strip() or "0") if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise LedgerError(f"{value!r} is not a number", field_name) from None
    if not result.is_finite():
        raise LedgerError(f"{value!r} is not a number", field_name)
    return result


def _amount(value: Any, currency: str, field_name: str) -> Decimal:
    amount = _decimal(value, field_name)
    if amount < 0:
        raise LedgerError("amounts cannot be negative: put the amount on the other side",
                          field_name)
    if amount != quantize(amount, currency):
        raise LedgerError(f"{currency} amounts have at most {CURRENCIES[currency]} decimal "
                          "places", field_name)
    if amount >= Decimal("1e15"):
        raise LedgerError("the amount is too large", field_name)
    return amount


def prepare_lines(session: Session, entry_date: dt.date, lines: Sequence[LineInput]
                  ) -> PreparedEntry:
    """Validate lines and convert them to base currency; nothing is written."""
    base = base_currency(session)
    prepared = PreparedEntry(base=base)
    accounts = {a.id: a for a in session.scalars(
        select(Account).where(Account.id.in_({ln.account_id for ln in lines})))}
    rates: dict[str, Decimal] = {}
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        account = accounts.get(line.account_id)
        if account is None:
            raise LedgerError(f"{where}: no such account", "lines")
        if not account.is_active:
            raise LedgerError(f"{where}: account {account.code} {account.name} is inactive",
                              "lines")
        currency = _currency(line.currency or base, "lines")
        debit = _amount(line.debit, currency, "lines")
        credit = _amount(line.credit, currency, "lines")
        if (debit == 0) == (credit == 0):
            raise LedgerError(f"{where}: enter either a debit or a credit amount, not both "
                              "and not neither", "lines")
        if currency == base:
            rate = ONE
        elif line.rate is not None:
            rate = _decimal(line.rate, "lines")
            if rate <= 0:
                raise LedgerError(f"{where}: the rate must be greater than zero", "lines")
        else:
            if currency not in rates:
                rates[currency] = rate_for(session, currency, entry_date)
            rate = rates[currency]
        base_debit = quantize(debit * rate, base)
        base_credit = quantize(credit * rate, base)
        if (debit and not base_debit) or (credit and not base_credit):
            raise LedgerError(f"{where}: the amount is too small to be worth anything in "
                              f"{base}", "lines")
        prepared.totals.debit += base_debit
        prepared.totals.credit += base_credit
        prepared.lines.append(JournalLine(
            line_no=number, account_id=account.id, description=(line.description or "")[:500],
            currency=currency, rate=rate, debit=debit, credit=credit, base_debit=base_debit,
            base_credit=base_credit, partner_type=line.partner_type,
            partner_id=line.partner_id))
    return prepared


def _check_balanced(prepared: PreparedEntry) -> None:
    totals = prepared.totals
    if len(prepared.lines) < 2:
        raise LedgerError("an entry needs at least two lines", "lines")
    if totals.difference != 0:
        raise LedgerError(
            f"the entry does not balance: debits {totals.debit:,.2f} {prepared.base}, credits "
            f"{totals.credit:,.2f} {prepared.base} (difference {abs(totals.difference):,.2f}"
            f" {prepared.base})", "lines")


def save_draft(session: Session, *, entry_date: dt.date, description: str,
               lines: Sequence[LineInput], entry: JournalEntry | None = None,
               source_type: str | None = None, source_id: uuid.UUID | None = None,
               ) -> JournalEntry:
    """Create a draft, or replace a draft's date, description and lines. Drafts need
    not balance: they have no effect until posted."""
    if entry is not None and entry.status != "draft":
        raise LedgerError("a posted entry cannot be edited; reverse it instead", "lines")
    prepared = prepare_lines(session, entry_date, lines)
    if not prepared.lines:
        raise LedgerError("an entry needs at least two lines", "lines")
    ctx = require_context()
    if entry is None:
        entry = JournalEntry(entry_date=entry_date, description=(description or "")[:500],
                             status="draft", created_by=ctx.user_id, source_type=source_type,
                             source_id=source_id)
        session.add(entry)
        session.flush()
    else:
        entry.entry_date, entry.description = entry_date, (description or "")[:500]
        for old in session.scalars(select(JournalLine).where(JournalLine.entry_id == entry.id)):
            session.delete(old)
        session.flush()
    for line in prepared.lines:
        line.entry_id = entry.id
    session.add_all(prepared.lines)
    session.flush()
    return entry


def post(session: Session, entry: JournalEntry) -> JournalEntry:
    """Post a draft: it must balance, be dated in an open period; it gets its number."""
    if entry.status != "draft":
        raise LedgerError(f"entry {entry.number} is already posted", "lines")
    lines = entry_lines(session, entry.id)
    prepared = PreparedEntry(lines=lines, base=base_currency(session))
    for line in lines:
        prepared.totals.debit += line.base_debit
        prepared.totals.credit += line.base_credit
    _check_balanced(prepared)
    _post(session, entry)
    return entry


def _post(session: Session, entry: JournalEntry) -> None:
    if period_is_closed(session, entry.entry_date):
        raise LedgerError(f"the period {entry.entry_date:%Y-%m} is closed: choose a date in "
                          "an open period", "entry_date")
    year = str(entry.entry_date.year)
    entry.number = format_number("JE", next_number(session, "journal_entry", year), year)
    entry.status, entry.posted_at = "posted", utcnow()
    entry.posted_by = require_context().user_id
    try:
        session.flush()
    except DBAPIError as exc:  # a period closed by a concurrent transaction
        message = db_refusal(exc)
        if message:
            raise LedgerError(message, "entry_date") from None
        raise


def post_entry(session: Session, *, entry_date: dt.date, description: str,
               lines: Sequence[LineInput], source_type: str | None = None,
               source_id: uuid.UUID | None = None, reverses_id: uuid.UUID | None = None,
               ) -> JournalEntry:
    """Validate, write and post an entry in one go: what other domains call."""
    prepared = prepare_lines(session, entry_date, lines)
    _check_balanced(prepared)
    ctx = require_context()
    entry = JournalEntry(entry_date=entry_date, description=(description or "")[:500],
                         status="draft", created_by=ctx.user_id, source_type=source_type,
                         source_id=source_id, reverses_id=reverses_id)
    session.add(entry)
    session.flush()
    for line in prepared.lines:
        line.entry_id = entry.id
    session.add_all(prepared.lines)
    _post(session, entry)
    return entry


def reverse(session: Session, entry: JournalEntry, on_date: dt.date | None = None,
            description: str | None = None) -> JournalEntry:
    """Post the mirror image of a posted entry (same amounts, sides swapped, same
    rates), linked to it: the correction accountants and auditors expect."""
    if entry.status != "posted":
        raise LedgerError("only a posted entry can be reversed; edit or delete the draft",
                          "lines")
    if session.scalar(select(JournalEntry.number).where(JournalEntry.reverses_id == entry.id)):
        raise LedgerError(f"entry {entry.number} has already been reversed", "lines")
    on_date = on_date or utcnow().date()
    lines = [LineInput(account_id=ln.account_id, debit=ln.credit, credit=ln.debit,
                       currency=ln.currency, rate=ln.rate, description=ln.description,
                       partner_type=ln.partner_type, partner_id=ln.partner_id)
             for ln in entry_lines(session, entry.id)]
    return post_entry(session, entry_date=on_date,
                      description=description or f"Reversal of {entry.number}",
                      lines=lines, source_type=entry.source_type, source_id=entry.source_id,
                      reverses_id=entry.id)


def delete_draft(session: Session, entry: JournalEntry) -> None:
    if entry.status != "draft":
        raise LedgerError("a posted entry cannot be deleted; reverse it instead", "lines")
    for line in session.scalars(select(JournalLine).where(JournalLine.entry_id == entry.id)):
        session.delete(line)
    session.flush()
    session.delete(entry)
    session.flush()


def get_entry(session: Session, entry_id: uuid.UUID) -> JournalEntry | None:
    return session.scalar(select(JournalEntry).where(JournalEntry.id == entry_id))


def entry_lines(session: Session, entry_id: uuid.UUID) -> list[JournalLine]:
    return list(session.scalars(select(JournalLine).where(JournalLine.entry_id == entry_id)
                                .order_by(JournalLine.line_no)))


def reversal_of(session: Session, entry_id: uuid.UUID) -> JournalEntry | None:
    return session.scalar(select(JournalEntry).where(JournalEntry.reverses_id == entry_id))


def entries_for_source(session: Session, source_type: str, source_id: uuid.UUID
                       ) -> list[JournalEntry]:
    return list(session.scalars(select(JournalEntry).where(
        JournalEntry.source_type == source_type, JournalEntry.source_id == source_id)
        .order_by(JournalEntry.created_at)))


@dataclass(frozen=True)
class EntryPage:
    items: list[JournalEntry]
    total: int
    page: int
    per_page: int


def list_entries(session: Session, *, status: str | None = None, page: int = 1,
                 per_page: int = 50) -> EntryPage:
    query = select(JournalEntry)
    if status in ("draft", "posted"):
        query = query.where(JournalEntry.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(JournalEntry.entry_date.desc(),
                                                JournalEntry.created_at.desc())
                                 .offset((page - 1) * per_page).limit(per_page)))
    return EntryPage(items, total, page, per_page)


def entry_totals(session: Session, entry_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Totals]:
    rows = session.execute(
        select(JournalLine.entry_id, func.sum(JournalLine.base_debit),
               func.sum(JournalLine.base_credit))
        .where(JournalLine.entry_id.in_(list(entry_ids))).group_by(JournalLine.entry_id))
    return {entry_id: Totals(d or ZERO, c or ZERO) for entry_id, d, c in rows}


# --- reports ------------------------------------------------------------------------------


@dataclass
class AccountBalance:
    account: Account
    debit: Decimal
    credit: Decimal

    @property
    def balance(self) -> Decimal:
        """Positive on the account's normal side."""
        net = self.debit - self.credit
        return net if self.account.type in DEBIT_NORMAL else -net

    @property
    def net_debit(self) -> Decimal:
        return max(self.debit - self.credit, ZERO)

    @property
    def net_credit(self) -> Decimal:
        return max(self.credit - self.debit, ZERO)


def _posted_sums(session: Session, *, until: dt.date | None = None,
                 since: dt.date | None = None) -> dict[uuid.UUID, tuple[Decimal, Decimal]]:
    query: Select = (
        select(JournalLine.account_id, func.sum(JournalLine.base_debit),
               func.sum(JournalLine.base_credit))
        .join(JournalEntry, (JournalEntry.tenant_id == JournalLine.tenant_id)
              & (JournalEntry.id == JournalLine.entry_id))
        .where(JournalEntry.status == "posted")
        .group_by(JournalLine.account_id))
    if until is not None:
        query = query.where(JournalEntry.entry_date <= until)
    if since is not None:
        query = query.where(JournalEntry.entry_date >= since)
    return {account_id: (d or ZERO, c or ZERO) for account_id, d, c in session.execute(query)}


def _balances(session: Session, sums: dict[uuid.UUID, tuple[Decimal, Decimal]],
              types: Iterable[str] | None = None) -> list[AccountBalance]:
    wanted = set(types) if types is not None else None
    result = []
    for account in list_accounts(session):
        if wanted is not None and account.type not in wanted:
            continue
        debit, credit = sums.get(account.id, (ZERO, ZERO))
        if debit or credit or account.is_active:
            result.append(AccountBalance(account, debit, credit))
    return result


@dataclass
class TrialBalance:
    as_of: dt.date
    rows: list[AccountBalance]
    currency: str

    @property
    def total_debit(self) -> Decimal:
        return sum((r.debit for r in self.rows), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((r.credit for r in self.rows), ZERO)

    @property
    def total_net_debit(self) -> Decimal:
        return sum((r.net_debit for r in self.rows), ZERO)

    @property
    def total_net_credit(self) -> Decimal:
        return sum((r.net_credit for r in self.rows), ZERO)


def trial_balance(session: Session, as_of: dt.date) -> TrialBalance:
    """Every account's posted debits and credits up to and including ``as_of``."""
    rows = [r for r in _balances(session, _posted_sums(session, until=as_of))
            if r.debit or r.credit]
    return TrialBalance(as_of, rows, base_currency(session))


@dataclass
class LedgerRow:
    entry: JournalEntry
    line: JournalLine
    balance: Decimal


@dataclass
class AccountLedger:
    account: Account
    start: dt.date
    end: dt.date
    opening: Decimal
    rows: list[LedgerRow]
    currency: str

    @property
    def closing(self) -> Decimal:
        return self.rows[-1].balance if self.rows else self.opening


def general_ledger(session: Session, account: Account, start: dt.date, end: dt.date
                   ) -> AccountLedger:
    """The account's posted lines between two dates with a running balance on its
    normal side, after the opening balance of everything before ``start``."""
    sign = ONE if account.type in DEBIT_NORMAL else -ONE
    opening_sums = session.execute(
        select(func.coalesce(func.sum(JournalLine.base_debit), 0),
               func.coalesce(func.sum(JournalLine.base_credit), 0))
        .join(JournalEntry, (JournalEntry.tenant_id == JournalLine.tenant_id)
              & (JournalEntry.id == JournalLine.entry_id))
        .where(JournalLine.account_id == account.id, JournalEntry.status == "posted",
               JournalEntry.entry_date < start)).one()
    balance = sign * (opening_sums[0] - opening_sums[1])
    opening = balance
    rows = []
    for entry, line in session.execute(
            select(JournalEntry, JournalLine)
            .join(JournalLine, (JournalEntry.tenant_id == JournalLine.tenant_id)
                  & (JournalEntry.id == JournalLine.entry_id))
            .where(JournalLine.account_id == account.id, JournalEntry.status == "posted",
                   JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)
            .order_by(JournalEntry.entry_date, JournalEntry.number, JournalLine.line_no)):
        balance += sign * (line.base_debit - line.base_credit)
        rows.append(LedgerRow(entry, line, balance))
    return AccountLedger(account, start, end, opening, rows, base_currency(session))


@dataclass
class Section:
    title: str
    rows: list[AccountBalance]

    @property
    def total(self) -> Decimal:
        return sum((r.balance for r in self.rows), ZERO)


@dataclass
class BalanceSheet:
    as_of: dt.date
    assets: Section
    liabilities: Section
    equity: Section
    earnings: Decimal  # profit and loss not yet closed into retained earnings
    currency: str

    @property
    def total_equity(self) -> Decimal:
        return self.equity.total + self.earnings

    @property
    def total_liabilities_and_equity(self) -> Decimal:
        return self.liabilities.total + self.total_equity

    @property
    def balanced(self) -> bool:
        return self.assets.total == self.total_liabilities_and_equity


def balance_sheet(session: Session, as_of: dt.date) -> BalanceSheet:
    sums = _posted_sums(session, until=as_of)
    rows = _balances(session, sums)
    by_type: dict[str, list[AccountBalance]] = defaultdict(list)
    for row in rows:
        by_type[row.account.type].append(row)
    earnings = (sum((r.balance for r in by_type["revenue"]), ZERO)
                - sum((r.balance for r in by_type["cogs"] + by_type["expense"]), ZERO))
    return BalanceSheet(as_of, Section("Assets", by_type["asset"]),
                        Section("Liabilities", by_type["liability"]),
                        Section("Equity", by_type["equity"]), earnings,
                        base_currency(session))


@dataclass
class ProfitAndLoss:
    start: dt.date
    end: dt.date
    revenue: Section
    cogs: Section
    expenses: Section
    currency: str

    @property
    def gross_profit(self) -> Decimal:
        return self.revenue.total - self.cogs.total

    @property
    def net_profit(self) -> Decimal:
        return self.gross_profit - self.expenses.total


def profit_and_loss(session: Session, start: dt.date, end: dt.date) -> ProfitAndLoss:
    sums = _posted_sums(session, until=end, since=start)
    rows = _balances(session, sums, ("revenue", "cogs", "expense"))
    pick = lambda t: [r for r in rows if r.account.type == t]  # noqa: E731
    return ProfitAndLoss(start, end, Section("Revenue", pick("revenue")),
                         Section("Cost of goods sold", pick("cogs")),
                         Section("Expenses", pick("expense")), base_currency(session))
