"""POST /v1/consents: record a user's consent to credit reports, or its withdrawal (scope consents:write); a
withdrawal revokes the user's reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from sesame.service.access import Principal
from sesame.service.consent import InvalidValidity
from sesame.service.errors import ServiceError, error_responses
from sesame.service.models import ConsentRecord, ConsentRequest
from sesame.service.reports import revoke_user_reports
from sesame.service.routes.common import ServicesDep, audit, require

router = APIRouter(tags=["reports"])


@router.post(
    "/v1/consents",
    response_model=ConsentRecord,
    status_code=201,
    responses=error_responses(400, 401, 403, 413, 422),
    summary="Record (or withdraw) a user's consent to credit reports; a grant expires (default 90 days)",
)
def record_consent(
    request: Request,
    body: ConsentRequest,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(require("consents:write", "consents.record"))],
):
    try:
        entry = services.consents.record(
            body.user_id,
            body.granted,
            body.reference,
            recorded_by=f"key:{principal.key_id}",
            valid_days=body.valid_days,
        )
    except InvalidValidity as exc:  # the register's maximum, if it is lower than the schema's
        audit(request, principal, 422, "invalid_request", user_id=body.user_id, fields=["body.valid_days"])
        raise ServiceError(422, "invalid_request", f"invalid request: body.valid_days: {exc}") from None
    revoked = {} if body.granted else {"revoked_reports": revoke_user_reports(services.files, entry["user_key"])}
    audit(
        request,
        principal,
        201,
        "granted" if body.granted else "withdrawn",
        user_id=body.user_id,
        consent_id=entry["consent_id"],
        **revoked,
    )
    return ConsentRecord(user_id=body.user_id, **{k: v for k, v in entry.items() if k != "user_key"})
