"""The visa endpoints (scope visa:read, or visa:read:<XX> for one destination): the destinations, a user's
eligibility for one, and a destination's eligible users a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from sesame.service import reference
from sesame.service.access import Principal
from sesame.service.errors import ServiceError, error_responses
from sesame.service.models import (
    MAX_PAGE_SIZE,
    USER_ID_PATTERN,
    Destination,
    DestinationsResponse,
    EligibilityResponse,
    EligibleUsersPage,
)
from sesame.service.routes.common import DestinationCode, UserId, audit, not_scored, require, served_now
from sesame.service.store import Served

router = APIRouter(tags=["visa"])


def _destination(request: Request, principal: Principal, served: Served, destination: str, user_id: str | None = None):
    """The destination, upper-cased, and its rule in force; 503 before the night's visa snapshot, 404 for a
    destination the night did not judge."""
    destination = destination.upper()
    if served.visa is None:
        audit(request, principal, 503, "not_ready", destination=destination, user_id=user_id)
        raise ServiceError(503, "not_ready", "no visa-eligibility snapshot is loaded yet; try again shortly")
    rules = served.visa_rules()
    if destination not in rules and destination not in served.visa.by_destination:
        audit(request, principal, 404, "unknown_destination", destination=destination, user_id=user_id)
        raise ServiceError(
            404,
            "unknown_destination",
            f"unknown destination {destination}; the night "
            f"{served.visa.info.ds} judged: {', '.join(sorted(rules or served.visa.by_destination))}",
        )
    return destination, rules.get(destination)


@router.get(
    "/v1/visa/destinations",
    response_model=DestinationsResponse,
    responses=error_responses(401, 403, 503),
    summary="Destinations this key may read, with the rule in force",
)
async def list_destinations(
    request: Request, principal: Annotated[Principal, Depends(require("visa:read:any", "visa.destinations"))]
):
    served = served_now(request)
    if served.visa is None:
        audit(request, principal, 503, "not_ready")
        raise ServiceError(503, "not_ready", "no visa-eligibility snapshot is loaded yet; try again shortly")
    rules = served.visa_rules()
    names = sorted(set(rules) | set(served.visa.by_destination))
    out = [
        Destination(
            destination=d,
            rule_version=rules[d].rule_version if d in rules else None,
            min_score=rules[d].min_score if d in rules else None,
            eligible_users=len(served.visa.by_destination[d].user_ids) if d in served.visa.by_destination else 0,
        )
        for d in names
        if principal.allows(f"visa:read:{d}")
    ]
    audit(request, principal, 200, "listed")
    return DestinationsResponse(ds=served.visa.info.ds, destinations=out, snapshot=served.visa.info.snapshot)


@router.get(
    "/v1/visa/{destination}/users/{user_id}",
    response_model=EligibilityResponse,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Is this user eligible for the destination?",
)
async def get_eligibility(
    request: Request,
    destination: DestinationCode,
    user_id: UserId,
    principal: Annotated[Principal, Depends(require("visa:read", "visa.eligibility"))],
):
    served = served_now(request)
    destination, rule = _destination(request, principal, served, destination, user_id)
    listing = served.visa.by_destination.get(destination)
    hit = listing.get(user_id) if listing else None
    if hit is None and (served.scores is None or user_id not in served.scores.row):
        audit(request, principal, 404, "not_found", user_id=user_id, destination=destination)
        not_scored(served, user_id)
        raise ServiceError(
            404,
            "user_not_found",
            f"user {user_id} is not in the current snapshot ({served.visa.info.ds}): unknown, or not scored that night",
        )
    audit(request, principal, 200, "eligible" if hit else "not_eligible", user_id=user_id, destination=destination)
    failed = None
    checked = served.checks.get(destination, user_id) if served.checks is not None and not hit else None
    if checked is not None:
        failed = [
            reference.explain(c, rule, checked["score"], checked["history_days"], checked["qualifying_nights"])
            for c in checked["failed_conditions"]
        ]
    return EligibilityResponse(
        user_id=user_id,
        destination=destination,
        eligible=hit is not None,
        score=hit["score"] if hit else None,
        rule_version=hit["rule_version"]
        if hit
        else (checked or {}).get("rule_version", rule.rule_version if rule else None),
        min_score=rule.min_score if rule else None,
        failed_conditions=failed,
        ds=served.visa.info.ds,
        snapshot=served.visa.info.snapshot,
    )


@router.get(
    "/v1/visa/{destination}/eligible",
    response_model=EligibleUsersPage,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="A destination's eligible users, a page at a time (ordered by user id)",
)
async def list_eligible(
    request: Request,
    destination: DestinationCode,
    principal: Annotated[Principal, Depends(require("visa:read", "visa.eligible_list"))],
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="users per page")] = 100,
    after: Annotated[
        str | None, Query(pattern=USER_ID_PATTERN, max_length=64, description="the `next_after` of the previous page")
    ] = None,
):
    served = served_now(request)
    destination, rule = _destination(request, principal, served, destination)
    listing = served.visa.by_destination.get(destination)
    items, next_after = listing.page(after, page_size) if listing else ([], None)
    audit(request, principal, 200, "listed", destination=destination, returned=len(items))
    return EligibleUsersPage(
        destination=destination,
        ds=served.visa.info.ds,
        rule_version=rule.rule_version if rule else None,
        total=len(listing.user_ids) if listing else 0,
        page_size=page_size,
        items=items,
        next_after=next_after,
        snapshot=served.visa.info.snapshot,
    )
