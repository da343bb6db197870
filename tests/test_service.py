"""The score service over published snapshots: lookups, paging, hot reload (and never a half-loaded or
unverifiable snapshot), API keys and scopes, the audit log, and clear 4xx errors. Synthetic snapshots, no Spark."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient

from sesame.config import Settings
from sesame.privacy import user_key
from sesame.service.app import create_app
from sesame.service.audit import read_entries
from sesame.service.store import ScoresIndex
from tests.service_snapshots import MIN_SCORE, eligible, history_days, point_night, publish_night, score_of, user_ids

DS1, DS2 = "2026-11-22", "2026-11-23"
N = 200
# every scope one key may hold: consents:write never goes with reports:issue
ALL = ["scores:read", "visa:read", "reports:issue"]


@pytest.fixture
def svc(home):
    cfg = Settings()
    publish_night(cfg.published, DS1, n=N)
    app = create_app(cfg, reload_seconds=0)
    keys = app.state.services.keys
    made = {
        name: keys.create(name, scopes)[0]
        for name, scopes in {
            "all": ALL,
            "scores": ["scores:read"],
            "lu": ["visa:read:LU"],
            "none_useful": ["consents:write"],
        }.items()
    }
    client = TestClient(app)
    client.keys = made
    client.cfg = cfg
    client.app_ = app
    yield client
    app.state.services.audit.close()


def get(client, path, key="all", **kw):
    headers = {"X-API-Key": client.keys[key]} if key else {}
    return client.get(path, headers=headers, **kw)


def test_score_lookup_returns_the_snapshot_row(svc):
    r = get(svc, "/v1/scores/U00000008")
    assert r.status_code == 200
    body = r.json()
    i = 7
    assert body["score"] == score_of(i) and body["ds"] == DS1 and body["snapshot"].startswith(f"ds={DS1}/run=")
    assert body["tier"] == ("excellent" if score_of(i) >= 700 else body["tier"])
    assert set(body["sub_scores"]) == {
        "credit_history",
        "behavior_preference",
        "fulfillment_capacity",
        "identity_traits",
        "social_connections",
    }
    assert body["sub_scores"]["credit_history"] == round((i * 3) % 10000 / 100, 2)
    assert [c["code"] for c in body["reason_codes"]] == ["BP03", "IT01", "SC02"]
    assert body["reason_codes"][0]["factor"] == "behavior_preference"
    assert body["reason_codes"][0]["description_en"] and body["reason_codes"][0]["description_zh"]
    assert body["model_version"] == "scorecard-test"


def test_unknown_and_malformed_ids_are_clear_4xx(svc):
    r = get(svc, "/v1/scores/U99999999")
    assert r.status_code == 404 and r.json()["error"] == "user_not_found"
    for bad in ["bad%20id", "x" * 65, "%E2%82%AC", "-leading-dash", "a%2Fb", "%00"]:
        r = get(svc, f"/v1/scores/{bad}")
        assert r.status_code in (404, 422), (bad, r.status_code)
        assert set(r.json()) >= {"error", "message"}


def test_a_user_the_night_excluded_is_answered_with_the_exclusion_code(svc):
    """Not scored is not unknown: the score and the eligibility lookups say why, from the night's score_exclusions."""
    from tests.service_snapshots import excluded_ids

    thin, defaulted = excluded_ids(N)
    for path in (f"/v1/scores/{thin}", f"/v1/visa/LU/users/{thin}"):
        r = get(svc, path)
        assert r.status_code == 404 and r.json()["error"] == "user_not_scored", path
        assert r.json()["details"] == [{"exclusion_code": "THIN_FILE", "description_en": "Too little history to score"}]
        assert "THIN_FILE" in r.json()["message"]
    assert get(svc, f"/v1/scores/{defaulted}").json()["details"][0]["exclusion_code"] == "CURRENT_DEFAULT"
    assert get(svc, f"/v1/scores/U{N + 50:08d}").json()["error"] == "user_not_found"


def test_eligibility_lookup(svc):
    on_list = next(i for i in range(N) if eligible(i, "LU"))
    not_eligible = next(i for i in range(N) if score_of(i) < MIN_SCORE["SG"] and i % 9 != 4)
    r = get(svc, f"/v1/visa/LU/users/{user_ids(N)[on_list]}")
    assert r.status_code == 200
    assert r.json() | {"snapshot": None} == {
        "user_id": user_ids(N)[on_list],
        "destination": "LU",
        "eligible": True,
        "score": score_of(on_list),
        "rule_version": "LU-2024.1",
        "min_score": 750,
        "failed_conditions": None,
        "ds": DS1,
        "snapshot": None,
    }
    r = get(svc, f"/v1/visa/sg/users/{user_ids(N)[not_eligible]}")  # destination codes in any case
    assert r.status_code == 200 and r.json()["eligible"] is False and r.json()["score"] is None
    assert r.json()["rule_version"] == "SG-2024.1"
    assert r.json()["failed_conditions"][0] == {
        "condition": "min_score",
        "required": 700,
        "actual": score_of(not_eligible),
        "description_en": f"score {score_of(not_eligible)} is below the minimum of 700",
    }
    # a destination with rules but nobody eligible tonight is known: not eligible, not an error
    r = get(svc, f"/v1/visa/CH/users/{user_ids(N)[on_list]}")
    assert r.status_code == 200 and r.json()["eligible"] is False
    assert [c["condition"] for c in r.json()["failed_conditions"]] == (
        ["min_score"] if score_of(on_list) < MIN_SCORE["CH"] else []
    ) + ["min_history_days"]
    assert get(svc, "/v1/visa/XX/users/U00000001").json()["error"] == "unknown_destination"
    assert get(svc, "/v1/visa/XX/users/U00000001").status_code == 404
    assert get(svc, "/v1/visa/LUX/users/U00000001").status_code == 422
    assert get(svc, "/v1/visa/LU/users/U99999999").status_code == 404


def test_not_eligible_names_every_failed_condition_from_the_published_night(svc):
    """The rule's parameters and each user's checks come from the night's visa_rules and visa_rule_checks, not
    from the repository: a user failing on identity alone, one failing on history, and one failing on all three."""
    identity_only = next(
        i
        for i in range(N)
        if i % 9 == 4 and eligible(i, "LU") is False and score_of(i) >= MIN_SCORE["LU"] and history_days(i) >= 180
    )
    history_only = next(i for i in range(N) if i % 9 != 4 and score_of(i) >= MIN_SCORE["LU"] and history_days(i) < 180)
    three = next(i for i in range(N) if i % 9 == 4 and score_of(i) < MIN_SCORE["LU"] and history_days(i) < 180)
    for i, expected in (
        (identity_only, ["identity_verified"]),
        (history_only, ["min_history_days"]),
        (three, ["min_score", "identity_verified", "min_history_days"]),
    ):
        body = get(svc, f"/v1/visa/LU/users/{user_ids(N)[i]}").json()
        assert body["eligible"] is False
        assert [c["condition"] for c in body["failed_conditions"]] == expected
    history = next(c for c in get(svc, f"/v1/visa/LU/users/{user_ids(N)[history_only]}").json()["failed_conditions"])
    assert (history["required"], history["actual"]) == (180, history_days(history_only))
    assert history["description_en"] == f"{history_days(history_only)} days of history; 180 required"
    # the destinations and their minimum scores are the published night's
    listed = {d["destination"]: d for d in get(svc, "/v1/visa/destinations").json()["destinations"]}
    assert {d: v["min_score"] for d, v in listed.items()} == MIN_SCORE
    assert listed["CH"]["eligible_users"] == 0


def test_paging_walks_the_whole_list_once(svc):
    expected = sorted(u for i, u in enumerate(user_ids(N)) if eligible(i, "SG"))
    seen, after, pages = [], None, 0
    while True:
        r = get(svc, "/v1/visa/SG/eligible", params={"page_size": 7, **({"after": after} if after else {})})
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == len(expected) and body["rule_version"] == "SG-2024.1"
        assert len(body["items"]) <= 7
        seen += [item["user_id"] for item in body["items"]]
        pages += 1
        after = body["next_after"]
        if after is None:
            break
    assert seen == expected and pages == -(-len(expected) // 7)
    for bad in (
        {"page_size": 0},
        {"page_size": 1001},
        {"page_size": 10**12},
        {"page_size": "many"},
        {"after": "not an id"},
    ):
        r = get(svc, "/v1/visa/SG/eligible", params=bad)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request", bad
    assert get(svc, "/v1/visa/ZZ/eligible").status_code == 404


def test_no_key_wrong_key_missing_scope_get_no_data(svc):
    uid = "U00000008"
    denied = [
        (get(svc, f"/v1/scores/{uid}", key=None), 401, "missing_api_key"),
        (svc.get(f"/v1/scores/{uid}", headers={"X-API-Key": "sk_000000000000_" + "A" * 43}), 401, "invalid_api_key"),
        (svc.get(f"/v1/scores/{uid}", headers={"X-API-Key": svc.keys["all"][:-1] + "x"}), 401, "invalid_api_key"),
        (get(svc, f"/v1/scores/{uid}", key="lu"), 403, "missing_scope"),
        (get(svc, "/v1/visa/SG/eligible", key="lu"), 403, "missing_scope"),
        (get(svc, f"/v1/visa/SG/users/{uid}", key="scores"), 403, "missing_scope"),
        (get(svc, "/v1/visa/destinations", key="scores"), 403, "missing_scope"),
        # auth is checked before the input: a bad request without a key says 401, not what is wrong with it
        (get(svc, "/v1/scores/bad%20id", key=None), 401, "missing_api_key"),
    ]
    for response, status, code in denied:
        assert response.status_code == status and response.json()["error"] == code, response.text
        assert str(score_of(7)) not in response.text and uid not in response.text
    assert denied[0][0].headers["WWW-Authenticate"] == "ApiKey"
    # a per-destination key reads its destination, and lists only it
    assert get(svc, "/v1/visa/LU/eligible", key="lu").status_code == 200
    listed = get(svc, "/v1/visa/destinations", key="lu").json()["destinations"]
    assert [d["destination"] for d in listed] == ["LU"]
    all_listed = {d["destination"]: d for d in get(svc, "/v1/visa/destinations").json()["destinations"]}
    assert set(all_listed) == set(MIN_SCORE) and all_listed["CH"]["eligible_users"] == 0


def test_revoked_key_is_refused_at_once(svc):
    keys = svc.app_.state.services.keys
    assert get(svc, "/v1/scores/U00000001", key="scores").status_code == 200
    key_id = svc.keys["scores"].split("_")[1]
    keys.revoke(key_id)
    svc.app_.state.services.keys._checked = 0  # the running service re-reads the key file within a second
    r = get(svc, "/v1/scores/U00000001", key="scores")
    assert r.status_code == 401 and r.json()["error"] == "revoked_api_key"


def test_keys_are_stored_hashed_and_private(svc):
    path = svc.app_.state.services.files.api_keys
    stored = path.read_text()
    for key in svc.keys.values():
        secret = key.split("_", 2)[2]
        assert secret not in stored and key.split("_")[1] in stored
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_audit_records_who_looked_up_whom_and_the_outcome(svc):
    audit_path = svc.app_.state.services.files.audit
    before = len(read_entries(audit_path))
    get(svc, "/v1/scores/U00000008")
    get(svc, "/v1/scores/U99999999")
    get(svc, "/v1/scores/U00000008", key="lu")
    get(svc, "/v1/scores/U00000008", key=None)
    get(svc, "/v1/visa/LU/eligible", key="lu")
    entries = read_entries(audit_path)[before:]
    secret = svc.cfg.user_key_secret
    all_id, lu_id = svc.keys["all"].split("_")[1], svc.keys["lu"].split("_")[1]
    assert [(e["key_id"], e["action"], e["user_key"], e["status"], e["outcome"]) for e in entries] == [
        (all_id, "scores.lookup", user_key("U00000008", secret), 200, "found"),
        (all_id, "scores.lookup", user_key("U99999999", secret), 404, "not_found"),
        (lu_id, "scores.lookup", user_key("U00000008", secret), 403, "missing_scope"),
        (None, "scores.lookup", user_key("U00000008", secret), 401, "missing_api_key"),
        (lu_id, "visa.eligible_list", None, 200, "listed"),
    ]
    assert entries[-1]["destination"] == "LU" and entries[-1]["returned"] > 0
    assert all(e["at"].endswith("Z") for e in entries)
    text = audit_path.read_text()
    assert "U00000008" not in text and not any(k.split("_", 2)[2] in text for k in svc.keys.values())
    assert oct(audit_path.stat().st_mode & 0o777) == "0o600"


def test_new_snapshot_is_picked_up_without_restart(svc):
    assert get(svc, "/v1/scores/U00000001").json()["ds"] == DS1
    publish_night(svc.cfg.published, DS2, n=N, shift=5)
    assert svc.app_.state.services.store.refresh() is True
    body = get(svc, "/v1/scores/U00000001").json()
    assert (body["ds"], body["score"]) == (DS2, score_of(0, 5))
    assert get(svc, "/v1/visa/LU/eligible").json()["ds"] == DS2
    assert svc.app_.state.services.store.refresh() is False  # nothing new: nothing reloaded


def test_watcher_thread_swaps_in_the_new_night(home):
    cfg = Settings()
    publish_night(cfg.published, DS1, n=50)
    app = create_app(cfg, reload_seconds=0.05)
    key, _ = app.state.services.keys.create("t", ["scores:read"])
    with TestClient(app) as client:  # the lifespan starts the watcher
        assert client.get("/v1/scores/U00000001", headers={"X-API-Key": key}).json()["ds"] == DS1
        publish_night(cfg.published, DS2, n=50, shift=5)
        deadline = time.monotonic() + 10
        while client.get("/v1/scores/U00000001", headers={"X-API-Key": key}).json()["ds"] != DS2:
            assert time.monotonic() < deadline, "the new snapshot was not picked up"
            time.sleep(0.05)
    app.state.services.audit.close()


def test_unverifiable_or_missing_snapshot_is_not_served(svc):
    store = svc.app_.state.services.store
    written = publish_night(svc.cfg.published, DS2, n=N, shift=5, flip=False)
    part = svc.cfg.published / "sesame_scores" / written["sesame_scores"] / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")  # altered after publishing
    point_night(svc.cfg.published, DS2, written)
    store.refresh()
    assert get(svc, "/v1/scores/U00000001").json()["ds"] == DS1
    health = svc.get("/v1/health").json()
    assert health["status"] == "degraded" and "sha256" in health["errors"]["sesame_scores"]["error"]
    # the night's visa list loaded fine, but is not served without the night's scores: the old night stays whole
    assert {s["ds"] for s in health["snapshots"].values()} == {DS1}

    # NIGHT naming a snapshot that is not (yet) there: still the old one
    point_night(svc.cfg.published, DS2, {**written, "sesame_scores": f"ds={DS2}/run=never-written"})
    store.refresh()
    assert get(svc, "/v1/scores/U00000001").json()["ds"] == DS1
    assert "no _manifest.json" in svc.get("/v1/health").json()["errors"]["sesame_scores"]["error"]

    # a night published under another major version of a contract: refused, not misread
    other = publish_night(svc.cfg.published, DS2, n=N, shift=6, run_id="v2", flip=False)
    manifest = svc.cfg.published / "sesame_scores" / other["sesame_scores"] / "_manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": "2.0"}))
    point_night(svc.cfg.published, DS2, other, run_id="v2")
    store.refresh()
    assert get(svc, "/v1/scores/U00000001").json()["ds"] == DS1
    assert "schema version 2.0" in svc.get("/v1/health").json()["errors"]["sesame_scores"]["error"]

    # a good night clears the error
    good = publish_night(svc.cfg.published, DS2, n=N, shift=7, run_id="r2")
    store.refresh()
    body = get(svc, "/v1/scores/U00000001").json()
    assert (body["ds"], body["score"], body["snapshot"]) == (DS2, score_of(0, 7), good["sesame_scores"])
    assert svc.get("/v1/health").json()["status"] == "ok"


def test_a_load_that_fails_half_way_leaves_the_old_snapshot(svc, monkeypatch):
    store = svc.app_.state.services.store
    publish_night(svc.cfg.published, DS2, n=N, shift=5)
    original = ScoresIndex.__init__

    def dies_half_way(self, table, info):
        original(self, table.slice(0, N // 2), info)  # half the index is built...
        raise MemoryError("killed while indexing")  # ...and then the load dies

    monkeypatch.setattr(ScoresIndex, "__init__", dies_half_way)
    store.refresh()
    body = get(svc, "/v1/scores/U00000001").json()
    assert body["ds"] == DS1 and get(svc, f"/v1/scores/{user_ids(N)[-1]}").status_code == 200
    monkeypatch.undo()
    store.retry_failed_seconds = 0  # LATEST is unchanged, so the failed load is retried
    store.refresh()
    assert get(svc, "/v1/scores/U00000001").json()["ds"] == DS2


def test_readers_during_swaps_see_one_whole_snapshot(svc):
    store = svc.app_.state.services.store
    nights = {DS1: 0, DS2: 5}
    publish_night(svc.cfg.published, DS2, n=N, shift=5, flip=False)
    mismatches, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            served = store.current  # what a request takes once
            row = served.scores.get("U00000001")
            if row["score"] != score_of(0, nights[served.scores.info.ds]):
                mismatches.append(served.scores.info.ds)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for k in range(6):
            ds = (DS1, DS2)[k % 2 == 0]
            target = next((svc.cfg.published / "sesame_scores" / f"ds={ds}").glob("run=*"))
            point_night(
                svc.cfg.published, ds, {d: f"ds={ds}/{target.name}" for d in ("sesame_scores", "visa_eligibility")}
            )
            store.refresh()
            assert store.current.scores.info.ds == ds == store.current.visa.info.ds
    finally:
        stop.set()
        reader.join()
    assert mismatches == []


def test_not_ready_until_something_is_published(home):
    cfg = Settings()
    app = create_app(cfg, reload_seconds=0)
    key, _ = app.state.services.keys.create("t", ALL)
    client = TestClient(app)
    assert client.get("/v1/health").status_code == 503
    for path in ("/v1/scores/U00000001", "/v1/visa/LU/eligible", "/v1/visa/LU/users/U00000001"):
        r = client.get(path, headers={"X-API-Key": key})
        assert r.status_code == 503 and r.json()["error"] == "not_ready"
    publish_night(cfg.published, DS1, n=20)
    app.state.services.store.refresh()
    assert client.get("/v1/scores/U00000001", headers={"X-API-Key": key}).status_code == 200
    app.state.services.audit.close()


def test_openapi_documents_models_errors_and_security(svc):
    spec = svc.get("/openapi.json").json()
    assert {
        "/v1/scores/{user_id}",
        "/v1/visa/{destination}/users/{user_id}",
        "/v1/visa/{destination}/eligible",
        "/v1/reports",
        "/v1/reports/verify",
        "/v1/reports/public-key",
        "/v1/consents",
    } <= set(spec["paths"])
    score = spec["paths"]["/v1/scores/{user_id}"]["get"]
    assert score["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScoreResponse")
    for status in ("401", "403", "404", "422"):
        assert score["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert score["security"] == [{"ApiKey": []}]
    assert spec["components"]["schemas"]["ScoreResponse"]["examples"]
    page_size = next(
        p for p in spec["paths"]["/v1/visa/{destination}/eligible"]["get"]["parameters"] if p["name"] == "page_size"
    )
    assert page_size["schema"]["maximum"] == 1000


def test_keys_cli_prints_the_key_once_and_revokes(home, capsys):
    from sesame.cli import main
    from sesame.service.access import KeyStore
    from sesame.service.layout import service_files

    assert main(["keys", "create", "--name", "visa-desk", "--scopes", "visa:read:LU,scores:read"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    store = KeyStore(service_files(Settings()).api_keys)
    principal = store.authenticate(key)
    assert principal.allows("visa:read:LU") and not principal.allows("visa:read:SG")
    assert main(["keys", "create", "--scopes", "visa:read:XX"]) == 2
    assert main(["keys", "create", "--scopes", "everything"]) == 2
    assert main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert principal.key_id in listed and key.split("_", 2)[2] not in listed
    assert main(["keys", "revoke", principal.key_id]) == 0
    store._checked = 0
    with pytest.raises(Exception, match="revoked"):
        store.authenticate(key)
    assert os.stat(service_files(Settings()).api_keys).st_mode & 0o077 == 0
