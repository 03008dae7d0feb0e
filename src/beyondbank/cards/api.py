"""Card-linked endpoints: runs and their summaries, reward and clawback rows, and the
descriptor review queue (bank staff confirm or reject what the fuzzy matcher was unsure of)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from beyondbank.cards import realtime, reviews, schemas, service
from beyondbank.cards.models import ReviewStatus
from beyondbank.core.authz import Permission, Principal, require
from beyondbank.core.errors import Problem
from beyondbank.core.http import is_json, problem_response, read_body, replay_body
from beyondbank.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from beyondbank.core.uow import UnitOfWork
from beyondbank.deps import UoW, requires

router = APIRouter(prefix="/cards", tags=["cards"])

Reader = Annotated[Principal, Depends(requires(Permission.CARDS_READ))]
Reviewer = Annotated[Principal, Depends(requires(Permission.CARDS_REVIEW))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Runs are the bank's: merchants read their own rewards only"},
    404: {"description": "No such run or review"},
    409: {"description": "The review is already decided (names how)"},
    422: {"description": "Invalid fields (an unknown or inactive merchant, a foreign location)"},
}


@router.get("/runs", response_model=Page[schemas.RunOut], summary="List card-linked runs")
def list_runs(
    uow: UoW, actor: Reader, cursor: str | None = None, limit: Limit = DEFAULT_LIMIT
) -> Page[schemas.RunOut]:
    rows, next_cursor = service.list_runs(uow, actor, cursor=cursor, limit=limit)
    items = [schemas.run_out(r, service.run_totals(uow, r.id)) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/runs/{run_id}", response_model=schemas.RunOut, responses=_PROBLEMS)
def get_run(run_id: str, uow: UoW, actor: Reader) -> schemas.RunOut:
    run = service.get_run(uow, actor, run_id)
    return schemas.run_out(run, service.run_totals(uow, run.id))


@router.get(
    "/rewards",
    response_model=Page[schemas.RewardOut],
    summary="Card-linked reward and clawback rows, newest first",
    responses=_PROBLEMS,
)
def list_rewards(
    uow: UoW,
    actor: Reader,
    run: str | None = None,
    merchant: str | None = None,
    member: str | None = None,
    kind: Literal["reward", "clawback"] | None = None,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.RewardOut]:
    rows, next_cursor = service.list_rewards(
        uow, actor, run=run, merchant=merchant, member=member, kind=kind, cursor=cursor, limit=limit
    )
    return Page(items=[_reward_out(v) for v in rows], next_cursor=next_cursor)


# -- the real-time path -----------------------------------------------------------------------

_EVENT_PROBLEMS: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "The event breaks a feed rule (named, as in the quarantine file), or an "
        "ISO 8583 message lacks a data element or is not a purchase request (names the element)"
    },
}


async def _card_switch(state: State, authorization: str | None) -> Principal:
    """The caller of an event endpoint: its token checked on every request, its account at
    most every few seconds (`realtime.Callers`), all on the event loop."""
    cache: realtime.ResolverCache = state.card_resolvers
    uow = UnitOfWork(state.session_factory, state.clock)
    return require(
        await cache.callers.principal(authorization, state.settings, uow),
        Permission.CARDS_INGEST,
    )


async def _switch(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    return await _card_switch(request.app.state, authorization)


Switch = Annotated[Principal, Depends(_switch)]


async def _answer_event(state: State, actor: Principal, row: dict[str, str]) -> Response:
    """One event through the real-time path (cards/realtime.py), on the event loop: the
    request holds no thread and no database session while its batch is written. The answer is
    built as an EventOut (the documented response model) and serialised once, here."""
    result = await realtime.process(
        state.card_resolvers, state.session_factory, state.clock, actor, row
    )
    return Response(_event_out(result).model_dump_json(), media_type="application/json")


async def _process(request: Request, actor: Principal, row: dict[str, str]) -> Response:
    return await _answer_event(request.app.state, actor, row)


@router.post(
    "/events",
    response_model=schemas.EventOut,
    summary="Match one card transaction now (JSON); answers what the member just earned",
    responses=_EVENT_PROBLEMS,
)
async def post_event(body: schemas.EventIn, request: Request, actor: Switch) -> Response:
    return await _process(request, actor, body.as_row())


async def _message_bytes(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/iso8583",
    response_model=schemas.EventOut,
    summary="Match one ISO 8583 authorisation or financial request now (raw ASCII message)",
    responses=_EVENT_PROBLEMS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def post_iso8583(
    message: Annotated[bytes, Depends(_message_bytes)], request: Request, actor: Switch
) -> Response:
    row = realtime.row_from_iso8583(message, request.app.state.clock.now())
    return await _process(request, actor, row)


class CardEventEdge:
    """The two event endpoints answered in front of the application's router (plain ASGI).

    At hundreds of events a second the request around an event cost more than the event: the
    router tried the ~300 other routes before these, and FastAPI's dependency and validation
    machinery ran for each. This middleware sits innermost (inside the session, language,
    request id and security headers middlewares, which still apply) and answers a well-formed
    event itself, with the same code as the routes: the caller's token and scope checked first
    (`_card_switch`), the body read as `schemas.EventIn` or as an ISO 8583 message, the answer
    an `EventOut` or an RFC 9457 problem. Anything else goes on to the routes unchanged: other
    methods, a JSON event with another content type, and a body that is not a valid EventIn
    (replayed to the route, whose 422 names the fields). The routes stay the documented
    endpoints (OpenAPI) and answer exactly as before."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.json_path = f"{prefix}{router.prefix}/events"
        self.iso_path = f"{prefix}{router.prefix}/iso8583"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if scope.get("method") != "POST" or path not in (self.json_path, self.iso_path):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if path == self.json_path and not is_json(content_type):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return  # the caller went away
        try:
            response = await self._answer(scope, path, headers, body)
        except Problem as problem:
            response = problem_response(problem, Request(scope))
        if response is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        await response(scope, receive, send)

    async def _answer(
        self, scope: Scope, path: str, headers: dict[bytes, bytes], body: bytes
    ) -> Response | None:
        """The event's answer; None when the route should answer it (a body it refuses)."""
        state: State = scope["app"].state
        authorization = headers.get(b"authorization")
        actor = await _card_switch(
            state, authorization.decode("latin-1") if authorization else None
        )
        if path == self.iso_path:
            row = realtime.row_from_iso8583(body, state.clock.now())
        else:
            try:
                row = schemas.EventIn.model_validate(json.loads(body)).as_row()
            except (ValueError, ValidationError):  # not JSON, or not an EventIn
                return None
        return await _answer_event(state, actor, row)


def _event_out(result: realtime.EventResult) -> schemas.EventOut:
    """The answer from what the event's batch wrote: no read back (its public ids are known)."""
    return schemas.EventOut(
        txn_id=result.txn_id,
        status=result.status,
        merchant_name=result.merchant_name,
        message=result.message,
        rewards=[
            schemas.RewardOut(
                **{k: v for k, v in r.row.items() if k in schemas.RewardOut.model_fields},
                member=r.member,
                merchant=r.merchant,
                benefit=r.benefit,
                points_benefit=r.points_benefit,
                posted=True,
            )
            for r in result.rewards
        ],
    )


def _reward_out(view: service.RewardView) -> schemas.RewardOut:
    r = view.reward
    return schemas.RewardOut(
        kind=r.kind,
        txn_id=r.txn_id,
        original_txn_id=r.original_txn_id,
        txn_time=r.txn_time,
        member=view.member,
        merchant=view.merchant,
        currency=r.currency,
        purchase_amount_minor=r.purchase_amount_minor,
        txn_amount_minor=r.txn_amount_minor,
        benefit=view.benefit,
        amount_minor=r.amount_minor,
        merchant_funded_minor=r.merchant_funded_minor,
        bank_funded_minor=r.bank_funded_minor,
        commission_minor=r.commission_minor,
        points_benefit=view.points_benefit,
        points=r.points,
        posted=r.posted_at is not None,
    )


# -- descriptor review queue ------------------------------------------------------------------


@router.get(
    "/reviews",
    response_model=Page[schemas.ReviewOut],
    summary="Descriptors waiting for a person's decision",
)
def list_reviews(
    uow: UoW,
    actor: Reviewer,
    status: ReviewStatus | None = ReviewStatus.OPEN,
    cursor: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.ReviewOut]:
    rows, next_cursor = reviews.list_reviews(uow, actor, status=status, cursor=cursor, limit=limit)
    return Page(items=[_review_out(v) for v in rows], next_cursor=next_cursor)


@router.get("/reviews/{review_id}", response_model=schemas.ReviewOut, responses=_PROBLEMS)
def get_review(review_id: str, uow: UoW, actor: Reviewer) -> schemas.ReviewOut:
    return _review_out(reviews.get_review(uow, actor, review_id))


@router.post(
    "/reviews/{review_id}/confirm",
    response_model=schemas.ReviewOut,
    summary="Map the descriptor to an alliance merchant; the next run resolves it exactly",
    responses=_PROBLEMS,
)
def confirm_review(
    review_id: str, body: schemas.ConfirmIn, uow: UoW, actor: Reviewer
) -> schemas.ReviewOut:
    view = reviews.confirm(
        uow, actor, review_id, merchant_ref=body.merchant, location_ref=body.location
    )
    return _review_out(view)


@router.post(
    "/reviews/{review_id}/reject",
    response_model=schemas.ReviewOut,
    summary="Not an alliance merchant: the descriptor stays unresolved",
    responses=_PROBLEMS,
)
def reject_review(
    review_id: str, body: schemas.RejectIn, uow: UoW, actor: Reviewer
) -> schemas.ReviewOut:
    return _review_out(reviews.reject(uow, actor, review_id, note=body.note))


def _review_out(view: reviews.ReviewView) -> schemas.ReviewOut:
    r = view.review
    return schemas.ReviewOut(
        id=r.public_id,
        descriptor=r.example,
        descriptor_key=r.descriptor_key,
        mcc=r.mcc,
        city=r.city,
        candidate_merchant=view.candidate_merchant,
        candidate_name=view.candidate_name,
        score=r.score,
        transactions=r.transactions,
        status=r.status,
        first_seen_at=r.first_seen_at,
        last_seen_at=r.last_seen_at,
        decided_at=r.decided_at,
        decision_note=r.decision_note,
    )
