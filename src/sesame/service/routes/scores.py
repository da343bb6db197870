"""GET /v1/scores/{user_id}: a user's score from the night served (scope scores:read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from sesame.service.access import Principal
from sesame.service.errors import ServiceError, error_responses
from sesame.service.models import ScoreResponse
from sesame.service.routes.common import UserId, audit, not_scored, require, served_now

router = APIRouter(tags=["scores"])


@router.get(
    "/v1/scores/{user_id}",
    response_model=ScoreResponse,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="A user's score, tier, five factor sub-scores and reason codes",
)
async def get_score(
    request: Request, user_id: UserId, principal: Annotated[Principal, Depends(require("scores:read", "scores.lookup"))]
):
    served = served_now(request)
    if served.scores is None:
        audit(request, principal, 503, "not_ready", user_id=user_id)
        raise ServiceError(503, "not_ready", "no score snapshot is loaded yet; try again shortly")
    found = served.scores.get(user_id)
    if found is None:
        audit(request, principal, 404, "not_found", user_id=user_id)
        not_scored(served, user_id)
        raise ServiceError(
            404,
            "user_not_found",
            f"no score for user {user_id} in the current snapshot "
            f"({served.scores.info.ds}): unknown, or not scored that night",
        )
    found["reason_codes"] = served.explain_codes(found["reason_codes"])
    audit(request, principal, 200, "found", user_id=user_id)
    return ScoreResponse(ds=served.scores.info.ds, snapshot=served.scores.info.snapshot, **found)
