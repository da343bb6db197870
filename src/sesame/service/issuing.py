"""Issuing and checking personal credit reports on the service's state, for the API and the CLI alike: build,
render, sign and register one report while the user's consent holds; check a report against the key set, the
revocations and the register of issued reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sesame.privacy import user_key
from sesame.service.reports import (
    ReportError,
    build_report,
    read_revocations,
    register_issued,
    render_html,
    render_pdf,
    sign_document,
    verify_document,
)
from sesame.service.services import Services


class ConsentLapsed(ReportError):
    """The consent was withdrawn or expired while the report was being built: nothing is signed or registered."""

    outcome = "consent_lapsed"  # in the audit log; the caller sees consent_required, whose remedy is the same

    def __init__(self, user_id: str):
        super().__init__(
            403,
            "consent_required",
            f"the consent of user {user_id} to a credit report was withdrawn "
            "or expired while the report was being built; no report was issued",
        )


def issue(services: Services, user_id: str, fmt: str, issuer: str) -> tuple[bytes, dict]:
    """Build, render, sign and register one report; the user's earlier reports are superseded (revoked), their ids
    in report["superseded"]. The caller checks consent first, to spare a build without it; it is checked again here
    after the build, the seconds it takes being time enough for a withdrawal, before the signature, and once more
    as the report is registered: ConsentLapsed then, with nothing registered. ConsentRegisterError if the register
    cannot be read."""
    cfg = services.cfg
    key = services.signing  # before the build: the report's issue time is never before its key's valid-from
    report = build_report(
        services.store.current,
        user_id,
        cfg.published,
        cfg.warehouse_path,
        user_key(user_id, cfg.user_key_secret),
        None,
        services.report_valid_days,
    )
    report["key_id"] = key.key_id
    rendered = render_pdf(report, key.key_id) if fmt == "pdf" else render_html(report, key.key_id)
    if services.consents.active(user_id) is None:
        raise ConsentLapsed(user_id)
    document = sign_document(rendered, fmt, report["report_id"], report["issued_at"], report["valid_until"], key)
    entry = {
        "report_id": report["report_id"],
        "issued_at": report["issued_at"],
        "valid_until": report["valid_until"],
        "issued_by": issuer,
        "user_key": user_key(user_id, cfg.user_key_secret),
        "format": fmt,
        "score": report["score"],
        "score_date": report["score_date"],
        "key_id": key.key_id,
        "sha256": hashlib.sha256(document).hexdigest(),
    }
    superseded = register_issued(services.files, entry, lambda: services.consents.active(user_id) is not None)
    if superseded is None:
        raise ConsentLapsed(user_id)
    report["superseded"] = superseded
    return document, report


def check_report(services: Services, data: bytes):
    """The signature against the key set, the revocations, and whether the register lists these exact bytes: CPU
    and file reads, for a worker thread."""
    result = verify_document(data, services.keyring.keys, read_revocations(services.files))
    registered = result.status != "invalid" and is_registered(
        services.files.issued, result.report_id, hashlib.sha256(data).hexdigest()
    )
    return result, registered


def is_registered(issued: Path, report_id: str | None, sha256: str) -> bool:
    if not report_id or not issued.exists():
        return False
    with open(issued, encoding="utf-8") as fh:
        return any((e := json.loads(line))["report_id"] == report_id and e["sha256"] == sha256 for line in fh)
