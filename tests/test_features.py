"""Feature transforms on a few hand-written rows: windows, point in time, and the social features."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from pyspark.sql import functions as F

from sesame.features import SPARK_FEATURES
from spark_jobs import features as feat
from spark_jobs.state import contacts as contact_pairs
from spark_jobs.windows import daily_aggregates, windows_full

pytestmark = pytest.mark.integration  # Spark: left out of make test-fast

NIGHT = "2026-11-23"
D = dt.date.fromisoformat


def _frame(spark, rows, schema):
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def sources(spark):
    ts = lambda s: dt.datetime.fromisoformat(s)  # noqa: E731
    users = _frame(
        spark,
        [
            ("U1", "Ann", "F", 1990, "Beijing", 1, D("2020-01-01"), 1, 40, 30, "nurse", D(NIGHT), NIGHT),
            ("U2", "Bo", "M", 1985, "Wuhan", 2, D("2026-11-20"), 0, 2, 1, None, D(NIGHT), NIGHT),
            ("U3", "Cy", "M", 1970, "Xian", 3, D("2019-05-05"), 1, 100, 80, "clerk", D(NIGHT), NIGHT),
        ],
        "user_id string, full_name string, gender string, birth_year int, city string, city_tier int, "
        "registered_date date, identity_verified int, phone_tenure_months int, address_months int, occupation string, "
        "event_date date, ds string",
    )
    orders = _frame(
        spark,
        [
            ("O1", "U1", ts("2026-11-23T10:00:00"), "groceries", 100.0, "completed", "M", D("2026-11-23"), NIGHT),
            ("O2", "U1", ts("2026-11-01T10:00:00"), "flowers", 50.0, "completed", "M", D("2026-11-01"), "2026-11-01"),
            ("O3", "U1", ts("2026-10-01T10:00:00"), "books", 30.0, "cancelled", "M", D("2026-10-01"), "2026-10-01"),
            ("O4", "U1", ts("2026-05-01T10:00:00"), "books", 999.0, "completed", "M", D("2026-05-01"), "2026-05-01"),
            # delivered after the night: invisible to it even though the event happened before
            ("O5", "U1", ts("2026-11-22T10:00:00"), "travel", 777.0, "completed", "M", D("2026-11-22"), "2026-11-24"),
        ],
        "order_id string, user_id string, order_ts timestamp, category string, amount double, status string, "
        "merchant_id string, event_date date, ds string",
    )
    payments = _frame(
        spark,
        [
            (
                "P1",
                "U1",
                ts("2026-11-10T09:00:00"),
                "in",
                "salary",
                5000.0,
                None,
                6000.0,
                100.0,
                D("2026-11-10"),
                "2026-11-10",
            ),
            (
                "P2",
                "U1",
                ts("2026-11-12T09:00:00"),
                "out",
                "utility",
                200.0,
                None,
                5800.0,
                100.0,
                D("2026-11-12"),
                "2026-11-12",
            ),
            (
                "P3",
                "U1",
                ts("2026-09-01T09:00:00"),
                "in",
                "transfer",
                300.0,
                "U3",
                1000.0,
                0.0,
                D("2026-09-01"),
                "2026-09-01",
            ),
            (
                "P4",
                "U1",
                ts("2026-11-15T09:00:00"),
                "out",
                "transfer",
                100.0,
                "U3",
                5700.0,
                100.0,
                D("2026-11-15"),
                "2026-11-15",
            ),
        ],
        "payment_id string, user_id string, payment_ts timestamp, direction string, kind string, amount double, "
        "counterparty_id string, balance_after double, wealth_balance_after double, event_date date, ds string",
    )
    bills = _frame(
        spark,
        [
            (
                "B1",
                "U3",
                "huabei",
                1000.0,
                D("2026-09-01"),
                D("2026-09-16"),
                500.0,
                0.0,
                None,
                0,
                D("2026-09-01"),
                D("2026-09-01"),
                "2026-09-01",
            ),
            (
                "B1",
                "U3",
                "huabei",
                1000.0,
                D("2026-09-01"),
                D("2026-09-16"),
                500.0,
                0.0,
                None,
                31,
                D("2026-10-17"),
                D("2026-10-17"),
                "2026-10-17",
            ),
            (
                "B2",
                "U1",
                "jiebei",
                2000.0,
                D("2026-10-01"),
                D("2026-10-16"),
                400.0,
                400.0,
                D("2026-10-10"),
                0,
                D("2026-10-10"),
                D("2026-10-10"),
                "2026-10-10",
            ),
            (
                "B2",
                "U1",
                "jiebei",
                2000.0,
                D("2026-10-01"),
                D("2026-10-16"),
                400.0,
                0.0,
                None,
                0,
                D("2026-10-01"),
                D("2026-10-01"),
                "2026-10-01",
            ),
        ],
        "bill_id string, user_id string, product string, credit_limit double, statement_date date, due_date date, "
        "amount_due double, amount_paid double, paid_date date, days_past_due int, status_date date, event_date date, ds string",
    )
    edges = _frame(
        spark,
        [
            ("U1", "U3", "friend", D("2025-01-01"), D("2025-01-01"), "2026-01-01"),
            ("U2", "U1", "family", D("2025-01-01"), D("2025-01-01"), "2026-01-01"),
        ],
        "src_user_id string, dst_user_id string, relation string, created_date date, event_date date, ds string",
    )
    blacklist = _frame(
        spark,
        [("C1", "U2", "Wuhan", D("2026-11-01"), "debt", D("2026-11-01"), "2026-11-01")],
        "case_id string, user_id string, court string, listed_date date, reason string, event_date date, ds string",
    )
    return {
        "users": users,
        "orders": orders,
        "payments": payments,
        "bills": bills,
        "social_edges": edges,
        "blacklist": blacklist,
    }


def _features(sources, night, last_scores=None):
    daily = daily_aggregates(sources["orders"], sources["payments"])
    return feat.user_features(sources, night, windows_full(daily, night), last_scores=last_scores)


@pytest.fixture(scope="module")
def night_features(sources):
    """The night's features of the hand-written rows, computed once: planning the features query costs seconds."""
    frame = _features(sources, NIGHT)
    return frame.columns, {r["user_id"]: r for r in frame.collect()}


def test_user_features_by_hand(night_features):
    _, rows = night_features
    assert set(rows) == {"U1", "U2", "U3"}
    u1, u2, u3 = rows["U1"], rows["U2"], rows["U3"]
    # orders in the 90 days to the night, delivered by the night: O1, O2, O3 (O4 too old, O5 delivered late)
    assert u1["bp_order_count_90"] == 3
    assert u1["bp_spend_90"] == 150.0
    # payments: salary and utility within 30 days; the transfer only within 90
    assert u1["fc_inflow_30"] == 5000.0
    assert u1["fc_net_flow_90"] == 5000.0 + 300.0 - 200.0 - 100.0
    assert u1["fc_balance"] == 5700.0 and u1["fc_utility_payments_90"] == 1
    # bills: B2 paid before its due date; B1 31 days past due
    assert u1["ch_ontime_rate_365"] == 1.0 and u1["ch_max_dpd_365"] == 0
    assert u1["ch_utilization"] == pytest.approx(0.2)
    assert u3["ch_max_dpd_365"] == 31 and u3["ch_delinquent_bills_365"] == 1 and u3["ch_ontime_rate_365"] == 0.0
    assert u3["ch_credit_age_days"] == (D(NIGHT) - D("2026-09-01")).days
    # social graph (undirected): U1 knows U3 (delinquent) and U2 (listed)
    assert u1["sc_degree"] == 2
    assert u1["sc_neighbor_delinquent_share"] == pytest.approx(0.5)
    assert u1["sc_neighbor_listed_share"] == pytest.approx(0.5)
    # history for the thin-file rule
    assert u2["history_days"] == 3
    # users without events get zero counts, missing balances
    assert u2["bp_order_count_90"] == 0 and u2["fc_balance"] is None


def test_kept_daily_transfers_give_the_features_the_payments_give(sources, night_features):
    """The nightly job reads the 90-day transfer graph from lake/features/daily_transfers, kept per delivery day;
    with every day's transfers kept (later ones too, which the night must leave out) it is the graph the
    payments give."""
    columns, rows = night_features
    daily = daily_aggregates(sources["orders"], sources["payments"])
    kept = feat.daily_transfers(sources["payments"])
    assert kept.count() > 0
    frame = feat.user_features(sources, NIGHT, windows_full(daily, NIGHT), transfers=kept)
    assert frame.columns == columns
    assert {r["user_id"]: r for r in frame.collect()} == rows


def test_neighbours_last_scores_weighted_by_money_exchanged(spark, sources, night_features):
    last = spark.createDataFrame([("U2", 500), ("U3", 800)], "user_id string, score int")
    rows = {r["user_id"]: r for r in _features(sources, NIGHT, last_scores=last).collect()}
    # U1's contacts: U3 (one transfer in the 90 days: weight 2) and U2 (weight 1)
    assert rows["U1"]["sc_neighbor_score_mean"] == pytest.approx((2 * 800 + 500) / 3)
    # U2 and U3 know only U1, who has no published score: no mean rather than a made-up one
    assert rows["U2"]["sc_neighbor_score_mean"] is None and rows["U3"]["sc_neighbor_score_mean"] is None
    # before the first published night there are no scores to average
    assert all(r["sc_neighbor_score_mean"] is None for r in night_features[1].values())


def test_contact_weight_is_bounded(spark, sources):
    many = sources["payments"].unionByName(
        spark.createDataFrame(
            [
                (
                    f"T{i}",
                    "U1",
                    dt.datetime(2026, 11, 20, 9, i),
                    "out",
                    "transfer",
                    1.0,
                    "U3",
                    10.0,
                    0.0,
                    D("2026-11-20"),
                    "2026-11-20",
                )
                for i in range(20)
            ],
            sources["payments"].schema,
        )
    )
    last = spark.createDataFrame([("U2", 500), ("U3", 800)], "user_id string, score int")
    u1 = {r["user_id"]: r for r in _features({**sources, "payments": many}, NIGHT, last).collect()}["U1"]
    # 21 transfers to U3, but a contact weighs at most MAX_CONTACT_WEIGHT times a bare contact
    w = feat.MAX_CONTACT_WEIGHT
    assert u1["sc_neighbor_score_mean"] == pytest.approx((w * 800 + 500) / (w + 1))


def _social_by_hand(contacts, transfers, scores, delinquent, listed):
    """The social characteristics straight from their definition: every contact (both ways) of a user, weighted
    by 1 + the transfers exchanged with it either way, at most MAX_CONTACT_WEIGHT."""
    sent = transfers.groupby(["user_id", "counterparty_id"])["transfers"].sum().to_dict()
    out = {}
    for user, mine in contacts.groupby("user_id")["nbr"]:
        nbrs = list(mine)
        weights = [min(1 + sent.get((user, n), 0) + sent.get((n, user), 0), feat.MAX_CONTACT_WEIGHT) for n in nbrs]
        scored = [(w, scores[n]) for w, n in zip(weights, nbrs) if n in scores]
        out[user] = {
            "sc_degree": float(len(nbrs)),
            "sc_neighbor_delinquent_share": sum(n in delinquent for n in nbrs) / len(nbrs),
            "sc_neighbor_listed_share": sum(n in listed for n in nbrs) / len(nbrs),
            "sc_neighbor_score_mean": sum(w * s for w, s in scored) / sum(w for w, _ in scored) if scored else None,
        }
    return out


def test_social_features_on_a_real_graph_match_their_definition(spark):
    """Zachary's karate club as the contacts, with a self-loop, random transfers between contacts and between
    strangers (which weigh nothing), some transfers to oneself, and a few scored, delinquent and listed users."""
    import networkx as nx
    import numpy as np

    rng = np.random.default_rng(7)
    graph = nx.karate_club_graph()
    edges = [(f"K{a:02d}", f"K{b:02d}") for a, b in graph.edges()] + [("K05", "K05")]
    contacts = pd.DataFrame(edges + [(b, a) for a, b in edges], columns=["user_id", "nbr"]).drop_duplicates()
    users = sorted(set(contacts["user_id"]))
    picks = rng.choice(len(users), size=(120, 2))
    transfers = pd.DataFrame(
        [(users[i], users[j]) for i, j in picks] + [("K07", "K07")] * 2, columns=["user_id", "counterparty_id"]
    )
    transfers["transfers"] = rng.integers(1, 4, len(transfers))
    transfers["amount"] = 10.0
    transfers = transfers.groupby(["user_id", "counterparty_id"], as_index=False).sum()
    scores = {u: float(rng.integers(350, 950)) for u in users if rng.random() < 0.6}
    delinquent = {u for u in users if rng.random() < 0.2}
    listed = {u for u in users if rng.random() < 0.1}
    names = lambda ids: spark.createDataFrame([(u,) for u in sorted(ids)], "user_id string")  # noqa: E731
    got = feat.social_features(
        # the contacts as the state keeps them: each pair once, whoever added whom
        contact_pairs(None, spark.createDataFrame(edges, "src_user_id string, dst_user_id string"), NIGHT),
        names(delinquent),
        names(listed),
        feat.transfer_pairs(
            spark.createDataFrame(transfers, "user_id string, counterparty_id string, transfers long, amount double")
        ),
        spark.createDataFrame(list(scores.items()), "user_id string, score double"),
    )
    got = {r["user_id"]: r.asDict() for r in got.collect()}
    want = _social_by_hand(contacts, transfers, scores, delinquent, listed)
    assert set(got) == set(want) == set(users)
    for user, features in want.items():
        for name, value in features.items():
            assert got[user][name] == (None if value is None else pytest.approx(value)), (user, name)


def test_every_registered_spark_feature_is_computed(night_features):
    """Spark computes exactly the characteristics the registry gives it (dbt's: tests/test_dbt_features.py)."""
    cols, _ = night_features
    not_characteristics = ("user_id", "history_days", "segment", "current_dpd", "feature_timestamp", "ds")
    assert list(SPARK_FEATURES) == [c for c in cols if c not in not_characteristics]


def test_segment_and_current_days_past_due(night_features):
    rows = list(night_features[1].values())
    for r in rows:
        has_file = r["ch_credit_age_days"] is not None
        assert r["segment"] == ("credit_file" if has_file else "no_credit_file"), r["user_id"]
        assert (r["current_dpd"] is not None) == has_file and (r["current_dpd"] or 0) >= 0
    assert {r["segment"] for r in rows} == {"credit_file", "no_credit_file"}


def test_point_in_time_earlier_night_sees_less(sources):
    early = {r["user_id"]: r for r in _features(sources, "2026-11-05").collect()}
    # on 2026-11-05 the KYC snapshot of 2026-11-23 was not delivered yet: no profile, no users
    assert early == {}
    users = sources["users"].withColumn("ds", F.lit("2026-11-01"))
    early = {r["user_id"]: r for r in _features({**sources, "users": users}, "2026-11-05").collect()}
    assert early["U1"]["bp_order_count_90"] == 2  # O2 and O3 only
    assert early["U1"]["fc_balance"] == 1000.0  # the last movement known by then
    assert early["U1"]["sc_neighbor_listed_share"] == pytest.approx(0.5)  # U2, listed on 2026-11-01


def test_last_published_scores_skip_failed_and_later_nights(spark, tmp_path):
    from sesame.config import Settings
    from sesame.snapshots import PUBLISHED_MARKER

    cfg = Settings(home=tmp_path)
    for ds, score, published in [("2026-11-20", 610, True), ("2026-11-21", 620, False), ("2026-11-22", 630, True)]:
        folder = cfg.zone("scores", ds=ds)
        folder.mkdir(parents=True)
        pd.DataFrame({"user_id": ["U1"], "score": [score]}).to_parquet(folder / "part-0.parquet")
        if published:
            (folder / PUBLISHED_MARKER).write_text("run")

    def last(night):
        frame = feat.last_published_scores(spark, cfg, night)
        return None if frame is None else frame.first()["score"]

    assert last("2026-11-20") is None  # nothing was published before the first night
    assert last("2026-11-22") == 610  # the 21st failed: its scores never went out
    assert last("2026-11-23") == 630
    # NIGHT says which run of the 22nd went out; the lake's scores are of another run (a later re-run that failed)
    cfg.published.mkdir()
    (cfg.published / "NIGHT").write_text(
        json.dumps(
            {
                "ds": "2026-11-22",
                "run_id": "other",
                "nights": {"2026-11-20": {"run_id": "run"}, "2026-11-22": {"run_id": "other"}},
            }
        )
    )
    assert last("2026-11-23") == 610


@pytest.mark.parametrize("broadcast_max_rows", [feat.DBT_PART_BROADCAST_MAX_ROWS, 0])
def test_model_input_gives_every_user_of_sparks_table_dbts_characteristics(
    spark, tmp_path, monkeypatch, broadcast_max_rows
):
    """Each user of Spark's feature table with dbt's characteristics beside them (null for a user dbt has none for,
    none for a user only dbt has), whether dbt's part goes to every task or both are shuffled to meet."""
    from sesame.config import Settings
    from sesame.features import DBT_FEATURES

    monkeypatch.setattr(feat, "DBT_PART_BROADCAST_MAX_ROWS", broadcast_max_rows)
    cfg = Settings(home=tmp_path)
    night = "2026-11-23"
    spark_zone, dbt_zone = (cfg.zone("features", t, ds=night) for t in ("user_features", "dbt_user_features"))
    spark_zone.mkdir(parents=True)
    pd.DataFrame({"user_id": ["U1", "U2", "U3"], "sc_degree": [1.0, 2.0, 3.0]}).to_parquet(spark_zone / "p.parquet")
    with pytest.raises(FileNotFoundError, match="dbt_features stage runs before scoring"):
        feat.model_input(spark, cfg, night)
    dbt_zone.mkdir(parents=True)
    dbt_rows = pd.DataFrame({"user_id": ["U3", "U1", "U9"]})
    for i, name in enumerate(DBT_FEATURES):
        dbt_rows[name] = [10.0 * i + 3, 10.0 * i + 1, -1.0]
    dbt_rows.to_parquet(dbt_zone / "p.parquet")

    rows = {r["user_id"]: r.asDict() for r in feat.model_input(spark, cfg, night).collect()}
    assert sorted(rows) == ["U1", "U2", "U3"]
    assert [rows[u]["sc_degree"] for u in ("U1", "U2", "U3")] == [1.0, 2.0, 3.0]
    for i, name in enumerate(DBT_FEATURES):
        assert (rows["U1"][name], rows["U2"][name], rows["U3"][name]) == (10.0 * i + 1, None, 10.0 * i + 3)


def test_transfer_trust_is_pagerank_of_the_money_sent(spark):
    """Each way money went between two users is one edge, weighted by the amount sent that way; money sent to
    oneself is one self-loop, not two: PageRank over the pairs of `transfer_pairs` is networkx's over the directed
    graph of the amounts, scaled so that the average user scores 1."""
    import networkx as nx
    import numpy as np

    rng = np.random.default_rng(11)
    users = [f"K{i:02d}" for i in range(12)]
    sent = [(users[i], users[j], float(rng.integers(1, 50))) for i, j in rng.integers(0, len(users), (60, 2))]
    sent += [("K03", "K03", 7.0), ("K03", "K03", 2.0)]
    frame = spark.createDataFrame(
        [(a, b, 1, amount) for a, b, amount in sent],
        "user_id string, counterparty_id string, transfers long, amount double",
    )
    graph = nx.DiGraph()
    for a, b, amount in sent:
        graph.add_edge(a, b, weight=graph.get_edge_data(a, b, {"weight": 0.0})["weight"] + amount)
    want = nx.pagerank(graph, alpha=0.85, weight="weight", tol=1e-10, max_iter=500)
    got = {
        r["user_id"]: r["sc_transfer_trust"]
        for r in feat.transfer_trust(feat.transfer_pairs(frame).localCheckpoint(), max_iter=200).collect()
    }
    assert set(got) == set(graph.nodes)
    for user, rank in want.items():
        assert got[user] == pytest.approx(rank * graph.number_of_nodes(), rel=1e-4), user


def test_the_steps_of_the_feature_job_name_the_spark_jobs_their_threads_start(spark):
    """What lets benchmarks.event_log charge each step for its tasks: the step a thread is in rides on the Spark
    jobs it starts (a local property of that thread), the innermost step when steps nest, none outside them."""
    from concurrent.futures import ThreadPoolExecutor

    from sesame.spark import STEP_PROPERTY, StepClock

    context, clock = spark.sparkContext, StepClock()
    named = lambda: context.getLocalProperty(STEP_PROPERTY)  # noqa: E731
    with ThreadPoolExecutor(2) as pool:
        with clock("graph"):
            assert named() == "graph"
            # another thread, in a step of its own and then in none
            assert pool.submit(clock.timed("state", named)).result() == "state"
            assert pool.submit(named).result() is None
            with clock("features"):
                assert named() == "features"
            assert named() == "graph"
        assert named() is None
    assert set(clock.seconds) == {"graph", "state", "features"}
