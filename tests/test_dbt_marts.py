"""The dbt project end to end on a tiny hand-made lake (tests/tiny_lake.py, whose docstring lists the users).

Three nights are built, then the third is built again; the expected lists are known by hand.
Rules (seed visa_rules, all in force in March 2026):
LU 750/verified/not listed/180 days; SG 700/verified/not listed/90 days; CH 800/verified/not listed/
365 days; JP 730/verified/not listed/365 days/3 qualifying nights; AE 650/not listed/30 days.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sesame.night import DBT_FEATURE_MODELS
from tests.tiny_lake import (
    DBT_DIR, HOLD_REASON, KEY_TO_USER, NIGHTS, REASON_CODES, SECRET, USERS, dbt_executable, raw_id, write_night,
)

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
        "ds", "user_key", "segment", "score", "tier",
        "credit_history_score", "behavior_preference_score", "fulfillment_capacity_score",
        "identity_traits_score", "social_connections_score",
        "credit_history_points", "behavior_preference_points", "fulfillment_capacity_points",
        "identity_traits_points", "social_connections_points",
        "reason_codes", "model_version", "city_tier",
    ],
    "score_exclusions": ["ds", "user_key", "exclusion_code"],
    "reason_code_dictionary": ["reason_code", "factor", "description_en", "description_zh", "feature", "definition"],
    "exclusion_code_dictionary": ["exclusion_code", "description_en", "description_zh"],
    "visa_rule_versions": [
        "destination", "rule_version", "min_score", "require_identity_verified", "exclude_court_listed",
        "min_history_days", "min_qualifying_nights", "valid_from", "valid_to",
    ],
    "visa_eligibility": ["ds", "destination", "user_key", "score", "rule_version", "qualifying_nights"],
    "visa_eligibility_changes": ["ds", "destination", "user_key", "change"],
    "row_accounting": ["ds", "source", "delivered", "accepted", "quarantined", "duplicates", "held", "hold_reason"],
    "score_history": ["user_key", "score", "tier", "model_version", "ds", "dbt_valid_from", "dbt_valid_to"],
}
INCREMENTAL_MARTS = ["sesame_scores", "score_exclusions", "visa_eligibility", "visa_eligibility_changes", "row_accounting"]


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
def run_dbt(env: dict, tmp: Path, ds: str) -> float:
    cmd = [
        # as the night's warehouse stage builds: dbt's features were written into the lake before scoring
        dbt_executable(), "build", "--exclude", DBT_FEATURE_MODELS,
        "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
        "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
        "--vars", f'{{ds: "{ds}"}}',
    ]
    started = time.monotonic()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(f"dbt build for {ds} failed:\n{result.stdout[-8000:]}\n{result.stderr[-3000:]}")
    return elapsed


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
    tmp = tmp_path_factory.mktemp("sesame")
    home = tmp / "home"
    warehouse = tmp / "warehouse" / "sesame.duckdb"
    warehouse.parent.mkdir(parents=True)
    env = {
        **os.environ,
        "SESAME_HOME": str(home),
        "SESAME_WAREHOUSE_PATH": str(warehouse),
        "SESAME_USER_KEY_SECRET": SECRET,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    timings = {}
    for n, ds in enumerate(NIGHTS):
        write_night(home, n)
        timings[ds] = run_dbt(env, tmp, ds)
    before_rerun = {t: table_rows(warehouse, t) for t in INCREMENTAL_MARTS + ["score_history"]}
    timings["rerun"] = run_dbt(env, tmp, NIGHTS[-1])
    print("dbt build seconds:", {k: round(v, 1) for k, v in timings.items()})
    return {"warehouse": warehouse, "before_rerun": before_rerun, "tmp": tmp}


# -------------------------------------------------------------------------------------------- tests
def test_contract_tables_exist_with_their_columns(built):
    rows = query(built["warehouse"], "select table_name, column_name from information_schema.columns "
                                     "where table_schema = 'marts'")
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(table, set()).add(column)
    for table, expected in CONTRACT_COLUMNS.items():
        assert table in columns, f"marts.{table} is missing"
        assert set(expected) <= columns[table], f"marts.{table} lacks {set(expected) - columns[table]}"


def test_column_types_of_sesame_scores(built):
    types = dict(query(built["warehouse"], "select column_name, data_type from information_schema.columns "
                                           "where table_schema = 'marts' and table_name = 'sesame_scores'"))
    assert types["ds"] == "DATE"
    assert types["user_key"] == "VARCHAR"
    assert types["score"] == "INTEGER"
    assert types["credit_history_score"] == "DOUBLE"
    assert types["social_connections_points"] == "INTEGER"
    assert types["reason_codes"] == "VARCHAR[]"
    assert types["segment"] == "VARCHAR"


def test_no_file_users_carry_their_segment_and_no_credit_history_sub_score(built):
    from tests.tiny_lake import NO_FILE, user_key

    rows = query(built["warehouse"], "select user_key, segment, credit_history_score is null "
                                     "from marts.sesame_scores")
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
    rows = query(built["warehouse"], "select ds, destination, user_key, score, rule_version, qualifying_nights "
                                     "from marts.visa_eligibility")
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
        ("LU", "B", "added"), ("LU", "A", "removed"), ("LU", "F", "removed"),
        ("SG", "I", "added"), ("SG", "F", "removed"),
        ("CH", "F", "removed"),
        ("JP", "A", "added"), ("JP", "B", "added"), ("JP", "G", "added"),
        ("AE", "I", "added"), ("AE", "F", "removed"),
    }


def test_rerunning_a_night_gives_the_same_rows(built):
    for table, rows in built["before_rerun"].items():
        assert table_rows(built["warehouse"], table) == rows, table
    dupes = query(built["warehouse"], "select ds, user_key, count(*) from marts.sesame_scores "
                                      "group by all having count(*) > 1")
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
    text_columns = [c for c in query(warehouse, "select column_name from information_schema.columns where "
                                                "table_schema = 'marts' and table_name = 'sesame_scores' "
                                                "and data_type = 'VARCHAR'")]
    for (column,) in text_columns:
        values = {v for (v,) in query(warehouse, f'select distinct "{column}" from marts.sesame_scores')}
        assert not values & raw_ids, column
    keys = {k for (k,) in query(warehouse, "select distinct user_key from marts.sesame_scores")}
    assert all(len(k) == 32 and set(k) <= set("0123456789abcdef") for k in keys)

    # the secret is not kept in the warehouse (view definitions are stored as SQL text)
    views = query(warehouse, "select sql from duckdb_views() where not internal")
    assert not [v for (v,) in views if v and SECRET in v]


def test_score_history_snapshot(built):
    rows = query(built["warehouse"], "select user_key, score, ds, dbt_valid_from, dbt_valid_to "
                                     "from marts.score_history order by user_key, dbt_valid_from")
    history: dict[str, list[tuple[int, str, bool]]] = {}
    for key, score, ds, _valid_from, valid_to in rows:
        history.setdefault(KEY_TO_USER[key], []).append((score, ds.isoformat(), valid_to is None))
    assert history["A"] == [(750, NIGHTS[0], False), (740, NIGHTS[2], True)]
    assert history["M"] == [(740, NIGHTS[0], False), (725, NIGHTS[1], False), (740, NIGHTS[2], True)]
    assert history["C"] == [(800, NIGHTS[0], True)]
    assert history["I"] == [(705, NIGHTS[2], True)]
    assert "H" not in history


def test_row_accounting(built):
    rows = query(built["warehouse"], "select ds, source, delivered, accepted, quarantined, duplicates, held, "
                                     "hold_reason from marts.row_accounting order by ds, source")
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
    exclusion_codes = {c for (c,) in query(built["warehouse"],
                                           "select exclusion_code from marts.exclusion_code_dictionary")}
    assert exclusion_codes == {"CURRENT_DEFAULT", "THIN_FILE", "NO_PROFILE", "NO_FEATURES"}


def test_privacy_scan_of_every_table_and_column_analysts_can_read(built):
    """Analysts open the whole warehouse file, so every schema is scanned: no protected attribute or raw
    identifier as a column name, no raw upstream id, legal name or gender code among the values of any text or
    text-list column, and location only as a band in the marts. The lake keeps the originals (restricted zone)."""
    from sesame.schemas import PROTECTED_COLUMNS, SOURCES
    from sesame.scorecard import is_protected

    warehouse = built["warehouse"]
    identifiers = {"user_id", "full_name", "src_user_id", "dst_user_id"}
    assert PROTECTED_COLUMNS and PROTECTED_COLUMNS <= set(SOURCES["users"].column_names)
    columns = query(warehouse, "select table_schema, table_name, column_name, data_type "
                               "from information_schema.columns where table_catalog = current_database()")
    assert {schema for schema, *_ in columns} >= {"marts", "staging", "seeds"}
    named = [c for c in columns if c[2].lower() in identifiers | PROTECTED_COLUMNS or is_protected(c[2])]
    assert named == [], f"protected or identifying columns readable by analysts: {named}"

    lake_users = pq.read_table(built["tmp"] / "home" / "lake" / "validated" / "users").to_pylist()
    personal = {u["user_id"] for u in lake_users} | {u["full_name"] for u in lake_users}
    assert {raw_id(u) for u in USERS} <= personal
    scanned = 0
    for schema, table, column, data_type in columns:
        if data_type not in ("VARCHAR", "VARCHAR[]"):
            continue
        values_sql = (f'select distinct v from (select unnest("{column}") as v from "{schema}"."{table}")'
                      if data_type == "VARCHAR[]" else f'select distinct "{column}" from "{schema}"."{table}"')
        values = {v for (v,) in query(warehouse, values_sql) if v is not None}
        leaked = {v for v in values if any(p in v for p in personal)}
        assert not leaked, f"{schema}.{table}.{column} holds raw identifiers or names: {sorted(leaked)[:3]}"
        assert not (len(values) == 2 and values == {"F", "M"}), f"{schema}.{table}.{column} looks like gender"
        scanned += 1
    assert scanned >= 20  # the scan did look at the text columns

    marts_columns = {c[2] for c in columns if c[0] == "marts"}
    assert "city_tier" in marts_columns and "city" not in marts_columns
