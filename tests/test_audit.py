"""The audit log is a hash chain: `sesame audit verify` passes on what the service and the CLI write (through
restarts, rotation and concurrent writers) and names the first altered, missing, repeated or cut line; only
validated values are logged; 500s, key creation and revocation and consent changes are audited. No Spark."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from fastapi.testclient import TestClient

from sesame.cli import main
from sesame.config import Settings
from sesame.privacy import user_key
from sesame.service import audit as audit_module
from sesame.service.app import create_app
from sesame.service.audit import AuditLog, read_entries, verify_chain
from tests.service_snapshots import publish_night

# every scope this module needs; consents:write never goes with reports:issue on one key
ALL = ["scores:read", "visa:read", "consents:write"]


@pytest.fixture
def svc(home):
    cfg = Settings()
    publish_night(cfg.published, "2026-11-23", n=40)
    app = create_app(cfg, reload_seconds=0)
    keys = app.state.services.keys
    client = TestClient(app, raise_server_exceptions=False)
    client.key = {"X-API-Key": keys.create("all", ALL)[0]}
    client.scores_only = {"X-API-Key": keys.create("scores", ["scores:read"])[0]}
    client.cfg, client.app_ = cfg, app
    client.log = app.state.services.files.audit
    yield client
    app.state.services.audit.close()


def requests_series(client) -> None:
    """Found, unknown, no key, wrong scope, malformed, listed, a consent: each leaves a line."""
    client.get("/v1/scores/U00000008", headers=client.key)
    client.get("/v1/scores/U99999999", headers=client.key)
    client.get("/v1/scores/U00000008")
    client.get("/v1/visa/LU/users/U00000008", headers=client.scores_only)
    client.get("/v1/scores/bad%20id", headers=client.key)
    client.get("/v1/visa/LU/eligible", headers=client.key)
    client.post("/v1/consents", json={"user_id": "U00000003", "reference": "form-1"}, headers=client.key)
    client.get("/v1/visa/SG/users/U00000011", headers=client.key)


def verify(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", *args])
    return code, capsys.readouterr().out


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def changed(byte: int) -> int:
    return ord("x") if byte != ord("x") else ord("y")


def test_a_series_of_requests_verifies_and_any_changed_byte_is_named(svc, capsys):
    requests_series(svc)
    lines = lines_of(svc.log)
    assert len(lines) == 8
    code, out = verify(capsys)
    assert code == 0 and f"{len(lines)} line(s) verified" in out
    original = svc.log.read_bytes()
    starts = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
    # a byte of the first line, in a middle line's body, its hash and its newline, and in the last line
    middle = len(lines) // 2
    end_of_middle = starts[middle] + len(lines[middle])
    cases = [
        (1, starts[0] + 3),
        (middle + 1, starts[middle] + len(lines[middle]) // 3),
        (middle + 1, end_of_middle - 10),
        (middle + 1, end_of_middle - 1),
        (len(lines), starts[-1] + 30),
    ]
    for number, offset in cases:
        data = bytearray(original)
        data[offset] = changed(data[offset])
        svc.log.write_bytes(bytes(data))
        code, out = verify(capsys)
        assert code == 1, (number, offset)
        assert out.startswith(f"line {number} of {svc.log}: "), (number, offset, out)
    svc.log.write_bytes(original)
    assert verify(capsys)[0] == 0


@pytest.mark.parametrize(
    "damage, number, why",
    [
        ("delete_middle", 4, "missing"),
        ("delete_first", 1, "missing"),
        ("swap", 3, "out of order"),
        ("repeat", 4, "repeated"),
        ("cut_last", 8, "cut short"),
        ("replace_and_rehash", 4, "replaced"),
    ],
)
def test_missing_reordered_repeated_or_cut_lines_are_named(svc, capsys, damage, number, why):
    requests_series(svc)
    lines = lines_of(svc.log)
    if damage == "delete_middle":
        del lines[3]
    elif damage == "delete_first":
        del lines[0]
    elif damage == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif damage == "repeat":
        lines.insert(3, lines[2])
    elif damage == "cut_last":
        lines[-1] = lines[-1][:-12]
    else:  # line 3 rewritten with its own hash made to match: the next line's prev still tells
        entry = json.loads(lines[2])
        fields = {k: v for k, v in entry.items() if k not in ("seq", "prev", "hash")} | {"outcome": "forged"}
        lines[2] = audit_module.chain_line(fields, entry["seq"], entry["prev"])
    svc.log.write_bytes(b"".join(lines))
    code, out = verify(capsys)
    assert code == 1
    assert out.startswith(f"line {number} of {svc.log}: ") and why in out, out


def test_rotation_while_the_service_runs_keeps_one_chain(svc, capsys):
    requests_series(svc)
    rotated = svc.log.with_name("audit.jsonl.1")
    svc.log.rename(rotated)
    requests_series(svc)
    assert svc.log.exists() and len(lines_of(rotated)) == 8 and len(lines_of(svc.log)) == 8
    first = json.loads(lines_of(svc.log)[0])
    assert first["seq"] == 9 and first["prev"] == audit_module._sha256(lines_of(rotated)[-1])
    code, out = verify(capsys)
    assert code == 0 and "16 line(s) verified" in out and "audit.jsonl.1" in out
    # a second rotation, by date: three files, still one chain, read in chain order whatever the names
    svc.log.rename(svc.log.with_name("audit.jsonl-20261124"))
    svc.get("/v1/scores/U00000001", headers=svc.key)
    assert verify(capsys)[0] == 0
    # a byte changed in a rotated file is named there
    original = rotated.read_bytes()
    data = bytearray(original)
    offset = len(lines_of(rotated)[0]) + 20
    data[offset] = changed(data[offset])
    rotated.write_bytes(bytes(data))
    code, out = verify(capsys)
    assert code == 1 and out.startswith(f"line 2 of {rotated}: ")
    # a rotated file removed: the chain has a gap, unless pruning is accepted
    rotated.unlink()
    code, out = verify(capsys)
    assert code == 1 and "seq 9" in out and "missing" in out
    assert verify(capsys, "--allow-pruned")[0] == 0


def test_a_restarted_service_continues_the_chain(svc, capsys):
    requests_series(svc)
    svc.app_.state.services.audit.close()
    again = create_app(svc.cfg, reload_seconds=0)
    TestClient(again).get("/v1/scores/U00000001", headers=svc.key)
    again.state.services.audit.close()
    entries = read_entries(svc.log)
    assert [e["seq"] for e in entries] == list(range(1, 10))
    assert verify(capsys)[0] == 0


def test_concurrent_writers_keep_one_chain(home, capsys):
    log = Settings().home / "service" / "audit.jsonl"
    writers = [AuditLog(log, "secret") for _ in range(3)]

    def write(writer, name):
        for i in range(60):
            writer.record(key_id=name, action="test.write", status=200, outcome="ok", user_id=f"U{i:08d}")

    script = (
        "import sys; from pathlib import Path; from sesame.service.audit import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]), 'secret')\n"
        "for i in range(60): log.record(key_id='process', action='test.write', status=200, outcome='ok')\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script, str(log)])
    threads = [threading.Thread(target=write, args=(w, f"thread-{n}")) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.wait(timeout=60) == 0
    for w in writers:
        w.close()
    entries = read_entries(log)
    assert len(entries) == 240 and [e["seq"] for e in entries] == list(range(1, 241))
    assert {e["key_id"] for e in entries} == {"thread-0", "thread-1", "thread-2", "process"}
    check = verify_chain(log)
    assert check.ok and check.lines == 240


def test_each_line_is_synced_to_disk_before_record_returns(home, monkeypatch):
    log = Settings().home / "service" / "audit.jsonl"
    writer = AuditLog(log, "secret")
    synced = []
    monkeypatch.setattr(audit_module, "_fdatasync", lambda fd: synced.append(log.stat().st_size))
    sizes = []
    for _ in range(3):
        writer.record(key_id="k", action="test.write", status=200, outcome="ok")
        sizes.append(log.stat().st_size)
    writer.close()
    assert synced == sizes  # one sync per line, after the whole line was written


def test_malformed_ids_and_destinations_are_never_logged(svc):
    raw = "U00000008 OR 1=1"
    assert svc.get("/v1/scores/U00000008%20OR%201=1").status_code == 401
    assert svc.get("/v1/visa/L!/users/U00000008%0A", headers=svc.scores_only).status_code == 403
    assert (
        svc.post(
            "/v1/consents", json={"user_id": "U00000003", "reference": "x", "U00000777": 1}, headers=svc.key
        ).status_code
        == 422
    )
    assert svc.get("/v1/scores/U00000009").status_code == 401  # a valid id is still recorded, pseudonymously
    no_key, wrong_scope, unknown_field, valid = read_entries(svc.log)
    assert no_key["user_key"] is None and no_key["user_id_invalid"] is True
    assert wrong_scope["user_key"] is None and wrong_scope["user_id_invalid"] is True
    assert wrong_scope["destination"] is None and wrong_scope["destination_invalid"] is True
    assert unknown_field["status"] == 422 and "body.<extra>" in unknown_field["fields"]
    assert valid["user_key"] == user_key("U00000009", svc.cfg.user_key_secret) and "user_id_invalid" not in valid
    text = svc.log.read_text()
    for leaked in (
        raw,
        "U00000008",
        "L!",
        "U00000777",
        user_key(raw, svc.cfg.user_key_secret),
        user_key("U00000008\n", svc.cfg.user_key_secret),
    ):
        assert leaked not in text, leaked


def test_a_500_is_audited_and_answered_as_usual(svc, capsys, monkeypatch, caplog):
    class BrokenStore:
        def __getattr__(self, name):
            raise RuntimeError("index broken while reading U00000008")

    monkeypatch.setattr(svc.app_.state.services, "store", BrokenStore())
    r = svc.get("/v1/scores/U00000008", headers=svc.key)
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert svc.get("/v1/health").status_code == 500
    lookup, health = read_entries(svc.log)
    key_id = svc.key["X-API-Key"].split("_")[1]
    assert (lookup["action"], lookup["status"], lookup["outcome"], lookup["key_id"]) == (
        "scores.lookup",
        500,
        "error",
        key_id,
    )
    assert lookup["user_key"] == user_key("U00000008", svc.cfg.user_key_secret)
    assert (health["action"], health["status"], health["key_id"]) == ("GET /v1/health", 500, None)
    assert "broken" not in svc.log.read_text() and "U00000008" not in svc.log.read_text()
    assert verify(capsys)[0] == 0
    # the service's own log names the route, not the URL that holds the id
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unexpected error on")]
    assert logged == ["unexpected error on GET /v1/scores/{user_id}", "unexpected error on GET /v1/health"]


def test_key_creation_and_revocation_are_audited_without_the_key(home, capsys):
    assert main(["keys", "create", "--name", "visa-desk", "--scopes", "visa:read:LU,scores:read"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    assert main(["keys", "revoke", key_id]) == 0
    log = Settings().home / "service" / "audit.jsonl"
    created, revoked = read_entries(log)
    assert (created["action"], created["outcome"], created["subject_key_id"], created["scopes"]) == (
        "keys.create",
        "created",
        key_id,
        ["visa:read:LU", "scores:read"],
    )
    assert (revoked["action"], revoked["outcome"], revoked["subject_key_id"]) == ("keys.revoke", "revoked", key_id)
    assert created["key_id"].startswith("cli:") and revoked["key_id"] == created["key_id"]
    assert key.split("_", 2)[2] not in log.read_text() and "visa-desk" not in log.read_text()
    assert main(["keys", "revoke", "000000000000"]) == 2  # nothing changed, nothing recorded
    assert len(read_entries(log)) == 2


def test_consent_changes_from_the_cli_and_the_api_are_audited_in_one_chain(svc, capsys):
    secret = svc.cfg.user_key_secret
    assert main(["consent", "grant", "U00000042", "--reference", "form-9", "--valid-days", "30"]) == 0
    r = svc.post(
        "/v1/consents", json={"user_id": "U00000042", "granted": False, "reference": "letter-3"}, headers=svc.key
    )  # the service's writer is open meanwhile
    assert r.status_code == 201
    assert main(["consent", "withdraw", "U00000043", "--reference", "call-5"]) == 0
    entries = read_entries(svc.log)
    assert [(e["action"], e["outcome"], e["user_key"], e["key_id"].startswith("cli:")) for e in entries] == [
        ("consents.record", "granted", user_key("U00000042", secret), True),
        ("consents.record", "withdrawn", user_key("U00000042", secret), False),
        ("consents.record", "withdrawn", user_key("U00000043", secret), True),
    ]
    registered = [json.loads(line) for line in svc.app_.state.services.files.consents.read_text().splitlines()]
    assert [e["consent_id"] for e in entries] == [c["consent_id"] for c in registered]
    assert "U00000042" not in svc.log.read_text()
    assert verify(capsys)[0] == 0


def test_verify_without_a_log_is_a_usage_error(home, capsys):
    assert main(["audit", "verify"]) == 2
    assert "no audit log" in capsys.readouterr().err
    assert main(["audit", "verify", "--path", str(home / "elsewhere.jsonl")]) == 2
