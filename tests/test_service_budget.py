"""The request budget and consent that means consent: oversized bodies refused before they are read (declared or
streamed), anonymous verification rate-limited per client and run off the event loop; consents that expire
(90 days by default, never unlimited), checked again after the build and before the signature, never recorded and
used by one key, indexed in memory, and a corrupt register line failing closed with its line number. No Spark."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os

import anyio
import pytest
from fastapi.testclient import TestClient

from sesame.cli import main
from sesame.config import Settings
from sesame.privacy import user_key
from sesame.service import consent as consent_module
from sesame.service import issuing as issuing_module
from sesame.service.access import AccessDenied, KeyStore
from sesame.service.app import create_app
from sesame.service.audit import read_entries
from sesame.service.budget import MAX_BODY_BYTES, ClientBuckets, Limits
from sesame.service.consent import ConsentRegister, ConsentRegisterError
from tests.service_snapshots import publish_night

N = 40
UID, OTHER = "U00000007", "U00000008"
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def default_budget(monkeypatch):
    for name in (
        "SESAME_SERVICE_MAX_BODY_BYTES",
        "SESAME_SERVICE_VERIFY_PER_SECOND",
        "SESAME_SERVICE_VERIFY_BURST",
        "SESAME_CONSENT_MAX_VALID_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


def make_client(cfg, limits=None, **kw):
    app = create_app(cfg, reload_seconds=0, limits=limits)
    keys = app.state.services.keys
    client = TestClient(app, **kw)
    client.issuer = {"X-API-Key": keys.create("consulate-desk", ["reports:issue"])[0]}
    client.recorder = {"X-API-Key": keys.create("consent-desk", ["consents:write"])[0]}
    client.cfg, client.app_, client.services = cfg, app, app.state.services
    return client


@pytest.fixture
def svc(home):
    cfg = Settings()
    publish_night(cfg.published, "2026-11-23", n=N)
    client = make_client(cfg)
    yield client
    client.services.audit.close()


def grant(client, user_id=UID, **extra):
    r = client.post("/v1/consents", json={"user_id": user_id, "reference": "form-1", **extra}, headers=client.recorder)
    assert r.status_code == 201, r.text
    return r.json()


def issue(client, user_id=UID, fmt="html"):
    return client.post("/v1/reports", json={"user_id": user_id, "format": fmt}, headers=client.issuer)


def audited(client, action):
    return [e for e in read_entries(client.services.files.audit) if e["action"] == action]


def call_asgi(app, method, path, headers, chunks, client=("10.0.0.9", 4000)):
    """Call the ASGI app directly: the body arrives chunk by chunk as a server would hand it on; returns the status,
    the JSON body and how many chunks the app pulled."""
    pulled, sent = [], []
    chunks = list(chunks)

    async def receive():
        if len(pulled) < len(chunks):
            pulled.append(len(chunks[len(pulled)]))
            return {"type": "http.request", "body": chunks[len(pulled) - 1], "more_body": len(pulled) < len(chunks)}
        await anyio.sleep_forever()  # a client that sends nothing more

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": client,
        "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def run():
        with anyio.fail_after(10):
            await app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), len(pulled)


# ---------------------------------------------------------------------------------------------- oversized bodies


def test_a_2mb_body_without_a_key_gets_413_before_it_is_read(svc):
    assert Limits.from_env().max_body_bytes == MAX_BODY_BYTES < 2 * MB
    for path in ("/v1/reports/verify", "/v1/reports", "/v1/consents"):
        r = svc.post(path, content=b"%PDF-" + b"x" * (2 * MB), headers={"Content-Type": "application/pdf"})
        assert r.status_code == 413, (path, r.text)
        assert r.json()["error"] == "too_large" and str(MAX_BODY_BYTES) in r.json()["message"]
    # the handlers were not reached: nothing audited, no verification counted against the caller
    assert read_entries(svc.services.files.audit) == []
    assert len(svc.app_.state.verify_budget) == 0

    # not one byte is read when the declared length is over the limit
    status, body, pulled = call_asgi(
        svc.app_,
        "POST",
        "/v1/reports/verify",
        {"Content-Length": str(2 * MB), "Content-Type": "application/pdf"},
        [b"x" * (2 * MB)],
    )
    assert (status, body["error"], pulled) == (413, "too_large", 0)


def test_a_streamed_body_is_stopped_at_the_limit(svc):
    chunk = 64 * 1024
    stream = [b"%PDF-" + b"x" * (chunk - 5)] + [b"x" * chunk] * 100  # 6.4 MB, chunked: no Content-Length
    for path, headers in (
        ("/v1/reports/verify", {"Content-Type": "application/pdf"}),
        ("/v1/reports", {"Content-Type": "application/json"}),
    ):
        status, body, pulled = call_asgi(svc.app_, "POST", path, {**headers, "Transfer-Encoding": "chunked"}, stream)
        assert (status, body["error"]) == (413, "too_large"), (path, body)
        # it stopped at the chunk that passed the limit, not at the end of the stream
        assert pulled == MAX_BODY_BYTES // chunk + 1, (path, pulled)
    assert [e["action"] for e in read_entries(svc.services.files.audit)] == []


def test_bodies_within_the_limit_are_served_and_the_limit_is_configurable(home, monkeypatch):
    cfg = Settings()
    publish_night(cfg.published, "2026-11-23", n=N)
    monkeypatch.setenv("SESAME_SERVICE_MAX_BODY_BYTES", "5000")
    client = make_client(cfg)
    assert client.post("/v1/reports/verify", content=b"x" * 5000).json()["valid"] is False
    r = client.post("/v1/reports/verify", content=b"x" * 5001)
    assert r.status_code == 413 and "5000 bytes" in r.json()["message"]
    client.services.audit.close()
    monkeypatch.setenv("SESAME_SERVICE_MAX_BODY_BYTES", "a lot")
    with pytest.raises(ValueError, match="SESAME_SERVICE_MAX_BODY_BYTES"):
        Limits.from_env()


# ---------------------------------------------------------------------------------------------- verify's budget


def test_anonymous_verification_is_rate_limited_per_client(home):
    cfg = Settings()
    publish_night(cfg.published, "2026-11-23", n=N)
    client = make_client(cfg, Limits(verify_per_second=0.01, verify_burst=3))
    for _ in range(3):
        assert client.post("/v1/reports/verify", content=b"not a report").status_code == 200
    r = client.post("/v1/reports/verify", content=b"not a report")
    assert r.status_code == 429 and r.json()["error"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) >= 90  # one token takes 100 s at 0.01 a second
    # another address is still served, from its own bucket
    other = TestClient(client.app_, client=("10.0.0.2", 5000))
    assert other.post("/v1/reports/verify", content=b"not a report").status_code == 200
    # refused calls are not audited (a flood would fill the log); served ones are
    assert len(audited(client, "reports.verify")) == 4
    # the budget is only verify's: keyed endpoints are not limited by it
    assert (
        client.post("/v1/consents", json={"user_id": UID, "reference": "f"}, headers=client.recorder).status_code == 201
    )
    client.services.audit.close()


def test_buckets_refill_and_forget_old_clients():
    now = [0.0]
    buckets = ClientBuckets(per_second=2, burst=4, max_clients=100, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(4)] == [0, 0, 0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5  # one token back
    assert buckets.take("a") == 0 and buckets.take("a") > 0
    for i in range(1000):
        buckets.take(f"client-{i}")
    assert len(buckets) == 100  # memory stays bounded under many addresses
    now[0] += 2.0  # every bucket full again: nothing to remember
    buckets.take("b")
    assert len(buckets) == 1


def test_verification_runs_off_the_event_loop(svc, monkeypatch):
    grant(svc)
    document = issue(svc).content
    seen = {}
    real_verify, real_registered = issuing_module.verify_document, issuing_module.is_registered

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    def watched_verify(*args):
        seen["verify_on_loop"] = on_loop()
        return real_verify(*args)

    def watched_registered(*args):
        seen["lookup_on_loop"] = on_loop()
        return real_registered(*args)

    monkeypatch.setattr(issuing_module, "verify_document", watched_verify)
    monkeypatch.setattr(issuing_module, "is_registered", watched_registered)
    body = svc.post("/v1/reports/verify", content=document, headers={"Content-Type": "text/html"}).json()
    assert body["valid"] is True and body["registered"] is True
    assert seen == {"verify_on_loop": False, "lookup_on_loop": False}


# ---------------------------------------------------------------------------------------------- consent expiry


def test_a_consent_expires_after_90_days_by_default(svc, capsys):
    recorded = grant(svc)
    at = dt.datetime.fromisoformat(recorded["recorded_at"])
    assert dt.datetime.fromisoformat(recorded["expires_at"]) - at == dt.timedelta(days=90)
    assert main(["consent", "grant", OTHER, "--reference", "form-2"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert dt.datetime.fromisoformat(entry["expires_at"]) - dt.datetime.fromisoformat(
        entry["recorded_at"]
    ) == dt.timedelta(days=90)


def test_unlimited_or_too_long_consent_is_refused(svc, capsys, monkeypatch):
    register = svc.services.files.consents
    for days in ("0", "-1", "366"):
        assert main(["consent", "grant", UID, "--reference", "form-2", "--valid-days", days]) == 2, days
        err = capsys.readouterr().err
        assert "--valid-days" in err and ("unlimited" in err if days != "366" else "365" in err), err
    for days in (0, -5, None, 366):
        r = svc.post("/v1/consents", json={"user_id": UID, "reference": "f", "valid_days": days}, headers=svc.recorder)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", (days, r.text)
    assert not register.exists()  # nothing was recorded
    # the maximum is configurable, and the register enforces the one in force
    monkeypatch.setenv("SESAME_CONSENT_MAX_VALID_DAYS", "30")
    assert main(["consent", "grant", UID, "--reference", "form-2", "--valid-days", "31"]) == 2
    assert "at most 30 days" in capsys.readouterr().err
    assert main(["consent", "grant", UID, "--reference", "form-2"]) == 0  # the default, capped by the maximum
    entry = json.loads(capsys.readouterr().out)
    assert dt.datetime.fromisoformat(entry["expires_at"]) - dt.datetime.fromisoformat(
        entry["recorded_at"]
    ) == dt.timedelta(days=30)
    with pytest.raises(ValueError, match="unlimited"):
        ConsentRegister(register, svc.cfg.user_key_secret, max_valid_days=30).record(UID, True, "f", "t", 0)
    monkeypatch.setenv("SESAME_CONSENT_MAX_VALID_DAYS", "0")
    assert main(["consent", "grant", UID, "--reference", "form-2"]) == 2
    assert "never lasts forever" in capsys.readouterr().err


def test_a_grant_recorded_without_an_end_lasts_the_default(svc):
    """A grant from before consents expired (expires_at null) is not unlimited: it lasts 90 days from recording."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    path = svc.services.files.consents
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        for user_id, age in ((UID, 91), (OTHER, 10)):
            fh.write(
                json.dumps(
                    {
                        "consent_id": f"c_{user_id}",
                        "user_key": user_key(user_id, svc.cfg.user_key_secret),
                        "purpose": "credit_report",
                        "granted": True,
                        "recorded_by": "old",
                        "recorded_at": (now - dt.timedelta(days=age)).isoformat(),
                        "reference": "old",
                        "expires_at": None,
                    }
                )
                + "\n"
            )
    assert issue(svc, UID).json()["error"] == "consent_required"
    assert issue(svc, OTHER).status_code == 200


# ---------------------------------------------------------------------------------------------- consent mid-build


@pytest.mark.parametrize("lapse", ["withdrawn", "expired"])
def test_consent_that_lapses_during_the_build_gets_no_report(svc, monkeypatch, lapse):
    grant(svc, valid_days=1)
    real_build, signed = issuing_module.build_report, []

    def build_while_consent_lapses(*args, **kw):
        report = real_build(*args, **kw)
        if lapse == "withdrawn":  # by another process: the CLI's register, not the service's
            ConsentRegister(svc.services.files.consents, svc.cfg.user_key_secret).record(UID, False, "call-9", "cli:x")
        else:
            later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
            monkeypatch.setattr(consent_module, "_now", lambda: later.replace(microsecond=0))
        return report

    monkeypatch.setattr(issuing_module, "build_report", build_while_consent_lapses)
    monkeypatch.setattr(issuing_module, "sign_document", lambda *a: signed.append(a) or b"signed")
    r = issue(svc)
    assert r.status_code == 403 and r.json()["error"] == "consent_required"
    assert "while the report was being built" in r.json()["message"]
    assert signed == [] and not svc.services.files.issued.exists()  # nothing signed, nothing registered
    assert [e["outcome"] for e in audited(svc, "reports.issue")] == ["consent_lapsed"]


def test_the_cli_issue_also_checks_consent_again(svc, monkeypatch, tmp_path, capsys):
    assert main(["consent", "grant", UID, "--reference", "form-9"]) == 0
    real_build = issuing_module.build_report

    def build_while_withdrawn(*args, **kw):
        report = real_build(*args, **kw)
        ConsentRegister(svc.services.files.consents, svc.cfg.user_key_secret).record(UID, False, "call-9", "x")
        return report

    monkeypatch.setattr(issuing_module, "build_report", build_while_withdrawn)
    out = tmp_path / "report.pdf"
    assert main(["credit-report", "issue", UID, "--output", str(out)]) == 1
    assert "while the report was being built" in capsys.readouterr().err
    assert not out.exists() and not svc.services.files.issued.exists()
    assert [e["outcome"] for e in audited(svc, "reports.issue")] == ["consent_lapsed"]


# ---------------------------------------------------------------------------------------------- one key, one role


def test_a_key_may_not_both_record_consent_and_issue_reports(svc, capsys):
    keys_file = svc.services.files.api_keys
    before = keys_file.read_text()
    assert main(["keys", "create", "--name", "both", "--scopes", "consents:write,reports:issue"]) == 2
    err = capsys.readouterr().err
    assert "consents:write and reports:issue may not be held by one key" in err
    assert keys_file.read_text() == before
    with pytest.raises(ValueError, match="one key for each"):
        svc.services.keys.create("both", ["reports:issue", "scores:read", "consents:write"])


def test_a_stored_key_holding_both_is_refused_everywhere(svc, capsys):
    keys: KeyStore = svc.services.keys
    key, record = keys.create("legacy", ["reports:issue", "scores:read"])
    stored = json.loads(keys.path.read_text())
    for k in stored["keys"]:
        if k["key_id"] == record["key_id"]:
            k["scopes"].append("consents:write")  # a key file from before the rule
    keys.path.write_text(json.dumps(stored))
    keys._checked = 0
    with pytest.raises(AccessDenied) as denied:
        keys.authenticate(key)
    assert (denied.value.status, denied.value.code) == (403, "conflicting_scopes")
    headers = {"X-API-Key": key}
    for r in (
        svc.get(f"/v1/scores/{UID}", headers=headers),
        svc.post("/v1/consents", json={"user_id": UID, "reference": "f"}, headers=headers),
        svc.post("/v1/reports", json={"user_id": UID}, headers=headers),
    ):
        assert r.status_code == 403 and r.json()["error"] == "conflicting_scopes", r.text
        assert record["key_id"] in r.json()["message"]
    assert not svc.services.files.consents.exists()
    assert main(["keys", "list"]) == 0
    assert "refused: holds consents:write with reports:issue" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- the register


def append_line(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def test_a_corrupt_register_line_fails_closed_naming_it(svc, capsys, tmp_path):
    grant(svc)
    assert issue(svc).status_code == 200
    path = svc.services.files.consents
    append_line(path, '{"user_key": "broken\n')  # line 2
    grant(svc, user_id=OTHER)  # a valid line after it does not help
    r = issue(svc)
    assert r.status_code == 503 and r.json()["error"] == "consent_register_unreadable"
    assert "consents.jsonl" in r.json()["message"] and "line 2" in r.json()["message"]
    assert str(svc.cfg.home) not in r.json()["message"]  # the caller is not told where it lives
    assert issue(svc, OTHER).status_code == 503  # nobody counts as consenting
    assert [e["outcome"] for e in audited(svc, "reports.issue")][-2:] == ["consent_register_unreadable"] * 2
    assert not any(e["outcome"] == "issued" for e in audited(svc, "reports.issue")[1:])
    # a withdrawal can still be recorded
    assert (
        svc.post(
            "/v1/consents", json={"user_id": UID, "granted": False, "reference": "call"}, headers=svc.recorder
        ).status_code
        == 201
    )
    # the CLI exits 2 naming the file and the line
    assert main(["consent", "show", UID]) == 2
    assert f"{path} is unreadable at line 2" in capsys.readouterr().err
    assert main(["credit-report", "issue", OTHER, "--output", str(tmp_path / "r.pdf")]) == 2
    assert "line 2" in capsys.readouterr().err and not (tmp_path / "r.pdf").exists()
    # repaired: served again, without a restart
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + lines[2:]))
    assert issue(svc, OTHER).status_code == 200
    assert issue(svc, UID).json()["error"] == "consent_required"  # its withdrawal was kept


@pytest.mark.parametrize(
    "line, problem",
    [
        ("not json\n", "not a JSON line"),
        ('["a list"]\n', "not a JSON object"),
        (
            '{"user_key": "k", "purpose": "credit_report", "recorded_at": "2026-11-01T00:00:00+00:00"}\n',
            "missing granted",
        ),
        (
            '{"user_key": "k", "purpose": "credit_report", "granted": "yes", "recorded_at": "2026-11-01T00:00:00+00:00", '
            '"expires_at": null}\n',
            "granted is neither",
        ),
        (
            '{"user_key": "k", "purpose": "credit_report", "granted": true, "recorded_at": "2026-11-01T00:00:00+00:00", '
            '"expires_at": "soon"}\n',
            "expires_at 'soon' is not a timestamp",
        ),
        ("\n", "not a JSON line"),
        ('{"user_key": "k", "purpose"', "the line is cut short"),
    ],
)
def test_every_kind_of_corrupt_line_is_named(tmp_path, line, problem):
    path = tmp_path / "consents.jsonl"
    register = ConsentRegister(path, "secret")
    register.record(UID, True, "f", "t")
    assert register.active(UID) is not None  # indexed before the bad line arrives: found on the next check
    append_line(path, line)
    for _ in range(2):  # and on every check after it
        with pytest.raises(ConsentRegisterError, match=f"line 2: {problem}"):
            register.active(UID)
    with pytest.raises(ConsentRegisterError):
        ConsentRegister(path, "secret").latest(OTHER)


def test_the_index_reads_only_what_was_appended_and_sees_other_processes(svc, monkeypatch):
    path = svc.services.files.consents
    register = svc.services.consents
    for i in range(1, 31):
        register.record(f"U{i:08d}", True, "f", "t")
    parsed = []
    real_parse = consent_module.parse_entry
    monkeypatch.setattr(consent_module, "parse_entry", lambda raw: parsed.append(raw) or real_parse(raw))
    assert issue(svc, OTHER).status_code == 200
    assert len(parsed) == 30
    for _ in range(5):
        assert register.active(UID) is not None
    assert len(parsed) == 30  # unchanged file: no scan per check

    # another process withdraws: a line appended to the file, not through this register
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    append_line(
        path,
        json.dumps(
            {
                "consent_id": "c_outside",
                "user_key": user_key(OTHER, svc.cfg.user_key_secret),
                "purpose": "credit_report",
                "granted": False,
                "recorded_at": now,
                "recorded_by": "cli:other",
                "reference": "call",
                "expires_at": None,
            }
        )
        + "\n",
    )
    assert issue(svc, OTHER).json()["error"] == "consent_required"
    assert len(parsed) == 31  # just the new line

    # the file replaced (a repair, a restore): read again whole
    kept = path.read_text().splitlines(keepends=True)[:5]
    tmp = path.with_name("consents.new")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)
    assert register.active("U00000003") is not None and register.active(UID) is None
    assert len(parsed) == 31 + 5
