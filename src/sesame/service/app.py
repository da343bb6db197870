"""The score service: FastAPI over the published snapshots (`sesame serve`, `make serve`).

Every data endpoint needs an API key (header X-API-Key) with the endpoint's scope, and writes one audit entry,
allowed or not. Errors always have the `Error` shape; bad input is a 4xx, never a 500.

The request budget comes before any of that: a body over SESAME_SERVICE_MAX_BODY_BYTES is refused with 413 before
it is read (BodyLimit, outside the routes), and the anonymous verify endpoint takes a token from its caller's bucket
before it reads the body (429 when none is left).
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import Depends, FastAPI, Path as PathParam, Query, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sesame.config import Settings, settings
from sesame.service import reference
from sesame.service.access import AccessDenied, Principal
from sesame.service.budget import MAX_BODY_BYTES, BodyLimit, ClientBuckets, Limits, client_address
from sesame.service.consent import ConsentRegisterError, InvalidValidity
from sesame.service.errors import ServiceError, error_response, error_responses
from sesame.service.issuing import ConsentLapsed, check_report, issue
from sesame.service.logfilter import RawIdFilter, hide_raw_ids
from sesame.service.models import (
    DESTINATION_PATTERN, MAX_PAGE_SIZE, USER_ID_PATTERN, ConsentRecord, ConsentRequest, Destination,
    DestinationsResponse, EligibilityResponse, EligibleUsersPage, Error, Health, ReportRequest, ScoreResponse,
    Verification,
)
from sesame.service.reports import ReportError, revoke_user_reports
from sesame.service.services import Services, open_services
from sesame.service.store import Served

# the budget and the state are named here too: create_app takes Limits, and the CLI opens the state and issues
# reports through this module
__all__ = ["MAX_BODY_BYTES", "ClientBuckets", "ConsentLapsed", "Limits", "Services", "create_app", "issue",
           "open_services", "serve"]

log = logging.getLogger(__name__)

DESCRIPTION = """
Scores and visa eligibility of Sesame users, answered from the snapshots published each night
(`published/<dataset>/LATEST`); a new night is picked up without a restart.

**Access.** Send an API key in the `X-API-Key` header. Keys are issued with scopes by an operator
(`sesame keys create --name visa-desk --scopes visa:read:LU`): `scores:read`, `visa:read` (every destination) or
`visa:read:<XX>` (one destination), `reports:issue`, `consents:write` (never on the same key as `reports:issue`).
No key or an unknown key: 401. A key without the scope: 403. Every request is recorded in the audit log (key id,
pseudonymous user key, outcome). A body larger than the service accepts gets 413 before anything else.

**Personal credit reports** are issued only while the user's consent is on record (a consent expires: 90 days by
default), checked again before the report is signed, and are signed with Ed25519; a report is valid for
SESAME_REPORT_VALID_DAYS (90 by default). Anyone can check one offline with the key set (`GET /v1/reports/keys`,
every key that signed reports; the current one also at `GET /v1/reports/public-key`) and the revocation list
published beside it, or with `POST /v1/reports/verify` (rate-limited per client: 429 with Retry-After), which answers
`valid`, `expired`, `revoked` (consent withdrawn or report superseded) or `invalid`.
"""


def _not_scored(served, user_id: str) -> None:
    """A user the night excluded is not unknown: say why, from the night's published score_exclusions."""
    excluded = served.exclusions.get(user_id) if served.exclusions is not None else None
    if excluded is not None:
        raise ServiceError(404, "user_not_scored", f"user {user_id} was not scored on {served.exclusions.info.ds}: "
                           f"{excluded['exclusion_code']} ({excluded['description_en']})", [excluded])


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="an API key issued with `sesame keys create`")


def require(scope: str, action: str):
    """Dependency: a valid key holding `scope` (for visa:read, the path's destination decides which one).

    It and the lookup endpoints are `async`: they only touch memory (and append one audit line), and running
    them in the thread pool would cost more than the lookups themselves. Issuing a report stays in the pool."""

    async def dependency(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
        services: Services = request.app.state.services
        destination = request.path_params.get("destination")
        needed = f"visa:read:{destination.upper()}" if scope == "visa:read" and destination else scope
        try:
            principal = services.keys.authenticate(key)
            # listing destinations needs some visa scope; the list is then cut to what the key may see
            allowed = any(s.startswith("visa:read") for s in principal.scopes) if needed == "visa:read:any" \
                else principal.allows(needed)
            if not allowed:
                wanted = "a visa:read scope" if needed == "visa:read:any" else f"the scope {needed}"
                raise AccessDenied(403, "missing_scope", f"this API key lacks {wanted}", key_id=principal.key_id)
        except AccessDenied as exc:
            # the path is not validated yet: the audit log keeps the id and destination only if their form is valid
            services.audit.record(key_id=exc.key_id, action=action, status=exc.status, outcome=exc.code,
                                  user_id=request.path_params.get("user_id"), destination=destination)
            raise
        request.state.principal, request.state.action = principal, action
        return principal

    return dependency


def _served(request: Request) -> Served:
    return request.app.state.services.store.current


def _audit(request: Request, principal: Principal, status: int, outcome: str, **fields) -> None:
    request.app.state.services.audit.record(key_id=principal.key_id, action=request.state.action, status=status,
                                            outcome=outcome, **fields)


def _invalid_fields(errors) -> list[str]:
    """Where a request was invalid, for the audit log: an unknown field's name is the caller's text, so it is
    recorded as `<extra>`."""
    fields = []
    for error in errors:
        location = tuple(error.get("loc", ()))
        if error.get("type") == "extra_forbidden":
            location = location[:-1] + ("<extra>",)
        fields.append(".".join(str(part) for part in location))
    return fields


def _audit_unexpected(request: Request) -> None:
    """A 500 is audited like any outcome, without the exception's text (it may hold ids); a failing audit log
    must not keep the error response from leaving."""
    principal = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    action = getattr(request.state, "action", None) or f"{request.method} {getattr(route, 'path', '(no route)')}"
    try:
        request.app.state.services.audit.record(
            key_id=principal.key_id if principal else None, action=action, status=500, outcome="error",
            user_id=request.path_params.get("user_id"), destination=request.path_params.get("destination"))
    except Exception:
        log.exception("the audit log could not record a 500")


def _destination(request: Request, principal: Principal, served: Served, destination: str, user_id: str | None = None):
    destination = destination.upper()
    if served.visa is None:
        _audit(request, principal, 503, "not_ready", destination=destination, user_id=user_id)
        raise ServiceError(503, "not_ready", "no visa-eligibility snapshot is loaded yet; try again shortly")
    rules = served.visa_rules()
    if destination not in rules and destination not in served.visa.by_destination:
        _audit(request, principal, 404, "unknown_destination", destination=destination, user_id=user_id)
        raise ServiceError(404, "unknown_destination", f"unknown destination {destination}; the night "
                           f"{served.visa.info.ds} judged: {', '.join(sorted(rules or served.visa.by_destination))}")
    return destination, rules.get(destination)


UserId = Annotated[str, PathParam(pattern=USER_ID_PATTERN, max_length=64, description="upstream user id",
                                  openapi_examples={"user": {"value": "U00000001"}})]
DestinationCode = Annotated[str, PathParam(pattern=DESTINATION_PATTERN, description="ISO 3166 alpha-2",
                                           openapi_examples={"Luxembourg": {"value": "LU"}})]


def create_app(cfg: Settings | None = None, reload_seconds: float | None = None, freeze_gc: bool = False,
               limits: Limits | None = None) -> FastAPI:
    """The application; `freeze_gc` (for a server process of its own) keeps loaded snapshots out of the garbage
    collector's passes; `limits` defaults to the SESAME_SERVICE_* variables."""
    limits = limits or Limits.from_env()
    cfg = cfg or settings()
    hide_raw_ids(cfg.user_key_secret)  # whatever process serves the app, from its first load on: no raw id logged
    services = open_services(cfg, reload_seconds, freeze_gc)
    verify_budget = ClientBuckets(limits.verify_per_second, limits.verify_burst, limits.verify_clients)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        services.store.start()
        try:
            yield
        finally:
            services.store.stop()

    app = FastAPI(title="Sesame score service", version="1", description=DESCRIPTION, lifespan=lifespan,
                  openapi_tags=[{"name": "scores"}, {"name": "visa"}, {"name": "reports"}, {"name": "service"}])
    app.state.services, app.state.limits, app.state.verify_budget = services, limits, verify_budget
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    # ----------------------------------------------------------------------------------- errors
    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied):
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(ReportError)
    async def _report_error(request: Request, exc: ReportError):
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        details = [{"location": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                   for e in exc.errors()]
        principal = getattr(request.state, "principal", None)
        if principal is not None:
            # the offending values are not logged: a malformed id may be anything
            _audit(request, principal, 422, "invalid_request",
                   destination=None, user_id=None, fields=_invalid_fields(exc.errors()))
        summary = "; ".join(f"{d['location']}: {d['problem']}" for d in details[:5])
        return error_response(422, "invalid_request", f"invalid request: {summary}",
                              details=jsonable_encoder(details))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = "the request body is not valid JSON" if exc.status_code == 400 else str(exc.detail)
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), message,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # the route's template, not the URL: the path holds the raw user id
        log.exception("unexpected error on %s %s", request.method,
                      getattr(request.scope.get("route"), "path", "(no route)"))
        _audit_unexpected(request)
        return error_response(500, "internal_error", "unexpected error; it has been logged")

    # ----------------------------------------------------------------------------------- service
    @app.get("/v1/health", response_model=Health, tags=["service"], responses={503: {"model": Health}},
             summary="Which snapshots are served, and any that failed to load")
    async def health():
        status = services.store.status()
        state = "not_ready" if "sesame_scores" not in status["snapshots"] else \
            "degraded" if status["errors"] or "visa_eligibility" not in status["snapshots"] else "ok"
        body = Health(status=state, **status)
        return JSONResponse(jsonable_encoder(body), status_code=503 if state == "not_ready" else 200)

    # ----------------------------------------------------------------------------------- scores
    @app.get("/v1/scores/{user_id}", response_model=ScoreResponse, tags=["scores"],
             responses=error_responses(401, 403, 404, 422, 503),
             summary="A user's score, tier, five factor sub-scores and reason codes")
    async def get_score(request: Request, user_id: UserId,
                  principal: Annotated[Principal, Depends(require("scores:read", "scores.lookup"))]):
        served = _served(request)
        if served.scores is None:
            _audit(request, principal, 503, "not_ready", user_id=user_id)
            raise ServiceError(503, "not_ready", "no score snapshot is loaded yet; try again shortly")
        found = served.scores.get(user_id)
        if found is None:
            _audit(request, principal, 404, "not_found", user_id=user_id)
            _not_scored(served, user_id)
            raise ServiceError(404, "user_not_found", f"no score for user {user_id} in the current snapshot "
                               f"({served.scores.info.ds}): unknown, or not scored that night")
        found["reason_codes"] = served.explain_codes(found["reason_codes"])
        _audit(request, principal, 200, "found", user_id=user_id)
        return ScoreResponse(ds=served.scores.info.ds, snapshot=served.scores.info.snapshot, **found)

    # ----------------------------------------------------------------------------------- visa
    @app.get("/v1/visa/destinations", response_model=DestinationsResponse, tags=["visa"],
             responses=error_responses(401, 403, 503), summary="Destinations this key may read, with the rule in force")
    async def list_destinations(request: Request,
                          principal: Annotated[Principal, Depends(require("visa:read:any", "visa.destinations"))]):
        served = _served(request)
        if served.visa is None:
            _audit(request, principal, 503, "not_ready")
            raise ServiceError(503, "not_ready", "no visa-eligibility snapshot is loaded yet; try again shortly")
        rules = served.visa_rules()
        names = sorted(set(rules) | set(served.visa.by_destination))
        out = [Destination(destination=d, rule_version=rules[d].rule_version if d in rules else None,
                           min_score=rules[d].min_score if d in rules else None,
                           eligible_users=len(served.visa.by_destination[d].user_ids)
                           if d in served.visa.by_destination else 0)
               for d in names if principal.allows(f"visa:read:{d}")]
        _audit(request, principal, 200, "listed")
        return DestinationsResponse(ds=served.visa.info.ds, destinations=out, snapshot=served.visa.info.snapshot)

    @app.get("/v1/visa/{destination}/users/{user_id}", response_model=EligibilityResponse, tags=["visa"],
             responses=error_responses(401, 403, 404, 422, 503), summary="Is this user eligible for the destination?")
    async def get_eligibility(request: Request, destination: DestinationCode, user_id: UserId,
                        principal: Annotated[Principal, Depends(require("visa:read", "visa.eligibility"))]):
        served = _served(request)
        destination, rule = _destination(request, principal, served, destination, user_id)
        listing = served.visa.by_destination.get(destination)
        hit = listing.get(user_id) if listing else None
        if hit is None and (served.scores is None or user_id not in served.scores.row):
            _audit(request, principal, 404, "not_found", user_id=user_id, destination=destination)
            _not_scored(served, user_id)
            raise ServiceError(404, "user_not_found", f"user {user_id} is not in the current snapshot "
                               f"({served.visa.info.ds}): unknown, or not scored that night")
        _audit(request, principal, 200, "eligible" if hit else "not_eligible", user_id=user_id,
               destination=destination)
        failed = None
        checked = served.checks.get(destination, user_id) if served.checks is not None and not hit else None
        if checked is not None:
            failed = [reference.explain(c, rule, checked["score"], checked["history_days"],
                                        checked["qualifying_nights"]) for c in checked["failed_conditions"]]
        return EligibilityResponse(
            user_id=user_id, destination=destination, eligible=hit is not None, score=hit["score"] if hit else None,
            rule_version=hit["rule_version"] if hit else (checked or {}).get("rule_version",
                                                                            rule.rule_version if rule else None),
            min_score=rule.min_score if rule else None, failed_conditions=failed, ds=served.visa.info.ds,
            snapshot=served.visa.info.snapshot)

    @app.get("/v1/visa/{destination}/eligible", response_model=EligibleUsersPage, tags=["visa"],
             responses=error_responses(401, 403, 404, 422, 503),
             summary="A destination's eligible users, a page at a time (ordered by user id)")
    async def list_eligible(request: Request, destination: DestinationCode,
                      principal: Annotated[Principal, Depends(require("visa:read", "visa.eligible_list"))],
                      page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="users per page")] = 100,
                      after: Annotated[str | None, Query(pattern=USER_ID_PATTERN, max_length=64,
                                                         description="the `next_after` of the previous page")] = None):
        served = _served(request)
        destination, rule = _destination(request, principal, served, destination)
        listing = served.visa.by_destination.get(destination)
        items, next_after = listing.page(after, page_size) if listing else ([], None)
        _audit(request, principal, 200, "listed", destination=destination, returned=len(items))
        return EligibleUsersPage(destination=destination, ds=served.visa.info.ds,
                                 rule_version=rule.rule_version if rule else None,
                                 total=len(listing.user_ids) if listing else 0, page_size=page_size, items=items,
                                 next_after=next_after, snapshot=served.visa.info.snapshot)

    # ----------------------------------------------------------------------------------- consent and reports
    @app.post("/v1/consents", response_model=ConsentRecord, status_code=201, tags=["reports"],
              responses=error_responses(400, 401, 403, 413, 422),
              summary="Record (or withdraw) a user's consent to credit reports; a grant expires (default 90 days)")
    def record_consent(request: Request, body: ConsentRequest,
                       principal: Annotated[Principal, Depends(require("consents:write", "consents.record"))]):
        try:
            entry = services.consents.record(body.user_id, body.granted, body.reference,
                                             recorded_by=f"key:{principal.key_id}", valid_days=body.valid_days)
        except InvalidValidity as exc:  # the register's maximum, if it is lower than the schema's
            _audit(request, principal, 422, "invalid_request", user_id=body.user_id, fields=["body.valid_days"])
            raise ServiceError(422, "invalid_request", f"invalid request: body.valid_days: {exc}") from None
        revoked = {} if body.granted else {"revoked_reports": revoke_user_reports(services.files, entry["user_key"])}
        _audit(request, principal, 201, "granted" if body.granted else "withdrawn", user_id=body.user_id,
               consent_id=entry["consent_id"], **revoked)
        return ConsentRecord(user_id=body.user_id, **{k: v for k, v in entry.items() if k != "user_key"})

    @app.post("/v1/reports", tags=["reports"], response_class=Response,
              responses={200: {"description": "the signed report (PDF or HTML); its id in the X-Report-Id header",
                               "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}},
                                           "text/html": {"schema": {"type": "string"}}}},
                         **error_responses(400, 401, 403, 404, 409, 413, 422, 503)},
              summary="Issue a signed personal credit report (needs the user's recorded consent)",
              description="The report names the person it is about (the name as registered and the identity "
                          "document masked to its last four characters, from the night's KYC snapshot); a scored "
                          "user without them on record gets 409 identity_unavailable and no report.")
    def issue_report(request: Request, body: ReportRequest,
                     principal: Annotated[Principal, Depends(require("reports:issue", "reports.issue"))]):
        try:
            # checked here to spare a build without consent, and again by issue() before it signs
            if services.consents.active(body.user_id) is None:
                _audit(request, principal, 403, "consent_required", user_id=body.user_id)
                raise ServiceError(403, "consent_required",
                                   f"no consent of user {body.user_id} to a credit report is on record (never given, "
                                   "withdrawn or expired); record it first: POST /v1/consents (scope consents:write) "
                                   "or `sesame consent grant`")
            document, report = issue(services, body.user_id, body.format, issuer=f"key:{principal.key_id}")
        except ConsentRegisterError as exc:
            log.error("%s", exc)  # the operator's copy names the file; the caller's only its name
            _audit(request, principal, 503, "consent_register_unreadable", user_id=body.user_id)
            raise ServiceError(503, "consent_register_unreadable", exc.public_message) from None
        except ReportError as exc:
            _audit(request, principal, exc.status, getattr(exc, "outcome", exc.code), user_id=body.user_id)
            raise
        _audit(request, principal, 200, "issued", user_id=body.user_id, report_id=report["report_id"],
               superseded=report["superseded"])
        media = "application/pdf" if body.format == "pdf" else "text/html; charset=utf-8"
        return Response(document, media_type=media, headers={
            "X-Report-Id": report["report_id"],
            "Content-Disposition": f'attachment; filename="{report["report_id"]}.{body.format}"'})

    @app.post("/v1/reports/verify", response_model=ReportVerification, tags=["reports"],
              responses={413: {"model": Error, "description": "larger than any report"},
                         422: {"model": Error, "description": "empty body"},
                         429: {"model": Error, "description": "too many verifications from this client address; "
                                                              "the Retry-After header says when to try again"}},
              openapi_extra={"requestBody": {"required": True, "description": "the report file, unchanged", "content": {
                  "application/pdf": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                  "text/html": {"schema": {"type": "string", "minLength": 1}},
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}}}},
              summary="Check a report: valid, expired, revoked or invalid (no API key needed: it reveals only "
                      "what the file holds)")
    async def verify_report(request: Request):
        # before the body is read: a refused caller costs neither its upload nor a line in the audit log
        wait = verify_budget.take(client_address(request))
        if wait:
            retry = max(1, math.ceil(wait))
            return error_response(429, "too_many_requests", f"too many verifications from this address; try again "
                                  f"in {retry} s (at most {limits.verify_burst} at once, then "
                                  f"{limits.verify_per_second:g} a second)", headers={"Retry-After": str(retry)})
        data = await request.body()  # BodyLimit stops it at the limit
        if not data:
            return error_response(422, "invalid_request", "empty body: send the report file as the request body")
        # the signature check and the register's scan in a worker thread: the loop keeps serving meanwhile
        result, registered = await anyio.to_thread.run_sync(check_report, services, data)
        # a report id is kept only from a good signature: an anonymous caller could put anything in a forged one
        signed = result.status != "invalid"
        services.audit.record(key_id=None, action="reports.verify", status=200, outcome=result.status,
                              report_id=result.report_id if signed else None)
        return ReportVerification(
            valid=result.valid, status=result.status, reason=result.reason, format=result.format,
            report_id=result.report_id, key_id=result.key_id, issued_at=result.issued_at,
            valid_until=result.valid_until, revoked_at=result.revoked_at,
            revocation_reason=result.revocation_reason, registered=registered, report=result.report)

    @app.get("/v1/reports/public-key", tags=["reports"], response_class=Response,
             responses={200: {"description": "the Ed25519 public key (PEM) that signs reports; its id in X-Key-Id",
                              "content": {"application/x-pem-file": {"schema": {"type": "string"}}}}},
             summary="The public key to verify reports offline")
    def public_key():  # in the thread pool: after a rotation, the keyring is read again under its file lock
        current = services.signing
        return Response(current.public_pem, media_type="application/x-pem-file", headers={"X-Key-Id": current.key_id})

    @app.get("/v1/reports/keys", response_model=KeySetResponse, tags=["reports"],
             summary="Every key that signed reports (the current one and the retired ones), to verify offline")
    def report_keys():
        return KeySetResponse(**services.keyring.keys.to_json())

    return app


class ReportVerification(Verification):
    status: Literal["valid", "expired", "revoked", "invalid"] = Field(
        description="valid: signed by a key of the set, unchanged, not revoked, within its validity; expired: past "
                    "its validity; revoked: the user's consent was withdrawn or a newer report superseded it; "
                    "invalid: altered, not a report, or signed by no key of the set")
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


def serve(host: str = "127.0.0.1", port: int = 8000, cfg: Settings | None = None) -> None:
    import uvicorn

    cfg = cfg or settings()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    # create_app puts the raw-id filter on the service's and uvicorn's loggers; the console handler has its own, for
    # a record of a module logger made after the app
    handler.addFilter(RawIdFilter(cfg.user_key_secret))
    logging.getLogger("sesame.service").addHandler(handler)  # which snapshot is served, and any that is refused
    logging.getLogger("sesame.service").setLevel(logging.INFO)
    # access logs would put raw user ids (they are in the paths) in the console; the audit log records requests
    uvicorn.run(create_app(cfg, freeze_gc=True), host=host, port=port, access_log=False, log_level="info")
