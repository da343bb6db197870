"""GET /v1/health: which snapshots are served, and any that failed to load (no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from sesame.service.models import Health
from sesame.service.routes.common import ServicesDep

router = APIRouter(tags=["service"])


@router.get(
    "/v1/health",
    response_model=Health,
    responses={503: {"model": Health}},
    summary="Which snapshots are served, and any that failed to load",
)
async def health(services: ServicesDep):
    status = services.store.status()
    state = (
        "not_ready"
        if "sesame_scores" not in status["snapshots"]
        else "degraded"
        if status["errors"] or "visa_eligibility" not in status["snapshots"]
        else "ok"
    )
    body = Health(status=state, **status)
    return JSONResponse(jsonable_encoder(body), status_code=503 if state == "not_ready" else 200)
