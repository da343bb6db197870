"""Request and response bodies of the score service, as they appear in its OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sesame.scale import SCORE_MAX, SCORE_MIN, TIER_NAMES
from sesame.service.consent import DEFAULT_VALID_DAYS, max_valid_days_from_env

# Upstream user ids: letters, digits and . _ : - (at most 64); anything else is refused with 422 before any
# lookup, so a malformed id never reaches the index or the audit log as free text.
USER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DESTINATION_PATTERN = r"^[A-Za-z]{2}$"
MAX_PAGE_SIZE = 1000
# The longest a consent may last, as the service starts with it (the register itself enforces the value in force).
MAX_CONSENT_DAYS = max_valid_days_from_env()

Tier = Literal[TIER_NAMES]  # poor, fair, good, very_good, excellent


class Error(BaseModel):
    """Every error the service returns has this shape."""

    error: str = Field(description="machine-readable code", examples=["user_not_found"])
    message: str = Field(description="what went wrong and what to do", examples=["no score for user U00000042"])
    details: list[dict] | None = Field(
        None,
        description="for invalid requests: each offending field and why; for a "
        "user the night did not score: the exclusion code and its description",
    )


class SubScores(BaseModel):
    credit_history: float | None = Field(ge=0, le=100)
    behavior_preference: float | None = Field(ge=0, le=100)
    fulfillment_capacity: float | None = Field(ge=0, le=100)
    identity_traits: float | None = Field(ge=0, le=100)
    social_connections: float | None = Field(ge=0, le=100)


class ReasonCode(BaseModel):
    code: str = Field(examples=["CH03"])
    factor: str | None = Field(None, examples=["credit_history"])
    description_en: str = Field(examples=["Few bills paid in full on time"])
    description_zh: str = Field(examples=["按时足额还款的账单比例偏低"])


class ScoreResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "U00000042",
                    "ds": "2026-11-23",
                    "score": 712,
                    "tier": "excellent",
                    "sub_scores": {
                        "credit_history": 71.5,
                        "behavior_preference": 64.0,
                        "fulfillment_capacity": 58.25,
                        "identity_traits": 80.0,
                        "social_connections": 49.5,
                    },
                    "reason_codes": [
                        {
                            "code": "FC02",
                            "factor": "fulfillment_capacity",
                            "description_en": "Low wallet balance",
                            "description_zh": "钱包余额偏低",
                        }
                    ],
                    "model_version": "scorecard-20261101T0300",
                    "snapshot": "ds=2026-11-23/run=20261124T021500Z",
                }
            ]
        }
    )

    user_id: str
    ds: str = Field(description="the night the score was computed for")
    score: int = Field(ge=SCORE_MIN, le=SCORE_MAX)
    tier: Tier
    sub_scores: SubScores = Field(
        description="each factor 0-100; null where the user's segment scorecard has no characteristic of that factor"
    )
    reason_codes: list[ReasonCode] = Field(max_length=4, description="most important first")
    model_version: str
    snapshot: str = Field(description="the published snapshot answered from")


class FailedCondition(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "condition": "min_score",
                    "required": 750,
                    "actual": 712,
                    "description_en": "score 712 is below the minimum of 750",
                }
            ]
        }
    )

    condition: str = Field(
        description="min_score, identity_verified, not_court_listed, min_history_days or min_qualifying_nights"
    )
    required: int | bool | None = Field(None, description="what the rule requires")
    actual: int | bool | None = Field(None, description="what the night found")
    description_en: str


class EligibilityResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "U00000042",
                    "destination": "LU",
                    "eligible": True,
                    "score": 761,
                    "rule_version": "LU-2024.1",
                    "min_score": 750,
                    "ds": "2026-11-23",
                    "snapshot": "ds=2026-11-23/run=20261124T021500Z",
                }
            ]
        }
    )

    user_id: str
    destination: str = Field(examples=["LU"])
    eligible: bool
    score: int | None = Field(None, description="the score the decision used; only when eligible")
    rule_version: str | None = Field(None, description="the destination's rule version the night judged by")
    min_score: int | None = None
    failed_conditions: list[FailedCondition] | None = Field(
        None,
        description="when not eligible: the conditions of the rule that failed, in the rule's order, from the "
        "night's published visa_rule_checks (null for a night published without them)",
    )
    ds: str
    snapshot: str


class EligibleUser(BaseModel):
    user_id: str
    score: int
    rule_version: str


class EligibleUsersPage(BaseModel):
    destination: str
    ds: str
    rule_version: str | None
    total: int = Field(description="eligible users for the destination in this snapshot")
    page_size: int
    items: list[EligibleUser]
    next_after: str | None = Field(None, description="pass as `after` for the next page; null on the last page")
    snapshot: str


class Destination(BaseModel):
    destination: str
    rule_version: str | None = Field(None, description="rule in force on the snapshot's night")
    min_score: int | None = None
    eligible_users: int


class DestinationsResponse(BaseModel):
    ds: str
    destinations: list[Destination]
    snapshot: str


class SnapshotStatus(BaseModel):
    snapshot: str
    ds: str
    run_id: str
    rows: int
    loaded_at: str


class SnapshotFailure(BaseModel):
    snapshot: str | None
    error: str
    at: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "not_ready"] = Field(
        description="ok: both datasets served; degraded: serving, but a newer snapshot failed to load; "
        "not_ready: nothing loaded yet"
    )
    snapshots: dict[str, SnapshotStatus]
    errors: dict[str, SnapshotFailure]


class ConsentRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"user_id": "U00000042", "granted": True, "reference": "consent-form-2026-11-0042", "valid_days": 90}
            ]
        },
    )

    user_id: str = Field(pattern=USER_ID_PATTERN, max_length=64)
    granted: bool = Field(True, description="false records a withdrawal")
    reference: str = Field(
        min_length=1,
        max_length=200,
        description="the evidence: id of the signed consent form or the request it came with",
    )
    valid_days: int = Field(
        min(DEFAULT_VALID_DAYS, MAX_CONSENT_DAYS),
        ge=1,
        le=MAX_CONSENT_DAYS,
        description="a grant expires after this many days; there is no unlimited consent",
    )


class ConsentRecord(BaseModel):
    consent_id: str
    user_id: str
    purpose: str
    granted: bool
    recorded_at: str
    recorded_by: str
    reference: str
    expires_at: str | None


class ReportRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_id": "U00000042", "format": "pdf"}]}
    )

    user_id: str = Field(pattern=USER_ID_PATTERN, max_length=64)
    format: Literal["pdf", "html"] = "pdf"


class Verification(BaseModel):
    valid: bool
    reason: str
    format: Literal["pdf", "html"] | None = None
    report_id: str | None = None
    key_id: str | None = None
    issued_at: str | None = None
    registered: bool = Field(False, description="this service's register lists the report with these exact bytes")
    report: dict | None = Field(None, description="the report's contents (HTML reports carry them machine-readable)")
