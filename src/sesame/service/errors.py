"""The service's errors: every error answer has the `Error` shape ({"error": code, "message": ..., "details"?}).

ERRORS documents each status a data endpoint may answer in the OpenAPI document (`error_responses(401, 403, ...)`
picks an endpoint's); a route raises ServiceError and the app's handler turns it into the answer."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from sesame.service.models import Error

ERRORS = {
    400: {"model": Error, "description": "the body is not JSON"},
    401: {"model": Error, "description": "no API key, or an unknown or revoked one"},
    403: {"model": Error, "description": "the API key lacks the scope this endpoint needs"},
    404: {"model": Error, "description": "unknown user or destination"},
    409: {
        "model": Error,
        "description": "the night's KYC snapshot holds no registered name and identity document "
        "for the user: a report must name its holder",
    },
    413: {"model": Error, "description": "the body is larger than the service accepts (SESAME_SERVICE_MAX_BODY_BYTES)"},
    422: {"model": Error, "description": "malformed request: bad id, page size out of range, unknown field"},
    503: {"model": Error, "description": "no snapshot loaded yet"},
}


def error_responses(*codes: int) -> dict:
    """The OpenAPI `responses` of an endpoint that may answer these error statuses."""
    return {c: ERRORS[c] for c in codes}


class ServiceError(Exception):
    """An error a route answers with: `status`, the `code` a client can act on, and the `message` it shows."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: list | None = None, headers: dict | None = None
) -> JSONResponse:
    body = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(status_code=status, content=body, headers=headers)
