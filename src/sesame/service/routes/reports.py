"""The report endpoints: issue a signed personal credit report (scope reports:issue, with the user's consent on
record), check one (anonymous, rate-limited per client), and the keys to check one offline."""

from __future__ import annotations

import logging
import math
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from sesame.service.access import Principal
from sesame.service.budget import client_address
from sesame.service.consent import ConsentRegisterError
from sesame.service.errors import ServiceError, error_response, error_responses
from sesame.service.issuing import check_report, issue
from sesame.service.models import Error, ReportRequest, Verification
from sesame.service.reports import ReportError
from sesame.service.routes.common import ServicesDep, audit, require

log = logging.getLogger(__name__)

router = APIRouter(tags=["reports"])

# what POST /v1/reports/verify reads (the raw body, not JSON): the report file, in whichever format it was issued
REPORT_FILE = {
    "required": True,
    "description": "the report file, unchanged",
    "content": {
        "application/pdf": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
        "text/html": {"schema": {"type": "string", "minLength": 1}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
    },
}


class ReportVerification(Verification):
    status: Literal["valid", "expired", "revoked", "invalid"] = Field(
        description="valid: signed by a key of the set, unchanged, not revoked, within its validity; expired: past "
        "its validity; revoked: the user's consent was withdrawn or a newer report superseded it; "
        "invalid: altered, not a report, or signed by no key of the set"
    )
    valid_until: str | None = Field(None, description="the end of the report's validity, as signed")
    revoked_at: str | None = None
    revocation_reason: Literal["consent_withdrawn", "superseded"] | None = None


class PublishedKey(BaseModel):
    key_id: str
    algorithm: Literal["Ed25519"]
    public_key: str = Field(description="PEM")
    valid_from: str | None = Field(description="when the key began to sign (UTC)")
    retired_at: str | None = Field(description="when it stopped; null for the current key")


class KeySetResponse(BaseModel):
    current: str | None = Field(description="the id of the key that signs reports now")
    keys: list[PublishedKey]


@router.post(
    "/v1/reports",
    response_class=Response,
    responses={
        200: {
            "description": "the signed report (PDF or HTML); its id in the X-Report-Id header",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    },
    summary="Issue a signed personal credit report (needs the user's recorded consent)",
    description="The report names the person it is about (the name as registered and the identity "
    "document masked to its last four characters, from the night's KYC snapshot); a scored "
    "user without them on record gets 409 identity_unavailable and no report.",
)
def issue_report(
    request: Request,
    body: ReportRequest,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(require("reports:issue", "reports.issue"))],
):
    try:
        # checked here to spare a build without consent, and again by issue() before it signs
        if services.consents.active(body.user_id) is None:
            audit(request, principal, 403, "consent_required", user_id=body.user_id)
            raise ServiceError(
                403,
                "consent_required",
                f"no consent of user {body.user_id} to a credit report is on record (never given, "
                "withdrawn or expired); record it first: POST /v1/consents (scope consents:write) "
                "or `sesame consent grant`",
            )
        document, report = issue(services, body.user_id, body.format, issuer=f"key:{principal.key_id}")
    except ConsentRegisterError as exc:
        log.error("%s", exc)  # the operator's copy names the file; the caller's only its name
        audit(request, principal, 503, "consent_register_unreadable", user_id=body.user_id)
        raise ServiceError(503, "consent_register_unreadable", exc.public_message) from None
    except ReportError as exc:
        audit(request, principal, exc.status, getattr(exc, "outcome", exc.code), user_id=body.user_id)
        raise
    audit(
        request,
        principal,
        200,
        "issued",
        user_id=body.user_id,
        report_id=report["report_id"],
        superseded=report["superseded"],
    )
    media = "application/pdf" if body.format == "pdf" else "text/html; charset=utf-8"
    return Response(
        document,
        media_type=media,
        headers={
            "X-Report-Id": report["report_id"],
            "Content-Disposition": f'attachment; filename="{report["report_id"]}.{body.format}"',
        },
    )


@router.post(
    "/v1/reports/verify",
    response_model=ReportVerification,
    responses={
        413: {"model": Error, "description": "larger than any report"},
        422: {"model": Error, "description": "empty body"},
        429: {
            "model": Error,
            "description": "too many verifications from this client address; "
            "the Retry-After header says when to try again",
        },
    },
    openapi_extra={"requestBody": REPORT_FILE},
    summary="Check a report: valid, expired, revoked or invalid (no API key needed: it reveals only "
    "what the file holds)",
)
async def verify_report(request: Request, services: ServicesDep):
    # before the body is read: a refused caller costs neither its upload nor a line in the audit log
    limits = request.app.state.limits
    wait = request.app.state.verify_budget.take(client_address(request))
    if wait:
        retry = max(1, math.ceil(wait))
        return error_response(
            429,
            "too_many_requests",
            f"too many verifications from this address; try again "
            f"in {retry} s (at most {limits.verify_burst} at once, then "
            f"{limits.verify_per_second:g} a second)",
            headers={"Retry-After": str(retry)},
        )
    data = await request.body()  # BodyLimit stops it at the limit
    if not data:
        return error_response(422, "invalid_request", "empty body: send the report file as the request body")
    # the signature check and the register's scan in a worker thread: the loop keeps serving meanwhile
    result, registered = await anyio.to_thread.run_sync(check_report, services, data)
    # a report id is kept only from a good signature: an anonymous caller could put anything in a forged one
    signed = result.status != "invalid"
    services.audit.record(
        key_id=None,
        action="reports.verify",
        status=200,
        outcome=result.status,
        report_id=result.report_id if signed else None,
    )
    return ReportVerification(
        valid=result.valid,
        status=result.status,
        reason=result.reason,
        format=result.format,
        report_id=result.report_id,
        key_id=result.key_id,
        issued_at=result.issued_at,
        valid_until=result.valid_until,
        revoked_at=result.revoked_at,
        revocation_reason=result.revocation_reason,
        registered=registered,
        report=result.report,
    )


@router.get(
    "/v1/reports/public-key",
    response_class=Response,
    responses={
        200: {
            "description": "the Ed25519 public key (PEM) that signs reports; its id in X-Key-Id",
            "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
        }
    },
    summary="The public key to verify reports offline",
)
def public_key(services: ServicesDep):
    # in the thread pool: after a rotation, the keyring is read again under its file lock
    current = services.signing
    return Response(current.public_pem, media_type="application/x-pem-file", headers={"X-Key-Id": current.key_id})


@router.get(
    "/v1/reports/keys",
    response_model=KeySetResponse,
    summary="Every key that signed reports (the current one and the retired ones), to verify offline",
)
def report_keys(services: ServicesDep):
    return KeySetResponse(**services.keyring.keys.to_json())
