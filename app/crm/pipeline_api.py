"""``/api/v1/leads`` (+ convert), ``/deals`` (+ stage moves and history),
``/deal-stages`` and ``/activities``.

Moving a deal answers 409 when it is already won or lost (terminal stages), 422 when a
lost deal has no reason. Another tenant's ids answer 404 like ids that do not exist.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from flask import jsonify
from flask.typing import ResponseReturnValue
from pydantic import AwareDatetime, BaseModel, EmailStr, Field

from app.api import bp
from app.api.auth import api_auth
from app.api.idempotency import idempotent
from app.api.openapi import doc
from app.api.resources import dump, list_model, load, out_model, page_model, service_errors
from app.api.validation import Input, parse_body, parse_query
from app.db import db
from app.errors import ApiError

from . import pipeline
from .models import Activity, Deal, DealStage, DealStageHistory, Lead

StageOut = out_model(DealStage)
StageList = list_model(StageOut, "DealStageList")
LeadOut = out_model(Lead)
LeadPage = page_model(LeadOut)
DealOut = out_model(Deal, extra={"stage": (str, ...), "probability": (int, ...),
                                 "status": (str, ...)})
DealPage = page_model(DealOut)
HistoryOut = out_model(DealStageHistory, extra={"from_stage": (str | None, ...),
                                                "to_stage": (str, ...)})
HistoryList = list_model(HistoryOut, "DealStageHistoryList")
ActivityOut = out_model(Activity)
ActivityPage = page_model(ActivityOut)


class LeadIn(Input):
    name: str = Field(min_length=1, max_length=200)
    company: str = Field(default="", max_length=200)
    email: EmailStr | None = None
    phone: str = Field(default="", max_length=50)
    source: str = Field(default="Web Page Form", max_length=60)
    status: Literal["new", "contacted", "qualified", "unqualified"] = "new"
    notes: str = Field(default="", max_length=5000)
    owner_id: uuid.UUID | None = None


class LeadPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=50)
    source: str | None = Field(default=None, max_length=60)
    status: Literal["new", "contacted", "qualified", "unqualified"] | None = None
    notes: str | None = Field(default=None, max_length=5000)
    owner_id: uuid.UUID | None = None


class LeadQuery(Input):
    q: str | None = Field(default=None, max_length=200)
    status: Literal["new", "contacted", "qualified", "unqualified", "converted"] | None = None
    owner_id: uuid.UUID | None = None
    updated_since: dt.datetime | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class ConvertIn(Input):
    deal_name: str | None = Field(default=None, min_length=1, max_length=200)
    value: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_close: dt.date | None = None


class ConversionOut(BaseModel):
    lead: LeadOut  # type: ignore[valid-type]
    account_id: uuid.UUID
    contact_id: uuid.UUID
    deal: DealOut  # type: ignore[valid-type]
    reused_account: bool
    reused_contact: bool


class DealIn(Input):
    name: str = Field(min_length=1, max_length=200)
    account_id: uuid.UUID
    contact_id: uuid.UUID | None = None
    value: Decimal = Field(default=Decimal(0), ge=0, max_digits=19, decimal_places=4)
    currency: str = Field(min_length=3, max_length=3)
    expected_close: dt.date | None = None
    owner_id: uuid.UUID | None = None
    stage: str | None = Field(default=None, max_length=60,
                              description="An open stage's name; the first one if absent")


class DealPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    contact_id: uuid.UUID | None = None
    value: Decimal | None = Field(default=None, ge=0, max_digits=19, decimal_places=4)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_close: dt.date | None = None
    owner_id: uuid.UUID | None = None


class DealQuery(Input):
    stage: str | None = Field(default=None, max_length=60)
    status: Literal["open", "won", "lost"] | None = None
    owner_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    updated_since: dt.datetime | None = None
    sort: Literal["updated_at", "-updated_at", "value", "-value", "expected_close",
                  "name"] = "-updated_at"
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class StageMoveIn(Input):
    stage: str = Field(min_length=1, max_length=60)
    lost_reason: str = Field(default="", max_length=500)


class StagePatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=60)
    probability: int | None = Field(default=None, ge=0, le=100)
    position: int | None = Field(default=None, ge=0, le=1000)


class ActivityIn(Input):
    kind: Literal["email", "call", "meeting", "note", "task"]
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=20000)
    deal_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    due_at: AwareDatetime | None = None
    owner_id: uuid.UUID | None = None


class ActivityQuery(Input):
    deal_id: uuid.UUID | None = None
    contact_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    open_tasks: bool = False
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class DoneIn(Input):
    done: bool = True


def _stages() -> dict[uuid.UUID, DealStage]:
    return {s.id: s for s in pipeline.list_stages(db.session)}


def _deal_out(deal: Deal, stages: dict[uuid.UUID, DealStage] | None = None) -> dict:
    stage = (stages or _stages())[deal.stage_id]
    status = "won" if stage.is_won else "lost" if stage.is_lost else "open"
    return dump(deal, DealOut, stage=stage.name, probability=stage.probability, status=status)


def _stage(name: str, field: str = "stage") -> DealStage:
    stage = pipeline.stage_by_name(db.session, name)
    if stage is None:
        names = ", ".join(s.name for s in pipeline.list_stages(db.session))
        raise ApiError(422, f"no stage called {name!r}; the stages are {names}", "invalid",
                       {field: f"one of {names}"})
    return stage


# --- stages ------------------------------------------------------------------------------


@bp.get("/deal-stages")
@api_auth("deals:read")
@doc(summary="The tenant's pipeline stages, in order, with their win probability",
     response=StageList, tags=["deals"])
def crm_list_stages() -> ResponseReturnValue:
    return jsonify(items=[dump(s, StageOut) for s in pipeline.list_stages(db.session)])


@bp.patch("/deal-stages/<stage_id>")
@api_auth("tenant:write")
@doc(summary="Rename, re-weigh or reorder a stage (won and lost stay terminal)",
     body=StagePatch, response=StageOut, tags=["deals"])
def crm_update_stage(stage_id: str) -> ResponseReturnValue:
    stage = load(lambda s, i: s.get(DealStage, (_tenant_id(), i)), stage_id, "stage")
    body = parse_body(StagePatch)
    with service_errors():
        pipeline.update_stage(db.session, stage, **body.model_dump(exclude_unset=True))
    return jsonify(dump(stage, StageOut))


def _tenant_id() -> uuid.UUID:
    from flask import g

    return g.ctx.tenant_id


# --- leads -------------------------------------------------------------------------------


@bp.get("/leads")
@api_auth("crm:read")
@doc(summary="Leads, most recently changed first", query=LeadQuery, response=LeadPage,
     tags=["leads"])
def crm_list_leads() -> ResponseReturnValue:
    query = parse_query(LeadQuery)
    page = pipeline.list_leads(db.session, **query.model_dump())
    return jsonify(items=[dump(x, LeadOut) for x in page.items], total=page.total,
                   page=page.page, per_page=page.per_page)


@bp.post("/leads")
@api_auth("crm:write")
@idempotent
@doc(summary="Add a lead (source defaults to 'Web Page Form')", body=LeadIn,
     response=LeadOut, status=201, tags=["leads"])
def crm_create_lead() -> ResponseReturnValue:
    body = parse_body(LeadIn)
    with service_errors():
        lead = pipeline.create_lead(db.session, body.model_dump())
    return jsonify(dump(lead, LeadOut)), 201


@bp.get("/leads/<lead_id>")
@api_auth("crm:read")
@doc(summary="A lead", response=LeadOut, tags=["leads"])
def crm_get_lead(lead_id: str) -> ResponseReturnValue:
    return jsonify(dump(load(pipeline.get_lead, lead_id, "lead"), LeadOut))


@bp.patch("/leads/<lead_id>")
@api_auth("crm:write")
@doc(summary="Change a lead (a converted lead keeps its status)", body=LeadPatch,
     response=LeadOut, tags=["leads"])
def crm_update_lead(lead_id: str) -> ResponseReturnValue:
    lead = load(pipeline.get_lead, lead_id, "lead")
    body = parse_body(LeadPatch)
    with service_errors():
        pipeline.update_lead(db.session, lead, body.model_dump(exclude_unset=True))
    return jsonify(dump(lead, LeadOut))


@bp.delete("/leads/<lead_id>")
@api_auth("crm:write")
@doc(summary="Delete a lead (soft)", status=204, tags=["leads"])
def crm_delete_lead(lead_id: str) -> ResponseReturnValue:
    lead = load(pipeline.get_lead, lead_id, "lead")
    with service_errors():
        pipeline.delete_lead(db.session, lead)
    return "", 204


@bp.post("/leads/<lead_id>/convert")
@api_auth("deals:write")
@idempotent
@doc(summary="Convert a qualified lead into account + contact + deal, in one transaction "
             "(existing account and contact are reused)", body=ConvertIn,
     response=ConversionOut, status=201, tags=["leads"])
def crm_convert_lead(lead_id: str) -> ResponseReturnValue:
    lead = load(pipeline.get_lead, lead_id, "lead")
    body = parse_body(ConvertIn)
    with service_errors(pipeline.CrmError):
        done = pipeline.convert_lead(db.session, lead, **body.model_dump())
    return jsonify(lead=dump(done.lead, LeadOut), account_id=str(done.account.id),
                   contact_id=str(done.contact.id), deal=_deal_out(done.deal),
                   reused_account=done.reused_account,
                   reused_contact=done.reused_contact), 201


# --- deals -------------------------------------------------------------------------------


@bp.get("/deals")
@api_auth("deals:read")
@doc(summary="Deals: filter by stage (name), status, owner, account, updated since",
     query=DealQuery, response=DealPage, tags=["deals"])
def crm_list_deals() -> ResponseReturnValue:
    query = parse_query(DealQuery)
    args = query.model_dump()
    stage_name = args.pop("stage")
    args["stage_id"] = _stage(stage_name).id if stage_name else None
    page = pipeline.list_deals(db.session, **args)
    stages = _stages()
    return jsonify(items=[_deal_out(d, stages) for d in page.items], total=page.total,
                   page=page.page, per_page=page.per_page)


@bp.post("/deals")
@api_auth("deals:write")
@idempotent
@doc(summary="Create a deal in an open stage", body=DealIn, response=DealOut, status=201,
     tags=["deals"])
def crm_create_deal() -> ResponseReturnValue:
    body = parse_body(DealIn)
    data = body.model_dump()
    stage = _stage(data.pop("stage")) if body.stage else None
    with service_errors():
        deal = pipeline.create_deal(db.session, data, stage)
    return jsonify(_deal_out(deal)), 201


@bp.get("/deals/<deal_id>")
@api_auth("deals:read")
@doc(summary="A deal", response=DealOut, tags=["deals"])
def crm_get_deal(deal_id: str) -> ResponseReturnValue:
    return jsonify(_deal_out(load(pipeline.get_deal, deal_id, "deal")))


@bp.patch("/deals/<deal_id>")
@api_auth("deals:write")
@doc(summary="Change an open deal", body=DealPatch, response=DealOut, errors=(409,),
     tags=["deals"])
def crm_update_deal(deal_id: str) -> ResponseReturnValue:
    deal = load(pipeline.get_deal, deal_id, "deal")
    body = parse_body(DealPatch)
    with service_errors(pipeline.TerminalStage):
        pipeline.update_deal(db.session, deal, body.model_dump(exclude_unset=True))
    return jsonify(_deal_out(deal))


@bp.delete("/deals/<deal_id>")
@api_auth("deals:write")
@doc(summary="Delete a deal (soft)", status=204, tags=["deals"])
def crm_delete_deal(deal_id: str) -> ResponseReturnValue:
    deal = load(pipeline.get_deal, deal_id, "deal")
    with service_errors():
        pipeline.delete_deal(db.session, deal)
    return "", 204


@bp.post("/deals/<deal_id>/stage")
@api_auth("deals:write")
@idempotent
@doc(summary="Move a deal to a stage by name; Won and Lost are final (409 afterwards); "
             "Lost needs lost_reason", body=StageMoveIn, response=DealOut, tags=["deals"])
def crm_move_deal(deal_id: str) -> ResponseReturnValue:
    deal = load(pipeline.get_deal, deal_id, "deal")
    body = parse_body(StageMoveIn)
    stage = _stage(body.stage)
    with service_errors(pipeline.TerminalStage):
        pipeline.move_deal(db.session, deal, stage, lost_reason=body.lost_reason)
    return jsonify(_deal_out(deal))


@bp.get("/deals/<deal_id>/history")
@api_auth("deals:read")
@doc(summary="The deal's stage changes: who, when, from, to", response=HistoryList,
     tags=["deals"])
def crm_deal_history(deal_id: str) -> ResponseReturnValue:
    deal = load(pipeline.get_deal, deal_id, "deal")
    stages = _stages()
    return jsonify(items=[dump(h, HistoryOut, to_stage=stages[h.to_stage_id].name,
                               from_stage=stages[h.from_stage_id].name if h.from_stage_id
                               else None)
                          for h in pipeline.deal_history(db.session, deal.id)])


# --- activities ----------------------------------------------------------------------------


@bp.get("/activities")
@api_auth("crm:read")
@doc(summary="The activity log, newest first; filter by deal, contact, account, open tasks",
     query=ActivityQuery, response=ActivityPage, tags=["activities"])
def crm_list_activities() -> ResponseReturnValue:
    query = parse_query(ActivityQuery)
    page = pipeline.list_activities(db.session, **query.model_dump())
    return jsonify(items=[dump(a, ActivityOut) for a in page.items], total=page.total,
                   page=page.page, per_page=page.per_page)


@bp.post("/activities")
@api_auth("crm:write")
@idempotent
@doc(summary="Log an email, call, meeting, note or task on a deal, contact or account",
     body=ActivityIn, response=ActivityOut, status=201, tags=["activities"])
def crm_create_activity() -> ResponseReturnValue:
    body = parse_body(ActivityIn)
    with service_errors():
        activity = pipeline.create_activity(db.session, body.model_dump())
    return jsonify(dump(activity, ActivityOut)), 201


@bp.post("/activities/<activity_id>/done")
@api_auth("crm:write")
@idempotent
@doc(summary="Mark a task done (or not done)", body=DoneIn, response=ActivityOut,
     tags=["activities"])
def crm_activity_done(activity_id: str) -> ResponseReturnValue:
    activity = load(pipeline.get_activity, activity_id, "activity")
    body = parse_body(DoneIn)
    with service_errors():
        pipeline.set_done(db.session, activity, body.done)
    return jsonify(dump(activity, ActivityOut))
