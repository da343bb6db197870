"""One whole night through Airflow on tiny simulated data with the default dirt: train a champion with
sesame_train, then let Airflow's own scheduler run sesame_nightly for the last day: it waits for the payments the
upstream has not finished delivering, sees them land and publishes. The marts and the published snapshots are then
checked the way downstream users read them. The next night's bills were cut short in transit: its backfill fails
closed and leaves NIGHT alone.

Each night through Airflow costs minutes here, so the module runs one night that publishes (the scheduler's) and one
that fails (a delivery the ingestion job rejects). The other rules (a renamed column, a quarantine over its share, a
delivery that never came) have tests at the level of their stage (tests/test_ingest.py, tests/test_quality.py,
tests/test_scheduled_night.py), and late or held days at the level of the lake (tests/test_late_deliveries.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sesame import FACTORS, snapshots
from sesame.cli import main as sesame

pytestmark = pytest.mark.integration  # Airflow, Spark and dbt: left out of make test-fast

END = "2026-11-23"
DAY = lambda n: (dt.date.fromisoformat(END) + dt.timedelta(days=n)).isoformat()  # noqa: E731
# The good night END carries the default dirt; the night after it has an unusable delivery.
DIRT = f"default,truncated_file=bills@{DAY(1)}"
TIERS = [(550, "poor"), (600, "fair"), (650, "good"), (700, "very_good"), (951, "excellent")]
# A small platform, so that the whole night stays cheap: 2,000 users, the shortest performance window allowed
# (180 days), 30 days of history before the first of two weekly observation dates, then the night after END,
# with fewer payments, orders and contacts than the default (the credit history, which decides the outcomes, does not
# depend on them). So few users give about a dozen bads: bins of 4 bads, a segment scorecard of its own from 10, and
# the no-file segment's scorecard is developed on every judged user; its gates cannot all test, and an operator
# promotes the model after reading the card, as on a young platform. With 30 days of history the observation dates'
# 90-day windows are not full, so the nights drift from the development sample: the operator accepts the drift
# (drift has tests of its own).
PERFORMANCE_DAYS = 180
MATURITY_DAYS = 30
USERS = 2000
SMALL_PLATFORM = {
    "SESAME_PERFORMANCE_DAYS": str(PERFORMANCE_DAYS),
    "SESAME_MATURITY_DAYS": str(MATURITY_DAYS),
    "SESAME_MIN_SEGMENT_BADS": "10",
    "SESAME_SCORECARD_MIN_BIN_BADS": "4",
    "SESAME_ACCEPT_DRIFT": "1",
}
SIMULATED_DAYS = MATURITY_DAYS + PERFORMANCE_DAYS + 7 + 1 + 1


def scheduled_night(home, ds: str) -> dict:
    """The night of ds as Airflow's scheduler runs it, with ds's payments still in transit (their `_SUCCESS` marker,
    with the upstream's control totals, set aside): the run the scheduler creates once ds is over waits in
    check_deliveries, and an operator's `sesame night` meanwhile is refused; the marker lands while a night started
    by hand holds the home, so the sensor waits on; that one ends, and the run goes on to its end. Returns what was
    seen on the way."""
    from sesame import durable
    from sesame.deliveries import MARKER
    from tests.airflow_scheduler import dag_runs, running_scheduler, task_states, wait_for

    marker = home / "lake" / "raw" / "payments" / f"ds={ds}" / MARKER
    in_transit = marker.with_name("_SUCCESS.in-transit")
    marker.rename(in_transit)
    day = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc)
    env = {
        "SESAME_HOME": str(home),
        "SESAME_SCHEDULE_START": ds,
        "SESAME_SCHEDULE_END": ds,
        "SESAME_SCHEDULE_CATCHUP": "1",
        "SESAME_DELIVERY_DEADLINE_HOURS": "100000",
        "SESAME_DELIVERY_POKE_SECONDS": "10",
        "SESAME_RETRY_DELAY_SECONDS": "5",
    }

    def scheduled():
        return {r["logical_date"]: r for r in dag_runs(home, "sesame_nightly") if r["run_type"] == "scheduled"}

    seen = {}
    with running_scheduler(home, env=env):
        run = wait_for(lambda: scheduled().get(day), 120, f"the scheduler to create the night of {ds}")
        seen["created"] = run
        wait_for(
            lambda: task_states(home, "sesame_nightly", run["run_id"]).get("check_deliveries") == "up_for_reschedule",
            120,
            "check_deliveries to wait for the payments",
        )
        seen["waiting"] = task_states(home, "sesame_nightly", run["run_id"])
        seen["published_while_waiting"] = (home / "published" / "NIGHT").exists()
        # an operator starts the same night by hand meanwhile: refused, naming the scheduler's run
        refused = io.StringIO()
        with contextlib.redirect_stderr(refused):
            seen["by_hand_exit"] = sesame(["night", "--ds", ds])
        seen["by_hand_message"] = refused.getvalue()
        # a night started by hand that holds the home: the delivery lands, and the sensor waits for the home
        with durable.exclusive(home, f"sesame night --ds {ds} (by hand)"):
            in_transit.rename(marker)  # the delivery lands
            sensor_logs = home / "airflow" / "logs" / "dag_id=sesame_nightly" / f"run_id={run['run_id']}"
            wait_for(
                lambda: any(
                    "(by hand)" in log.read_text(errors="replace")
                    for log in sensor_logs.glob("task_id=check_deliveries/*.log")
                ),
                120,
                "the sensor to wait for the night started by hand",
            )
            seen["while_held"] = task_states(home, "sesame_nightly", run["run_id"])
        wait_for(lambda: scheduled()[day]["state"] in ("success", "failed"), 900, f"the night of {ds} to end")
        seen["runs"] = [str(logical_date.date()) for logical_date in scheduled()]
        seen["state"] = scheduled()[day]["state"]
        seen["ended"] = task_states(home, "sesame_nightly", run["run_id"])
    return seen


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e") / "home"
    old = os.environ.get("SESAME_HOME")
    os.environ["SESAME_HOME"] = str(home)
    os.environ["SESAME_SPARK_SHUFFLE_PARTITIONS"] = "4"
    os.environ["SESAME_SPARK_DRIVER_MEMORY"] = "2g"
    # Spark's code generation back on, as in production: on this lake (2,000 users, 219 days) it pays for itself
    # (the history's ingestion 102 s -> 91 s, a night's features 78 s -> 66 s)
    spark_conf = os.environ.get("SESAME_SPARK_CONF")
    os.environ["SESAME_SPARK_CONF"] = ""
    os.environ.update(SMALL_PLATFORM)
    try:
        assert (
            sesame(
                [
                    "simulate",
                    "--users",
                    str(USERS),
                    "--days",
                    str(SIMULATED_DAYS),
                    "--end-ds",
                    DAY(1),
                    "--seed",
                    "11",
                    "--activity",
                    "0.25",
                    "--contacts",
                    "0.5",
                    "--dirty",
                    DIRT,
                ]
            )
            == 0
        )
        assert sesame(["train", "--ds", END]) == 0
        from sesame.registry import Registry

        trained = Registry(home / "models").list()[-1]["version"]
        assert sesame(["models", "promote", trained]) == 0
        scheduled = scheduled_night(home, END)
        assert scheduled["state"] == "success", scheduled["ended"]
        (home / "scheduled.json").write_text(json.dumps(scheduled, default=str))
        yield home
    finally:
        for name in SMALL_PLATFORM:
            os.environ.pop(name, None)
        if spark_conf is not None:
            os.environ["SESAME_SPARK_CONF"] = spark_conf
        if old is None:
            os.environ.pop("SESAME_HOME", None)
        else:
            os.environ["SESAME_HOME"] = old


def test_the_scheduler_runs_the_night_of_the_day_that_is_over_once_its_delivery_lands(night):
    """The run the scheduler created when END was over has END as its logical date and ds; it waited in
    check_deliveries (rescheduled, not holding a slot) with nothing ingested or published, then ran every stage."""
    seen = json.loads((night / "scheduled.json").read_text())
    created = seen["created"]
    assert created["logical_date"].startswith(END) and created["run_type"] == "scheduled"
    assert created["data_interval_start"].startswith(END) and created["data_interval_end"].startswith(DAY(1))
    assert seen["runs"] == [END]  # only the night of the day that is over
    assert seen["waiting"]["check_deliveries"] == "up_for_reschedule" and seen["waiting"].get("ingest") is None
    assert not seen["published_while_waiting"]
    assert (
        seen["by_hand_exit"] == 2
        and f"sesame_nightly run {created['run_id']} (running since" in seen["by_hand_message"]
    )
    assert seen["while_held"]["check_deliveries"] == "up_for_reschedule" and seen["while_held"].get("ingest") is None
    assert set(seen["ended"].values()) == {"success"}, seen["ended"]
    pointer = json.loads((night / "published" / "NIGHT").read_text())
    assert pointer["ds"] == END and set(pointer["nights"]) == {END}
    run_logs = list((night / "runs" / END).glob("*.json"))
    assert len(run_logs) == 1 and json.loads(run_logs[0].read_text())["ds"] == END


def _con(home):
    return duckdb.connect(str(home / "warehouse" / "sesame.duckdb"), read_only=True)


def test_marts_hold_the_night(night):
    con = _con(night)
    rows = con.execute("select * from marts.sesame_scores where ds = ?", [END]).df()
    assert len(rows) > 1000
    assert rows["score"].between(350, 950).all()
    assert rows["score"].nunique() >= 50
    expected_tier = rows["score"].map(lambda s: next(t for bound, t in TIERS if s < bound))
    assert (rows["tier"] == expected_tier).all()
    for f in FACTORS:
        assert rows[f"{f}_score"].between(0, 100).all()
    assert rows["reason_codes"].map(len).max() <= 4
    codes = {r[0] for r in con.execute("select reason_code from marts.reason_code_dictionary").fetchall()}
    assert {c for rc in rows["reason_codes"] for c in rc} <= codes
    assert not rows["user_key"].str.startswith("U").any()  # pseudonymous, never the upstream id
    for table in ("score_exclusions", "visa_eligibility", "visa_eligibility_changes", "reason_code_dictionary"):
        assert (
            con.execute(
                f"select count(*) from information_schema.tables where table_schema='marts' and table_name='{table}'"
            ).fetchone()[0]
            == 1
        )
    lu = con.execute(
        "select min(score), count(*) from marts.visa_eligibility where ds=? and destination='LU'", [END]
    ).fetchone()
    sg = con.execute(
        "select min(score), count(*) from marts.visa_eligibility where ds=? and destination='SG'", [END]
    ).fetchone()
    assert lu[1] > 0 and lu[0] >= 750 and sg[1] >= lu[1] and sg[0] >= 700


PUBLISHED = (
    "sesame_scores",
    "visa_eligibility",
    "visa_eligibility_changes",
    "score_exclusions",
    "reason_code_dictionary",
    "visa_rules",
    "visa_rule_checks",
    "identities",
)


def test_published_snapshot_matches_its_manifest(night):
    for dataset in PUBLISHED:
        folder = night / "published" / dataset
        latest = json.loads((folder / "LATEST").read_text())
        assert latest["snapshot"].startswith(f"ds={END}/run=")
        snap = folder / latest["snapshot"]
        manifest = json.loads((snap / "_manifest.json").read_text())
        for key in ("dataset", "ds", "run_id", "created_at", "row_count", "schema", "model_version", "checks", "files"):
            assert key in manifest
        assert manifest["checks"] and all(c["passed"] for c in manifest["checks"])
        total = 0
        for f in manifest["files"]:
            data = (snap / f["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            assert pq.ParquetFile(snap / f["path"]).metadata.num_rows == f["rows"]
            total += f["rows"]
        assert total == manifest["row_count"]
        assert manifest["schema_version"] == "1.0" and manifest["contract"] == f"contracts/{dataset}/v1.json"
        assert manifest["row_count"] > 0, dataset  # a first night: everyone eligible was added, some excluded
    scored = _con(night).execute("select count(*) from marts.sesame_scores where ds=?", [END]).fetchone()[0]
    scores_manifest = json.loads(
        (
            night
            / "published"
            / "sesame_scores"
            / json.loads((night / "published" / "sesame_scores" / "LATEST").read_text())["snapshot"]
            / "_manifest.json"
        ).read_text()
    )
    assert scores_manifest["row_count"] == scored


def test_each_manifest_says_what_the_night_was_built_from(night):
    """Provenance: every delivery the night's ingestion took, each file with the sha256 of the file that was
    delivered, the code, the model and the dbt invocation of the warehouse build; the same for every dataset."""
    from sesame.registry import Registry

    manifests = [
        json.loads(
            (
                night
                / "published"
                / d
                / json.loads((night / "published" / d / "LATEST").read_text())["snapshot"]
                / "_manifest.json"
            ).read_text()
        )
        for d in PUBLISHED
    ]
    origin = manifests[0]["provenance"]
    assert all(m["provenance"] == origin for m in manifests)
    sources = {d["source"] for d in origin["deliveries"] if d["ds"] == END}
    assert sources == {"users", "orders", "payments", "bills", "social_edges", "blacklist"}
    for delivery in origin["deliveries"]:
        delivered = night / "lake" / delivery["file"]
        assert hashlib.sha256(delivered.read_bytes()).hexdigest() == delivery["sha256"], delivery
    assert (
        origin["model_version"]
        == manifests[0]["model_version"]
        in {m["version"] for m in Registry(night / "models").list()}
    )
    assert origin["code_version"]["sesame"] and origin["dbt"]["invocation_id"] and origin["dbt"]["command"] == "build"
    assert origin["dbt"]["results"].get("pass", 0) + origin["dbt"]["results"].get("success", 0) > 50


def test_published_rule_checks_explain_every_list(night):
    """visa_rule_checks: one row per scored user and rule in force; its eligible rows are the lists exactly, and
    each failed condition is what the published rule and the user's values say."""
    from sesame.snapshots import open_latest

    def read(dataset):
        return open_latest(dataset, root=night / "published", major=1).to_table().to_pandas()

    checks, rules, lists, scores = (
        read("visa_rule_checks"),
        read("visa_rules"),
        read("visa_eligibility"),
        read("sesame_scores"),
    )
    in_force = (
        _con(night)
        .execute(
            "select destination, rule_version from marts.visa_rule_versions where valid_from <= ? "
            "and (valid_to is null or ? < valid_to)",
            [END, END],
        )
        .fetchall()
    )
    assert sorted(zip(rules["destination"], rules["rule_version"])) == sorted(in_force)
    assert len(checks) == len(scores) * len(rules)
    assert set(checks["user_id"]) == set(scores["user_id"])
    listed = checks[checks["eligible"]]
    assert set(zip(listed["destination"], listed["user_id"])) == set(zip(lists["destination"], lists["user_id"]))
    assert len(listed) > 0 and (~checks["eligible"]).sum() > 0
    both = checks.merge(rules, on=["destination", "rule_version"], suffixes=("", "_rule"))
    assert len(both) == len(checks)
    failed = both["failed_conditions"].map(set)
    assert ((both["score"] < both["min_score"]) == failed.map(lambda f: "min_score" in f)).all()
    too_short = both["history_days"].isna() | (both["history_days"] < both["min_history_days"])
    assert (too_short == failed.map(lambda f: "min_history_days" in f)).all()
    assert (both["eligible"] == failed.map(len).eq(0)).all()
    assert failed.map(
        lambda f: (
            f <= {"min_score", "identity_verified", "not_court_listed", "min_history_days", "min_qualifying_nights"}
        )
    ).all()


def test_services_read_upstream_ids_through_the_reader(night, monkeypatch):
    from sesame.snapshots import open_latest

    table = open_latest("sesame_scores", root=night / "published").to_table()
    assert table.num_rows > 0
    assert all(u.startswith("U") for u in table.column("user_id").to_pylist()[:50])


def test_dirty_night_accounting_balances_to_the_record(night):
    con = _con(night)
    rows = con.execute(
        "select source, delivered, accepted, quarantined, duplicates from marts.row_accounting where ds = ?", [END]
    ).fetchall()
    assert {r[0] for r in rows} == {"users", "orders", "payments", "bills", "social_edges", "blacklist"}
    dirtied = 0
    for source, delivered, accepted, quarantined, duplicates in rows:
        expected = json.loads((night / "lake" / "raw" / source / f"ds={END}" / "_dirt.json").read_text())["expected"]
        assert (delivered, accepted, quarantined, duplicates) == (
            expected["delivered"],
            expected["accepted"],
            expected["quarantined"],
            expected["duplicates"],
        ), source
        assert delivered == accepted + quarantined + duplicates
        dirtied += quarantined + duplicates
        if expected["quarantined"]:
            q = pq.read_table(night / "lake" / "quarantine" / source / f"ds={END}").to_pandas()
            assert q["reject_reason"].value_counts().to_dict() == expected["quarantine_reasons"], source
    assert dirtied > 0  # the night really was dirty


def test_republishing_gives_identical_content_and_readers_are_never_blocked(night):
    """Publishing the night again (the warehouse, audit and publish stages of a re-run, under a new run id; a whole
    re-run through Airflow costs minutes more) while an analyst holds the warehouse open: the reader keeps a
    consistent old state and is not blocked; the new snapshot is a new immutable folder with the same rows and the
    same checksums."""
    from sesame import night as stages
    from sesame.config import Settings

    cfg = Settings()
    scores = night / "published" / "sesame_scores"
    first = json.loads((scores / "LATEST").read_text())["snapshot"]
    reader = _con(night)
    before = reader.execute("select count(*), sum(score) from marts.sesame_scores where ds = ?", [END]).fetchone()
    run_id = "republish"
    stages.warehouse(cfg, END, run_id)
    stages.audit(cfg, END, run_id)
    stages.publish(cfg, END, run_id)
    # the open connection still answers, with the state it had
    assert (
        reader.execute("select count(*), sum(score) from marts.sesame_scores where ds = ?", [END]).fetchone() == before
    )
    reader.close()
    second = json.loads((scores / "LATEST").read_text())["snapshot"]
    assert second == f"ds={END}/run={run_id}" and second != first and (scores / first).exists()
    for dataset in ("sesame_scores", "visa_eligibility"):
        folder = night / "published" / dataset
        manifests = [json.loads((folder / snap / "_manifest.json").read_text()) for snap in (first, second)]
        assert [(f["rows"], f["sha256"]) for f in manifests[0]["files"]] == [
            (f["rows"], f["sha256"]) for f in manifests[1]["files"]
        ], dataset
    assert (
        _con(night).execute("select count(*), sum(score) from marts.sesame_scores where ds = ?", [END]).fetchone()
        == before
    )


def _fails_closed(home, ds, *rules, command=None):
    """Run the night of ds (or `command`, which runs it), which must fail closed naming `rules` and leave what
    readers see as it was; returns (stdout, stderr)."""
    latest_before = {d: (home / "published" / d / "LATEST").read_text() for d in ("sesame_scores", "visa_eligibility")}
    night_before = (home / "published" / "NIGHT").read_text()
    warehouse_before = (home / "warehouse" / "sesame.duckdb").stat().st_mtime_ns
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = sesame(command or ["night", "--ds", ds])
    assert code == 1
    message = err.getvalue()
    for rule in rules:
        assert rule in message, message
    assert (home / "published" / "NIGHT").read_text() == night_before
    for d, text in latest_before.items():
        assert (home / "published" / d / "LATEST").read_text() == text
        assert not (home / "published" / d / f"ds={ds}").exists()
    assert (home / "warehouse" / "sesame.duckdb").stat().st_mtime_ns == warehouse_before
    return out.getvalue(), message


def test_backfill_skips_the_published_night_and_a_delivery_cut_in_transit_fails_closed(night):
    """DAY(1)'s bills were cut short in transit: its night fails at ingestion, naming the source, the file and the
    rule, before anything is staged; readers keep END."""
    out, err = _fails_closed(
        night,
        DAY(1),
        "source bills",
        "bills.parquet",
        "control.bytes",
        command=["backfill", "--start", END, "--end", DAY(1)],
    )
    assert f"{END} already published; skipping" in out  # by the scheduler
    assert f"backfill stopped at {DAY(1)}" in err and "re-run the same command to resume" in err
    alerts = [json.loads(line) for line in (night / "alerts" / "alerts.jsonl").read_text().splitlines()]
    cut = [a for a in alerts if a["ds"] == DAY(1)]
    assert len(cut) == 1 and all(
        text in json.dumps(cut[0]) for text in ("source bills", "bills.parquet", "control.bytes")
    )
    run_log = json.loads(next((night / "runs" / DAY(1)).glob("*.json")).read_text())
    assert [(s["stage"], s["status"]) for s in run_log["stages"]][-1] == ("ingest", "failed")


def test_model_card_has_the_performance_definition_segments_and_calibration(night):
    from sesame.registry import Registry

    card = Registry(night / "models").champion().card
    assert card["label"]["bad_dpd"] == 90 and card["label"]["performance_days"] == PERFORMANCE_DAYS
    assert "newly" in card["label"]["definition"]
    assert card["segments"] == ["credit_file", "no_credit_file"]
    assert 0.55 < card["out_of_time"]["credit_file"]["auc"] <= 1.0 and card["out_of_time"]["credit_file"]["ks"] > 0
    for seg in card["segments"]:
        oot = card["out_of_time"][seg]
        assert oot["rows"] > 0 and {"rows", "bads", "auc", "ks", "gini"} <= set(oot)
        bands = [b for b in card["calibration"] if b["segment"] == seg]
        assert sum(b["rows"] for b in bands) == oot["rows"] and sum(b["bads"] for b in bands) == oot["bads"]
        for b in bands:
            assert b["observed_low"] <= b["observed_bad_rate"] <= b["observed_high"]
            assert 0 < b["claimed_bad_rate"] < 1
        assert set(card["calibration_summary"][seg]) >= {"in_the_large", "slope"}
    assert card["population"]["current_default"] > 0  # the sample left out users already in default
    assert set(card["developed_on"]) == {"credit_file", "no_credit_file"}
    assert "every judged user" in card["developed_on"]["no_credit_file"]  # a handful of no-file bads of its own
    assert {"gender", "age_band"} <= set(card["fairness"])
    assert all(g["verdict"] in ("passed", "failed", "not_tested", "accepted") for g in card["gates"].values())
    assert card["gates"]["points_monotone:credit_file"]["verdict"] == "passed"


def test_champion_points_are_monotone_in_the_registry_direction(night):
    from sesame.features import DIRECTION_OF
    from sesame.registry import Registry
    from sesame.scorecard import monotone_violations

    model = Registry(night / "models").champion().load()
    for seg, sc in model.models.items():
        used = [c["name"] for c in sc.characteristics_]
        assert used, seg
        assert monotone_violations(sc, {c: DIRECTION_OF[c] for c in used}) == [], seg


def test_current_defaults_are_excluded_and_never_eligible(night):
    con = _con(night)
    defaults = con.execute(
        "select count(*) from marts.score_exclusions where ds = ? and exclusion_code = 'CURRENT_DEFAULT'", [END]
    ).fetchone()[0]
    assert defaults > 0
    assert (
        con.execute(
            "select count(*) from marts.exclusion_code_dictionary where exclusion_code = 'CURRENT_DEFAULT'"
        ).fetchone()[0]
        == 1
    )
    overlap = con.execute(
        """select count(*) from marts.visa_eligibility v join marts.score_exclusions e
        on v.ds = e.ds and v.user_key = e.user_key where v.ds = ?""",
        [END],
    ).fetchone()[0]
    assert overlap == 0
    segments = dict(
        con.execute("select segment, count(*) from marts.sesame_scores where ds = ? group by 1", [END]).fetchall()
    )
    assert set(segments) == {"credit_file", "no_credit_file"}


def test_no_file_the_night_wrote_holds_the_user_key_secret(night):
    """Every file under SESAME_HOME after training and the scheduled night (lake, warehouse, published snapshots,
    Airflow's database and task logs, dbt's leftovers, the service's files): none holds the secret."""
    from sesame.config import Settings

    secret = Settings().user_key_secret.encode()
    files = [p for p in night.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(files) > 1000 and any(p.suffix == ".log" for p in files)  # the night's files, logs among them
    assert [str(p.relative_to(night)) for p in files if secret in p.read_bytes()] == []
    assert [p.name for p in (night / "tmp" / "dbt").glob("work-*")] == []  # dbt's private folders went


def test_identity_documents_are_whole_only_in_the_raw_zone_and_reports_can_name_every_scored_user(night):
    """The KYC snapshot delivers whole resident identity numbers; past the raw zone (and the quarantine, which keeps
    rejected records as delivered) no file holds one: the validated zone keeps them masked, and the published
    identities name every scored user with the registered name and the masked number of that very user."""
    import re

    from sesame.identity import is_valid, mask

    raw = pd.read_csv(night / "lake" / "raw" / "users" / f"ds={END}" / "users.csv", dtype=str, on_bad_lines="skip")
    raw = raw[raw["id_document_number"].fillna("").map(is_valid)].drop_duplicates("user_id")
    whole = set(raw["id_document_number"])
    assert len(whole) == len(raw) > 1000
    restricted = (night / "lake" / "raw", night / "lake" / "quarantine")
    leaked = [
        str(p.relative_to(night))
        for p in night.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and not any(p.is_relative_to(r) for r in restricted)
        and {m.decode() for m in re.findall(rb"(?<![0-9])[0-9]{17}[0-9X](?![0-9])", p.read_bytes())} & whole
    ]
    assert leaked == []
    validated = pq.read_table(night / "lake" / "validated" / "users" / f"ds={END}").to_pandas()
    assert validated["id_document_number"].str.fullmatch(r"\*{14}[0-9]{3}[0-9X]").all()
    identities = snapshots.open_latest("identities", night / "published").to_table().to_pandas().set_index("user_id")
    scored = snapshots.open_latest("sesame_scores", night / "published").to_table(columns=["user_id"]).column(0)
    assert sorted(identities.index) == sorted(scored.to_pylist())
    expected = raw.set_index("user_id").loc[identities.index]
    assert (identities["id_document_masked"] == expected["id_document_number"].map(mask)).all()
    assert (identities["registered_name"] == expected["full_name"]).all()
    assert (identities["identity_verified"] == (expected["identity_verified"] == "1")).all()


def test_dbt_docs_for_analysts_carry_no_secret(night):
    from sesame.config import Settings

    assert sesame(["docs"]) == 0
    site = night / "docs" / "dbt"
    assert (site / "index.html").exists() and (site / "manifest.json").exists() and (site / "catalog.json").exists()
    secret = Settings().user_key_secret
    for path in site.iterdir():
        assert secret not in path.read_text(errors="replace"), path.name
    catalog = json.loads((site / "catalog.json").read_text())
    assert "model.sesame.sesame_scores" in catalog["nodes"]


# ------------------------------------------------------------------ the night's HTML report


def _report_runs(home, ds):
    return sorted(p for p in (home / "reports" / ds).glob("*.html") if p.name != "index.html")


def test_published_night_has_a_report_per_run(night):
    import re

    runs = _report_runs(night, END)
    assert len(runs) == 1  # the night's run through Airflow (the re-publication above ran its stages by hand)
    page = (night / "reports" / END / "index.html").read_text()
    assert page == runs[0].read_text()
    assert f"Sesame night {END}: published" in page and "Why the night failed" not in page
    assert "Sections not available" not in page  # every section found its data
    assert page.count('<svg class="chart"') == 8  # six of the night, the calibration chart of each segment
    assert "LU" in page and "SG" in page and "orders.jsonl" in page and "delivery.complete" not in page
    for link in re.findall(r'href="(\.\./[^"#]+)"', page):
        assert (night / "reports" / END / link).resolve().exists(), link


def test_failed_nights_reports_say_why(night):
    ds, rule, failed_stage, source = DAY(1), "control.bytes", "ingest", "source bills"
    page = _report_runs(night, ds)[0].read_text()
    assert f"Sesame night {ds}: failed" in page and "Why the night failed" in page
    assert f'<code class="rule">{rule}</code>' in page and source in page and "bills.parquet" in page
    assert f'<td>{failed_stage}</td><td class="failed">failed</td>' in page
    assert f"sesame night --ds {ds}" in page  # the next step
    alerts = [json.loads(line) for line in (night / "alerts" / "alerts.jsonl").read_text().splitlines()]
    assert any(a["ds"] == ds and a["details"]["report"].endswith(".html") for a in alerts)
    listing = (night / "reports" / "index.html").read_text()
    assert all(f'href="{d}/index.html"' in listing for d in (END, DAY(1)))


def test_report_of_the_real_night_draws_in_chromium(night, tmp_path):
    from tests.chromium import Browser, ensure_chromium

    binary, why = ensure_chromium()
    if binary is None:
        pytest.skip(f"headless Chromium not available: {why}")
    assert sesame(["report", "--ds", END]) == 0
    with Browser(binary) as browser:
        seen = browser.open(night / "reports" / END / "index.html", screenshot=tmp_path / "night.png")
    assert seen["errors"] == [] and all(u.startswith("file://") for u in seen["requests"])
    assert len(seen["charts"]) == 8
    for chart in seen["charts"]:
        assert chart["width"] > 200 and chart["height"] > 50 and chart["drawn"] >= 5, chart


def test_every_sql_example_in_the_readme_returns_rows(night):
    """The README's SQL on the warehouse of a simulated night (tests/test_dbt_marts.py runs them on three nights;
    the example for the Spark endpoint is plain SQL that DuckDB runs too)."""
    from tests.readme import examples_without_rows, sql_examples

    assert len(sql_examples()) >= 8
    with _con(night) as con:
        assert examples_without_rows(con) == []
