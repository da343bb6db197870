"""Personal credit reports: only with recorded consent; HTML and PDF with score, tier, sub-scores, reason codes,
monthly history and qualifying rule versions; Ed25519-signed, verifiable offline and online; any change fails."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import duckdb
import pypdf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from sesame.config import Settings
from sesame.privacy import user_key
from sesame.service.app import create_app
from sesame.service.audit import read_entries
from sesame.service.reports import load_public_key, verify_document
from tests.service_snapshots import (
    MIN_SCORE,
    document_number,
    eligible,
    publish_night,
    registered_name,
    score_of,
    tier_of,
    user_ids,
)

N = 120
NIGHTS = [("2026-09-30", 0), ("2026-10-15", 3), ("2026-10-31", 4), ("2026-11-23", 6)]  # (night, score shift)
# a user who qualifies for LU and SG on the last night
SUBJECT = next(
    i
    for i in range(N)
    if eligible(i, "LU", 6) and eligible(i, "SG", 6) and score_of(i, 6) >= MIN_SCORE["LU"] + 5 and score_of(i, 6) < 940
)
UID = user_ids(N)[SUBJECT]


@pytest.fixture
def svc(home):
    cfg = Settings()
    for ds, shift in NIGHTS:
        publish_night(cfg.published, ds, n=N, shift=shift)
    app = create_app(cfg, reload_seconds=0)
    keys = app.state.services.keys
    client = TestClient(app)
    client.issuer = {"X-API-Key": keys.create("consulate-desk", ["reports:issue"])[0]}
    client.recorder = {"X-API-Key": keys.create("consent-desk", ["consents:write"])[0]}
    client.reader = {"X-API-Key": keys.create("reader", ["scores:read"])[0]}
    client.cfg, client.app_ = cfg, app
    yield client
    app.state.services.audit.close()


def consent(client, user_id=UID, granted=True, **extra):
    r = client.post(
        "/v1/consents",
        json={"user_id": user_id, "granted": granted, "reference": "form-77", **extra},
        headers=client.recorder,
    )
    assert r.status_code == 201, r.text
    return r.json()


def issue(client, fmt, user_id=UID):
    return client.post("/v1/reports", json={"user_id": user_id, "format": fmt}, headers=client.issuer)


def test_no_report_without_recorded_consent(svc):
    r = issue(svc, "pdf")
    assert r.status_code == 403 and r.json()["error"] == "consent_required"
    assert "consent" in r.json()["message"] and str(score_of(SUBJECT, 6)) not in r.text
    # recording consent needs its own scope
    assert svc.post("/v1/consents", json={"user_id": UID, "reference": "x"}, headers=svc.issuer).status_code == 403
    record = consent(svc)
    assert record["granted"] and record["recorded_by"].startswith("key:") and record["user_id"] == UID
    assert issue(svc, "pdf").status_code == 200
    consent(svc, granted=False)  # withdrawn
    assert issue(svc, "pdf").json()["error"] == "consent_required"
    # the register keeps the pseudonymous key, never the upstream id
    stored = svc.app_.state.services.files.consents.read_text()
    assert UID not in stored and user_key(UID, svc.cfg.user_key_secret) in stored
    outcomes = [
        e["outcome"] for e in read_entries(svc.app_.state.services.files.audit) if e["action"] == "reports.issue"
    ]
    assert outcomes == ["consent_required", "issued", "consent_required"]


def test_expired_consent_does_not_count(svc, monkeypatch):
    consent(svc, valid_days=30)
    assert issue(svc, "html").status_code == 200
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    monkeypatch.setattr("sesame.service.consent._now", lambda: later.replace(microsecond=0))
    assert issue(svc, "html").json()["error"] == "consent_required"


def test_html_report_content_and_signature(svc):
    consent(svc)
    r = issue(svc, "html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    document = r.content
    public = load_public_key(svc.get("/v1/reports/public-key").content)
    result = verify_document(document, public)
    assert result.valid and result.report_id == r.headers["X-Report-Id"]
    report = result.report
    score = score_of(SUBJECT, 6)
    assert (report["user_id"], report["score"], report["tier"], report["score_date"]) == (
        UID,
        score,
        tier_of(score),
        "2026-11-23",
    )
    assert [s["factor"] for s in report["sub_scores"]] == [
        "credit_history",
        "behavior_preference",
        "fulfillment_capacity",
        "identity_traits",
        "social_connections",
    ]
    assert [c["code"] for c in report["reason_codes"]] == ["CH01", "FC02", "BP03", "IT01", "SC02"][
        SUBJECT % 5 : SUBJECT % 5 + SUBJECT % 4
    ]
    # the last scored night of each month, from the retained snapshots
    assert [(h["month"], h["ds"], h["score"]) for h in report["history"]] == [
        ("2026-09", "2026-09-30", score_of(SUBJECT, 0)),
        ("2026-10", "2026-10-31", score_of(SUBJECT, 4)),
        ("2026-11", "2026-11-23", score),
    ]
    assert report["qualifying_destinations"] == [
        {"destination": "LU", "rule_version": "LU-2024.1", "min_score": 750},
        {"destination": "SG", "rule_version": "SG-2024.1", "min_score": 700},
    ]
    assert re.fullmatch(r"SR-\d{8}-[0-9A-F]{10}", report["report_id"]) and report["issued_at"].endswith("Z")
    # bound to a person: the name as registered and the document's last four characters, never the whole number
    number = document_number(SUBJECT)
    assert report["holder"] == {
        "name": registered_name(SUBJECT),
        "id_document_type": "PRC resident identity card",
        "id_document_masked": "*" * 14 + number[-4:],
        "identity_verified": SUBJECT % 9 != 4,
        "kyc_as_of": "2026-11-23",
    }
    text = document.decode()
    for shown in (
        UID,
        str(score),
        report["report_id"],
        "LU-2024.1",
        "Credit history",
        "2026-10-31",
        registered_name(SUBJECT),
        "*" * 14 + number[-4:],
        report["valid_until"],
    ):
        assert shown in text
    assert number[:14] not in text

    # change what a reader sees: the score
    tampered = document.replace(f'<span class="score">{score}</span>'.encode(), b'<span class="score">949</span>')
    assert tampered != document
    bad = verify_document(tampered, public)
    assert not bad.valid and "altered" in bad.reason
    online = svc.post("/v1/reports/verify", content=tampered, headers={"Content-Type": "text/html"}).json()
    assert online["valid"] is False
    online = svc.post("/v1/reports/verify", content=document, headers={"Content-Type": "text/html"}).json()
    assert online["valid"] is True and online["registered"] is True and online["report"]["score"] == score


def test_pdf_report_verifies_offline_and_any_changed_byte_fails(svc):
    consent(svc)
    r = issue(svc, "pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    document = r.content
    # a real PDF that readers open, with the contents on the page
    reader = pypdf.PdfReader(io.BytesIO(document))
    page = "".join(p.extract_text() for p in reader.pages)
    assert UID in page and str(score_of(SUBJECT, 6)) in page and r.headers["X-Report-Id"] in page
    assert "LU-2024.1" in page and "Score history" in page
    assert registered_name(SUBJECT) in page and "*" * 14 + document_number(SUBJECT)[-4:] in page
    attached = json.loads(reader.attachments[f"{r.headers['X-Report-Id']}.json"][0])
    assert attached["score"] == score_of(SUBJECT, 6)

    # offline: only the published public key file is needed
    public = load_public_key((svc.cfg.published / "report-signing-key.pem").read_bytes())
    assert verify_document(document, public).valid
    for position in (20, len(document) // 2, len(document) - 120):
        flipped = bytearray(document)
        flipped[position] ^= 0x01
        assert not verify_document(bytes(flipped), public).valid, position
    assert not verify_document(document[:-1], public).valid  # signature line cut
    assert not verify_document(document + b"%extra\n", public).valid
    # a key that did not sign it
    other = Ed25519PrivateKey.generate().public_key()
    assert "not with the given public key" in verify_document(document, other).reason
    # online
    online = svc.post("/v1/reports/verify", content=document, headers={"Content-Type": "application/pdf"}).json()
    assert online["valid"] and online["registered"] and online["format"] == "pdf"


def test_no_report_for_a_user_the_kyc_snapshot_cannot_name(home):
    """A scored user without a document number on record (or a night published before identities existed) gets
    409 and no report: a report that names nobody would pass for whoever presents it."""
    cfg = Settings()
    publish_night(cfg.published, "2026-11-23", n=N, shift=6, undocumented=(SUBJECT,))
    app = create_app(cfg, reload_seconds=0)
    client = TestClient(app)
    keys = app.state.services.keys
    client.issuer = {"X-API-Key": keys.create("consulate-desk", ["reports:issue"])[0]}
    client.recorder = {"X-API-Key": keys.create("consent-desk", ["consents:write"])[0]}
    try:
        consent(client)
        r = issue(client, "html")
        assert r.status_code == 409 and r.json()["error"] == "identity_unavailable" and UID in r.json()["message"]
        assert not app.state.services.files.issued.exists() or UID not in app.state.services.files.issued.read_text()
        other = user_ids(N)[SUBJECT + 1]
        consent(client, user_id=other)
        assert issue(client, "html", user_id=other).status_code == 200
        outcomes = [
            e["outcome"] for e in read_entries(app.state.services.files.audit) if e["action"] == "reports.issue"
        ]
        assert outcomes == ["identity_unavailable", "issued"]
    finally:
        app.state.services.audit.close()


def test_signing_key_is_private_and_the_public_key_published(svc):
    files = svc.app_.state.services.files
    assert oct(files.signing_key.stat().st_mode & 0o777) == "0o600"
    served = svc.get("/v1/reports/public-key")
    assert served.content == files.public_key.read_bytes() and b"PRIVATE" not in served.content
    assert served.headers["X-Key-Id"] == svc.app_.state.services.signing.key_id
    # a restarted service keeps the same key, so earlier reports still verify
    svc.app_.state.services.audit.close()
    again = create_app(svc.cfg, reload_seconds=0)
    assert again.state.services.signing.key_id == served.headers["X-Key-Id"]
    again.state.services.audit.close()


def test_verify_endpoint_refuses_junk_clearly(svc):
    assert svc.post("/v1/reports/verify", content=b"").status_code == 422
    r = svc.post("/v1/reports/verify", content=b"hello", headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.json()["valid"] is False
    assert svc.post("/v1/reports", json={"user_id": UID, "format": "docx"}, headers=svc.issuer).status_code == 422
    assert svc.post("/v1/reports", json={"user_id": "no such"}, headers=svc.issuer).status_code == 422
    assert svc.post("/v1/reports", json={"user_id": UID}, headers=svc.reader).status_code == 403
    consent(svc, user_id="U99999999")
    r = issue(svc, "pdf", user_id="U99999999")
    assert r.status_code == 404 and r.json()["error"] == "user_not_found"


def test_history_comes_from_the_warehouse_months(svc):
    """With a warehouse, the history covers the recent months by user_key, beyond the retained snapshots."""
    warehouse = svc.cfg.warehouse_path
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    key = user_key(UID, svc.cfg.user_key_secret)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.sesame_scores (ds date, user_key varchar, score integer, tier varchar)")
        for month in range(1, 13):  # 2025-12 .. 2026-11, two nights a month; another user too
            for day in (10, 20):
                ds = dt.date(2025 + (month > 1), (month - 2) % 12 + 1, day)
                con.execute("insert into marts.sesame_scores values (?, ?, ?, ?)", [ds, key, 600 + month, "good"])
                con.execute("insert into marts.sesame_scores values (?, 'someone-else', 400, 'poor')", [ds])
        con.execute("insert into marts.sesame_scores values (date '2024-01-10', ?, 999, 'old')", [key])
    consent(svc)
    report = verify_document(
        issue(svc, "html").content, load_public_key(svc.get("/v1/reports/public-key").content)
    ).report
    months = [h["month"] for h in report["history"]]
    assert months == ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert report["history"][0] == {"month": "2025-12", "ds": "2025-12-20", "score": 601, "tier": "good"}
    # the retained published nights fill in the latest months
    assert report["history"][-1]["ds"] == "2026-11-23" and report["history"][-1]["score"] == score_of(SUBJECT, 6)


def test_credit_report_cli_issue_and_verify(svc, tmp_path, capsys):
    from sesame.cli import main

    out = tmp_path / "report.pdf"
    assert main(["credit-report", "issue", UID, "--output", str(out)]) == 1  # no consent yet
    assert main(["consent", "grant", UID, "--reference", "form-9"]) == 0
    assert main(["credit-report", "issue", UID, "--output", str(out)]) == 0
    assert main(["credit-report", "verify", str(out)]) == 0
    assert "VALID" in capsys.readouterr().out
    data = out.read_bytes()
    out.write_bytes(data.replace(b"Sesame personal credit report", b"Sesame personal credit reporT", 1))
    assert main(["credit-report", "verify", str(out)]) == 1
    assert "INVALID" in capsys.readouterr().out


def test_no_report_from_the_datasets_of_two_nights(home):
    """A home whose per-dataset LATEST files name different nights (published before NIGHT existed, or moved by
    hand): the service serves what they name, but refuses to sign a report that would mix two nights."""
    cfg = Settings()
    (old, _), (new, _) = NIGHTS[-2:]
    for ds, shift in NIGHTS[-2:]:
        publish_night(cfg.published, ds, n=N, shift=shift)
    (cfg.published / "NIGHT").unlink()
    (cfg.published / "visa_eligibility" / "LATEST").write_text(json.dumps({"snapshot": f"ds={old}/run=r1"}))
    app = create_app(cfg, reload_seconds=0)
    client = TestClient(app)
    keys = app.state.services.keys
    client.recorder = {"X-API-Key": keys.create("consent-desk", ["consents:write"])[0]}
    client.issuer = {"X-API-Key": keys.create("consulate-desk", ["reports:issue"])[0]}
    consent(client)
    r = issue(client, "html")
    assert r.status_code == 503 and r.json()["error"] == "mixed_night"
    assert old in r.json()["message"] and new in r.json()["message"]
    app.state.services.audit.close()
