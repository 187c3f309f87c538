"""The sales pipeline: stages per tenant, leads and their conversion, deals moving
through stages (with history and the won/lost events), and the activity log.

Rules kept here and, where it matters, by the database too:

* Won and Lost are terminal. The service refuses the move with a sentence; the
  ``terminal_stage`` trigger refuses it whatever code tries.
* Every stage change writes a history row (append-only) in the same transaction, and
  a move to a won stage writes the ``crm.deal.won`` outbox event (to lost:
  ``crm.deal.lost``) in that transaction too: quote-to-cash starts from it exactly once.
* Converting a qualified lead creates (or reuses, by email and by name + domain) the
  account and contact and creates the deal, in one transaction; a failure anywhere
  leaves nothing, and a lead converts once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.events import services as events
from tenants.context import require_context
from tenants.models import Tenant

from . import services as crm
from .models import (
    ACTIVITY_KINDS,
    LEAD_STATUSES,
    Account,
    Activity,
    Contact,
    Deal,
    DealStage,
    DealStageHistory,
    Lead,
)
from .services import CrmError

DEFAULT_STAGES = (("Discovery", 10, False, False), ("Proposal Sent", 30, False, False),
                  ("Negotiation", 60, False, False), ("Won", 100, True, False),
                  ("Lost", 0, False, True))


class TerminalStage(CrmError):
    """The deal is won or lost: a conflict with its state, not bad input."""


def seed_stages(session: Session, _tenant: Tenant) -> None:
    for position, (name, probability, won, lost) in enumerate(DEFAULT_STAGES, start=1):
        session.add(DealStage(name=name, position=position, probability=probability,
                              is_won=won, is_lost=lost))
    session.flush()


# --- stages -----------------------------------------------------------------------------------


def list_stages(session: Session) -> list[DealStage]:
    return list(session.scalars(select(DealStage).order_by(DealStage.position)))


def stage_by_name(session: Session, name: str) -> DealStage | None:
    return session.scalar(select(DealStage).where(
        func.lower(DealStage.name) == (name or "").strip().lower()))


def update_stage(session: Session, stage: DealStage, *, name: str | None = None,
                 probability: int | None = None, position: int | None = None) -> DealStage:
    """Rename, re-weigh or reorder a stage. Which stages are terminal does not change:
    deals already closed must stay closed."""
    if name is not None:
        name = name.strip()
        if not name or len(name) > 60:
            raise CrmError("a stage needs a name of at most 60 characters", "name")
        clash = stage_by_name(session, name)
        if clash is not None and clash.id != stage.id:
            raise CrmError(f"there is already a stage called {name}", "name")
        stage.name = name
    if probability is not None:
        if not 0 <= probability <= 100:
            raise CrmError("a probability is 0 to 100 (percent)", "probability")
        if (stage.is_won and probability != 100) or (stage.is_lost and probability != 0):
            raise CrmError("a won stage is 100% and a lost stage 0%", "probability")
        stage.probability = probability
    if position is not None:
        stage.position = position
    session.flush()
    return stage


# --- leads ------------------------------------------------------------------------------------


LEAD_FIELDS = ("name", "company", "email", "phone", "source", "status", "notes", "owner_id")


def _clean_lead(data: dict[str, Any], lead: Lead | None) -> dict[str, Any]:
    clean = {k: v for k, v in data.items() if k in LEAD_FIELDS}
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"]:
            raise CrmError("the lead needs a name", "name")
    if "email" in clean:
        clean["email"] = (clean["email"] or "").strip() or None
    if "source" in clean:
        clean["source"] = (clean["source"] or "").strip() or "Web Page Form"
    if "status" in clean:
        if clean["status"] not in LEAD_STATUSES or clean["status"] == "converted":
            raise CrmError("the status is new, contacted, qualified or unqualified (a lead "
                           "becomes converted by converting it)", "status")
        if lead is not None and lead.status == "converted":
            raise CrmError("the lead is converted: its status cannot change", "status")
    return clean


def create_lead(session: Session, data: dict[str, Any]) -> Lead:
    clean = _clean_lead(data, None)
    if not clean.get("name"):
        raise CrmError("the lead needs a name", "name")
    crm.check_owner(session, clean.get("owner_id"))
    lead = Lead(**clean)
    session.add(lead)
    session.flush()
    return lead


def update_lead(session: Session, lead: Lead, changes: dict[str, Any]) -> Lead:
    clean = _clean_lead(changes, lead)
    if "owner_id" in clean:
        crm.check_owner(session, clean["owner_id"])
    for key, value in clean.items():
        setattr(lead, key, value)
    session.flush()
    return lead


def get_lead(session: Session, lead_id: uuid.UUID) -> Lead | None:
    return session.scalar(select(Lead).where(Lead.id == lead_id, Lead.deleted_at.is_(None)))


def delete_lead(session: Session, lead: Lead) -> None:
    lead.deleted_at = utcnow()
    session.flush()


@dataclass(frozen=True)
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int


def list_leads(session: Session, *, q: str | None = None, status: str | None = None,
               owner_id: uuid.UUID | None = None, updated_since: dt.datetime | None = None,
               page: int = 1, per_page: int = 50) -> Page:
    query = select(Lead).where(Lead.deleted_at.is_(None))
    if q:
        like = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%") + "%"
        query = query.where(func.lower(Lead.name + " " + Lead.company + " "
                                       + func.coalesce(Lead.email, "")).like(like))
    if status:
        query = query.where(Lead.status == status)
    if owner_id:
        query = query.where(Lead.owner_id == owner_id)
    if updated_since:
        query = query.where(Lead.updated_at >= updated_since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Lead.updated_at.desc(), Lead.id)
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)


@dataclass(frozen=True)
class Conversion:
    lead: Lead
    account: Account
    contact: Contact
    deal: Deal
    reused_account: bool
    reused_contact: bool


def convert_lead(session: Session, lead: Lead, *, deal_name: str | None = None,
                 value: Decimal | None = None, currency: str | None = None,
                 expected_close: dt.date | None = None) -> Conversion:
    """Account + contact + deal from a qualified lead, all or nothing."""
    session.refresh(lead, with_for_update=True)  # two clicks never convert twice
    if lead.status == "converted":
        raise CrmError("the lead is already converted", "status")
    if lead.status != "qualified":
        raise CrmError(f"only a qualified lead can be converted (this one is {lead.status})",
                       "status")
    with session.begin_nested():
        contact = None
        if lead.email:
            contact = session.scalar(select(Contact).where(
                Contact.deleted_at.is_(None), func.lower(Contact.email) == lead.email.lower()))
        reused_contact = contact is not None
        account = None
        if contact is not None and contact.account_id is not None:
            account = crm.get_account(session, contact.account_id)
        company = lead.company or lead.name
        if account is None:
            domain = (lead.email or "").rsplit("@", 1)[1] if lead.email and "@" in lead.email \
                else None
            account = session.scalar(select(Account).where(
                Account.deleted_at.is_(None),
                Account.normalized_name == crm.normalize_name(company)))
            if account is None:
                account = crm.create_account(session, {
                    "name": company, "currency": currency or _base(session),
                    "website": domain or "", "owner_id": lead.owner_id})
                reused_account = False
            else:
                reused_account = True
        else:
            reused_account = True
        if contact is None:
            first, _, last = lead.name.rpartition(" ")
            contact = crm.create_contact(session, {
                "first_name": first, "last_name": last or lead.name, "email": lead.email,
                "phone": lead.phone, "account_id": account.id, "owner_id": lead.owner_id})
        deal = create_deal(session, {
            "name": deal_name or f"{company}: {lead.source}", "account_id": account.id,
            "contact_id": contact.id, "value": value or Decimal(0),
            "currency": currency or account.currency, "expected_close": expected_close,
            "owner_id": lead.owner_id})
        deal.source_lead_id = lead.id
        lead.status, lead.converted_at = "converted", utcnow()
        lead.converted_account_id, lead.converted_contact_id = account.id, contact.id
        lead.converted_deal_id = deal.id
        session.flush()
    return Conversion(lead, account, contact, deal, reused_account, reused_contact)


def _base(session: Session) -> str:
    from app.ledger.services import base_currency

    return base_currency(session)


# --- deals ------------------------------------------------------------------------------------


DEAL_FIELDS = ("name", "account_id", "contact_id", "value", "currency", "expected_close",
               "owner_id")


def _check_deal(session: Session, deal: Deal) -> None:
    if not (deal.name or "").strip():
        raise CrmError("the deal needs a name", "name")
    if crm.get_account(session, deal.account_id) is None:
        raise CrmError("no such account", "account_id")
    if deal.contact_id is not None and crm.get_contact(session, deal.contact_id) is None:
        raise CrmError("no such contact", "contact_id")
    deal.currency = crm._currency(deal.currency or "")
    if deal.value is None or Decimal(deal.value) < 0:
        raise CrmError("the value is zero or more", "value")
    crm.check_owner(session, deal.owner_id)


def create_deal(session: Session, data: dict[str, Any], stage: DealStage | None = None
                ) -> Deal:
    stages = list_stages(session)
    stage = stage or next((s for s in stages if not s.terminal), None)
    if stage is None:
        raise CrmError("the pipeline has no open stage", "stage")
    if stage.terminal:
        raise CrmError("a new deal starts in an open stage", "stage")
    deal = Deal(**{k: v for k, v in data.items() if k in DEAL_FIELDS}, stage_id=stage.id)
    if deal.value is None:
        deal.value = Decimal(0)
    _check_deal(session, deal)
    session.add(deal)
    session.flush()
    session.add(DealStageHistory(deal_id=deal.id, from_stage_id=None, to_stage_id=stage.id,
                                 changed_by=require_context().user_id))
    session.flush()
    return deal


def update_deal(session: Session, deal: Deal, changes: dict[str, Any]) -> Deal:
    if deal.closed_at is not None:
        raise TerminalStage("the deal is closed (won or lost): it cannot change", "stage")
    for key, value in changes.items():
        if key in DEAL_FIELDS:
            setattr(deal, key, value)
    _check_deal(session, deal)
    session.flush()
    return deal


def get_deal(session: Session, deal_id: uuid.UUID) -> Deal | None:
    return session.scalar(select(Deal).where(Deal.id == deal_id, Deal.deleted_at.is_(None)))


def delete_deal(session: Session, deal: Deal) -> None:
    deal.deleted_at = utcnow()
    session.flush()


def move_deal(session: Session, deal: Deal, stage: DealStage, *, lost_reason: str = ""
              ) -> Deal:
    """Move to another stage: history row, and the won/lost event, in this transaction."""
    session.refresh(deal, with_for_update=True)
    current = session.get(DealStage, (deal.tenant_id, deal.stage_id))
    if current is not None and current.terminal:
        raise TerminalStage(f"the deal is {current.name.lower()}: its stage cannot change "
                            "any more", "stage")
    if stage.id == deal.stage_id:
        return deal
    if stage.is_lost and not lost_reason.strip():
        raise CrmError("say why the deal was lost", "lost_reason")
    previous = deal.stage_id
    deal.stage_id = stage.id
    if stage.terminal:
        deal.closed_at = utcnow()
        deal.lost_reason = lost_reason.strip()[:500] if stage.is_lost else ""
    try:
        session.flush()
    except DBAPIError as exc:  # the terminal_stage trigger (a concurrent close won)
        if getattr(getattr(exc, "orig", None), "sqlstate", None) == "CRMST":
            raise TerminalStage("the deal was closed meanwhile", "stage") from None
        raise
    ctx = require_context()
    session.add(DealStageHistory(deal_id=deal.id, from_stage_id=previous, to_stage_id=stage.id,
                                 changed_by=ctx.user_id))
    if stage.terminal:
        payload = {"deal_id": str(deal.id), "account_id": str(deal.account_id),
                   "contact_id": str(deal.contact_id) if deal.contact_id else None,
                   "value": format(deal.value, "f"), "currency": deal.currency,
                   "closed_at": deal.closed_at.isoformat() if deal.closed_at else None}
        if stage.is_won:
            events.publish(session, "crm.deal.won", payload | {"won_at": payload["closed_at"]})
        else:
            events.publish(session, "crm.deal.lost", payload | {"reason": deal.lost_reason})
    session.flush()
    return deal


def deal_history(session: Session, deal_id: uuid.UUID) -> list[DealStageHistory]:
    return list(session.scalars(select(DealStageHistory)
                                .where(DealStageHistory.deal_id == deal_id)
                                .order_by(DealStageHistory.changed_at, DealStageHistory.id)))


DEAL_SORTS = {"updated_at": (Deal.updated_at.asc(),), "-updated_at": (Deal.updated_at.desc(),),
              "value": (Deal.value.asc(),), "-value": (Deal.value.desc(),),
              "expected_close": (Deal.expected_close.asc().nulls_last(),),
              "name": (Deal.name.asc(),)}


def list_deals(session: Session, *, stage_id: uuid.UUID | None = None,
               status: str | None = None, owner_id: uuid.UUID | None = None,
               account_id: uuid.UUID | None = None, updated_since: dt.datetime | None = None,
               sort: str = "-updated_at", page: int = 1, per_page: int = 50) -> Page:
    query = select(Deal).where(Deal.deleted_at.is_(None))
    if stage_id:
        query = query.where(Deal.stage_id == stage_id)
    if status in ("open", "won", "lost"):
        stage_ids = [s.id for s in list_stages(session) if (
            (status == "open" and not s.terminal) or (status == "won" and s.is_won)
            or (status == "lost" and s.is_lost))]
        query = query.where(Deal.stage_id.in_(stage_ids))
    if owner_id:
        query = query.where(Deal.owner_id == owner_id)
    if account_id:
        query = query.where(Deal.account_id == account_id)
    if updated_since:
        query = query.where(Deal.updated_at >= updated_since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(*DEAL_SORTS.get(sort, DEAL_SORTS[
        "-updated_at"]), Deal.id).offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)


def board(session: Session, per_stage: int = 50) -> list[tuple[DealStage, list[Deal], Decimal]]:
    """Each stage with its most recent deals and their total value (for the board)."""
    result = []
    for stage in list_stages(session):
        deals = list(session.scalars(select(Deal).where(
            Deal.deleted_at.is_(None), Deal.stage_id == stage.id)
            .order_by(Deal.updated_at.desc()).limit(per_stage)))
        total = session.scalar(select(func.coalesce(func.sum(Deal.value), 0)).where(
            Deal.deleted_at.is_(None), Deal.stage_id == stage.id))
        result.append((stage, deals, Decimal(total or 0)))
    return result


# --- activities --------------------------------------------------------------------------------


def create_activity(session: Session, data: dict[str, Any]) -> Activity:
    kind = data.get("kind")
    if kind not in ACTIVITY_KINDS:
        raise CrmError(f"the kind is one of {', '.join(ACTIVITY_KINDS)}", "kind")
    subject = (data.get("subject") or "").strip()
    if not subject:
        raise CrmError("the activity needs a subject", "subject")
    links = {k: data.get(k) for k in ("deal_id", "contact_id", "account_id")}
    if not any(links.values()):
        raise CrmError("link the activity to a deal, a contact or an account", "deal_id")
    if links["deal_id"] and get_deal(session, links["deal_id"]) is None:
        raise CrmError("no such deal", "deal_id")
    if links["contact_id"] and crm.get_contact(session, links["contact_id"]) is None:
        raise CrmError("no such contact", "contact_id")
    if links["account_id"] and crm.get_account(session, links["account_id"]) is None:
        raise CrmError("no such account", "account_id")
    owner = data.get("owner_id") or require_context().user_id
    crm.check_owner(session, owner)
    activity = Activity(kind=kind, subject=subject[:200], body=data.get("body") or "",
                        due_at=data.get("due_at"), owner_id=owner, **links)
    session.add(activity)
    session.flush()
    return activity


def get_activity(session: Session, activity_id: uuid.UUID) -> Activity | None:
    return session.scalar(select(Activity).where(Activity.id == activity_id))


def set_done(session: Session, activity: Activity, done: bool) -> Activity:
    activity.done_at = utcnow() if done else None
    session.flush()
    return activity


def list_activities(session: Session, *, deal_id: uuid.UUID | None = None,
                    contact_id: uuid.UUID | None = None, account_id: uuid.UUID | None = None,
                    open_tasks: bool = False, page: int = 1, per_page: int = 50) -> Page:
    query = select(Activity)
    if deal_id:
        query = query.where(Activity.deal_id == deal_id)
    if contact_id:
        query = query.where(Activity.contact_id == contact_id)
    if account_id:
        query = query.where(Activity.account_id == account_id)
    if open_tasks:
        query = query.where(Activity.kind == "task", Activity.done_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = list(session.scalars(query.order_by(Activity.created_at.desc(), Activity.id)
                                 .offset((page - 1) * per_page).limit(per_page)))
    return Page(items, total, page, per_page)
