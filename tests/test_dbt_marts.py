"""The dbt project end to end on a tiny hand-made lake (tests/tiny_lake.py, whose docstring lists the users).

Three nights are built, then the third is built again; the expected lists are known by hand.
Rules (seed visa_rules, all in force in March 2026):
LU 750/verified/not listed/180 days; SG 700/verified/not listed/90 days; CH 800/verified/not listed/
365 days; JP 730/verified/not listed/365 days/3 qualifying nights; AE 650/not listed/30 days.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sesame import contracts
from tests.tiny_lake import (
    DBT_DIR,
    HOLD_REASON,
    KEY_TO_USER,
    NIGHTS,
    REASON_CODES,
    SECRET,
    USERS,
    dbt_executable,
    raw_id,
    registered_date,
    write_night,
)

pytestmark = pytest.mark.integration  # dbt: left out of make test-fast

DESTINATIONS = ["LU", "SG", "CH", "JP", "AE"]

EXPECTED_ELIGIBLE = {
    NIGHTS[0]: {
        "LU": {"A", "C", "F"},
        "SG": {"A", "B", "C", "E", "F", "G", "J", "M"},
        "CH": {"C", "F"},
        "JP": set(),
        "AE": {"A", "B", "C", "D", "E", "F", "G", "J", "K", "L", "M"},
    },
    NIGHTS[1]: {
        "LU": {"A", "F"},
        "SG": {"A", "B", "E", "F", "G", "J", "M"},
        "CH": {"F"},
        "JP": set(),
        "AE": {"A", "B", "D", "E", "F", "G", "J", "K", "L", "M"},
    },
    NIGHTS[2]: {
        "LU": {"B"},
        "SG": {"A", "B", "E", "G", "I", "J", "M"},
        "CH": set(),
        "JP": {"A", "B", "G"},
        "AE": {"A", "B", "D", "E", "G", "I", "J", "K", "L", "M"},
    },
}
EXPECTED_RULE_VERSIONS = {"LU": "LU-2024.1", "SG": "SG-2024.1", "CH": "CH-2024.1", "JP": "JP-2025.1", "AE": "AE-2024.1"}

CONTRACT_COLUMNS = {
    "sesame_scores": [
        "ds",
        "user_key",
        "segment",
        "score",
        "tier",
        "credit_history_score",
        "behavior_preference_score",
        "fulfillment_capacity_score",
        "identity_traits_score",
        "social_connections_score",
        "credit_history_points",
        "behavior_preference_points",
        "fulfillment_capacity_points",
        "identity_traits_points",
        "social_connections_points",
        "reason_codes",
        "model_version",
        "city_tier",
    ],
    "score_exclusions": ["ds", "user_key", "exclusion_code"],
    "reason_code_dictionary": ["reason_code", "factor", "description_en", "description_zh", "feature", "definition"],
    "exclusion_code_dictionary": ["exclusion_code", "description_en", "description_zh"],
    # what the night publishes as visa_rules, but for the night's date
    "visa_rule_versions": [c["name"] for c in contracts.load("visa_rules")["columns"] if c["name"] != "ds"],
    "visa_eligibility": ["ds", "destination", "user_key", "score", "rule_version", "qualifying_nights"],
    "visa_eligibility_changes": ["ds", "destination", "user_key", "change"],
    "row_accounting": ["ds", "source", "delivered", "accepted", "quarantined", "duplicates", "held", "hold_reason"],
    "score_history": ["user_key", "score", "tier", "model_version", "ds", "dbt_valid_from", "dbt_valid_to"],
    "dim_users": [
        "user_key",
        "as_of_ds",
        "registration_cohort",
        "account_age_band",
        "city_tier",
        "is_identity_verified",
        "occupation_group",
        "segment",
    ],
    "score_distribution_daily": [
        "ds",
        "segment",
        "tier",
        "users",
        "mean_score",
        "p10_score",
        "p50_score",
        "p90_score",
        "users_750_or_more",
        "share_750_or_more",
    ],
    "score_thresholds_daily": [
        "ds",
        "destination",
        "rule_version",
        "min_score",
        "segment",
        "tier",
        "users",
        "users_at_or_above",
        "share_at_or_above",
    ],
    "visa_funnel_daily": [
        "ds",
        "destination",
        "rule_version",
        "users_evaluated",
        "passing_min_score",
        "passing_identity",
        "passing_court_list",
        "passing_history",
        "passing_qualifying_nights",
        "eligible",
        "added",
        "removed",
    ],
    "user_features_daily": ["ds", "user_key", "history_days"],
    "visa_rule_checks": [
        "ds",
        "destination",
        "rule_version",
        "user_key",
        "score",
        "history_days",
        "qualifying_nights",
        "passes_min_score",
        "passes_identity",
        "passes_court_list",
        "passes_history",
        "passes_qualifying_nights",
        "is_eligible",
    ],
}
INCREMENTAL_MARTS = [
    "sesame_scores",
    "score_exclusions",
    "visa_eligibility",
    "visa_eligibility_changes",
    "row_accounting",
]


def tier(score: int) -> str:
    if score < 550:
        return "poor"
    if score < 600:
        return "fair"
    if score < 650:
        return "good"
    if score < 700:
        return "very_good"
    return "excellent"


# ---------------------------------------------------------------------------------------------- dbt
def build_night(cfg, ds: str, run_id: str) -> float:
    """The night's warehouse stage (sesame.night.warehouse: dbt build in a private build database, then the marts
    alone copied into the analysts' file), with the staged file moved into place as publish does."""
    from sesame import durable, night

    started = time.monotonic()
    staged = night.warehouse(cfg, ds, run_id)
    cfg.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    durable.replace(staged, cfg.warehouse_path)
    return time.monotonic() - started


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def eligible_by_destination(warehouse: Path, ds: str) -> dict[str, set[str]]:
    rows = query(warehouse, f"select destination, user_key from marts.visa_eligibility where ds = date '{ds}'")
    out: dict[str, set[str]] = {d: set() for d in DESTINATIONS}
    for destination, key in rows:
        out.setdefault(destination, set()).add(KEY_TO_USER.get(key, key))
    return out


def table_rows(warehouse: Path, table: str) -> list[tuple]:
    return sorted(query(warehouse, f"select * from marts.{table}"), key=repr)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from sesame.config import Settings

    tmp = tmp_path_factory.mktemp("sesame")
    home = tmp / "home"
    timings = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SESAME_HOME", str(home))
        env.setenv("SESAME_USER_KEY_SECRET", SECRET)
        cfg = Settings(home=home)
        for n, ds in enumerate(NIGHTS):
            write_night(home, n)
            timings[ds] = build_night(cfg, ds, f"night{n}")
        warehouse = cfg.warehouse_path
        before_rerun = {t: table_rows(warehouse, t) for t in INCREMENTAL_MARTS + ["score_history"]}
        killed = kill_mid_build(cfg, NIGHTS[-1], "killed")
        timings["rerun"] = build_night(cfg, NIGHTS[-1], "rerun")
        killed["after_rerun"] = sorted(p.name for p in (home / "tmp" / "dbt").glob("warehouse-*"))
    print("warehouse stage seconds:", {k: round(v, 1) for k, v in timings.items()})
    return {"warehouse": warehouse, "before_rerun": before_rerun, "tmp": tmp, "home": home, "killed": killed}


def kill_mid_build(cfg, ds: str, run_id: str) -> dict:
    """Start the warehouse stage of night ds in a process of its own and kill it -9 while dbt builds; returns what
    a reader saw: the analysts' file's bytes before and after, and whether dbt (the killed stage's child) lived on."""
    import hashlib
    import signal
    import sys

    def digest() -> str:
        return hashlib.sha256(cfg.warehouse_path.read_bytes()).hexdigest()

    before = digest()
    build = cfg.home / "tmp" / "dbt" / f"warehouse-{run_id}.duckdb"
    stage = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sesame import night; from sesame.config import "
            "Settings; night.warehouse(Settings(), sys.argv[1], sys.argv[2])",
            ds,
            run_id,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # dbt is running once it has written into the build database (its seeds come first)
    while (
        time.monotonic() < deadline
        and stage.poll() is None
        and not (build.exists() and build.with_name(build.name + ".wal").exists())
    ):
        time.sleep(0.1)
    assert stage.poll() is None, "the warehouse stage ended before it could be killed"
    children = [int(p) for p in Path(f"/proc/{stage.pid}/task/{stage.pid}/children").read_text().split()]
    stage.send_signal(signal.SIGKILL)
    stage.wait()
    time.sleep(1)
    alive = [
        pid
        for pid in children
        if Path(f"/proc/{pid}").exists() and "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    ]
    return {
        "before": before,
        "after": digest(),
        "children": children,
        "orphans": alive,
        "left_behind": sorted(p.name for p in build.parent.glob("warehouse-*")),
    }


# -------------------------------------------------------------------------------------------- tests
def test_contract_tables_exist_with_their_columns(built):
    rows = query(
        built["warehouse"],
        "select table_name, column_name from information_schema.columns where table_schema = 'marts'",
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    for table, expected in CONTRACT_COLUMNS.items():
        assert table in columns, f"marts.{table} is missing"
        assert set(expected) <= columns[table], f"marts.{table} lacks {set(expected) - columns[table]}"


def test_column_types_of_sesame_scores(built):
    types = dict(
        query(
            built["warehouse"],
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'sesame_scores'",
        )
    )
    assert types["ds"] == "DATE"
    assert types["user_key"] == "VARCHAR"
    assert types["score"] == "INTEGER"
    assert types["credit_history_score"] == "DOUBLE"
    assert types["social_connections_points"] == "INTEGER"
    assert types["reason_codes"] == "VARCHAR[]"
    assert types["segment"] == "VARCHAR"


def test_no_file_users_carry_their_segment_and_no_credit_history_sub_score(built):
    from tests.tiny_lake import NO_FILE, user_key

    rows = query(built["warehouse"], "select user_key, segment, credit_history_score is null from marts.sesame_scores")
    no_file = {user_key(u) for u in NO_FILE}
    assert rows and {k for k, _, _ in rows} >= no_file
    for key, segment, no_sub_score in rows:
        assert segment == ("no_credit_file" if key in no_file else "credit_file")
        assert no_sub_score == (key in no_file)


def test_eligibility_lists_match_hand_computed(built):
    for ds, expected in EXPECTED_ELIGIBLE.items():
        got = eligible_by_destination(built["warehouse"], ds)
        for destination in DESTINATIONS:
            assert got.get(destination, set()) == expected[destination], (ds, destination)


def test_eligibility_rows_carry_score_and_rule_version(built):
    rows = query(
        built["warehouse"],
        "select ds, destination, user_key, score, rule_version, qualifying_nights from marts.visa_eligibility",
    )
    assert rows
    for ds, destination, key, score, rule_version, qualifying_nights in rows:
        user = KEY_TO_USER[key]
        night = NIGHTS.index(ds.isoformat())
        assert score == USERS[user][0][night]
        assert rule_version == EXPECTED_RULE_VERSIONS[destination]
        assert qualifying_nights == (3 if destination == "JP" else 1)


def test_changes_across_nights(built):
    rows = query(built["warehouse"], "select ds, destination, user_key, change from marts.visa_eligibility_changes")
    changes: dict[str, set[tuple[str, str, str]]] = {ds: set() for ds in NIGHTS}
    for ds, destination, key, change in rows:
        changes[ds.isoformat()].add((destination, KEY_TO_USER[key], change))

    first = {(d, u, "added") for d, users in EXPECTED_ELIGIBLE[NIGHTS[0]].items() for u in users}
    assert changes[NIGHTS[0]] == first
    for prev, ds in zip(NIGHTS, NIGHTS[1:]):
        expected = set()
        for d in DESTINATIONS:
            before, after = EXPECTED_ELIGIBLE[prev][d], EXPECTED_ELIGIBLE[ds][d]
            expected |= {(d, u, "added") for u in after - before}
            expected |= {(d, u, "removed") for u in before - after}
        assert changes[ds] == expected, ds
    # spelled out for the last night
    assert changes[NIGHTS[2]] == {
        ("LU", "B", "added"),
        ("LU", "A", "removed"),
        ("LU", "F", "removed"),
        ("SG", "I", "added"),
        ("SG", "F", "removed"),
        ("CH", "F", "removed"),
        ("JP", "A", "added"),
        ("JP", "B", "added"),
        ("JP", "G", "added"),
        ("AE", "I", "added"),
        ("AE", "F", "removed"),
    }


def test_rerunning_a_night_gives_the_same_rows(built):
    """Killed -9 while dbt built, the stage left the analysts' file as it was and took dbt with it; the re-run
    removes the build database the killed stage left (staging rows in it) and gives the rows the night had."""
    killed = built["killed"]
    assert killed["before"] == killed["after"]
    assert killed["children"] and killed["orphans"] == []
    assert "warehouse-killed.duckdb" in killed["left_behind"] and killed["after_rerun"] == []
    for table, rows in built["before_rerun"].items():
        assert table_rows(built["warehouse"], table) == rows, table
    dupes = query(
        built["warehouse"], "select ds, user_key, count(*) from marts.sesame_scores group by all having count(*) > 1"
    )
    assert dupes == []


def test_scores_tiers_and_nights(built):
    rows = query(built["warehouse"], "select ds, user_key, score, tier, city_tier from marts.sesame_scores")
    expected = {(ds, u) for u, (s, _, _) in USERS.items() for ds, v in zip(NIGHTS, s) if v is not None}
    assert {(ds.isoformat(), KEY_TO_USER[key]) for ds, key, *_ in rows} == expected
    for ds, key, score, got_tier, city_tier in rows:
        assert score == USERS[KEY_TO_USER[key]][0][NIGHTS.index(ds.isoformat())]
        assert got_tier == tier(score), (score, got_tier)
        assert city_tier in (1, 2, 3, 4)


def test_exclusions(built):
    rows = query(built["warehouse"], "select ds, user_key, exclusion_code from marts.score_exclusions")
    got = {(ds.isoformat(), KEY_TO_USER[key], code) for ds, key, code in rows}
    assert got == {(ds, "H", "THIN_FILE") for ds in NIGHTS} | {(ds, "I", "NO_PROFILE") for ds in NIGHTS[:2]}


def test_no_raw_identifiers_or_protected_attributes_in_the_warehouse(built):
    warehouse = built["warehouse"]
    forbidden = {"user_id", "full_name", "gender", "birth_year"}
    columns = query(warehouse, "select table_schema, table_name, column_name from information_schema.columns")
    assert not [c for c in columns if c[2].lower() in forbidden]

    raw_ids = {raw_id(u) for u in USERS}
    text_columns = [
        c
        for c in query(
            warehouse,
            "select column_name from information_schema.columns where "
            "table_schema = 'marts' and table_name = 'sesame_scores' "
            "and data_type = 'VARCHAR'",
        )
    ]
    for (column,) in text_columns:
        values = {v for (v,) in query(warehouse, f'select distinct "{column}" from marts.sesame_scores')}
        assert not values & raw_ids, column
    keys = {k for (k,) in query(warehouse, "select distinct user_key from marts.sesame_scores")}
    assert all(len(k) == 32 and set(k) <= set("0123456789abcdef") for k in keys)

    # the secret is not kept in the warehouse (view definitions are stored as SQL text)
    views = query(warehouse, "select sql from duckdb_views() where not internal")
    assert not [v for (v,) in views if v and SECRET in v]


def test_score_history_snapshot(built):
    rows = query(
        built["warehouse"],
        "select user_key, score, ds, dbt_valid_from, dbt_valid_to "
        "from marts.score_history order by user_key, dbt_valid_from",
    )
    history: dict[str, list[tuple[int, str, bool]]] = {}
    for key, score, ds, _valid_from, valid_to in rows:
        history.setdefault(KEY_TO_USER[key], []).append((score, ds.isoformat(), valid_to is None))
    assert history["A"] == [(750, NIGHTS[0], False), (740, NIGHTS[2], True)]
    assert history["M"] == [(740, NIGHTS[0], False), (725, NIGHTS[1], False), (740, NIGHTS[2], True)]
    assert history["C"] == [(800, NIGHTS[0], True)]
    assert history["I"] == [(705, NIGHTS[2], True)]
    assert "H" not in history


def test_row_accounting(built):
    rows = query(
        built["warehouse"],
        "select ds, source, delivered, accepted, quarantined, duplicates, held, "
        "hold_reason from marts.row_accounting order by ds, source",
    )
    assert len(rows) == 3 * len(NIGHTS) + 1
    for _ds, source, delivered, accepted, quarantined, duplicates, held, _reason in rows:
        assert delivered == accepted + quarantined + duplicates + held
        if source == "orders":
            assert delivered >= 150
    # night 3 restated night 1, which it caught up with its payments held: the hold is accounted, and why
    held = [r for r in rows if r[6]]
    assert [(str(r[0]), r[1], r[2], r[6], r[7]) for r in held] == [(NIGHTS[0], "payments", 30, 30, HOLD_REASON)]


def test_dictionaries(built):
    codes = {c for (c,) in query(built["warehouse"], "select reason_code from marts.reason_code_dictionary")}
    assert codes == set(REASON_CODES)
    exclusion_codes = {
        c for (c,) in query(built["warehouse"], "select exclusion_code from marts.exclusion_code_dictionary")
    }
    assert exclusion_codes == {"CURRENT_DEFAULT", "THIN_FILE", "NO_PROFILE", "NO_FEATURES"}


def test_privacy_scan_of_every_table_and_column_analysts_can_read(built):
    """Analysts open the whole warehouse file, so every schema is scanned: no protected attribute or raw
    identifier as a column name, no raw upstream id, legal name or gender code among the values of any text or
    text-list column, and location only as a band in the marts. The lake keeps the originals (restricted zone)."""
    from sesame.schemas import PROTECTED_COLUMNS, SOURCES
    from sesame.scorecard import is_protected

    warehouse = built["warehouse"]
    identifiers = {"user_id", "full_name", "src_user_id", "dst_user_id", "id_document_number"}
    assert PROTECTED_COLUMNS and PROTECTED_COLUMNS <= set(SOURCES["users"].column_names)
    columns = query(
        warehouse,
        "select table_schema, table_name, column_name, data_type "
        "from information_schema.columns where table_catalog = current_database()",
    )
    # staging (exact city, occupation, registration day, court cases) and seeds were built elsewhere
    assert {schema for schema, *_ in columns} == {"marts"}
    assert query(warehouse, "select count(*) from duckdb_views() where not internal") == [(0,)]
    exact = {
        "city",
        "occupation",
        "registered_date",
        "case_id",
        "court",
        "reason",
        "full_name",
        "listed_date",
        "phone_tenure_months",
        "address_months",
        "it_account_age_days",
        "ch_credit_age_days",
        "it_phone_tenure_months",
        "it_address_months",
    }
    named = [c for c in columns if c[2].lower() in identifiers | PROTECTED_COLUMNS | exact or is_protected(c[2])]
    assert named == [], f"protected or identifying columns readable by analysts: {named}"

    lake = built["home"] / "lake" / "validated"
    lake_users = pq.read_table(lake / "users").to_pylist()
    court_list = pq.read_table(lake / "blacklist").to_pylist()
    personal = (
        {u["user_id"] for u in lake_users}
        | {u["full_name"] for u in lake_users}
        | {u["city"] for u in lake_users}
        | {u["occupation"] for u in lake_users if u["occupation"]}
        | {u["id_document_number"] for u in lake_users}
        | {c["case_id"] for c in court_list}
        | {c["court"] for c in court_list}
        | {c["reason"] for c in court_list}
    )
    assert {raw_id(u) for u in USERS} <= personal and len({u["city"] for u in lake_users}) > 1
    days = {u["registered_date"] for u in lake_users}
    per_user = {(schema, table) for schema, table, column, _ in columns if column == "user_key"}
    for schema, table, column, data_type in columns:
        if data_type == "DATE" and (schema, table) in per_user:  # a calendar holds every day, of nobody
            held = {d for (d,) in query(warehouse, f'select distinct "{column}" from "{schema}"."{table}"')}
            assert not held & days, f"{schema}.{table}.{column} holds exact registration days"
    scanned = 0
    for schema, table, column, data_type in columns:
        if data_type not in ("VARCHAR", "VARCHAR[]"):
            continue
        values_sql = (
            f'select distinct v from (select unnest("{column}") as v from "{schema}"."{table}")'
            if data_type == "VARCHAR[]"
            else f'select distinct "{column}" from "{schema}"."{table}"'
        )
        values = {v for (v,) in query(warehouse, values_sql) if v is not None}
        leaked = {v for v in values if any(p in v for p in personal)}
        assert not leaked, f"{schema}.{table}.{column} holds raw identifiers or names: {sorted(leaked)[:3]}"
        assert not (len(values) == 2 and values == {"F", "M"}), f"{schema}.{table}.{column} looks like gender"
        scanned += 1
    assert scanned >= 25  # the scan did look at the text columns

    marts_columns = {c[2] for c in columns if c[0] == "marts"}
    assert "city_tier" in marts_columns and "city" not in marts_columns


# ------------------------------------------------------------------------------ the analysts' tables
MIN_SCORE = {"LU": 750, "SG": 700, "CH": 800, "JP": 730, "AE": 650}


def _scored(n: int) -> dict[str, int]:
    return {u: s[n] for u, (s, _, _) in USERS.items() if s[n] is not None}


def test_score_distribution_agrees_with_numpy_over_the_scores(built):
    import numpy as np

    rows = query(
        built["warehouse"],
        "select ds, segment, tier, users, mean_score, p10_score, p50_score, p90_score, "
        "users_750_or_more, share_750_or_more from marts.score_distribution_daily",
    )
    got = {(ds.isoformat(), seg, t): rest for ds, seg, t, *rest in rows}
    for n, ds in enumerate(NIGHTS):
        scored = _scored(n)
        groups: dict[tuple[str, str], list[int]] = {}
        for user, score in scored.items():
            segment = "no_credit_file" if user in ("D", "L") else "credit_file"
            for key in ((segment, tier(score)), (segment, "all"), ("all", tier(score)), ("all", "all")):
                groups.setdefault(key, []).append(score)
        assert {k[1:] for k in got if k[0] == ds} == set(groups), ds
        for (segment, t), scores in groups.items():
            users, mean, p10, p50, p90, high, share = got[(ds, segment, t)]
            a = np.array(scores, dtype=float)
            assert users == len(a) and high == int((a >= 750).sum())
            assert mean == pytest.approx(a.mean()) and share == pytest.approx((a >= 750).mean())
            assert [p10, p50, p90] == pytest.approx(list(np.percentile(a, [10, 50, 90])))  # linear = percentile_cont


def test_visa_funnel_counts_each_condition_and_the_lists(built):
    rows = query(
        built["warehouse"],
        "select ds, destination, users_evaluated, passing_min_score, eligible, added, "
        "removed, passing_identity from marts.visa_funnel_daily",
    )
    got = {(ds.isoformat(), d): rest for ds, d, *rest in rows}
    assert len(got) == len(rows) == len(NIGHTS) * len(DESTINATIONS)
    for n, ds in enumerate(NIGHTS):
        scored = _scored(n)
        for d in DESTINATIONS:
            evaluated, min_score, eligible, added, removed, identity = got[(ds, d)]
            before = EXPECTED_ELIGIBLE[NIGHTS[n - 1]][d] if n else set()
            after = EXPECTED_ELIGIBLE[ds][d]
            assert evaluated == len(scored)
            assert min_score == sum(1 for s in scored.values() if s >= MIN_SCORE[d]), (ds, d)
            assert (eligible, added, removed) == (len(after), len(after - before), len(before - after)), (ds, d)
            if d != "AE":  # every rule but AE's asks for a verified identity
                assert identity == sum(1 for u in scored if USERS[u][1]), (ds, d)


def test_rule_checks_of_the_last_night_say_who_is_listed_and_why_not(built):
    rows = query(
        built["warehouse"],
        "select ds, destination, user_key, score, passes_min_score, passes_identity, "
        "is_eligible from marts.visa_rule_checks",
    )
    last = NIGHTS[-1]
    scored = _scored(len(NIGHTS) - 1)
    assert {ds.isoformat() for ds, *_ in rows} == {last}
    assert len(rows) == len(scored) * len(DESTINATIONS)
    for d in DESTINATIONS:
        mine = [
            (KEY_TO_USER[key], score, by_score, by_identity, ok)
            for _, dest, key, score, by_score, by_identity, ok in rows
            if dest == d
        ]
        assert {u for u, *_, ok in mine if ok} == EXPECTED_ELIGIBLE[last][d], d
        assert all(by_score == (score >= MIN_SCORE[d]) for _, score, by_score, _, _ in mine), d
        if d != "AE":  # every rule but AE's asks for a verified identity
            assert all(by_identity == bool(USERS[u][1]) for u, _, _, by_identity, _ in mine), d


def test_thresholds_are_the_funnels_score_condition_cut_by_segment_and_tier(built):
    rows = query(
        built["warehouse"],
        "select t.ds, t.destination, t.users_at_or_above, f.passing_min_score, "
        "t.users, f.users_evaluated from marts.score_thresholds_daily t "
        "join marts.visa_funnel_daily f using (ds, destination) "
        "where t.segment = 'all' and t.tier = 'all'",
    )
    assert len(rows) == len(NIGHTS) * len(DESTINATIONS)
    assert all(above == passing and users == evaluated for _, _, above, passing, users, evaluated in rows)
    parts = query(
        built["warehouse"],
        "select ds, destination, sum(users_at_or_above) from "
        "marts.score_thresholds_daily where segment <> 'all' and tier <> 'all' "
        "group by all",
    )
    totals = {(ds, d): above for ds, d, above, *_ in rows}
    assert {(ds, d): int(n) for ds, d, n in parts} == totals


def test_dim_users_holds_bands_and_groups_as_of_the_last_night(built):
    import csv

    groups = {
        r["occupation"]: r["occupation_group"]
        for r in csv.DictReader((DBT_DIR / "seeds" / "occupation_groups.csv").open())
    }
    lake = pq.read_table(built["home"] / "lake" / "validated" / "users" / f"ds={NIGHTS[-1]}").to_pylist()
    rows = query(
        built["warehouse"],
        "select user_key, as_of_ds, registration_cohort, account_age_band, city_tier, "
        "is_identity_verified, occupation_group, segment from marts.dim_users",
    )
    assert len(rows) == len(lake) == len({r[0] for r in rows})
    profile = {raw_id(u): u for u in USERS}
    night = dt.date.fromisoformat(NIGHTS[-1])
    by_user = {profile[p["user_id"]]: p for p in lake}
    for key, as_of, cohort, band, city_tier, verified, group, segment in rows:
        user = KEY_TO_USER[key]
        registered = registered_date(user)
        months = (night - registered).days // 30.4375
        expected_band = (
            "under_6_months"
            if months < 6
            else "6_to_12_months"
            if months < 12
            else "1_to_2_years"
            if months < 24
            else "2_to_5_years"
            if months < 60
            else "5_years_or_more"
        )
        occupation = by_user[user]["occupation"]
        assert as_of == night and cohort == registered.replace(day=1) and band == expected_band
        assert city_tier == by_user[user]["city_tier"] and verified == bool(USERS[user][1])
        assert group == (groups[occupation] if occupation else "not_given")
        assert segment == ("excluded" if user == "H" else "no_credit_file" if user in ("D", "L") else "credit_file")
    assert len({r[3] for r in rows}) > 1 and len({r[6] for r in rows}) > 2


def test_user_features_daily_shows_each_characteristic_or_its_band(built):
    import csv

    registry = sorted(
        csv.DictReader((DBT_DIR / "seeds" / "feature_registry.csv").open()), key=lambda r: r["reason_code"]
    )
    expected = ["ds", "user_key", "history_days"] + [
        r["feature"].rsplit("_", 1)[0] + "_band"
        if r["unit"] in ("days", "months") and r["window_days"] == "0"
        else r["feature"]
        for r in registry
    ]
    columns = [
        c
        for (c,) in query(
            built["warehouse"],
            "select column_name from information_schema.columns where "
            "table_name = 'user_features_daily' order by ordinal_position",
        )
    ]
    assert columns == expected
    lake = pq.read_table(built["home"] / "lake" / "features" / "user_features" / f"ds={NIGHTS[0]}").to_pandas()
    lake["user_key"] = lake["user_id"].map(lambda raw: next(k for k, u in KEY_TO_USER.items() if raw_id(u) == raw))
    spark_feature = next(r["feature"] for r in registry if r["engine"] == "spark" and r["unit"] == "CNY")
    got = dict(
        query(
            built["warehouse"],
            f"select user_key, {spark_feature} from marts.user_features_daily where ds = date '{NIGHTS[0]}'",
        )
    )
    assert got == dict(zip(lake["user_key"], lake[spark_feature]))
    assert query(built["warehouse"], "select count(*) from marts.user_features_daily group by ds order by ds") == [
        (len(USERS),)
    ] * len(NIGHTS)


def test_source_freshness_is_measured_against_the_night(built):
    import json

    verdicts = {
        v["source"]: v
        for v in json.loads((built["home"] / "lake" / "checks" / f"ds={NIGHTS[-1]}" / "freshness.json").read_text())[
            "sources"
        ]
    }
    # the zones the tiny lake writes every night are complete to the night, however long ago it was
    for zone in ("scores", "exclusions", "users", "user_features", "accounting"):
        assert verdicts[zone]["status"] == "pass" and verdicts[zone]["hours_behind"] == 0.0, verdicts[zone]
        assert verdicts[zone]["warn_after_hours"] == 1.0 and verdicts[zone]["error_after_hours"] == 72.0
    # zones it never writes cannot be read: said, not skipped; the court list is not checked at all
    assert verdicts["windows"]["status"] == verdicts["dbt_user_features"]["status"] == "runtime error"
    assert "blacklist" not in verdicts


def test_metrics_through_metricflow_equal_sql_over_the_marts(built, tmp_path):
    """An analyst's `mf query` over the semantic models, against the analysts' file (schema marts only)."""
    import csv

    project = tmp_path / "dbt"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    env = {
        **os.environ,
        "SESAME_HOME": str(built["home"]),
        "SESAME_WAREHOUSE_PATH": str(built["warehouse"]),
        "SESAME_USER_KEY_SECRET": SECRET,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    bin_dir = Path(dbt_executable()).parent
    subprocess.run([str(bin_dir / "dbt"), "parse", "-q"], cwd=project, env=env, check=True, timeout=300)

    def mf(metrics: str, group_by: str) -> list[dict]:
        out = tmp_path / f"{metrics.replace(',', '_')}.csv"
        proc = subprocess.run(
            [str(bin_dir / "mf"), "query", "--metrics", metrics, "--group-by", group_by, "--csv", str(out)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        return list(csv.DictReader(out.open()))

    scores = {
        r["metric_time__day"][:10]: r for r in mf("scored_users,mean_score,share_750_or_more", "metric_time__day")
    }
    for ds, users, mean, share in query(
        built["warehouse"],
        "select ds, count(*), avg(score), "
        "avg(case when score >= 750 then 1.0 else 0 end) "
        "from marts.sesame_scores group by ds",
    ):
        row = scores[ds.isoformat()]
        assert int(row["scored_users"]) == users
        assert float(row["mean_score"]) == pytest.approx(mean) and float(row["share_750_or_more"]) == pytest.approx(
            share
        )
    eligible = {
        (r["metric_time__day"][:10], r["eligibility__destination"]): int(r["eligible_users"])
        for r in mf("eligible_users", "metric_time__day,eligibility__destination")
    }
    expected = {(ds, d): len(users) for ds, lists in EXPECTED_ELIGIBLE.items() for d, users in lists.items() if users}
    assert eligible == expected


def test_every_sql_example_in_the_readme_returns_rows_over_three_nights(built):
    """The README's SQL as an analyst pastes it into the warehouse of three nights, whose lists changed (the
    example for the Spark endpoint is plain SQL that DuckDB runs too)."""
    from tests.readme import examples_without_rows, sql_examples

    assert len(sql_examples()) >= 8
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        assert examples_without_rows(con) == []
