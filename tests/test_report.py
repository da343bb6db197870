"""The night's HTML report: the pure builders on small frames, the page collected from a small hand-made
SESAME_HOME (two published nights in a DuckDB warehouse, a registry, checks and accounting files), the failed
night's page written by the failure callback, `sesame report`, and the page as headless Chromium draws it."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from sesame import FACTORS, report
from sesame.cli import main as sesame
from sesame.config import Settings

DS, PREVIOUS_DS, RUN = "2026-11-23", "2026-11-22", "20261124T010203000000Z"


# ------------------------------------------------------------------ pure builders


def test_tier_rows_count_each_tier_tonight_and_the_night_before():
    # (the tiers' bands themselves: tests/test_scale.py)
    rows = report.tier_rows(pd.Series(["good", "good", "excellent", "poor"]), pd.Series(["good", "fair"]))
    assert [r["tier"] for r in rows] == ["poor", "fair", "good", "very_good", "excellent"]
    good = rows[2]
    assert (good["users"], good["share"], good["previous_users"], good["previous_share"]) == (2, 0.5, 1, 0.5)
    assert report.tier_rows(pd.Series(["fair"]), None)[1]["previous_share"] is None


def test_psi_against_the_previous_night():
    rng = np.random.default_rng(1)
    previous = pd.Series(rng.normal(640, 60, 5000).clip(350, 950).round())
    same = pd.Series(rng.normal(640, 60, 5000).clip(350, 950).round())
    shifted = pd.Series(rng.normal(700, 60, 5000).clip(350, 950).round())
    assert report.score_psi(same, previous) < 0.02
    assert report.score_psi(shifted, previous) > 0.25
    assert report.score_psi(same, pd.Series([], dtype=float)) is None


def test_visa_rows_count_additions_and_removals_per_destination():
    eligible = pd.DataFrame(
        {
            "destination": ["LU", "SG", "SG", "SG"],
            "user_key": ["a", "a", "b", "c"],
            "score": [760, 760, 710, 705],
            "rule_version": ["v1", "v1", "v1", "v1"],
        }
    )
    changes = pd.DataFrame(
        {
            "destination": ["SG", "SG", "LU", "LU"],
            "user_key": ["c", "z", "y", "x"],
            "change": ["added", "removed", "removed", "removed"],
        }
    )
    rows = {r["destination"]: r for r in report.visa_rows(eligible, changes, sample=1)}
    assert (rows["SG"]["eligible"], rows["SG"]["added"], rows["SG"]["removed"], rows["SG"]["previous_eligible"]) == (
        3,
        1,
        1,
        3,
    )
    assert (rows["LU"]["eligible"], rows["LU"]["removed"], rows["LU"]["previous_eligible"]) == (1, 2, 3)
    assert rows["LU"]["removed_sample"] == ["x"] and rows["SG"]["min_score"] == 705
    # a destination whose list emptied tonight still shows its removals
    rows = report.visa_rows(eligible[eligible["destination"] == "SG"], changes)
    assert [r["destination"] for r in rows] == ["LU", "SG"] and rows[0]["eligible"] == 0


def test_checks_are_grouped_per_source():
    checks = [
        {"name": "accounting.balance:orders", "rule": "accounting.balance", "passed": True, "detail": "ok"},
        {"name": "quarantine.share:orders", "rule": "quarantine.max_share", "passed": False, "detail": "2% > 1%"},
        {
            "name": "validated.orders:expect_x:amount",
            "suite": "validated.orders",
            "rule": "amount.positive",
            "passed": True,
            "detail": "",
        },
        {
            "name": "schema.additive_drift:users",
            "rule": "schema.additive_drift",
            "passed": True,
            "warning": True,
            "detail": "added columns x",
        },
        {"name": "output.sesame_scores:expect_y:score", "suite": "output.sesame_scores", "passed": True},
        {"name": "drift.psi:score", "rule": "drift.psi", "passed": True, "warning": False},
    ]
    groups = {g["source"]: g for g in report.checks_by_source(checks)}
    assert list(groups) == ["orders", "users", "output sesame_scores", "audit"]
    assert (groups["orders"]["passed"], groups["orders"]["failed"]) == (2, 1)
    assert groups["orders"]["failures"] == [{"rule": "quarantine.max_share", "detail": "2% > 1%"}]
    assert groups["users"]["warnings"] == 1


def test_stage_rows_show_what_ran_failed_and_never_ran():
    log = {
        "stages": [
            {"stage": "check_deliveries", "status": "ok", "seconds": 1.5},
            {"stage": "ingest", "status": "ok", "seconds": 40},
            {"stage": "quality_gate", "status": "failed", "seconds": 12},
        ]
    }
    rows = report.stage_rows(log)
    assert [(r["stage"], r["status"]) for r in rows[:4]] == [
        ("check_deliveries", "ok"),
        ("ingest", "ok"),
        ("quality_gate", "failed"),
        ("features", "not run"),
    ]
    assert rows[-1]["stage"] == "publish" and all(r["status"] == "not run" for r in rows[3:])
    # a task that failed before it could write to the run log still shows as failed
    assert [r["status"] for r in report.stage_rows(None, "check_deliveries")][:2] == ["failed", "not run"]


def test_rules_are_read_from_the_failure_message():
    message = (
        "source orders, file lake/raw/orders/ds=2026-11-24/orders.jsonl: rule schema.required_columns: "
        "missing amount; rule file.readable: ok"
    )
    assert report.rules_named(message) == ["schema.required_columns", "file.readable"]
    assert report.rules_named("task failed") == []


def test_charts_are_inline_svg_with_ids_that_do_not_clash():
    frame = pd.DataFrame({c: np.linspace(0, 100, 50) for c in report.FACTOR_COLUMNS})
    charts = [
        report.plot_factors(frame),
        report.plot_score_distribution(pd.Series(np.linspace(400, 900, 50)), None, DS, None),
    ]
    for chart in charts:
        assert chart.startswith('<svg class="chart"') and "<path" in chart and "<?xml" not in chart
    ids = [i for chart in charts for i in re.findall(r'id="([^"]+)"', chart)]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------ a small SESAME_HOME with two published nights


def _scores(ds: str, n: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.normal(650 + shift, 55, n).clip(350, 950).round().astype(int)
    frame = pd.DataFrame(
        {
            "ds": dt.date.fromisoformat(ds),
            "user_key": [f"k{i:05d}" for i in range(n)],
            "score": score,
            "tier": [report.tier_of(s) for s in score],
        }
    )
    for f in FACTORS:
        frame[f"{f}_score"] = rng.uniform(0, 100, n).round(1)
    frame["segment"] = np.where(np.arange(n) % 4 == 0, "no_credit_file", "credit_file")
    frame["reason_codes"] = [["FC05", "CH04", "BP03"][: i % 4] for i in range(n)]
    frame["model_version"] = "sc-test-1"
    return frame


def _eligibility(scores: pd.DataFrame) -> pd.DataFrame:
    parts = [
        scores[scores["score"] >= bound].assign(destination=dest, rule_version=f"{dest.lower()}-v1")
        for dest, bound in (("LU", 750), ("SG", 700))
    ]
    return pd.concat(parts)[["ds", "destination", "user_key", "score", "rule_version"]]


def make_home(home: Path) -> Settings:
    """Two published nights, the second with its run log, checks, accounting and a champion model."""
    from sesame.registry import Registry
    from sesame.training import card_html

    cfg = Settings(home=home)
    tonight, previous = _scores(DS, 1500, 8, 1), _scores(PREVIOUS_DS, 1450, 0, 2)
    elig_now, elig_before = _eligibility(tonight), _eligibility(previous)
    merged = elig_now.merge(elig_before[["destination", "user_key"]], how="outer", indicator=True)
    changes = merged[merged["_merge"] != "both"].assign(
        change=lambda d: d["_merge"].map({"left_only": "added", "right_only": "removed"}).astype(str),
        ds=dt.date.fromisoformat(DS),
    )[["ds", "destination", "user_key", "change"]]
    cfg.warehouse_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(cfg.warehouse_path))
    con.execute("create schema marts")
    scores = pd.concat([previous, tonight])
    eligibility = pd.concat([elig_before, elig_now])
    exclusions = pd.DataFrame(
        {
            "ds": dt.date.fromisoformat(DS),
            "user_key": ["x1", "x2", "x3"],
            "exclusion_code": ["X01_THIN_FILE", "X01_THIN_FILE", "X02_COURT_LISTED"],
        }
    )
    for name, frame in (
        ("sesame_scores", scores),
        ("visa_eligibility", eligibility),
        ("visa_eligibility_changes", changes),
        ("score_exclusions", exclusions),
    ):
        con.register("frame", frame)
        con.execute(f"create table marts.{name} as select * from frame")
        con.unregister("frame")
    con.close()

    runs = home / "runs" / DS
    runs.mkdir(parents=True)
    stages = [(name, 3.0 + 7 * i) for i, name in enumerate(report.STAGE_ORDER[:-1])]
    (runs / f"{RUN}.json").write_text(
        json.dumps(
            {
                "ds": DS,
                "run_id": RUN,
                "stages": [
                    {
                        "stage": name,
                        "status": "ok",
                        "seconds": seconds,
                        "finished_at": f"2026-11-24T01:{i:02d}:00+00:00",
                    }
                    for i, (name, seconds) in enumerate(stages)
                ],
            }
        )
    )
    manifest = home / "published" / "sesame_scores" / f"ds={DS}" / f"run={RUN}" / "_manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"dataset": "sesame_scores", "ds": DS, "run_id": RUN, "checks": []}))
    (manifest.parents[2] / "LATEST").write_text(json.dumps({"snapshot": f"ds={DS}/run={RUN}", "ds": DS}))

    accounting = pd.DataFrame(
        {
            "source": ["orders", "users"],
            "file": [f"lake/raw/orders/ds={DS}/orders.jsonl", f"lake/raw/users/ds={DS}/users.csv"],
            "delivered": [1000, 500],
            "accepted": [980, 500],
            "quarantined": [5, 0],
            "duplicates": [15, 0],
            "added_columns": ["", ""],
        }
    )
    (cfg.lake / "accounting" / f"ds={DS}").mkdir(parents=True)
    accounting.to_parquet(cfg.lake / "accounting" / f"ds={DS}" / "part-0.parquet")
    checks = cfg.zone("checks", ds=DS)
    checks.mkdir(parents=True)
    (checks / "input.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "name": "accounting.balance:orders",
                        "rule": "accounting.balance",
                        "passed": True,
                        "detail": "balanced",
                    },
                    {
                        "name": "validated.users:expect_column_values_to_not_be_null:user_id",
                        "suite": "validated.users",
                        "rule": "users.id_present",
                        "passed": True,
                        "detail": "ok",
                    },
                ]
            }
        )
    )
    (checks / "audit.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "name": "drift.psi:score",
                        "rule": "drift.psi",
                        "psi": 0.031,
                        "passed": True,
                        "warning": False,
                        "detail": "PSI of score 0.031",
                    },
                    {
                        "name": "drift.psi:orders_90d",
                        "rule": "drift.psi",
                        "psi": 0.12,
                        "passed": True,
                        "warning": True,
                        "detail": "PSI of orders_90d 0.120",
                    },
                ]
            }
        )
    )
    docs = home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    docs.parent.mkdir(parents=True)
    docs.write_text("<html><body>Data Docs</body></html>")

    fairness = {
        attr: {
            "group_sizes": {g: 600 for g in groups},
            "approval": [
                {
                    "threshold": t,
                    "rates": {g: 0.2 + 0.05 * i - (t - 700) / 500 for i, g in enumerate(groups)},
                    "ratio": 0.85,
                    "verdict": "passed",
                }
                for t in (700, 750)
            ],
            "auc_by_group": {g: 0.78 for g in groups},
        }
        for attr, groups in (("gender", ["F", "M"]), ("age_band", ["18-29", "30-44", "45+"]))
    }
    segments = ["credit_file", "no_credit_file"]
    sample = {"rows": 9000, "bads": 360, "bad_rate": 0.04, "auc": 0.79, "ks": 0.44, "gini": 0.58}
    # hand-made out-of-time bands: claimed rates from the odds scaling, observed ones near them
    calibration = [
        {
            "segment": seg,
            "band_low": low,
            "band_high": low + 49,
            "rows": 1000,
            "bads": bads,
            "observed_bad_rate": bads / 1000,
            "observed_low": max(bads - 8, 0) / 1000,
            "observed_high": (bads + 9) / 1000,
            "claimed_bad_rate": claimed,
        }
        for seg in segments
        for low, bads, claimed in ((500, 95, 0.0976), (600, 50, 0.05), (700, 14, 0.0130), (750, 6, 0.0065))
    ]
    features = {
        seg: {
            "used": ["fc_balance"],
            "by_factor": {"fulfillment_capacity": ["fc_balance"]},
            "dropped": {},
            "monotone_violations": [],
        }
        for seg in segments
    }
    card = {
        "version": "sc-test-1",
        "train_ds": "2026-11-01",
        "trained_at": "2026-11-01T02:00:00+00:00",
        "model": "Scorecard",
        "data_window": {},
        "segments": segments,
        "label": {
            "bad_dpd": 90,
            "performance_days": 365,
            "definition": "Bad: any credit product newly reaching 90+ days past due within 365 days",
        },
        "population": {"rows": 20000, "current_default": 300},
        "developed_on": {
            "credit_file": "its own 9000 development rows (360 bads)",
            "no_credit_file": "its own 2000 development rows (90 bads)",
        },
        "development": {seg: sample for seg in segments},
        "out_of_time": {seg: sample for seg in segments},
        "calibration": calibration,
        "calibration_summary": {seg: {"in_the_large": 0.001, "slope": 0.97} for seg in segments},
        "calibration_by_social_band": [],
        "features_by_segment": features,
        "fairness": fairness,
        "gates": {
            "fairness_ratio": {"verdict": "passed", "passed": True, "detail": "lowest approval-rate ratio 0.850"}
        },
    }
    registry = Registry(cfg.models)
    registry.register("sc-test-1", "{}", card, card_html(card))
    registry.promote("sc-test-1")
    return cfg


@pytest.fixture
def published_home(home):
    return make_home(home)


def test_published_night_report_has_every_section(published_home):
    cfg = published_home
    path = report.write_report(cfg, DS, RUN)
    assert path == cfg.reports / DS / f"{RUN}.html"
    page = path.read_text()
    assert (cfg.reports / DS / "index.html").read_text() == page
    facts = report.collect(cfg, DS, RUN)
    assert facts["status"] == "published" and facts["notes"] == {} and facts["failure"] is None
    assert facts["scores"]["stats"]["users"] == 1500 and facts["scores"]["previous_ds"] == PREVIOUS_DS
    assert 0 < facts["scores"]["psi"] < 0.25
    assert {v["destination"] for v in facts["visa"]} == {"LU", "SG"}
    assert all(v["eligible"] == v["previous_eligible"] + v["added"] - v["removed"] for v in facts["visa"])
    assert [a["source"] for a in facts["accounting"]] == ["orders", "users"]
    assert facts["model"]["version"] == "sc-test-1" and facts["model"]["champion"]
    assert [r["stage"] for r in facts["stages"]] == list(report.STAGE_ORDER[:-1])
    # score, factors, tiers, visa, calibration of each segment, fairness, stage timings
    assert page.count('<svg class="chart"') == 8
    assert "What the score predicts" in page and "newly reaching 90+" in page
    # what 750 means, in observed bad rates: 6 bads in 1,000 users at or above it, per segment
    meaning = {(w["threshold"], w["segment"]): w for w in facts["model"]["what_scores_mean"]}
    assert meaning[(750, "credit_file")]["rows"] == 1000 and meaning[(750, "credit_file")]["observed"] == 0.006
    assert meaning[(700, "no_credit_file")]["rows"] == 2000 and meaning[(700, "no_credit_file")]["bads"] == 20
    assert meaning[(750, "credit_file")]["claimed_at_threshold"] == pytest.approx(1 / (1 + 19 * 8))
    for heading in (
        "Score distribution",
        "The five factor sub-scores",
        "Tiers",
        "Visa eligibility per destination",
        "row accounting and quality gates",
        "Fairness",
        "Stages",
    ):
        assert heading in page, heading
    assert "Why the night failed" not in page
    # relative links that resolve from the report's folder
    for link in (
        "../../gx/uncommitted/data_docs/local_site/index.html",
        "../../models/sc-test-1/card.html",
        f"../../runs/{DS}/{RUN}.json",
    ):
        assert f'href="{link}"' in page and (path.parent / link).resolve().exists(), link
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched or linked off the machine
    listing = (cfg.reports / "index.html").read_text()
    assert f'href="{DS}/index.html"' in listing and "published" in listing


def test_a_held_delivery_the_night_caught_up_is_shown_with_its_reason(published_home):
    """A day caught up tonight whose bills an operator held: its row counts them as held, balances, and the page
    says why they were set aside."""
    cfg = published_home
    reason = "cut short in transit (control.bytes); the upstream re-delivers it"
    day = cfg.lake / "accounting" / f"ds={PREVIOUS_DS}"
    day.mkdir(parents=True)
    pd.DataFrame(
        {
            "source": ["bills"],
            "file": [f"lake/raw/bills/ds={PREVIOUS_DS}/bills.parquet"],
            "delivered": [40],
            "accepted": [0],
            "quarantined": [0],
            "duplicates": [0],
            "held": [40],
            "hold_reason": [reason],
            "ingested_on": [DS],
        }
    ).to_parquet(day / "part-0.parquet")
    rows = {(a["ds"], a["source"]): a for a in report.collect(cfg, DS, RUN)["accounting"]}
    held = rows[(PREVIOUS_DS, "bills")]
    assert held["held"] == 40 and held["balanced"] and held["hold_reason"] == reason
    page = report.write_report(cfg, DS, RUN).read_text()
    assert f"Held: bills of {PREVIOUS_DS}, {reason}." in page


def _fail_at_quality_gate(cfg: Settings, ds: str, run_id: str) -> None:
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)
    at = lambda seconds: (started + dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")  # noqa: E731
    (cfg.home / "runs" / ds).mkdir(parents=True, exist_ok=True)
    (cfg.home / "runs" / ds / f"{run_id}.json").write_text(
        json.dumps(
            {
                "ds": ds,
                "run_id": run_id,
                "stages": [
                    {"stage": "check_deliveries", "status": "ok", "seconds": 1.0, "finished_at": at(1)},
                    {"stage": "ingest", "status": "ok", "seconds": 30.0, "finished_at": at(31)},
                    {"stage": "quality_gate", "status": "failed", "seconds": 9.0, "finished_at": at(40)},
                ],
            }
        )
    )
    checks = cfg.zone("checks", ds=ds)
    checks.mkdir(parents=True, exist_ok=True)
    (checks / "input.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "name": "quarantine.share:orders",
                        "rule": "quarantine.max_share",
                        "passed": False,
                        "detail": f"source orders, file lake/raw/orders/ds={ds}/orders.jsonl: rule quarantine.max_share: 3.00% "
                        "of records quarantined (limit 1.00%)",
                    }
                ]
            }
        )
    )
    (checks / "audit.json").write_text(
        json.dumps(
            {
                "checks": [  # left by an earlier run: not this run's
                    {"name": "drift.psi:score", "rule": "drift.psi", "psi": 0.9, "passed": False, "detail": "stale"}
                ]
            }
        )
    )
    acc = cfg.lake / "accounting" / f"ds={ds}"
    acc.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "source": ["orders"],
            "file": [f"lake/raw/orders/ds={ds}/orders.jsonl"],
            "delivered": [100],
            "accepted": [97],
            "quarantined": [3],
            "duplicates": [0],
        }
    ).to_parquet(acc / "part-0.parquet")


def test_failure_callback_writes_the_failed_nights_report(published_home, monkeypatch):
    from sesame import night

    cfg, ds, run_id = published_home, "2026-11-24", "20261125T010000000000Z"
    _fail_at_quality_gate(cfg, ds, run_id)
    message = (
        f"quality gate failed, nothing will be published tonight: source orders, file "
        f"lake/raw/orders/ds={ds}/orders.jsonl: rule quarantine.max_share: 3.00% of records quarantined"
    )
    context = {
        "dag": SimpleNamespace(dag_id="sesame_nightly"),
        "ds": ds,
        "run_id": "manual__2026-11-24T00:00:00",
        "dag_run": SimpleNamespace(conf={"run_id": run_id}),
        "task_instance": SimpleNamespace(task_id="quality_gate", dag_id="sesame_nightly"),
        "exception": RuntimeError(message),
    }
    alert = json.loads(night.alert_on_failure(context).read_text())
    path = cfg.reports / ds / f"{run_id}.html"
    assert alert["details"]["report"] == str(path)
    page = path.read_text()
    assert "Sesame night 2026-11-24: failed" in page and "Why the night failed" in page
    assert '<code class="rule">quarantine.max_share</code>' in page
    assert "orders.jsonl" in page and f"sesame night --ds {ds}" in page  # which file, and what to do next
    assert "stale" not in page  # the audit did not run in this run
    facts = report.collect(cfg, ds, run_id, alert)
    assert [(s["stage"], s["status"]) for s in facts["stages"][1:4]] == [
        ("ingest", "ok"),
        ("quality_gate", "failed"),
        ("features", "not run"),
    ]
    assert facts["scores"] is None and facts["visa"] is None and facts["accounting"][0]["quarantined"] == 3
    assert facts["model"]["version"] == "sc-test-1"  # the champion that would have scored the night
    # without the alert at hand (`sesame report`), the report finds it in alerts.jsonl
    assert report.collect(cfg, ds, run_id)["failure"]["what_failed"] == message
    assert 'class="failed">failed' in (cfg.reports / "index.html").read_text()


def test_a_report_that_cannot_be_drawn_never_hides_the_alert(home, monkeypatch, caplog):
    from sesame import night

    def broken(*args, **kwargs):
        raise ValueError("no chart today")

    monkeypatch.setattr(night, "write_report", broken)
    context = {
        "dag": SimpleNamespace(dag_id="sesame_nightly"),
        "ds": "2026-11-24",
        "run_id": "r1",
        "task_instance": SimpleNamespace(task_id="ingest", dag_id="sesame_nightly"),
        "exception": RuntimeError("source orders: rule schema.required_columns"),
    }
    path = night.alert_on_failure(context)
    assert "schema.required_columns" in json.loads(path.read_text())["what_failed"]
    assert "no chart today" in caplog.text
    assert night.report(Settings(), "2026-11-24", "r1") is None  # the DAG's report step logs and carries on


def test_sesame_report_command(published_home, capsys):
    shutil.rmtree(published_home.reports, ignore_errors=True)
    assert sesame(["report", "--ds", DS]) == 0
    assert str(published_home.reports / DS / f"{RUN}.html") in capsys.readouterr().out
    assert (published_home.reports / DS / "index.html").exists()
    assert sesame(["report", "--ds", "2020-01-01"]) == 2
    assert "no run of the night 2020-01-01" in capsys.readouterr().err


# ------------------------------------------------------------------ in a browser


@pytest.fixture(scope="module")
def chromium():
    from tests.chromium import ensure_chromium

    binary, why = ensure_chromium()
    if binary is None:
        pytest.skip(f"headless Chromium not available: {why}")
    return binary


def assert_drawn_cleanly(seen: dict, charts: int) -> None:
    assert seen["errors"] == []
    assert all(url.startswith("file://") for url in seen["requests"]), seen["requests"]
    assert len(seen["charts"]) == charts, seen["charts"]
    for chart in seen["charts"]:
        assert chart["width"] > 200 and chart["height"] > 50, chart
        assert chart["drawn"] >= 5, chart  # bars, lines and axes with an area, not an empty frame


def test_report_draws_in_chromium_without_console_errors(published_home, chromium, tmp_path):
    from tests.chromium import Browser

    page = report.write_report(published_home, DS, RUN)
    shot = tmp_path / "night-report.png"
    with Browser(chromium) as browser:
        seen = browser.open(page, screenshot=shot)
    assert seen["title"] == f"Sesame night {DS} · published"
    assert_drawn_cleanly(seen, charts=8)
    assert "Why the night failed" not in seen["text"]
    assert shot.stat().st_size > 20_000


def test_the_browser_check_catches_a_page_that_fetches_or_errs(tmp_path, chromium):
    from tests.chromium import Browser

    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><title>bad</title><img src="https://example.invalid/chart.png">'
        '<script>console.error("chart failed")</script>'
    )
    with Browser(chromium) as browser:
        seen = browser.open(page)
    assert any("chart failed" in e for e in seen["errors"])
    assert any(url.startswith("https://") for url in seen["requests"])
    with pytest.raises(AssertionError):
        assert_drawn_cleanly(seen, charts=1)


def test_sesame_night_names_the_report(published_home, monkeypatch, capsys):
    """The summary of `sesame night` names the report, published or failed (Airflow replaced by a stub that
    leaves what a real run leaves: a snapshot manifest when it published, and the report)."""
    from sesame import cli

    def run_dag(cfg, dag_id, ds, conf, watch=None):
        run_id = conf["run_id"]
        if ds == DS:
            manifest = cfg.published / "sesame_scores" / f"ds={ds}" / f"run={run_id}" / "_manifest.json"
            manifest.parent.mkdir(parents=True)
            manifest.write_text("{}")
        (cfg.home / "runs" / ds).mkdir(parents=True, exist_ok=True)
        (cfg.home / "runs" / ds / f"{run_id}.json").write_text(json.dumps({"ds": ds, "run_id": run_id, "stages": []}))
        report.write_report(cfg, ds, run_id)
        log = cfg.home / "logs" / "night.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("NightFailed: rule delivery.complete: no complete delivery\n")
        if watch is not None:
            watch.poll()
        return ds == DS, str(log)

    monkeypatch.setattr(cli, "run_dag", run_dag)
    assert sesame(["night", "--ds", DS]) == 0
    out = capsys.readouterr().out
    shown = re.search(r"report: (\S+\.html)", out)
    assert shown and Path(shown.group(1)).exists() and Path(shown.group(1)).parent == published_home.reports / DS
    assert sesame(["night", "--ds", "2026-11-24"]) == 1
    err = capsys.readouterr().err
    shown = re.search(r"report: (\S+\.html)", err)
    assert "delivery.complete" in err and shown and Path(shown.group(1)).exists()


def test_failed_audit_report_shows_the_staged_night(published_home):
    """The night failed at the audit: its scores and lists exist only in this run's staged warehouse, and the
    report shows them against the last published night."""
    from sesame.night import staged_warehouse

    cfg, ds, run_id = published_home, "2026-11-24", "20261125T020000000000Z"
    staged = staged_warehouse(cfg, run_id)
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cfg.warehouse_path, staged)
    con = duckdb.connect(str(staged))
    tonight = _scores(ds, 1400, 120, 3)  # a big shift: the reason the audit failed
    con.register("frame", tonight)
    con.execute("insert into marts.sesame_scores select * from frame")
    con.register("elig", _eligibility(tonight))
    con.execute("insert into marts.visa_eligibility select * from elig")
    con.close()
    started = dt.datetime.now(dt.timezone.utc)
    (cfg.home / "runs" / ds).mkdir(parents=True)
    (cfg.home / "runs" / ds / f"{run_id}.json").write_text(
        json.dumps(
            {
                "ds": ds,
                "run_id": run_id,
                "stages": [
                    {
                        "stage": name,
                        "status": "failed" if name == "audit" else "ok",
                        "seconds": 2.0,
                        "finished_at": started.isoformat(timespec="seconds"),
                    }
                    for name in report.STAGE_ORDER[: report.STAGE_ORDER.index("audit") + 1]
                ],
            }
        )
    )
    checks = cfg.zone("checks", ds=ds)
    checks.mkdir(parents=True)
    (checks / "audit.json").write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "name": "drift.psi:score",
                        "rule": "drift.psi",
                        "psi": 0.61,
                        "passed": False,
                        "warning": True,
                        "detail": "PSI of score against the development sample: 0.610 (warn 0.1, fail 0.25)",
                    }
                ]
            }
        )
    )

    facts = report.collect(cfg, ds, run_id)
    assert facts["status"] == "failed" and facts["failure"]["rules"] == ["drift.psi"]
    assert facts["scores"]["stats"]["users"] == 1400 and facts["scores"]["previous_ds"] == DS
    assert facts["scores"]["psi_band"] == "fail"
    assert {v["destination"] for v in facts["visa"]} == {"LU", "SG"}
    page = report.render(facts)
    assert page.count('<svg class="chart"') == 8 and "Sesame night 2026-11-24: failed" in page
