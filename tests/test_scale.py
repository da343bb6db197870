"""The score scale has one owner (sesame.scale): light enough for the service and the DAGs, and the dbt macro that
tiers the marts gives the same tiers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sesame import scale

MACRO = Path(__file__).resolve().parents[1] / "dbt" / "macros" / "score_tier.sql"


def test_the_scale_imports_nothing_heavy():
    heavy = {"numpy", "pandas", "pyarrow", "pyspark", "scipy", "sklearn", "duckdb", "airflow"}
    code = f"import sys, sesame.scale; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(heavy)!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tiers_cover_the_range_in_order_without_gap_or_overlap():
    assert scale.TIERS[0][1] == scale.SCORE_MIN and scale.TIERS[-1][2] == scale.SCORE_MAX
    for (_, _, high), (_, low, _) in zip(scale.TIERS, scale.TIERS[1:]):
        assert low == high + 1
    assert scale.TIER_NAMES == ("poor", "fair", "good", "very_good", "excellent")
    assert [scale.tier_of(s) for s in (349, 350, 549, 550, 599, 600, 649, 650, 699, 700, 950, 951)] == [
        None,
        "poor",
        "poor",
        "fair",
        "fair",
        "good",
        "good",
        "very_good",
        "very_good",
        "excellent",
        "excellent",
        None,
    ]


def test_the_dbt_tier_macro_gives_the_scales_tiers():
    """The macro rendered as dbt would and run by duckdb for every whole score from 300 to 1000 (and null): a
    band edge or a name changed on either side alone fails here."""
    import duckdb
    import jinja2

    expression = jinja2.Environment().from_string(MACRO.read_text()).module.score_tier("score")
    with duckdb.connect() as con:
        rows = con.execute(
            f"select score, {expression} as tier from (select unnest(range(300, 1001)) as score "
            "union all select null) order by score nulls last"
        ).fetchall()
    assert len(rows) == 702
    assert rows[-1] == (None, None)
    assert {score: tier for score, tier in rows[:-1]} == {s: scale.tier_of(s) for s in range(300, 1001)}


def test_odds_and_bad_rates_follow_the_anchor_and_the_doubling():
    from sesame.scorecard import odds_to_score, score_to_odds

    assert scale.score_to_odds(600) == 19 and scale.score_to_odds(650) == 38 and scale.score_to_odds(750) == 152
    assert scale.odds_to_score(19) == pytest.approx(600) and scale.odds_to_score(9.5) == pytest.approx(550)
    with pytest.raises(ValueError):
        scale.odds_to_score(0)
    for s in range(scale.SCORE_MIN, scale.SCORE_MAX + 1):
        # the one-number form and the scorecard's array form are the same scaling
        assert scale.score_to_odds(s) == pytest.approx(score_to_odds(s), rel=1e-12)
        assert scale.odds_to_score(scale.score_to_odds(s)) == pytest.approx(s, abs=1e-9)
        assert odds_to_score(scale.score_to_odds(s)) == pytest.approx(s, abs=1e-9)
        assert scale.score_to_bad_rate(s) == pytest.approx(1 / (1 + score_to_odds(s)), rel=1e-12)
        assert scale.bad_rate_to_score(scale.score_to_bad_rate(s)) == pytest.approx(s, abs=1e-6)
    with pytest.raises(ValueError):
        scale.bad_rate_to_score(0.0)


def test_band_edges_are_the_tiers_and_the_scale():
    from sesame import metrics

    assert metrics.BANDS == [350, 550, 600, 650, 700, 750, 951]
    assert metrics.BAND_LABELS == ["350-549", "550-599", "600-649", "650-699", "700-749", "750-950"]
    assert metrics.CALIBRATION_BANDS == list(range(350, 951, 50))
    assert scale.OUTER_EDGES == (349.5, 950.5)
