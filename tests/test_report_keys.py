"""Reports bound to a time and a key: a validity period, a keyring whose retired keys keep verifying what they signed,
revocation on consent withdrawal and on re-issue, and verification that answers valid, expired, revoked or invalid,
online and offline from the published key set and revocation list."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from sesame.cli import main
from sesame.config import Settings
from sesame.service import reports as reports_module
from sesame.service.access import write_private
from sesame.service.app import create_app
from sesame.service.audit import read_entries, verify_chain
from sesame.service.layout import service_files
from sesame.service.reports import (
    KeySet,
    PublicKeyEntry,
    RevocationList,
    SigningKey,
    key_id_of,
    public_pem,
    sign_document,
    verify_document,
)
from tests.service_snapshots import publish_night, user_ids

DS, N = "2026-11-23", 20
UID, OTHER = user_ids(N)[3], user_ids(N)[4]
TRAILER = re.compile(rb"sesame-signature v2 report=(\S+) key=([0-9a-f]{16}) issued=(\S+) until=(\S+) ed25519=")


def make_client(cfg: Settings) -> TestClient:
    app = create_app(cfg, reload_seconds=0)
    keys = app.state.services.keys
    client = TestClient(app)
    client.issuer = {"X-API-Key": keys.create("consulate-desk", ["reports:issue"])[0]}
    client.recorder = {"X-API-Key": keys.create("consent-desk", ["consents:write"])[0]}
    client.cfg, client.services = cfg, app.state.services
    return client


@pytest.fixture
def svc(home):
    cfg = Settings()
    publish_night(cfg.published, DS, n=N)
    client = make_client(cfg)
    yield client
    client.services.audit.close()


def consent(client, user_id=UID, granted=True):
    r = client.post(
        "/v1/consents", json={"user_id": user_id, "granted": granted, "reference": "form-1"}, headers=client.recorder
    )
    assert r.status_code == 201, r.text


def issued(client, user_id=UID, fmt="html") -> bytes:
    r = client.post("/v1/reports", json={"user_id": user_id, "format": fmt}, headers=client.issuer)
    assert r.status_code == 200, r.text
    return r.content


def online(client, document: bytes) -> dict:
    r = client.post("/v1/reports/verify", content=document, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return r.json()


def offline(client, tmp_path, document: bytes, *options: str) -> int:
    """The CLI on a copy of the report, with the published files copied elsewhere, as a consulate would have them."""
    folder = tmp_path / "consulate"
    folder.mkdir(exist_ok=True)
    for name in ("report-keys.json", "report-revocations.json"):
        shutil.copy(client.cfg.published / name, folder / name)
    (folder / "report").write_bytes(document)
    return main(
        ["credit-report", "verify", str(folder / "report"), "--keys", str(folder / "report-keys.json"), *options]
    )


def trailer(document: bytes) -> tuple[str, str, str, str]:
    return tuple(part.decode() for part in TRAILER.search(document).groups())


def test_a_report_states_its_validity_and_key_and_verifies_valid(svc, tmp_path, capsys):
    consent(svc)
    document = issued(svc)
    report_id, key_id, issued_at, until = trailer(document)
    issued_time = dt.datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
    assert dt.datetime.fromisoformat(until.replace("Z", "+00:00")) - issued_time == dt.timedelta(days=90)
    assert key_id == svc.get("/v1/reports/keys").json()["current"] == svc.services.signing.key_id
    text = document.decode()
    assert f"valid until {until}" in text and f"signed with key {key_id}" in text
    body = online(svc, document)
    assert (body["status"], body["valid"], body["valid_until"], body["key_id"]) == ("valid", True, until, key_id)
    assert body["report"]["valid_until"] == until and body["report"]["key_id"] == key_id
    assert body["registered"] is True and body["report_id"] == report_id
    assert offline(svc, tmp_path, document) == 0
    assert capsys.readouterr().out.startswith("VALID: ")
    # the PDF carries the same line
    pdf = issued(svc, fmt="pdf")
    assert trailer(pdf)[1] == key_id and online(svc, pdf)["status"] == "valid"


def test_withdrawn_consent_revokes_every_report_of_the_user(svc, tmp_path, capsys):
    consent(svc)
    consent(svc, OTHER)
    mine, theirs = issued(svc), issued(svc, OTHER)
    consent(svc, granted=False)  # by the API
    body = online(svc, mine)
    assert (body["status"], body["valid"], body["revocation_reason"]) == ("revoked", False, "consent_withdrawn")
    assert "consent was withdrawn" in body["reason"]
    assert online(svc, theirs)["status"] == "valid"  # another user's report stays valid
    published = json.loads((svc.cfg.published / "report-revocations.json").read_text())
    assert [(e["report_id"], e["reason"]) for e in published["revoked"]] == [(trailer(mine)[0], "consent_withdrawn")]
    assert UID not in json.dumps(published)  # report ids only, no user
    capsys.readouterr()
    assert offline(svc, tmp_path, mine) == 4 and capsys.readouterr().out.startswith("REVOKED: ")
    assert offline(svc, tmp_path, theirs) == 0

    assert main(["consent", "withdraw", OTHER, "--reference", "call-2"]) == 0  # by the CLI
    assert online(svc, theirs)["status"] == "revoked"
    assert offline(svc, tmp_path, theirs) == 4
    withdrawals = [e for e in read_entries(svc.services.files.audit) if e.get("outcome") == "withdrawn"]
    assert [e["revoked_reports"] for e in withdrawals] == [[trailer(mine)[0]], [trailer(theirs)[0]]]
    assert verify_chain(svc.services.files.audit).ok


def test_a_new_report_supersedes_the_earlier_ones(svc, tmp_path):
    consent(svc)
    first, second = issued(svc), issued(svc, fmt="pdf")
    body = online(svc, first)
    assert body["status"] == "revoked" and body["revocation_reason"] == "superseded"
    assert f"superseded by report {trailer(second)[0]}" in body["reason"]
    assert online(svc, second)["status"] == "valid"
    assert offline(svc, tmp_path, first) == 4 and offline(svc, tmp_path, second) == 0
    third = issued(svc)
    revoked = json.loads((svc.cfg.published / "report-revocations.json").read_text())["revoked"]
    assert [(e["report_id"], e["superseded_by"]) for e in revoked] == [
        (trailer(first)[0], trailer(second)[0]),
        (trailer(second)[0], trailer(third)[0]),
    ]


def test_a_report_past_its_validity_is_expired(home, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SESAME_REPORT_VALID_DAYS", "2")
    cfg = Settings()
    publish_night(cfg.published, DS, n=N)
    client = make_client(cfg)
    consent(client)
    document = issued(client)
    _, _, issued_at, until = trailer(document)
    assert (dt.datetime.fromisoformat(until[:-1]) - dt.datetime.fromisoformat(issued_at[:-1])).days == 2
    assert online(client, document)["status"] == "valid"
    later = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=2, seconds=5)
    monkeypatch.setattr(reports_module, "_now", lambda: later)
    body = online(client, document)
    assert (body["status"], body["valid"]) == ("expired", False) and until in body["reason"]
    capsys.readouterr()
    assert offline(client, tmp_path, document) == 3 and capsys.readouterr().out.startswith("EXPIRED: ")
    client.services.audit.close()
    for bad in ("0", "-3", "ninety"):
        monkeypatch.setenv("SESAME_REPORT_VALID_DAYS", bad)
        with pytest.raises(ValueError, match="SESAME_REPORT_VALID_DAYS"):
            create_app(cfg, reload_seconds=0)


def test_a_report_signed_before_a_rotation_still_verifies(svc, tmp_path, capsys):
    consent(svc)
    consent(svc, OTHER)
    before = issued(svc)
    old_id = trailer(before)[1]
    old_private = svc.services.files.signing_key.read_bytes()
    assert main(["credit-report", "rotate-key"]) == 0
    assert old_id in capsys.readouterr().out
    # the running service signs with the new key from its next report on
    after = issued(svc, OTHER)
    new_id = trailer(after)[1]
    assert new_id != old_id and svc.get("/v1/reports/public-key").headers["X-Key-Id"] == new_id
    keys = svc.get("/v1/reports/keys").json()
    assert keys["current"] == new_id
    assert [(k["key_id"], k["retired_at"] is None) for k in keys["keys"]] == [(old_id, False), (new_id, True)]
    assert json.loads((svc.cfg.published / "report-keys.json").read_text()) == keys
    # the retired private key is gone from the service's folder; its public key still verifies
    assert not any(old_private in p.read_bytes() for p in svc.services.files.root.iterdir() if p.is_file())
    assert online(svc, before)["status"] == "valid" and online(svc, after)["status"] == "valid"
    assert offline(svc, tmp_path, before) == 0 and offline(svc, tmp_path, after) == 0
    # the current public key alone does not verify the older report
    assert (
        main(
            [
                "credit-report",
                "verify",
                str(tmp_path / "consulate" / "report"),
                "--public-key",
                str(svc.cfg.published / "report-signing-key.pem"),
            ]
        )
        == 0
    )  # `after` was copied last
    (tmp_path / "consulate" / "report").write_bytes(before)
    assert (
        main(
            [
                "credit-report",
                "verify",
                str(tmp_path / "consulate" / "report"),
                "--public-key",
                str(svc.cfg.published / "report-signing-key.pem"),
            ]
        )
        == 1
    )
    rotations = [e for e in read_entries(svc.services.files.audit) if e["action"] == "reports.rotate_key"]
    assert [(e["retired_key_id"], e["subject_key_id"]) for e in rotations] == [(old_id, new_id)]
    # a restarted service keeps the new key and the set
    svc.services.audit.close()
    again = create_app(svc.cfg, reload_seconds=0).state.services
    assert again.signing.key_id == new_id and list(again.keyring.keys.entries) == [old_id, new_id]
    again.audit.close()


def test_an_installation_from_before_the_keyring_keeps_its_key(home):
    """A private key made before keys had a set is taken in as the current key: its reports keep verifying."""
    cfg = Settings()
    publish_night(cfg.published, DS, n=N)
    private = Ed25519PrivateKey.generate()
    write_private(
        service_files(cfg).signing_key,
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    client = make_client(cfg)
    assert client.get("/v1/reports/keys").json()["current"] == key_id_of(private.public_key())
    client.services.audit.close()


def test_tampered_and_foreign_reports_are_invalid(svc, tmp_path, capsys):
    consent(svc)
    document = issued(svc)
    score = online(svc, document)["report"]["score"]
    tampered = document.replace(f'<span class="score">{score}</span>'.encode(), b'<span class="score">949</span>')
    assert tampered != document
    body = online(svc, tampered)
    assert (body["status"], body["valid"]) == ("invalid", False) and "altered" in body["reason"]
    assert offline(svc, tmp_path, tampered) == 1 and capsys.readouterr().out.startswith("INVALID: ")
    # a later date in the signature line is tampering too
    _, _, _, until = trailer(document)
    stretched = document.replace(f"until={until}".encode(), f"until=2099{until[4:]}".encode())
    assert online(svc, stretched)["status"] == "invalid"

    # a well-formed report signed by a key that is not in the set
    private = Ed25519PrivateKey.generate()
    foreign = SigningKey(
        private, private.public_key(), key_id_of(private.public_key()), public_pem(private.public_key())
    )
    body_end = document.index(b"<!-- sesame-signature")
    forged = sign_document(document[:body_end], "html", trailer(document)[0], trailer(document)[2], until, foreign)
    body = online(svc, forged)
    assert body["status"] == "invalid" and "not with the given public key" in body["reason"]
    assert offline(svc, tmp_path, forged) == 1


def test_a_retired_key_cannot_sign_after_its_retirement():
    """A leaked retired key: what it signs after its retirement (beyond a build's grace) is invalid."""
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private, private.public_key(), key_id_of(private.public_key()), public_pem(private.public_key()))
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stamp = reports_module.format_time
    document = b"<!DOCTYPE html><html><body>report</body></html>\n"
    signed = sign_document(document, "html", "SR-1", stamp(now), stamp(now + dt.timedelta(days=90)), key)

    def key_set(retired: dt.datetime | None) -> KeySet:
        return KeySet(
            [
                PublicKeyEntry(
                    key.key_id,
                    key.public,
                    key.public_pem,
                    stamp(now - dt.timedelta(days=9)),
                    stamp(retired) if retired else None,
                )
            ]
        )

    assert verify_document(signed, key_set(None)).status == "valid"
    assert verify_document(signed, key_set(now - dt.timedelta(minutes=2))).status == "valid"  # mid-build rotation
    late = verify_document(signed, key_set(now - dt.timedelta(days=1)))
    assert late.status == "invalid" and "after its retirement" in late.reason
    assert verify_document(signed, key_set(None), now=now + dt.timedelta(days=90)).status == "expired"
    revoked = RevocationList.from_json(
        {"revoked": [{"report_id": "SR-1", "revoked_at": stamp(now), "reason": "superseded", "superseded_by": "SR-2"}]}
    )
    assert verify_document(signed, key_set(None), revoked).status == "revoked"


def test_key_set_and_revocations_are_published_atomically_and_readable_offline(svc, tmp_path, monkeypatch, capsys):
    written = []
    real = reports_module.write_atomic
    monkeypatch.setattr(
        reports_module, "write_atomic", lambda path, text: written.append(path.name) or real(path, text)
    )
    consent(svc)
    document = issued(svc)
    issued(svc)  # supersedes the first: the list is published again
    assert "report-revocations.json" in written
    assert main(["credit-report", "rotate-key"]) == 0
    assert {"report-keys.json", "report-signing-key.pem"} <= set(written)
    published = svc.cfg.published
    assert not [p.name for p in published.iterdir() if ".tmp" in p.name]  # no half-written file left behind
    keys = KeySet.read(published / "report-keys.json")
    revocations = RevocationList.read(published / "report-revocations.json")
    assert verify_document(document, keys, revocations).status == "revoked"
    # a key set whose key id does not belong to its key is refused
    data = json.loads((published / "report-keys.json").read_text())
    data["keys"][0]["key_id"] = "0" * 16
    (tmp_path / "bad-keys.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not that of its public key"):
        KeySet.read(tmp_path / "bad-keys.json")
    # offline, without a revocation list, the CLI refuses rather than call a revoked report valid
    (tmp_path / "alone").mkdir()
    shutil.copy(published / "report-keys.json", tmp_path / "alone" / "report-keys.json")
    (tmp_path / "alone" / "report").write_bytes(document)
    capsys.readouterr()
    assert (
        main(
            [
                "credit-report",
                "verify",
                str(tmp_path / "alone" / "report"),
                "--keys",
                str(tmp_path / "alone" / "report-keys.json"),
            ]
        )
        == 2
    )
    assert "--revocations" in capsys.readouterr().err
