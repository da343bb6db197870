"""The performance definition on hand-written bills, through the same Spark transforms the training set and the
night use: who has a credit file, who is already in default, and which outcome follows an observation date."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from sesame.config import Settings
from spark_jobs.features import known_by, segment_of
from spark_jobs.state import STATES, current_arrears
from spark_jobs.training_set import labelled_population

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast

OBS = "2025-06-30"
D = dt.date.fromisoformat


def _bill(user, bill, statement, reports=(), paid=None):
    """The rows a bill leaves: its statement, a report at each (date, days past due) while overdue, its payment."""
    stmt = D(statement)
    due = stmt + dt.timedelta(days=15)
    rows = [(user, bill, stmt, due, None, 0, stmt)]
    rows += [(user, bill, stmt, due, None, dpd, D(day)) for day, dpd in reports]
    if paid:
        rows.append((user, bill, stmt, due, D(paid), max((D(paid) - due).days, 0), D(paid)))
    return rows


BILLS = [
    # A: 134 days past due and unpaid at the observation date: already in default, outside the sample
    *_bill(
        "A",
        "A1",
        "2025-02-01",
        [
            ("2025-02-17", 1),
            ("2025-03-19", 31),
            ("2025-04-18", 61),
            ("2025-05-18", 91),
            ("2025-06-17", 121),
            ("2025-07-17", 151),
        ],
    ),
    # B: current at the observation date; a bill stated in month 6 reaches 91 days in month 9: bad
    *_bill("B", "B1", "2025-06-01", paid="2025-06-10"),
    *_bill("B", "B2", "2025-12-15", [("2025-12-31", 1), ("2026-01-30", 31), ("2026-03-01", 61), ("2026-03-31", 91)]),
    # C: no credit file at the observation date; opens a product in the window and it goes bad: bad
    *_bill("C", "C1", "2025-09-01", [("2025-09-17", 1), ("2025-10-17", 31), ("2025-11-16", 61), ("2025-12-16", 91)]),
    # E: late once but paid before the observation date; 91 days again only after the window ends: good
    *_bill("E", "E1", "2025-05-01", [("2025-05-17", 1)], paid="2025-06-20"),
    *_bill("E", "E2", "2026-04-01", [("2026-04-17", 1), ("2026-05-17", 31), ("2026-06-16", 61), ("2026-07-16", 91)]),
    # F: 60 days past due at the observation date (not yet in default); reaches 91 a month later: bad
    *_bill("F", "F1", "2025-04-16", [("2025-05-02", 1), ("2025-06-01", 31), ("2025-07-01", 61), ("2025-07-31", 91)]),
]
# D has no bill at all: no credit file, opens nothing, indeterminate


@pytest.fixture(scope="module")
def sources(spark):
    bills = pd.DataFrame(
        BILLS, columns=["user_id", "bill_id", "statement_date", "due_date", "paid_date", "days_past_due", "status_date"]
    )
    bills["amount_due"], bills["credit_limit"] = 100.0, 1000.0
    bills["event_date"] = bills["status_date"]
    bills["ds"] = bills["status_date"].map(str)
    users = pd.DataFrame(
        {"user_id": list("ABCDEF"), "gender": list("FMFMFM"), "birth_year": [1980] * 6, "ds": [OBS] * 6}
    )
    return {"bills": spark.createDataFrame(bills), "users": spark.createDataFrame(users)}


def _features(sources, night):
    state = {
        name: fold(None, known_by(sources[source], night), night)
        for name, (source, fold) in STATES.items()
        if source == "bills"
    }
    return (
        sources["users"]
        .select("user_id")
        .join(current_arrears(state, night), "user_id", "left")
        .select("user_id", segment_of(F.col("current_dpd")).alias("segment"), "current_dpd")
    )


def test_credit_file_and_current_days_past_due_at_the_observation_date(sources):
    got = {r["user_id"]: (r["segment"], r["current_dpd"]) for r in _features(sources, OBS).collect()}
    assert got == {
        "A": ("credit_file", 134),
        "B": ("credit_file", 0),
        "C": ("no_credit_file", None),
        "D": ("no_credit_file", None),
        "E": ("credit_file", 0),
        "F": ("credit_file", 60),
    }


def test_outcomes_over_a_year_after_the_observation_date(sources):
    cfg = Settings(performance_days=365, bad_dpd=90)
    rows = labelled_population(sources, OBS, cfg, "2026-08-31", _features(sources, OBS)).toPandas()
    got = rows.set_index("user_id")[["segment", "current_default", "bad", "opened"]].to_dict("index")
    assert got["A"]["current_default"]
    assert not any(got[u]["current_default"] for u in "BCDEF")
    assert {u: got[u]["bad"] for u in "BCDEF"} == {"B": 1, "C": 1, "D": 0, "E": 0, "F": 1}
    assert (got["C"]["opened"], got["D"]["opened"]) == (1, 0)  # D is indeterminate for the no-file segment
    assert set(rows["obs_date"]) == {OBS} and rows["gender"].notna().all()


def test_the_window_length_decides_what_counts(sources):
    """With a 180-day window, B's bill that goes bad in month 9 is outside it."""
    cfg = Settings(performance_days=180, bad_dpd=90)
    rows = labelled_population(sources, OBS, cfg, "2026-08-31", _features(sources, OBS)).toPandas()
    assert rows.set_index("user_id")["bad"].to_dict() == {"A": 1, "B": 0, "C": 1, "D": 0, "E": 0, "F": 1}


def test_outcomes_use_only_what_was_delivered_by_the_training_night(sources):
    cfg = Settings(performance_days=365, bad_dpd=90)
    rows = labelled_population(sources, OBS, cfg, "2026-01-31", _features(sources, OBS)).toPandas()
    assert rows.set_index("user_id")["bad"].to_dict()["B"] == 0  # B's 91-day report comes on 2026-03-31
