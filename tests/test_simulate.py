"""Tests for the upstream simulator: layout, declared schema, keys, determinism and the behaviour
that makes the data worth modelling (creditworthiness drives outcomes; friends resemble friends)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sesame import identity
from sesame.schemas import SOURCES
from sesame.simulate import SIMULATION_FILE, SUCCESS_MARKER, generate, simulate
from sesame.simulate import parameters as simulate_parameters

END = date(2025, 3, 31)
USERS, DAYS = 300, 40
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
ARROW = {"string": pa.string(), "int": pa.int32(), "double": pa.float64(), "date": pa.date32()}


def _ds_list(end: date, days: int) -> list[str]:
    return [(end - timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]


def _read(path: Path, fmt: str) -> pd.DataFrame:
    """Read a delivery as raw as possible: CSV as strings, JSON as Python values, Parquet typed."""
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        cols = list(rows[0]) if rows else []
        return pd.DataFrame(rows, columns=cols)
    return pq.read_table(path).to_pandas()


def _load(raw: Path, name: str) -> pd.DataFrame:
    src = SOURCES[name]
    parts = []
    for folder in sorted((raw / name).glob("ds=*")):
        df = _read(folder / src.file, src.format)
        df["_ds"] = folder.name[3:]
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    simulate(out, USERS, DAYS, END, seed=7)
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A larger population for the statistical checks."""
    out = tmp_path_factory.mktemp("big")
    simulate(out, 2000, 45, END, seed=11)
    return out


# ---- layout ---------------------------------------------------------------------------------------


def test_every_delivery_has_its_file_and_marker(raw):
    expected = _ds_list(END, DAYS)
    for name, src in SOURCES.items():
        folders = sorted(p.name for p in (raw / name).iterdir())
        assert folders == [f"ds={ds}" for ds in expected], name
        for ds in expected:
            folder = raw / name / f"ds={ds}"
            assert sorted(p.name for p in folder.iterdir()) == sorted([src.file, SUCCESS_MARKER])
            assert (folder / SUCCESS_MARKER).stat().st_mtime_ns >= (folder / src.file).stat().st_mtime_ns


def test_every_marker_carries_the_control_totals_of_its_file(raw):
    for name, src in SOURCES.items():
        for ds in _ds_list(END, DAYS)[-3:]:
            folder = raw / name / f"ds={ds}"
            marker = json.loads((folder / SUCCESS_MARKER).read_text())
            data = (folder / src.file).read_bytes()
            assert marker == {
                "source": name,
                "ds": ds,
                "files": [
                    {
                        "path": src.file,
                        "records": len(_read(folder / src.file, src.format)),
                        "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                ],
            }, (name, ds)


def test_end_ds_and_days_give_exactly_those_folders(tmp_path):
    summary = simulate(tmp_path, 40, 3, date(2024, 1, 1), seed=3)
    assert sorted(p.name for p in (tmp_path / "orders").iterdir()) == [
        "ds=2023-12-30",
        "ds=2023-12-31",
        "ds=2024-01-01",
    ]
    assert summary["start_ds"] == "2023-12-30" and summary["end_ds"] == "2024-01-01"


def test_summary_matches_files(raw):
    meta = json.loads((raw / SIMULATION_FILE).read_text())
    assert (meta["users"], meta["days"], meta["end_ds"], meta["seed"]) == (USERS, DAYS, END.isoformat(), 7)
    assert sorted(meta["rows"]) == sorted(meta["per_day"]) == sorted(SOURCES)
    for name, src in SOURCES.items():
        per_day = meta["per_day"][name]
        assert sorted(per_day) == _ds_list(END, DAYS)
        for ds, n in per_day.items():
            assert len(_read(raw / name / f"ds={ds}" / src.file, src.format)) == n
        assert meta["rows"][name] == sum(per_day.values())
    assert meta["per_day"]["users"][END.isoformat()] == USERS


# ---- declared schema ------------------------------------------------------------------------------


def _check_value_types(name: str, df: pd.DataFrame) -> None:
    src = SOURCES[name]
    for col in src.columns:
        s = df[col.name]
        present = s[s.notna() & (s.astype(str) != "")]
        if col.type == "date":
            if src.format == "parquet":
                continue  # checked through the Arrow schema
            assert present.astype(str).str.match(DATE_RE).all(), (name, col.name)
            pd.to_datetime(present, format="%Y-%m-%d")  # real dates
        elif col.type == "timestamp":
            assert present.astype(str).str.match(TS_RE).all(), (name, col.name)
            pd.to_datetime(present, format="%Y-%m-%dT%H:%M:%S")
        elif col.type == "int":
            if src.format == "csv":
                assert present.str.fullmatch(r"-?\d+").all(), (name, col.name)
        elif col.type == "double":
            values = present.astype(float)
            assert np.allclose(values, values.round(2), atol=1e-9, rtol=0), (name, col.name)
            if src.format == "jsonl":
                assert all(isinstance(v, (int, float)) for v in present), (name, col.name)


def _check_constraints(name: str, df: pd.DataFrame) -> None:
    for col in SOURCES[name].columns:
        s = df[col.name]
        missing = s.isna() | (s.astype(str) == "")
        if col.required:
            assert not missing.any(), (name, col.name)
        present = s[~missing]
        if col.allowed is not None:
            assert set(present.astype(str)) <= set(col.allowed), (name, col.name, set(present.astype(str)))
        if col.min is not None or col.max is not None:
            values = present.astype(float)
            if col.min is not None:
                assert (values >= col.min).all(), (name, col.name, values.min())
            if col.max is not None:
                assert (values <= col.max).all(), (name, col.name, values.max())


@pytest.mark.parametrize("name", list(SOURCES))
def test_columns_types_and_constraints(raw, name):
    src = SOURCES[name]
    for folder in sorted((raw / name).glob("ds=*")):
        path = folder / src.file
        if src.format == "parquet":
            schema = pq.read_schema(path)
            assert schema.names == src.column_names
            for col in src.columns:
                assert schema.field(col.name).type == ARROW[col.type], (name, col.name)
        elif src.format == "csv":
            header = path.read_text(encoding="utf-8").split("\n", 1)[0]
            assert header.split(",") == src.column_names
        else:
            for line in path.read_text(encoding="utf-8").splitlines():
                assert list(json.loads(line)) == src.column_names
        df = _read(path, src.format)
        assert list(df.columns) == src.column_names or len(df) == 0
        if len(df):
            _check_value_types(name, df)
            _check_constraints(name, df)


def test_frames_from_generate_follow_the_schema():
    seen = set()
    for name, ds, frame in generate(60, 2, END, seed=5):
        assert list(frame.columns) == SOURCES[name].column_names
        seen.add((name, ds))
    assert len(seen) == 2 * len(SOURCES)


# ---- keys and event dates -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_natural_keys_unique_within_each_delivery(raw, name):
    df = _load(raw, name)
    key = list(SOURCES[name].key)
    assert not df.duplicated(key + ["_ds"]).any()


@pytest.mark.parametrize("name,col", [("orders", "order_id"), ("payments", "payment_id"), ("blacklist", "case_id")])
def test_ids_unique_across_days(raw, name, col):
    df = _load(raw, name)
    assert df[col].is_unique


def test_bills_and_edges_keys_unique_across_days(raw):
    bills = _load(raw, "bills")
    assert not bills.duplicated(["bill_id", "status_date"]).any()
    edges = _load(raw, "social_edges")
    assert not edges.duplicated(["src_user_id", "dst_user_id", "relation"]).any()
    assert (edges.src_user_id != edges.dst_user_id).all()
    pair = edges[["src_user_id", "dst_user_id"]].apply(lambda r: tuple(sorted(r)), axis=1)
    assert pair.is_unique


def test_events_land_on_their_delivery_day_except_first_day_history(raw):
    first = _ds_list(END, DAYS)[0]
    for name in ("orders", "payments"):
        df = _load(raw, name)
        ts = df[SOURCES[name].event_col].astype(str).str[:10]
        assert (ts == df["_ds"]).all(), name
    for name in ("bills", "social_edges", "blacklist"):
        df = _load(raw, name)
        when = pd.to_datetime(df[SOURCES[name].event_col]).dt.strftime("%Y-%m-%d")
        later = df["_ds"] != first
        assert (when[later] == df["_ds"][later]).all(), name
        assert (when[~later] <= first).all(), name
    # the first delivery carries about a year of statement history
    bills = _load(raw, "bills")
    hist = pd.to_datetime(bills.loc[bills._ds == first, "status_date"])
    assert hist.min() <= pd.Timestamp(first) - pd.Timedelta(days=330)


def test_users_snapshot_grows_and_covers_every_event_user(raw):
    users = _load(raw, "users")
    counts = users.groupby("_ds").size()
    assert counts.is_monotonic_increasing
    assert counts.iloc[-1] == USERS and counts.iloc[0] < USERS  # some register during the window
    assert users.groupby("_ds").user_id.apply(lambda s: s.is_unique).all()
    assert users.user_id.str.fullmatch(r"U\d{8}").all()
    assert (users.registered_date <= users._ds).all()
    registered = set(users.user_id)
    for name, cols in (
        ("orders", ["user_id"]),
        ("payments", ["user_id", "counterparty_id"]),
        ("bills", ["user_id"]),
        ("social_edges", ["src_user_id", "dst_user_id"]),
        ("blacklist", ["user_id"]),
    ):
        df = _load(raw, name)
        for col in cols:
            values = set(df[col][df[col].notna() & (df[col].astype(str) != "")])
            assert values <= registered, (name, col)
    # a user's registration date never changes; an address move resets address_months
    assert (users.groupby("user_id").registered_date.nunique() == 1).all()


def test_identity_card_numbers_are_valid_unique_and_agree_with_the_profile(big):
    """Each user's resident identity number carries a correct check character, is the user's alone, never changes,
    and encodes the same sex and birth year as the profile; its division is a known city's."""
    users = _load(big, "users")
    users = users[users["_ds"] == users["_ds"].max()]
    numbers = users["id_document_number"].astype(str)
    assert numbers.map(identity.is_valid).all() and numbers.is_unique
    assert ((numbers.str[16].astype(int) % 2 == 1) == (users["gender"] == "M")).all()
    stated = pd.to_numeric(users["birth_year"], errors="coerce")  # the profile leaves it out now and then
    assert stated.notna().mean() > 0.9
    assert (numbers.str[6:10].astype(int)[stated.notna()] == stated[stated.notna()]).all()
    assert numbers.str[:4].astype(int).isin(simulate_parameters._CITY_DIVISION.values()).all()
    assert pd.to_datetime(numbers.str[6:14], format="%Y%m%d", errors="coerce").notna().all()
    every_day = _load(big, "users").groupby("user_id")["id_document_number"].nunique()
    assert (every_day == 1).all()


def test_orders_and_payments_are_recorded_only_after_registration(raw):
    users = _load(raw, "users")
    reg = users.drop_duplicates("user_id").set_index("user_id").registered_date
    for name in ("orders", "payments"):
        df = _load(raw, name)
        assert (df["_ds"] >= df.user_id.map(reg)).all(), name


# ---- consistency inside sources -------------------------------------------------------------------


def test_wallet_balances_follow_the_movements(raw):
    pay = _load(raw, "payments")
    for col in ("amount", "balance_after", "wealth_balance_after"):
        pay[col] = pay[col].astype(float)
    pay = pay.sort_values(["user_id", "payment_ts", "payment_id"])
    sign = np.where(pay.direction == "out", -1.0, 1.0)
    prev = pay.groupby(["user_id", "_ds"]).balance_after.shift()
    step = (pay.balance_after - prev).round(2)
    ok = prev.isna() | np.isclose(step, (sign * pay.amount).round(2), atol=0.005)
    assert ok.all()
    assert (pay.balance_after >= 0).all() and (pay.wealth_balance_after >= 0).all()
    # wealth moves only with wealth products
    wprev = pay.groupby(["user_id", "_ds"]).wealth_balance_after.shift()
    wstep = (pay.wealth_balance_after - wprev).round(2)
    expected = np.select([pay.kind == "wealth_buy", pay.kind == "wealth_redeem"], [pay.amount, -pay.amount], 0.0)
    assert (wprev.isna() | np.isclose(wstep, expected, atol=0.005)).all()
    # transfers between users come in pairs; salary and merchant payments have the right direction
    transfers = pay[(pay.kind == "transfer") & (pay.counterparty_id != "")]
    outs = transfers[transfers.direction == "out"]
    ins = transfers[transfers.direction == "in"]
    assert len(outs) == len(ins) > 0
    assert set(pay.loc[pay.kind == "salary", "direction"]) == {"in"}
    assert set(pay.loc[pay.kind.isin(["merchant", "utility", "wealth_buy"]), "direction"]) == {"out"}
    assert (pay.loc[pay.kind != "transfer", "counterparty_id"] == "").all()


def test_bill_lifecycle_rows(raw):
    bills = _load(raw, "bills")
    for col in ("statement_date", "due_date", "paid_date", "status_date"):
        bills[col] = pd.to_datetime(bills[col])
    assert ((bills.due_date - bills.statement_date).dt.days == 15).all()
    paid = bills[bills.paid_date.notna()]
    unpaid = bills[bills.paid_date.isna()]
    assert (paid.paid_date == paid.status_date).all()
    assert (paid.days_past_due == (paid.paid_date - paid.due_date).dt.days.clip(lower=0)).all()
    assert (paid.amount_paid >= paid.amount_due - 0.005).all()
    statements = unpaid[unpaid.status_date == unpaid.statement_date]
    assert (statements.days_past_due == 0).all() and (statements.amount_paid == 0).all()
    overdue = unpaid[unpaid.status_date != unpaid.statement_date]
    assert set(overdue.days_past_due) <= {1, 31, 61, 91, 121, 151, 181}
    assert (overdue.days_past_due == (overdue.status_date - overdue.due_date).dt.days).all()
    assert (bills.amount_due <= bills.credit_limit + 0.005).all()
    # one product per user: roughly 70% of users hold one
    users = _load(raw, "users")
    share = bills.user_id.nunique() / users.user_id.nunique()
    assert 0.5 < share < 0.85
    assert set(bills["product"]) == {"huabei", "jiebei"}


def test_graph_density_and_first_day_graph(raw):
    edges = _load(raw, "social_edges")
    users = _load(raw, "users").drop_duplicates("user_id")
    degree = 2 * len(edges) / len(users)
    assert 8 <= degree <= 20
    first = _ds_list(END, DAYS)[0]
    assert (edges._ds == first).mean() > 0.85  # the first delivery holds the graph so far


def test_blacklist_size(raw):
    bl = _load(raw, "blacklist")
    first = _ds_list(END, DAYS)[0]
    initial = (bl._ds == first).sum()
    assert 1 <= initial <= 0.02 * USERS
    assert bl.user_id.is_unique


# ---- determinism ----------------------------------------------------------------------------------


def _digest(raw: Path) -> dict[str, bytes]:
    return {str(p.relative_to(raw)): p.read_bytes() for p in sorted(raw.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(a, 120, 6, END, seed=21)
    simulate(b, 120, 6, END, seed=21)
    simulate(c, 120, 6, END, seed=22)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db
    assert da.keys() == dc.keys()
    for name, src in SOURCES.items():
        if name == "blacklist":
            continue  # a handful of rows may coincide by chance
        files = [k for k in da if k.startswith(f"{name}/") and k.endswith(src.file)]
        assert any(da[k] != dc[k] for k in files), name


def test_rerun_into_the_same_folder_replaces_files(tmp_path):
    simulate(tmp_path, 50, 2, END, seed=1)
    before = _digest(tmp_path)
    simulate(tmp_path, 50, 2, END, seed=1)
    assert _digest(tmp_path) == before
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind


def test_progress_is_silent_without_a_terminal(tmp_path, capsys):
    simulate(tmp_path, 30, 2, END, seed=1, progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        simulate(tmp_path, 0, 5, END)
    with pytest.raises(ValueError):
        simulate(tmp_path, 10, 0, END)


def test_volume_knobs_multiply_activity_and_contacts_but_not_the_money_spent():
    def day_frames(**volume):
        """The second day's deliveries, but the first day's social edges (the graph as it stands)."""
        first = (END - timedelta(days=1)).isoformat()
        return {
            name: frame
            for name, ds, frame in generate(4000, 2, END, seed=9, **volume)
            if ds == (first if name == "social_edges" else END.isoformat())
        }

    base, busy = day_frames(), day_frames(activity=2.0, contacts=2.0)
    for name in ("orders", "payments"):
        assert 1.7 < len(busy[name]) / len(base[name]) < 2.3, name

    def merchant(frames):
        pays = frames["payments"]
        return pays.loc[pays["kind"] == "merchant", "amount"]

    # twice the merchant payments, each about half as large: the money spent stays the same
    assert 1.8 < len(merchant(busy)) / len(merchant(base)) < 2.2
    assert 0.85 < merchant(busy).sum() / merchant(base).sum() < 1.15
    # the first delivery holds the graph as it stands: twice the mean degree, less what small communities cap
    assert 1.6 < len(busy["social_edges"]) / len(base["social_edges"]) < 2.1
    # the population itself does not change
    assert busy["users"]["user_id"].tolist() == base["users"]["user_id"].tolist()
    with pytest.raises(ValueError):
        next(generate(10, 1, END, activity=0))


def test_cli_records_the_volume_knobs_and_refuses_a_non_positive_one(tmp_path, monkeypatch, capsys):
    from sesame.cli import main

    monkeypatch.setenv("SESAME_HOME", str(tmp_path))
    args = ["simulate", "--users", "30", "--days", "1", "--end-ds", END.isoformat()]
    assert main([*args, "--activity", "0"]) == 2
    assert "--activity" in capsys.readouterr().err
    assert main([*args, "--activity", "1.5", "--contacts", "2"]) == 0
    summary = json.loads((tmp_path / "lake" / "raw" / SIMULATION_FILE).read_text())
    assert (summary["activity"], summary["contacts"]) == (1.5, 2.0)


# ---- behaviour: the hidden creditworthiness drives every source ------------------------------------


@pytest.fixture(scope="module")
def behaviour(big):
    bills = _load(big, "bills")
    users = _load(big, "users").drop_duplicates("user_id", keep="last").set_index("user_id")
    d30 = set(bills.loc[bills.days_past_due >= 30, "user_id"])
    holders = set(bills.user_id)
    return big, bills, users, d30, holders


def test_delinquent_users_earn_less_and_cancel_more(behaviour):
    raw, _, users, d30, holders = behaviour
    pay = _load(raw, "payments")
    pay["amount"] = pay.amount.astype(float)
    inflow = pay[pay.direction == "in"].groupby("user_id").amount.sum()
    salary = pay[pay.kind == "salary"].groupby("user_id").amount.sum()
    frame = pd.DataFrame(index=sorted(holders))
    frame["bad"] = frame.index.isin(d30)
    frame["inflow"] = inflow.reindex(frame.index).fillna(0)
    frame["salary"] = salary.reindex(frame.index).fillna(0)
    assert 0.05 < frame.bad.mean() < 0.4
    # behaviour is a noisy proxy: the direction of every effect holds, not its old strength
    med = frame.groupby("bad").median()
    assert med.loc[True, "inflow"] < 0.9 * med.loc[False, "inflow"]
    assert frame.groupby("bad").salary.mean()[True] < 0.8 * frame.groupby("bad").salary.mean()[False]

    orders = _load(raw, "orders")
    orders["bad"] = orders.user_id.isin(d30)
    cancel = orders.assign(c=orders.status == "cancelled").groupby("bad").c.mean()
    assert cancel[True] > 1.15 * cancel[False]
    ret = orders.assign(r=orders.status == "returned").groupby("bad").r.mean()
    assert ret[True] > ret[False]
    # essential spending share is higher for users who pay their bills
    done = orders[orders.status == "completed"].copy()
    done["amount"] = done.amount.astype(float)
    done["ess"] = done.category.isin(["groceries", "food_delivery", "cleaning", "car_repair", "home"])
    share = done.assign(e=done.amount * done.ess).groupby("user_id")[["e", "amount"]].sum()
    share = (share.e / share.amount).rename("s").to_frame()
    share["bad"] = share.index.isin(d30)
    assert share.groupby("bad").s.mean()[False] > share.groupby("bad").s.mean()[True]


def test_identity_traits_and_court_list_follow_creditworthiness(behaviour):
    raw, _, users, d30, holders = behaviour
    users = users.copy()
    users["bad"] = users.index.isin(d30)
    verified = users.groupby("bad").identity_verified.apply(lambda s: s.astype(int).mean())
    assert verified[False] > verified[True]
    bl = _load(raw, "blacklist")
    listed_bad = bl.user_id.isin(d30).mean()
    assert listed_bad > 2 * users.bad.mean()
    first = _ds_list(END, 45)[0]
    n_users = (_load(raw, "users")._ds == first).sum()
    assert 0.003 * n_users <= (bl._ds == first).sum() <= 0.02 * n_users


def test_prior_delinquency_predicts_future_delinquency(behaviour):
    raw, bills, _, _, _ = behaviour
    first = pd.Timestamp(_ds_list(END, 45)[0])
    bills = bills.copy()
    bills["status_date"] = pd.to_datetime(bills.status_date)
    obs = first - pd.Timedelta(days=120)  # inside the delivered history
    before = bills[bills.status_date <= obs]
    after = bills[(bills.status_date > obs) & (bills.status_date <= obs + pd.Timedelta(days=120))]
    holders = before.user_id.unique()
    prior = before[before.status_date > obs - pd.Timedelta(days=240)].groupby("user_id").days_past_due.max()
    later = set(after.loc[after.days_past_due >= 90, "user_id"])
    frame = pd.DataFrame({"prior": prior.reindex(holders).fillna(0)}, index=holders)
    frame["bad"] = frame.index.isin(later)
    clean = frame.loc[frame.prior == 0, "bad"].mean()
    dirty = frame.loc[frame.prior >= 30, "bad"].mean()
    assert 0.005 < frame.bad.mean() < 0.08  # 90+ within 120 days: about 1% since the recalibration
    assert dirty > 4 * clean


def test_friends_of_delinquent_users_are_delinquent_more_often(behaviour):
    raw, _, users, d30, _ = behaviour
    edges = _load(raw, "social_edges")
    both = pd.concat(
        [
            edges[["src_user_id", "dst_user_id"]].set_axis(["u", "v"], axis=1),
            edges[["dst_user_id", "src_user_id"]].set_axis(["u", "v"], axis=1),
        ]
    )
    both["u_bad"] = both.u.isin(d30)
    both["v_bad"] = both.v.isin(d30)
    of_bad = both[both.u_bad].groupby("u").v_bad.mean().mean()
    of_good = both[~both.u_bad].groupby("u").v_bad.mean().mean()
    assert of_bad > 1.15 * of_good
    assert of_bad > users.index.isin(d30).mean()


def test_protected_attributes_do_not_drive_delinquency(behaviour):
    _, _, users, d30, holders = behaviour
    h = users.loc[users.index.isin(holders)].copy()
    h["bad"] = h.index.isin(d30)
    by_gender = h.groupby("gender").bad.mean()
    assert abs(by_gender["F"] - by_gender["M"]) < 0.07
    age = END.year - h.birth_year.astype(int)
    young, old = h.bad[age < 35].mean(), h.bad[age >= 35].mean()
    assert abs(young - old) < 0.07


def test_income_barely_depends_on_age(behaviour):
    raw, _, users, _, _ = behaviour
    pay = _load(raw, "payments")
    pay["amount"] = pay.amount.astype(float)
    salary = pay[pay.kind == "salary"].groupby("user_id").amount.median()
    age = END.year - users.birth_year.astype(int)
    band = pd.cut(age, [0, 30, 45, 200], right=False, labels=["<30", "30-44", "45+"])
    med = salary.groupby(band.reindex(salary.index), observed=True).median()
    assert len(med) == 3 and med.max() / med.min() < 1.2
    salaried = pd.Series(users.index.isin(salary.index), index=users.index).groupby(band, observed=True).mean()
    assert salaried.max() / salaried.min() < 1.25


# ---- realism: outcomes are predictable, but far from perfectly -------------------------------------


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    ranks = pd.Series(score).rank().to_numpy()
    pos = int(y.sum())
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


@pytest.fixture(scope="module")
def outcomes():
    """3,000 users' first-day bill history (a year): credit history up to an observation date 100
    days back, and whether a bill reaches 90 days past due in the 90 days after it."""
    bills = next(frame for name, _, frame in generate(3000, 1, END, seed=11) if name == "bills")
    bills = pd.DataFrame(
        {
            "user_id": bills.user_id.astype(str),
            "bill_id": bills.bill_id.astype(str),
            "status_date": bills.status_date.astype(str),
            "dpd": bills.days_past_due,
        }
    )
    obs = (END - timedelta(days=100)).isoformat()
    until = (END - timedelta(days=10)).isoformat()
    before = bills[bills.status_date <= obs]
    after = bills[(bills.status_date > obs) & (bills.status_date <= until)]
    frame = pd.DataFrame(index=pd.Index(before.user_id.unique()))
    frame["worst"] = before.groupby("user_id").dpd.max()
    frame["delinquent_bills"] = before[before.dpd >= 30].groupby("user_id").bill_id.nunique()
    frame = frame.fillna(0)
    frame["bad"] = frame.index.isin(set(after.loc[after.dpd >= 90, "user_id"]))
    return frame


def test_bad_rate_is_in_a_realistic_range(outcomes):
    assert len(outcomes) > 1500
    # 90+ within 90 days, users already in arrears included (a few percent a year since the recalibration)
    assert 0.01 < outcomes.bad.mean() < 0.05


# ---- the platform's performance definition ------------------------------------------------------------

PERF_USERS, PERF_DAYS = 8000, 456
PERF_START = END - timedelta(days=PERF_DAYS - 1)


@pytest.fixture(scope="module")
def performance():
    """Bills and registration dates of 8,000 users over 456 days (plus the year of bill history in the
    first delivery). Few payments, orders and contacts: the volume knobs do not touch the credit history."""
    keep = ["bill_id", "user_id", "statement_date", "due_date", "paid_date", "days_past_due", "status_date"]
    bills, users = [], None
    for name, _, frame in generate(PERF_USERS, PERF_DAYS, END, seed=7, activity=0.05, contacts=0.1):
        if name == "bills":
            bills.append(frame[keep])
        elif name == "users":
            users = frame[["user_id", "registered_date"]]
    bills = pd.concat(bills, ignore_index=True)
    for col in ("user_id", "bill_id"):
        bills[col] = bills[col].astype(str)
    for col in ("statement_date", "due_date", "paid_date", "status_date"):
        bills[col] = pd.to_datetime(bills[col].astype("datetime64[s]"))
    users = pd.DataFrame(
        {
            "user_id": users.user_id.astype(str),
            "registered": pd.to_datetime(users.registered_date.astype("datetime64[s]")),
        }
    )
    return bills, users


def _performance_at(bills: pd.DataFrame, users: pd.DataFrame, obs: date) -> pd.DataFrame:
    """One row per user registered by `obs`: credit file, default, opening and outcome as the model's
    performance definition has them (365 days of performance after `obs`)."""
    d = pd.Timestamp(obs)
    until = d + pd.Timedelta(days=365)
    out = users.loc[users.registered <= d, ["user_id"]].set_index("user_id")
    first = bills.groupby("user_id").statement_date.min()
    first = first.reindex(out.index)
    out["file"] = first <= d
    # in default at obs: a bill due 90+ days before obs with no payment recorded by obs (charge-offs included)
    known = bills[bills.statement_date <= d]
    paid = known.loc[known.paid_date.notna() & (known.paid_date <= d), "bill_id"].unique()
    late = known[(d - known.due_date).dt.days >= 90]
    out["default"] = out.index.isin(late.loc[~late.bill_id.isin(paid), "user_id"].unique())
    window = bills[(bills.status_date > d) & (bills.status_date <= until)]
    out["bad"] = out.index.isin(window.loc[window.days_past_due >= 90, "user_id"].unique())
    out["opens"] = ~out.file & (first > d) & (first <= until)
    # credit history up to obs: the worst days past due and the bills 30+ days late in the last year
    hist = bills[(bills.status_date <= d) & (bills.status_date > d - pd.Timedelta(days=365))]
    out["worst"] = hist.groupby("user_id").days_past_due.max().reindex(out.index).fillna(0)
    out["late_bills"] = hist[hist.days_past_due >= 30].groupby("user_id").bill_id.nunique().reindex(out.index).fillna(0)
    return out


def test_performance_definition_rates_are_realistic_and_steady(performance):
    bills, users = performance
    rates = {}
    for obs in (PERF_START - timedelta(days=180), PERF_START + timedelta(days=90)):
        p = _performance_at(bills, users, obs)
        scored = p[p.file & ~p.default]
        no_file = p[~p.file]
        opened = no_file[no_file.opens]
        rates[obs] = (scored.bad.mean(), len(no_file) / len(p), len(opened) / len(no_file), opened.bad.mean())
        assert len(scored) > 3000 and len(opened) > 300
    for holders_bad, no_file_share, open_share, new_bad in rates.values():
        # (a) credit-file users not in default reach 90+ within a year at a few percent
        assert 0.02 < holders_bad < 0.05
        # (b) a quarter or so of the registered users have no credit file
        assert 0.20 < no_file_share < 0.40
        # (c) a steady share of them opens a product within the year; new-to-credit users go bad more often
        assert 0.25 < open_share < 0.40
        assert 0.03 < new_bad < 0.12 and new_bad > holders_bad
    # steady over time, not a one-off cohort
    early, late = rates.values()
    assert abs(early[1] - late[1]) < 0.04 and abs(early[2] - late[2]) < 0.05
    # charged-off users stay in default, but they are few
    p = _performance_at(bills, users, END - timedelta(days=1))
    assert p.default[p.file].mean() < 0.04


def test_credit_history_predicts_outcomes_but_not_perfectly(performance):
    bills, users = performance
    p = _performance_at(bills, users, PERF_START + timedelta(days=90))
    p = p[p.file & ~p.default]
    y = p.bad.to_numpy()
    auc = _auc(y, (p.worst + 1000 * p.late_bills).to_numpy())
    assert 0.7 < auc < 0.9
    # some users without any serious delinquency go 90+ (shocks hit good payers too) ...
    clean = p.worst < 30
    assert (clean & p.bad).sum() >= 5
    # ... and prior delinquency is a strong signal, not a verdict: most who were late before cure
    assert p.bad[p.worst >= 30].mean() > 4 * p.bad[clean].mean()
    assert p.bad[p.worst >= 30].mean() < 0.25
    assert p.bad[p.worst >= 90].mean() < 0.3
