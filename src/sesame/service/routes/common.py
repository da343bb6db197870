"""What the routers share: the API key and scope check (`require`), the service's state (`ServicesDep`, `served_now`),
the audit entry every data endpoint writes (`audit`) and the path parameters.

Nothing here holds state: each reads the app's Services from `request.app.state`, which create_app sets."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi import Path as PathParam
from fastapi.security import APIKeyHeader

from sesame.service.access import AccessDenied, Principal
from sesame.service.errors import ServiceError
from sesame.service.models import DESTINATION_PATTERN, USER_ID_PATTERN
from sesame.service.services import Services
from sesame.service.store import Served

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey", description="an API key issued with `sesame keys create`"
)


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
            allowed = (
                any(s.startswith("visa:read") for s in principal.scopes)
                if needed == "visa:read:any"
                else principal.allows(needed)
            )
            if not allowed:
                wanted = "a visa:read scope" if needed == "visa:read:any" else f"the scope {needed}"
                raise AccessDenied(403, "missing_scope", f"this API key lacks {wanted}", key_id=principal.key_id)
        except AccessDenied as exc:
            # the path is not validated yet: the audit log keeps the id and destination only if their form is valid
            services.audit.record(
                key_id=exc.key_id,
                action=action,
                status=exc.status,
                outcome=exc.code,
                user_id=request.path_params.get("user_id"),
                destination=destination,
            )
            raise
        request.state.principal, request.state.action = principal, action
        return principal

    return dependency


async def services_of(request: Request) -> Services:
    """Dependency: the app's Services (async: it only reads the app's state, no thread needed)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services_of)]


def served_now(request: Request) -> Served:
    """The snapshots served now (one night's, swapped whole when a new night is picked up)."""
    return request.app.state.services.store.current


def audit(request: Request, principal: Principal, status: int, outcome: str, **fields) -> None:
    """The request's audit entry, under the action its `require` dependency named."""
    request.app.state.services.audit.record(
        key_id=principal.key_id, action=request.state.action, status=status, outcome=outcome, **fields
    )


def not_scored(served: Served, user_id: str) -> None:
    """A user the night excluded is not unknown: say why, from the night's published score_exclusions."""
    excluded = served.exclusions.get(user_id) if served.exclusions is not None else None
    if excluded is not None:
        raise ServiceError(
            404,
            "user_not_scored",
            f"user {user_id} was not scored on {served.exclusions.info.ds}: "
            f"{excluded['exclusion_code']} ({excluded['description_en']})",
            [excluded],
        )


UserId = Annotated[
    str,
    PathParam(
        pattern=USER_ID_PATTERN,
        max_length=64,
        description="upstream user id",
        openapi_examples={"user": {"value": "U00000001"}},
    ),
]
DestinationCode = Annotated[
    str,
    PathParam(
        pattern=DESTINATION_PATTERN, description="ISO 3166 alpha-2", openapi_examples={"Luxembourg": {"value": "LU"}}
    ),
]
