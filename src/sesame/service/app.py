"""The score service: FastAPI over the published snapshots (`sesame serve`, `make serve`).

Every data endpoint needs an API key (header X-API-Key) with the endpoint's scope, and writes one audit entry,
allowed or not. Errors always have the `Error` shape; bad input is a 4xx, never a 500.

The request budget comes before any of that: a body over SESAME_SERVICE_MAX_BODY_BYTES is refused with 413 before
it is read (BodyLimit, outside the routes), and the anonymous verify endpoint takes a token from its caller's bucket
before it reads the body (429 when none is left).

create_app assembles the application: the service's state (services.py), the request budget (budget.py), the error
handlers below, and one router per resource (routes/). Issuing and checking reports is issuing.py, shared with the
CLI.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sesame.config import Settings, settings
from sesame.service.access import AccessDenied
from sesame.service.budget import BodyLimit, ClientBuckets, Limits
from sesame.service.errors import ServiceError, error_response
from sesame.service.logfilter import RawIdFilter, hide_raw_ids
from sesame.service.reports import ReportError
from sesame.service.routes import ROUTERS
from sesame.service.routes.common import audit
from sesame.service.services import open_services

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
            key_id=principal.key_id if principal else None,
            action=action,
            status=500,
            outcome="error",
            user_id=request.path_params.get("user_id"),
            destination=request.path_params.get("destination"),
        )
    except Exception:
        log.exception("the audit log could not record a 500")


def add_error_handlers(app: FastAPI) -> None:
    """Every error in the `Error` shape: refused keys, ServiceError and ReportError from the routes, invalid
    requests (audited when a key was checked), HTTP errors, and any unexpected exception as an audited 500."""

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
        details = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in exc.errors()
        ]
        principal = getattr(request.state, "principal", None)
        if principal is not None:
            # the offending values are not logged: a malformed id may be anything
            audit(
                request,
                principal,
                422,
                "invalid_request",
                destination=None,
                user_id=None,
                fields=_invalid_fields(exc.errors()),
            )
        summary = "; ".join(f"{d['location']}: {d['problem']}" for d in details[:5])
        return error_response(422, "invalid_request", f"invalid request: {summary}", details=jsonable_encoder(details))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        codes = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = "the request body is not valid JSON" if exc.status_code == 400 else str(exc.detail)
        return error_response(
            exc.status_code, codes.get(exc.status_code, "http_error"), message, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # the route's template, not the URL: the path holds the raw user id
        log.exception(
            "unexpected error on %s %s", request.method, getattr(request.scope.get("route"), "path", "(no route)")
        )
        _audit_unexpected(request)
        return error_response(500, "internal_error", "unexpected error; it has been logged")


def create_app(
    cfg: Settings | None = None,
    reload_seconds: float | None = None,
    freeze_gc: bool = False,
    limits: Limits | None = None,
) -> FastAPI:
    """The application; `freeze_gc` (for a server process of its own) keeps loaded snapshots out of the garbage
    collector's passes; `limits` defaults to the SESAME_SERVICE_* variables. The routers find the Services, the
    limits and the verify budget in `app.state`."""
    limits = limits or Limits.from_env()
    cfg = cfg or settings()
    hide_raw_ids(cfg.user_key_secret)  # whatever process serves the app, from its first load on: no raw id logged
    services = open_services(cfg, reload_seconds, freeze_gc)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        services.store.start()
        try:
            yield
        finally:
            services.store.stop()

    app = FastAPI(
        title="Sesame score service",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[{"name": "scores"}, {"name": "visa"}, {"name": "reports"}, {"name": "service"}],
    )
    app.state.services, app.state.limits = services, limits
    app.state.verify_budget = ClientBuckets(limits.verify_per_second, limits.verify_burst, limits.verify_clients)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


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
