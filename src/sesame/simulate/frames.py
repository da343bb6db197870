"""The day's frame of each source, read from the world (in schema column order once `generate` has
finished them). Some builders change the world's state as they go (payments move wallet balances, the court
list records new judgements), so they are called once a day, in the sources' order."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from sesame.schemas import LOCAL_SERVICE_CATEGORIES, ORDER_CATEGORIES, RELATIONS
from sesame.simulate.arrays import (
    _cents,
    _fixed_width,
    _frame,
    _group_cumsum,
    _hours_to_secs,
    _ids,
    _lookup,
    _money,
    _nulls,
    _sigmoid,
    _take,
    _texts,
    _timestamps,
)
from sesame.simulate.parameters import (
    _CAT_AMOUNT,
    _CAT_BASE_WEIGHT,
    _CAT_INDEX,
    _DOW_MERCHANT,
    _DOW_ORDERS,
    _FRAUD,
    _JOB_LOSS,
    _MAX_AMOUNT_CENTS,
    _MEAL_HOURS,
    _NORMAL_HOURS,
    _ORDER_STATUS_NAMES,
    _ORDER_SUBGROUPS,
    _PAY,
    BLACKLIST_REASONS,
)
from sesame.simulate.world import BillRows, World


# ---- bills ---------------------------------------------------------------------------------------
def bills_frame(world: World, rows: BillRows) -> pd.DataFrame:
    """One row per status change; columns are built one by one to keep a year of history small."""
    o = np.lexsort((rows.bill, rows.status))
    b = rows.bill[o]
    u = world.bills["user"][b]
    stmt = world.bills["stmt"][b]
    cols: dict[str, object] = {}
    cols["bill_id"] = _fixed_width(["B", (u + 1, 8), (world._ymd_num[stmt - world._date_base], 8)], len(u))
    cols["user_id"] = _take(world.uid, u)
    cols["product"] = _take(world._product_pa, world.product[u])
    del u
    cols["credit_limit"] = _money(world.bills["limit"][b])
    cols["statement_date"] = world.dates(stmt)
    cols["due_date"] = world.dates(stmt + 15)
    del stmt
    cols["amount_due"] = _money(world.bills["amount"][b])
    del b
    cols["amount_paid"] = _money(rows.paid_cents[o])
    paid = rows.paid[o]
    cols["paid_date"] = world.dates(paid, null=paid < 0)
    del paid
    cols["days_past_due"] = rows.dpd[o].astype(np.int32)
    cols["status_date"] = world.dates(rows.status[o])
    return _frame(cols)


# ---- users ---------------------------------------------------------------------------------------
def users_frame(world: World, d: int) -> pd.DataFrame:
    n = world.n_reg(d)
    return _frame(
        {
            "user_id": world.uid[:n],
            "full_name": world.full_name[:n],
            "gender": world.gender_pa[:n],
            "birth_year": world.birth_year[:n],
            "city": _take(world._city_name_pa, world.city[:n]),
            "city_tier": world._city_tier[world.city[:n]],
            "registered_date": world.dates(world.reg[:n]),
            "identity_verified": (world.verify[:n] <= d).astype(np.int64),
            "phone_tenure_months": np.clip((d - world.phone_start[:n]) * 12 // 365, 0, 600),
            "address_months": np.clip((d - world.addr_start[:n]) * 12 // 365, 0, 1200),
            "occupation": world.occupation[:n],
            "id_document_number": world.id_number[:n],
        }
    )


# ---- orders --------------------------------------------------------------------------------------
def orders_frame(world: World, d: int) -> pd.DataFrame:
    rng = world.rng("orders", d)
    day = date.fromordinal(d)
    n = world.n_reg(d)
    c = world.c_now()
    season = 1.0 + 0.08 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 350) / 365.0)
    season *= {(11, 11): 2.2, (11, 10): 1.3, (6, 18): 1.6, (12, 12): 1.4}.get((day.month, day.day), 1.0)
    lam = (
        world.order_rate[:n]
        * _DOW_ORDERS[day.weekday()]
        * season
        * np.where(world.distress[:n], 0.8, 1.0)
        * np.where(world.shock[:n] == _JOB_LOSS, 0.85, 1.0)
    )
    k = rng.poisson(lam)
    u = np.repeat(np.arange(n), k)
    m = len(u)
    # category: essential or not, local service or not (user habits), then by the day's weights
    weights = dict(_CAT_BASE_WEIGHT)
    if day.weekday() >= 5:
        weights["food_delivery"] *= 1.2
    if day.month in (7, 8) or (day.month == 10 and day.day <= 7):
        weights["travel"] *= 1.6
    if (day.month, day.day) in ((2, 14), (5, 20), (3, 8)):
        weights["flowers"] *= 5.0
    cum = np.zeros((4, len(ORDER_CATEGORIES)))
    for g, cats in enumerate(_ORDER_SUBGROUPS):
        wv = np.array([weights[cat] if cat in cats else 0.0 for cat in ORDER_CATEGORIES])
        cum[g] = np.cumsum(wv) / wv.sum()
    sub = (rng.random(m) < world.p_ess[u]).astype(np.int64) * 2 + (rng.random(m) < world.p_local[u])
    cat = np.minimum((rng.random(m)[:, None] >= cum[sub]).sum(axis=1), len(ORDER_CATEGORIES) - 1)
    med = np.array([_CAT_AMOUNT[x][0] for x in ORDER_CATEGORIES])
    sig = np.array([_CAT_AMOUNT[x][1] for x in ORDER_CATEGORIES])
    ret = np.array([_CAT_AMOUNT[x][2] for x in ORDER_CATEGORIES])
    amount = np.exp(np.log(med[cat]) + 0.25 * np.log(world.inc_rel[u]) + sig[cat] * rng.standard_normal(m))
    cents = np.clip(_cents(amount), 1, 20_000_000)
    cu = c[u]
    dis = world.distress[u]
    p_cancel = _sigmoid(-3.0 - 0.45 * cu + 0.7 * dis + world.cancel_bias[u])
    p_return = _sigmoid(ret[cat] - 0.3 * cu + 0.4 * dis + world.return_bias[u])
    r = rng.random(m)
    status = np.where(r < p_cancel, 1, np.where(r < p_cancel + p_return, 2, 0))  # _ORDER_STATUS_NAMES
    meal = cat == _CAT_INDEX["food_delivery"]
    secs = np.where(meal, _hours_to_secs(rng, m, _MEAL_HOURS), _hours_to_secs(rng, m, _NORMAL_HOURS))
    local = np.isin(cat, [_CAT_INDEX[x] for x in LOCAL_SERVICE_CATEGORIES])
    rank = np.floor(600 * rng.random(m) ** 3).astype(np.int64)
    merchant = cat * 1_000_000 + np.where(local, world.city[u] * 10_000, 900_000) + rank
    o = np.lexsort((u, secs))
    ymd = world.ymd(d)
    return _frame(
        {
            "order_id": _ids(f"O{ymd}", np.arange(1, m + 1), 7),
            "user_id": _take(world.uid, u[o]),
            "order_ts": _timestamps(world.iso(d), secs[o]),
            "category": _take(pa.array(list(ORDER_CATEGORIES)), cat[o]),
            "amount": _money(cents[o]),
            "status": _take(pa.array(list(_ORDER_STATUS_NAMES)), status[o]),
            "merchant_id": _ids("M", merchant[o], 8),
        }
    )


# ---- payments ------------------------------------------------------------------------------------
def payments_frame(world: World, d: int) -> pd.DataFrame:
    rng = world.rng("payments", d)
    day = date.fromordinal(d)
    n = world.n_reg(d)
    c = world.c_now()
    act = np.arange(n)
    dis = world.distress[:n]
    bal = world.balance[:n]
    inc = world.income[:n]
    rows: dict[str, list[np.ndarray]] = {
        k: [np.zeros(0, dtype=bool if k == "out" else np.int64)]
        for k in ("user", "secs", "kind", "out", "cents", "cp", "pair", "wd")
    }

    def add(user, secs, kind, out, cents, cp=None, pair=None, wd=None):
        k = len(user)
        if k == 0:
            return
        rows["user"].append(np.asarray(user, np.int64))
        rows["secs"].append(np.asarray(secs, np.int64))
        rows["kind"].append(np.full(k, _PAY[kind]))
        rows["out"].append(np.full(k, out, dtype=bool))
        rows["cents"].append(np.clip(np.asarray(cents, np.int64), 1, _MAX_AMOUNT_CENTS))
        rows["cp"].append(np.full(k, -1) if cp is None else np.asarray(cp, np.int64))
        rows["pair"].append(np.full(k, -1) if pair is None else np.asarray(pair, np.int64))
        rows["wd"].append(np.zeros(k, np.int64) if wd is None else np.asarray(wd, np.int64))

    # salary (or pension) on the user's pay day; distressed users often receive none, and nor do
    # those who lost their job
    shock = world.shock[:n]
    s = act[world.has_salary[:n] & (world.pay_day[:n] == day.day)]
    skip = rng.random(len(s)) < np.where(shock[s] == _JOB_LOSS, 0.85, np.where(dis[s], 0.75, 0.015))
    s = s[~skip]
    amt = inc[s] * (1 + 0.03 * rng.standard_normal(len(s)))
    if day.month == 1:
        amt *= np.where(rng.random(len(s)) < 0.25, 1.3 + 1.2 * rng.random(len(s)), 1.0)
    add(s, 8 * 3600 + rng.integers(0, 4 * 3600, len(s)), "salary", False, _cents(amt))

    # top-ups from the user's own bank card when the wallet runs low
    p = world.topup_base[:n] + 0.25 * (bal < _cents(0.15 * inc))
    p = p * np.where(dis, 0.4, 1.0)
    t = act[rng.random(n) < p]
    share = np.where(world.has_salary[t], 0.15, 0.4)
    add(
        t,
        9 * 3600 + rng.integers(0, 14 * 3600, len(t)),
        "transfer",
        False,
        _cents(inc[t] * share * rng.lognormal(0, 0.5, len(t))),
    )

    # a fraud victim's wallet is emptied the day it happens
    fv = act[(shock == _FRAUD) & (world.shock_start[:n] == d) & (bal > 100)]
    add(
        fv,
        rng.integers(0, 86400, len(fv)),
        "transfer",
        True,
        np.floor(bal[fv] * (0.5 + 0.45 * rng.random(len(fv)))).astype(np.int64),
    )

    # merchant payments (QR codes in shops)
    rate = (
        world.merchant_rate[:n]
        * _DOW_MERCHANT[day.weekday()]
        * np.where(dis, 0.7, 1.0)
        * np.where(shock == _JOB_LOSS, 0.85, 1.0)
    )
    k = rng.poisson(rate)
    mu_ = np.repeat(act, k)
    add(
        mu_,
        _hours_to_secs(rng, len(mu_), _NORMAL_HOURS),
        "merchant",
        True,
        _cents(np.exp(world.merchant_mu[mu_] + 0.95 * rng.standard_normal(len(mu_)))),
    )

    # utilities: monthly on a user-specific day; less creditworthy users pay late or skip
    due = act[world.util_user[:n] & (world.util_day[:n] == day.day)]
    pay = rng.random(len(due)) < _sigmoid(1.8 + 0.6 * c[due] - 1.0 * world.distress[due])
    due = due[pay]
    delay = np.where(rng.random(len(due)) < world.util_regular[due], 0, rng.integers(1, 12, len(due)))
    world._utility_sched.add(d + delay, due)
    ut = world._utility_sched.pop(d)
    ut = ut[ut < n]
    tfac = _lookup({1: 1.25, 2: 1.15, 3: 1.0, 4: 0.85}, world._city_tier[world.city[ut]])
    seas = 1.3 if day.month in (1, 2, 7, 8, 12) else 1.0
    add(
        ut,
        9 * 3600 + rng.integers(0, 13 * 3600, len(ut)),
        "utility",
        True,
        _cents(120.0 * seas * tfac * world.inc_rel[ut] ** 0.3 * rng.lognormal(0, 0.35, len(ut))),
    )

    # transfers between users: a contact mostly; distressed users borrow from contacts
    snd = act[(rng.random(n) < world.p2p_rate[:n]) & (bal > 0)]
    rcv = world.neighbour(rng, snd, d, n)
    amt = np.exp(world.p2p_mu[snd] + 0.9 * rng.standard_normal(len(snd)))
    amt = np.where(rng.random(len(snd)) < 0.5, np.maximum(1.0, np.round(amt, -1)), amt)
    brw = act[dis & (rng.random(n) < 0.06)]
    lender = world.neighbour(rng, brw, d, n, p_neigh=0.95)
    bamt = np.maximum(1.0, np.round(np.exp(np.log(800.0) + 0.6 * rng.standard_normal(len(brw))), -1))
    src = np.concatenate([snd, lender])
    dst = np.concatenate([rcv, brw])
    tamt = np.concatenate([amt, bamt])
    ok = (src >= 0) & (dst >= 0)
    src, dst, tamt = src[ok], dst[ok], _cents(tamt[ok])
    pid = np.arange(len(src))
    tsec = _hours_to_secs(rng, len(src), _NORMAL_HOURS)
    add(src, tsec, "transfer", True, tamt, cp=dst, pair=pid)
    add(dst, tsec, "transfer", False, tamt, cp=src, pair=pid)

    # sweeps of surplus: into wealth products (holders) or out to the bank card
    keep = _cents(world.keep[:n])
    sw = act[(bal > 2 * keep) & (rng.random(n) < 0.12)]
    to_wealth = world.wealth_holder[sw] & (rng.random(len(sw)) < 0.75)
    samt = np.minimum(bal[sw] - keep[sw], _MAX_AMOUNT_CENTS)
    ssec = 19 * 3600 + rng.integers(0, 5 * 3600, len(sw))
    add(sw[to_wealth], ssec[to_wealth], "wealth_buy", True, samt[to_wealth], wd=samt[to_wealth])
    add(sw[~to_wealth], ssec[~to_wealth], "transfer", True, samt[~to_wealth])
    # regular small investments
    hold = world.wealth_holder[:n]
    ai = act[hold & ~dis & (rng.random(n) < 0.03)]
    aamt = _cents(0.1 * inc[ai] * rng.lognormal(0, 0.5, len(ai)))
    add(ai, 7 * 3600 + rng.integers(0, 16 * 3600, len(ai)), "wealth_buy", True, aamt, wd=aamt)
    # redemptions: more often when distressed or short of cash (at most one per user a day)
    wl = world.wealth[:n]
    p = 0.008 + 0.05 * dis + 0.2 * (bal < _cents(0.1 * inc))
    rd = act[(wl > 100) & (rng.random(n) < p)]
    ramt = np.minimum(
        np.maximum(1, np.floor(wl[rd] * (0.1 + 0.6 * rng.random(len(rd))))).astype(np.int64), _MAX_AMOUNT_CENTS
    )
    add(rd, 8 * 3600 + rng.integers(0, 14 * 3600, len(rd)), "wealth_redeem", False, ramt, wd=-ramt)

    user, secs, kind, out, cents, cp, pair, wd = (np.concatenate(rows[k]) for k in rows)
    seq = np.arange(len(user))
    signed = np.where(out, -cents, cents)

    # keep wallets non-negative: an outgoing movement that the balance cannot cover fails
    # (and so does the incoming side of a failed transfer); repeat until nothing fails
    o = np.lexsort((seq, secs, user))
    u_s, sg_s, out_s, pair_s = user[o], signed[o], out[o], pair[o]
    alive = np.ones(len(o), dtype=bool)
    start_bal = world.balance[u_s]
    while True:
        run = start_bal + _group_cumsum(u_s, np.where(alive, sg_s, 0))
        bad = alive & out_s & (run < 0)
        if not bad.any():
            break
        alive &= ~bad
        dead_pairs = pair_s[bad & (pair_s >= 0)]
        if len(dead_pairs):
            alive &= ~np.isin(pair_s, dead_pairs)
    o = o[alive]
    u_s, run = u_s[alive], run[alive]
    w_run = world.wealth[u_s] + _group_cumsum(u_s, wd[o])
    # new state: last value per user
    last = np.r_[u_s[1:] != u_s[:-1], True] if len(u_s) else np.zeros(0, bool)
    world.balance[u_s[last]] = run[last]
    world.wealth[u_s[last]] = w_run[last]
    # wealth products accrue a small yield every day (no wallet movement)
    world.wealth += (world.wealth * 0.025 / 365.0).astype(np.int64)
    return _payments_df(world, d, user[o], secs[o], kind[o], out[o], cents[o], cp[o], run, w_run, seq[o])


def _payments_df(world: World, d: int, user, secs, kind, out, cents, cp, bal, wbal, seq) -> pd.DataFrame:
    fin = np.lexsort((seq, user, secs))
    m = len(user)
    cpf = cp[fin]
    return _frame(
        {
            "payment_id": _ids(f"P{world.ymd(d)}", np.arange(1, m + 1), 8),
            "user_id": _take(world.uid, user[fin]),
            "payment_ts": _timestamps(world.iso(d), secs[fin]),
            "direction": _take(pa.array(["in", "out"]), out[fin].astype(np.int64)),
            "kind": _take(pa.array(list(_PAY)), kind[fin]),
            "amount": _money(cents[fin]),
            "counterparty_id": _take(world.uid, cpf, null=cpf < 0),
            "balance_after": _money(bal[fin]),
            "wealth_balance_after": _money(wbal[fin]),
        }
    )


# ---- social edges --------------------------------------------------------------------------------
def edges_frame(world: World, d: int, first: bool) -> pd.DataFrame:
    sel = (world.e_created <= d) if first else (world.e_created == d)
    idx = np.flatnonzero(sel)
    idx = idx[np.lexsort((world.e_dst[idx], world.e_src[idx], world.e_created[idx]))]
    return _frame(
        {
            "src_user_id": _take(world.uid, world.e_src[idx]),
            "dst_user_id": _take(world.uid, world.e_dst[idx]),
            "relation": _take(pa.array(list(RELATIONS)), world.e_rel[idx]),
            "created_date": world.dates(world.e_created[idx]),
        }
    )


# ---- court list ----------------------------------------------------------------------------------
def blacklist_frame(world: World, d: int, first: bool) -> pd.DataFrame:
    rng = world.rng("blacklist", d)
    n = world.n_reg(d)
    # a small daily hazard of new judgements, higher for low creditworthiness and in distress
    h = 8e-6 * np.exp(-1.5 * world.z[:n]) * np.where(world.distress[:n], 3.0, 1.0)
    new = np.flatnonzero((rng.random(n) < h) & ~world.listed[:n] & (world.reg[:n] < d - 30))
    world.listed[new] = True
    world._listings.add(np.full(len(new), d), new)
    if first:
        # everything scheduled up to today: the existing list plus charge-offs from the history
        users, when = world._listings.pop_until(d)
    else:
        users = world._listings.pop(d)
        when = np.full(len(users), d)
    o = np.lexsort((users, when))
    users, when = users[o], when[o]
    k = len(users)
    court_no = rng.integers(0, 2, size=k)
    city = world.city[users]
    seq = world._case_seq + np.arange(1, k + 1)
    world._case_seq += k
    years = np.array([date.fromordinal(int(x)).year for x in when], dtype=np.int64)
    case = [
        f"({y}){cc}{cn + 1:02d}zhi{s:07d}"
        for y, cc, cn, s in zip(years.tolist(), world._city_code[city].tolist(), court_no.tolist(), seq.tolist())
    ]
    court = np.where(
        court_no == 0,
        world._city_name[city] + " Intermediate People's Court",
        world._city_name[city] + " People's Court",
    )
    reasons = np.array(BLACKLIST_REASONS, dtype=object)
    reason = reasons[rng.choice(len(reasons), size=k, p=[0.45, 0.25, 0.15, 0.1, 0.05])]
    reason = _nulls(reason, rng.random(k) < 0.05)
    return _frame(
        {
            "case_id": _texts(case),
            "user_id": _take(world.uid, users),
            "court": _texts(court),
            "listed_date": world.dates(when),
            "reason": _texts(reason),
        }
    )
