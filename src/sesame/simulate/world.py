"""The simulated world: its population (registration, traits, communities, cities, income, habits, credit
products, court list, wallets), the social graph, the hidden state that drifts day by day, and the credit
products' bills. The frames delivered each day are read from it by :mod:`sesame.simulate.frames`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sesame import identity
from sesame.schemas import CREDIT_PRODUCTS, RELATIONS, SOURCES
from sesame.simulate.arrays import (
    _Buckets,
    _cents,
    _fixed_width,
    _Grow,
    _gumbel_top_k,
    _hash,
    _ids,
    _lookup,
    _monthly_to_daily,
    _nulls,
    _rng,
    _sigmoid,
    _texts,
)
from sesame.simulate.parameters import (
    _CITY_DIVISION,
    _COLLECTIONS_BOOST,
    _CURE_DISTRESS,
    _CURE_NORMAL,
    _CURE_SHOCK,
    _DISTRESS_ENTER,
    _DISTRESS_LEAVE,
    _EPOCH,
    _GROWTH,
    _INCOME_REF,
    _MISS_HARD,
    _MISS_NORMAL,
    _NEVER,
    _NEW_ACCOUNT,
    _NO_SALARY_OCC,
    _OCC_BASE,
    _OCC_SLOPE,
    _OPEN_HAZARD,
    _OPEN_QUICK,
    _OPEN_QUICK_DAYS,
    _PLATFORM_DAYS,
    _SHOCK_ENTER,
    _SHOCK_KINDS,
    _SHOCK_LEAVE,
    _SHOCK_SHARE,
    _SURNAME_WEIGHT,
    _TIER_INCOME,
    _TIER_LOCAL,
    _TIER_SHARE,
    CITIES,
    GIVEN_F,
    GIVEN_M,
    MAX_DPD_REPORTED,
    OCCUPATIONS,
    SURNAMES,
    WARMUP_DAYS,
)


@dataclass
class BillRows:
    bill: np.ndarray
    status: np.ndarray
    paid_cents: np.ndarray
    paid: np.ndarray  # paid ordinal or -1
    dpd: np.ndarray

    _DTYPES = {"bill": np.int64, "status": np.int32, "paid_cents": np.int64, "paid": np.int32, "dpd": np.int32}

    @staticmethod
    def concat(parts: list[BillRows]) -> BillRows:
        """One set of rows (in compact types: a year of them is kept for the first delivery)."""
        return BillRows(
            *(
                np.concatenate([np.zeros(0, t)] + [getattr(p, f) for p in parts]).astype(t, copy=False)
                for f, t in BillRows._DTYPES.items()
            )
        )


class World:
    def __init__(
        self, users: int, days: int, end_ds: date, seed: int, activity: float = 1.0, contacts: float = 1.0
    ) -> None:
        self.seed = int(seed)
        self.N = int(users)
        self.activity = float(activity)
        self.contacts = float(contacts)
        self.days = int(days)
        self.end = end_ds.toordinal()
        self.start = self.end - self.days + 1
        self.warm = self.start - WARMUP_DAYS
        self._date_base = self.start - 6000
        span = range(self._date_base, self.end + 400)
        self._iso = np.array([date.fromordinal(o).isoformat() for o in span], dtype=object)
        self._ymd = np.array([s.replace("-", "") for s in self._iso], dtype=object)
        self._ymd_num = self._ymd.astype(np.int64)
        self._build_population()
        self._build_graph()
        self._init_state()

    # ---- dates ------------------------------------------------------------------------------------
    def iso(self, ords) -> np.ndarray:
        return self._iso[np.asarray(ords, dtype=np.int64) - self._date_base]

    def ymd(self, ords) -> np.ndarray:
        return self._ymd[np.asarray(ords, dtype=np.int64) - self._date_base]

    @staticmethod
    def dates(ords, null: np.ndarray | None = None) -> pa.Array:
        """Day ordinals as an Arrow date column (null where `null` is set)."""
        days = (np.asarray(ords, dtype=np.int64) - _EPOCH).astype(np.int32)
        return pa.array(days, type=pa.int32(), mask=null).view(pa.date32())

    def n_reg(self, d: int) -> int:
        return int(np.searchsorted(self.reg, d, side="right"))

    def rng(self, purpose: str, day: int = 0) -> np.random.Generator:
        return _rng(self.seed, purpose, day)

    # ---- population -------------------------------------------------------------------------------
    def _build_population(self) -> None:
        """The users and their fixed traits, step by step, every step drawing from one random stream in turn
        (so their order is part of the simulation)."""
        rng = self.rng("population")
        self._register(rng)
        age, birth_ord = self._protected_attributes(rng)
        self._names(rng)
        n_comm = self._communities(rng)
        tier = self._cities(rng, n_comm)
        occ, student = self._income_and_occupation(rng, age, tier)
        self._stability(rng, birth_ord)
        self._wallet_habits(rng, occ, student)
        self._shopping_habits(rng, tier)
        self._credit_products(rng)
        self._court_list(rng)
        self._wallet_balances(rng)
        self._discipline(rng)

    def _register(self, rng: np.random.Generator) -> None:
        """Registration days (user i is the i-th to register) and user ids."""
        N, end = self.N, self.end
        # registration: the platform opened `_PLATFORM_DAYS` before the end and has grown steadily since
        # (registrations rise by `_GROWTH` a day), so most users registered years before the window and
        # some during it (thin files), at a rate that does not jump at the window's start
        back = -np.log1p(-rng.random(N) * -np.expm1(-_GROWTH * _PLATFORM_DAYS)) / _GROWTH
        reg = end - np.minimum(np.floor(back).astype(np.int64), _PLATFORM_DAYS - 1)
        self.reg = np.sort(reg).astype(np.int64)  # user i is the i-th to register
        self.uid = _ids("U", np.arange(1, N + 1), 8).combine_chunks()

    def _protected_attributes(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gender and birth year; returns each user's age and birth day (ordinal)."""
        N = self.N
        end_year = date.fromordinal(self.end).year
        # protected attributes: drawn independently of creditworthiness (age is only bounded below so
        # that nobody registered as a child)
        self.gender = np.where(rng.random(N) < 0.49, "F", "M").astype(object)
        self.gender_pa = _texts(self.gender).combine_chunks()
        age = np.clip(18 + np.floor(rng.gamma(2.3, 8.5, size=N)), 18, 78).astype(np.int64)
        reg_year = (self.reg - _EPOCH).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        age = np.maximum(age, end_year - reg_year + 17)
        max_year = int(SOURCES["users"].column("birth_year").max or end_year)
        self.birth_year = np.minimum(end_year - age, max_year).astype(np.int64)
        birth_ord = (self.birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64) + _EPOCH
        return age, birth_ord

    def _names(self, rng: np.random.Generator) -> None:
        """Full names: a surname, one or two given names by gender."""
        N = self.N
        f = self.gender == "F"
        sur = rng.choice(len(SURNAMES), size=N, p=_SURNAME_WEIGHT / _SURNAME_WEIGHT.sum())
        g1 = np.where(f, rng.integers(0, len(GIVEN_F), N), rng.integers(0, len(GIVEN_M), N))
        g2 = np.where(f, rng.integers(0, len(GIVEN_F), N), rng.integers(0, len(GIVEN_M), N))
        two = rng.random(N) < 0.7
        gf, gm = np.array(GIVEN_F, dtype=object), np.array(GIVEN_M, dtype=object)
        first = np.where(f, gf[g1 % len(gf)], gm[g1 % len(gm)])
        second = np.where(f, gf[g2 % len(gf)], gm[g2 % len(gm)])
        second = np.array([s.lower() for s in second], dtype=object)
        given = np.where(two, first + second, first)
        self.full_name = _texts(np.array(SURNAMES, dtype=object)[sur] + " " + given).combine_chunks()

    def _communities(self, rng: np.random.Generator) -> int:
        """Communities and creditworthiness `z`; returns the number of communities."""
        N, start = self.N, self.start
        # communities (20-200 members) and a shared creditworthiness component
        sizes: list[int] = []
        while sum(sizes) < N:
            sizes.append(int(np.clip(round(rng.lognormal(np.log(70), 0.6)), 20, 200)))
        n_comm = len(sizes)
        comm = np.repeat(np.arange(n_comm), sizes)[:N]
        self.comm = rng.permutation(comm)
        comm_effect = rng.standard_normal(n_comm)
        # long-standing customers are slightly more creditworthy
        tenure = np.log1p(np.maximum(start - self.reg, 0) + 30.0)
        tenure = (tenure - tenure.mean()) / max(tenure.std(), 1e-9)
        indiv = 0.15 * tenure + np.sqrt(1 - 0.15**2) * rng.standard_normal(N)
        self.z = np.sqrt(0.5) * comm_effect[self.comm] + np.sqrt(0.5) * indiv
        return n_comm

    def _cities(self, rng: np.random.Generator, n_comm: int) -> np.ndarray:
        """A home city per community, each user's city, the city tables and identity numbers; returns each
        user's city tier."""
        N = self.N
        tiers = np.array([t for _, _, t in CITIES])
        city_p = np.array([_TIER_SHARE[t] / (tiers == t).sum() for t in tiers])
        home_city = rng.choice(len(CITIES), size=n_comm, p=city_p)
        self.city = np.where(
            rng.random(N) < 0.8, home_city[self.comm], rng.choice(len(CITIES), size=N, p=city_p)
        ).astype(np.int64)
        self._city_name = np.array([c for c, _, _ in CITIES], dtype=object)
        self._city_name_pa = pa.array(list(self._city_name), type=pa.string())
        self._product_pa = pa.array(list(CREDIT_PRODUCTS), type=pa.string())
        self._city_code = np.array([k for _, k, _ in CITIES], dtype=object)
        self._city_tier = tiers.astype(np.int64)
        self._city_p = city_p
        tier = self._city_tier[self.city]
        self.id_number = self._identity_numbers(birth_city=self.city.copy())
        return tier

    def _income_and_occupation(
        self, rng: np.random.Generator, age: np.ndarray, tier: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Income and occupation; returns each user's occupation and whether a student."""
        N = self.N
        z = self.z
        # income and occupation: income follows creditworthiness only loosely, and barely depends on
        # age (pensions are close to the last salary; students often have part-time pay)
        student = (age <= 23) & (rng.random(N) < 0.35)
        retired = (age >= 60) & (rng.random(N) < 0.75)
        log_inc = np.log(_INCOME_REF) + _lookup(_TIER_INCOME, tier) + 0.26 * z + 0.55 * rng.standard_normal(N)
        rel = log_inc - np.log(_INCOME_REF)
        logits = _OCC_BASE[None, :] + _OCC_SLOPE[None, :] * rel[:, None] + rng.gumbel(size=(N, len(OCCUPATIONS)))
        occ = np.array(OCCUPATIONS, dtype=object)[np.argmax(logits, axis=1)]
        occ = np.where(student, "student", np.where(retired, "retired", occ)).astype(object)
        log_inc = np.where(student, log_inc + np.log(0.75), np.where(retired, log_inc + np.log(0.92), log_inc))
        self.income = np.clip(np.exp(log_inc), 800.0, 300_000.0)  # CNY / month
        self.occupation = _texts(_nulls(occ, rng.random(N) < 0.03)).combine_chunks()
        self.inc_rel = self.income / _INCOME_REF
        return occ, student

    def _stability(self, rng: np.random.Generator, birth_ord: np.ndarray) -> None:
        """Identity verification, phone and address tenure, moves."""
        N, start = self.N, self.start
        z = self.z
        # identity and stability traits (more creditworthy -> more stable, more often verified)
        verified0 = rng.random(N) < _sigmoid(0.8 + 0.7 * z + 0.8 * rng.standard_normal(N))
        later = np.floor(rng.exponential(1.0 / (0.003 * _sigmoid(-0.5 + 0.8 * z) + 1e-5), size=N))
        later = np.minimum(later, 100_000)
        self.verify = np.where(verified0, self.reg, self.reg + 1 + later.astype(np.int64))
        phone_back = np.floor(rng.gamma(2.0, 650.0 * np.exp(0.15 * z))).astype(np.int64)
        self.phone_start = np.maximum(self.reg - phone_back, birth_ord + 14 * 365)
        self.phone_start = np.minimum(self.phone_start, self.reg)
        addr_back = np.floor(rng.gamma(1.5, 800.0 * np.exp(0.18 * z))).astype(np.int64)
        self.addr_start = np.maximum(np.minimum(self.reg, start) - addr_back, birth_ord + 18 * 365)
        self.addr_start = np.minimum(self.addr_start, start)
        # moves during the window: Poisson process, more frequent for less stable users
        move_rate = 1.0 / (5 * 365) * np.exp(-0.2 * z)
        n_moves = rng.poisson(move_rate * self.days)
        mu = np.repeat(np.arange(N), n_moves)
        self._moves = _Buckets()
        self._moves.add(start + rng.integers(0, self.days, size=len(mu)), mu)

    def _wallet_habits(self, rng: np.random.Generator, occ: np.ndarray, student: np.ndarray) -> None:
        """Salary, utilities, cash kept, wealth products, merchant payments and transfers."""
        N = self.N
        z = self.z
        has_salary_occ = ~np.isin(occ, _NO_SALARY_OCC) | (student & (rng.random(N) < 0.75))  # part-time
        self.has_salary = has_salary_occ & (rng.random(N) < _sigmoid(0.8 + 0.3 * z))
        self.pay_day = np.where(
            rng.random(N) < 0.6, rng.choice([1, 5, 10, 15, 20, 25, 28], size=N), rng.integers(1, 29, size=N)
        )
        self.util_user = rng.random(N) < _sigmoid(0.9 + 0.35 * z)
        self.util_day = rng.integers(1, 29, size=N)
        # share of months paid on the day itself
        self.util_regular = _sigmoid(1.2 + 0.6 * z + 1.0 * rng.standard_normal(N))
        self.keep = self.income * 0.9 * np.exp(0.15 * z + 0.6 * rng.standard_normal(N))
        self.wealth_holder = rng.random(N) < _sigmoid(
            -0.6 + 0.6 * z + 0.5 * np.log(self.inc_rel) + 0.5 * rng.standard_normal(N)
        )
        # `activity` multiplies everyday payments and transfers; each is smaller by as much, so the money
        # moved (and every wallet's course) stays the same
        self.merchant_rate = self.activity * 0.55 * self.inc_rel**0.25 * np.exp(0.3 * rng.standard_normal(N))
        self.merchant_mu = np.log(42.0 * self.inc_rel**0.6) - np.log(self.activity)
        self.p2p_rate = np.minimum(
            self.activity * 0.045 * self.inc_rel**0.2 * np.exp(0.4 * rng.standard_normal(N)), 1.0
        )
        self.p2p_mu = np.log(150.0 * self.inc_rel**0.5) - np.log(self.activity)
        self.topup_base = np.where(self.has_salary, 0.01, 0.05)

    def _shopping_habits(self, rng: np.random.Generator, tier: np.ndarray) -> None:
        """Order rate, essential and local shares, cancels, returns."""
        N = self.N
        z = self.z
        self.order_rate = self.activity * 0.28 * self.inc_rel**0.2 * np.exp(0.6 * rng.standard_normal(N) - 0.18)
        self.p_ess = _sigmoid(0.15 + 0.3 * z + 0.5 * rng.standard_normal(N))
        self.p_local = _sigmoid(-1.0 + _lookup(_TIER_LOCAL, tier) + 0.25 * z + 0.5 * rng.standard_normal(N))
        self.cancel_bias = 0.6 * rng.standard_normal(N)
        self.return_bias = 0.5 * rng.standard_normal(N)

    def _credit_products(self, rng: np.random.Generator) -> None:
        """Product, opening day, limit and statement day."""
        N = self.N
        z = self.z
        # credit products: a share opens one within weeks of registering; the others may open one any
        # day later (see `_open_accounts`), so that new-to-credit users keep appearing
        quick = rng.random(N) < _OPEN_QUICK
        self.product = np.where(rng.random(N) < 0.75, 0, 1).astype(np.int64)  # huabei / jiebei
        quick_delay = np.floor(rng.exponential(_OPEN_QUICK_DAYS, size=N)).astype(np.int64)
        self.open = np.where(quick, self.reg + quick_delay, _NEVER)
        # before the simulated credit history, the later openings follow the same hazard at an average state
        h0, kc, boost = _OPEN_HAZARD
        later = np.floor(rng.exponential(1.0 / (h0 * np.exp(-kc * 0.8 * z) * (1.0 + 0.03 * boost)), size=N))
        later_open = self.reg + 1 + later.astype(np.int64)
        self.open = np.where(~quick & (later_open < self.warm), later_open, self.open)
        lim = self.income * np.exp(0.25 * z + 0.4 * rng.standard_normal(N)) * np.where(self.product == 0, 0.9, 1.6)
        lim = np.clip(np.round(lim / 100.0) * 100.0, 500.0, np.where(self.product == 0, 50_000.0, 200_000.0))
        self.limit_cents = _cents(lim)
        self.stmt_day = rng.integers(1, 29, size=N)

    def _court_list(self, rng: np.random.Generator) -> None:
        """Court-list entries that predate the window."""
        N, start = self.N, self.start
        z = self.z
        # court list: existing entries, concentrated among the least creditworthy
        self.listed = np.zeros(N, dtype=bool)
        old = np.flatnonzero(self.reg < start)
        k0 = int(round(0.005 * len(old)))
        chosen = old[_gumbel_top_k(rng, -3.0 * z[old], k0)]
        lo = np.maximum(self.reg[chosen] + 30, start - 5 * 365)
        lo = np.minimum(lo, start - 1)
        listed_on = lo + np.floor(rng.random(len(chosen)) * (start - lo)).astype(np.int64)
        self._listings = _Buckets()
        self._listings.add(listed_on, chosen)
        self.listed[chosen] = True

    def _wallet_balances(self, rng: np.random.Generator) -> None:
        """Wallet and wealth balances at the start."""
        start = self.start
        z = self.z
        # initial wallet balances (cents)
        self.balance = _cents(np.minimum(self.income * np.exp(rng.normal(-0.6 + 0.25 * z, 1.0)), 5e6))
        self.wealth = np.where(
            self.wealth_holder, _cents(np.minimum(self.income * np.exp(rng.normal(0.9 + 0.3 * z, 1.1)), 5e7)), 0
        ).astype(np.int64)
        new = self.reg >= start
        self.balance[new] = self.balance[new] // 5
        self.wealth[new] = 0

    def _discipline(self, rng: np.random.Generator) -> None:
        """Hidden payment discipline and habitual use of the credit limit."""
        N = self.N
        # payment discipline: how a user handles bills beside their means, seen nowhere but in the bills
        self.grit = rng.standard_normal(N)
        self.spend_bias = rng.standard_normal(N)  # habitual use of the credit limit

    # ---- social graph ------------------------------------------------------------------------------
    def _build_graph(self) -> None:
        N, start, end = self.N, self.start, self.end
        rng = self.rng("graph")
        w = np.exp(0.15 * self.z + 0.7 * rng.standard_normal(N))  # attachment weight (hubs)
        order = np.argsort(self.comm, kind="stable")
        cw = np.cumsum(w[order])
        comm_sorted = self.comm[order]
        n_comm = int(self.comm.max()) + 1
        first = np.searchsorted(comm_sorted, np.arange(n_comm), side="left")
        last = np.searchsorted(comm_sorted, np.arange(n_comm), side="right")
        size = last - first
        lo = np.where(first > 0, cw[np.maximum(first - 1, 0)], 0.0)
        hi = cw[np.maximum(last - 1, 0)]

        def pick_in(c: np.ndarray) -> np.ndarray:
            r = lo[c] + rng.random(len(c)) * (hi[c] - lo[c])
            pos = np.clip(np.searchsorted(cw, r, side="right"), first[c], last[c] - 1)
            return order[pos]

        # mean degree: 10.5 contacts within the community and 1.6 outside it, times `contacts`
        m_in = np.round(size * 10.5 * self.contacts / 2).astype(np.int64)
        ec = np.repeat(np.arange(n_comm), m_in)
        a_in, b_in = pick_in(ec), pick_in(ec)
        m_out = int(round(N * 1.6 * self.contacts / 2))
        gp = np.cumsum(w) / w.sum()
        a_out = np.minimum(np.searchsorted(gp, rng.random(m_out), side="right"), N - 1)
        b_out = np.minimum(np.searchsorted(gp, rng.random(m_out), side="right"), N - 1)
        a = np.concatenate([a_in, a_out]).astype(np.int64)
        b = np.concatenate([b_in, b_out]).astype(np.int64)
        intra = np.r_[np.ones(len(a_in), bool), np.zeros(m_out, bool)]
        keep = a != b
        a, b, intra = a[keep], b[keep], intra[keep]
        key = np.minimum(a, b) * N + np.maximum(a, b)
        _, first_idx = np.unique(key, return_index=True)
        first_idx = np.sort(first_idx)
        a, b, intra = a[first_idx], b[first_idx], intra[first_idx]
        m = len(a)
        rel_p_in = np.cumsum([0.55, 0.15, 0.30])  # friend, family, colleague
        rel_p_out = np.cumsum([0.60, 0.05, 0.35])
        r = rng.random(m)
        rel = np.where(intra, np.searchsorted(rel_p_in, r, side="right"), np.searchsorted(rel_p_out, r, side="right"))
        rel = np.minimum(rel, 2)
        rel_idx = np.array([RELATIONS.index("friend"), RELATIONS.index("family"), RELATIONS.index("colleague")])
        rel = rel_idx[rel]
        # created date: after both registered; a few edges between old users appear during the window
        both = np.maximum(self.reg[a], self.reg[b])
        in_window = rng.random(m) < 0.03
        past = both + np.floor(rng.random(m) * np.maximum(start - both, 1)).astype(np.int64)
        past = np.where(in_window, start + rng.integers(0, self.days, size=m), past)
        newer = both + rng.geometric(0.12, size=m) - 1
        created = np.where(both < start, past, newer)
        keep = created <= end
        a, b, rel, created = a[keep], b[keep], rel[keep], created[keep]
        flip = rng.random(len(a)) < 0.5
        self.e_src = np.where(flip, b, a)
        self.e_dst = np.where(flip, a, b)
        self.e_rel = rel.astype(np.int64)
        self.e_created = created.astype(np.int64)
        # adjacency (both directions) for picking a neighbour
        u = np.concatenate([self.e_src, self.e_dst])
        v = np.concatenate([self.e_dst, self.e_src])
        cr = np.concatenate([self.e_created, self.e_created])
        o = np.lexsort((v, u))
        self.adj_v, self.adj_created = v[o], cr[o]
        self.adj_ptr = np.r_[0, np.cumsum(np.bincount(u, minlength=N))].astype(np.int64)

    def neighbour(
        self, rng: np.random.Generator, users: np.ndarray, d: int, n_active: int, p_neigh: float = 0.85
    ) -> np.ndarray:
        """A contact of each user (edge existing on day d), else a random registered user; -1 if none."""
        deg = self.adj_ptr[users + 1] - self.adj_ptr[users]
        j = self.adj_ptr[users] + np.floor(rng.random(len(users)) * deg).astype(np.int64)
        j = np.minimum(j, max(len(self.adj_v) - 1, 0))
        ok = (deg > 0) & (rng.random(len(users)) < p_neigh)
        if len(self.adj_v):
            ok &= self.adj_created[j] <= d
            cand = np.where(ok, self.adj_v[j], -1)
        else:
            cand = np.full(len(users), -1)
        rnd = rng.integers(0, max(n_active, 1), size=len(users))
        rnd = np.where(rnd == users, (rnd + 1) % max(n_active, 1), rnd)
        out = np.where(cand >= 0, cand, rnd)
        out = np.where((out == users) | (n_active < 2) & (cand < 0), -1, out)
        return out

    # ---- evolving state --------------------------------------------------------------------------
    def _identity_numbers(self, birth_city: np.ndarray) -> pa.Array:
        """Each user's resident identity card number (sesame.identity): the division of the city the user first
        lived in (a district from 01 to 09), the birth date (a day of the birth year), a sequence unique among
        those born on that day there, odd for men, and the check character. From hashes, not random streams."""
        h = _hash(self.seed, "identity_card", np.arange(self.N))
        division = np.array([_CITY_DIVISION[c] for c, _, _ in CITIES], dtype=np.int64)[birth_city] * 100 + (
            (h % np.uint64(9)).astype(np.int64) + 1
        )
        year = self.birth_year
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        born = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + (
            (h >> np.uint64(8)) % (365 + leap).astype(np.uint64)
        ).astype(np.int64)
        ymd = (
            (born.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
            + (born.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
            + (born - born.astype("datetime64[M]")).astype(np.int64)
            + 1
        )
        # the sequence: consecutive (from an offset of the group's first member) among those of one division and day
        order = np.lexsort((born.astype(np.int64), division))
        key = division[order] * 100_000_000 + ymd[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        group = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
        rank = np.arange(self.N) - starts[group]
        if len(rank) and rank.max() >= 500:
            raise ValueError("more than 500 simulated people share a birth day and district")
        offset = ((h[order][starts] >> np.uint64(32)) % np.uint64(500)).astype(np.int64)[group]
        sequence = np.empty(self.N, dtype=np.int64)
        sequence[order] = (offset + rank) % 500
        sequence = sequence * 2 + (self.gender == "M")
        first17 = division * 10**11 + ymd * 1000 + sequence
        total = np.zeros(self.N, dtype=np.int64)
        for weight in reversed(identity.WEIGHTS):
            total += first17 % 10 * weight
            first17 //= 10
        check = pa.array(list(identity.CHECK_CHARACTERS)).take(pa.array(total % 11))
        digits = _fixed_width([(division, 6), (ymd, 8), (sequence, 3)], self.N)
        return pc.binary_join_element_wise(digits, check, "").combine_chunks()

    def _init_state(self) -> None:
        N = self.N
        rng = self.rng("state-init")
        self.drift = rng.standard_normal(N)
        self.comm_drift = rng.standard_normal(int(self.comm.max()) + 1)
        c = self.c_now()
        p01, p10 = self._distress_rates(c)
        self.distress = rng.random(N) < p01 / (p01 + p10)
        # idiosyncratic shocks, unrelated to creditworthiness (0 none, else a _SHOCK_KINDS index + 1)
        self.shock = np.where(
            rng.random(N) < _SHOCK_ENTER / (_SHOCK_ENTER + _SHOCK_LEAVE),
            1 + rng.choice(len(_SHOCK_KINDS), size=N, p=_SHOCK_SHARE),
            0,
        ).astype(np.int8)
        self.shock_start = np.full(N, -(10**6), dtype=np.int64)
        self.closed_until = np.full(N, -1, dtype=np.int64)  # account closed after a charge-off
        self.bills = _Grow(user=np.int64, stmt=np.int64, amount=np.int64, limit=np.int64)
        self._pay_sched = _Buckets()
        self._overdue_sched = _Buckets()
        self._overdue = np.zeros(0, dtype=np.int64)
        self._utility_sched = _Buckets()
        self._case_seq = 0

    def c_now(self) -> np.ndarray:
        return 0.8 * self.z + 0.6 * (np.sqrt(0.6) * self.drift + np.sqrt(0.4) * self.comm_drift[self.comm])

    @staticmethod
    def _distress_rates(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Monthly probabilities of entering and of leaving distress."""
        return (
            _sigmoid(_DISTRESS_ENTER[0] - _DISTRESS_ENTER[1] * c),
            _sigmoid(_DISTRESS_LEAVE[0] + _DISTRESS_LEAVE[1] * c),
        )

    def hardship(self) -> np.ndarray:
        """Users who struggle to pay today: in distress or hit by a shock."""
        return self.distress | (self.shock > 0)

    def step_state(self, d: int) -> None:
        rng = self.rng("state", d)
        phi = np.exp(-1.0 / 365.0)
        self.drift = phi * self.drift + np.sqrt(1 - phi * phi) * rng.standard_normal(self.N)
        self.comm_drift = phi * self.comm_drift + np.sqrt(1 - phi * phi) * rng.standard_normal(len(self.comm_drift))
        c = self.c_now()
        p01, p10 = self._distress_rates(c)
        r = rng.random(self.N)
        self.distress = np.where(self.distress, r >= _monthly_to_daily(p10), r < _monthly_to_daily(p01))
        r = rng.random(self.N)
        hit = self.shock > 0
        leave = hit & (r < _monthly_to_daily(_SHOCK_LEAVE))
        enter = np.flatnonzero(~hit & (r < _monthly_to_daily(_SHOCK_ENTER)))
        self.shock[leave] = 0
        self.shock[enter] = 1 + rng.choice(len(_SHOCK_KINDS), size=len(enter), p=_SHOCK_SHARE)
        self.shock_start[enter] = d
        if d >= self.start:
            movers = self._moves.pop(d)
            if len(movers):
                self.addr_start[movers] = d
                change = rng.random(len(movers)) < 0.12
                self.city[movers[change]] = rng.choice(len(CITIES), size=int(change.sum()), p=self._city_p)

    # ---- credit bills ----------------------------------------------------------------------------
    def _open_accounts(self, d: int, c: np.ndarray) -> None:
        """Registered users without a product open one with a small daily hazard, higher for the less
        creditworthy and in hardship (credit is sought when money is short)."""
        n = self.n_reg(d)
        pool = np.flatnonzero(self.open[:n] == _NEVER)
        if len(pool) == 0:
            return
        h0, kc, boost = _OPEN_HAZARD
        h = h0 * np.exp(-kc * c[pool]) * (1.0 + boost * self.hardship()[pool])
        go = pool[self.rng("opening", d).random(len(pool)) < h]
        self.open[go] = d

    def credit_step(self, d: int) -> BillRows:
        rng = self.rng("bills", d)
        c = self.c_now()
        self._open_accounts(d, c)
        parts: list[BillRows] = []
        bu, bstmt = self.bills["user"], self.bills["stmt"]

        # accounts frozen while a bill is past due, closed for a while after a charge-off
        # (then reopened with half the limit)
        closed = self.closed_until > d
        reopen = np.flatnonzero(self.closed_until == d)
        if len(reopen):
            self.limit_cents[reopen] = np.maximum(50_000, self.limit_cents[reopen] // 200 * 100)
        frozen = closed.copy()
        if len(self._overdue):
            od_dpd = d - (bstmt[self._overdue] + 15)
            frozen[bu[self._overdue[od_dpd >= 1]]] = True

        # statements
        dom = date.fromordinal(d).day
        cand = np.flatnonzero((self.stmt_day == dom) & (self.open < d) & ~frozen)
        if len(cand):
            cu = c[cand]
            dis = self.hardship()[cand]
            used = rng.random(len(cand)) >= 0.12 - 0.05 * _sigmoid(-cu)
            cand, cu, dis = cand[used], cu[used], dis[used]
            mean_u = _sigmoid(-1.1 - 0.35 * cu + 0.6 * dis + 0.5 * self.spend_bias[cand])
            util = rng.beta(np.maximum(mean_u * 4, 0.05), np.maximum((1 - mean_u) * 4, 0.05))
            amount = np.maximum(100, np.rint(self.limit_cents[cand] * util)).astype(np.int64)
            idx = self.bills.append(user=cand, stmt=np.full(len(cand), d), amount=amount, limit=self.limit_cents[cand])
            bu, bstmt = self.bills["user"], self.bills["stmt"]
            # a bill is missed now and then by anyone (and then mostly paid within days); users in
            # hardship miss most bills, unless their payment discipline carries them through
            g = self.grit[cand]
            young = (d - self.open[cand]) < _NEW_ACCOUNT[0]
            p_miss = _sigmoid(
                np.where(
                    dis,
                    _MISS_HARD[0] - _MISS_HARD[1] * cu - _MISS_HARD[2] * g,
                    _MISS_NORMAL[0] - _MISS_NORMAL[1] * cu - _MISS_NORMAL[2] * g,
                )
                + _NEW_ACCOUNT[1] * young
            )
            miss = rng.random(len(cand)) < p_miss
            on_time = idx[~miss]
            self._pay_sched.add(d + rng.integers(1, 16, size=len(on_time)), on_time)
            self._overdue_sched.add(np.full(int(miss.sum()), d + 16), idx[miss])
            z0 = np.zeros(len(idx), dtype=np.int64)
            parts.append(BillRows(idx, np.full(len(idx), d), z0, z0 - 1, z0))

        # payments made on time (scheduled at statement)
        paid = self._pay_sched.pop(d)
        if len(paid):
            z0 = np.zeros(len(paid), dtype=np.int64)
            today = np.full(len(paid), d)
            parts.append(BillRows(paid, today, self.bills["amount"][paid], today, z0))

        # overdue bills: cure with a hazard that depends on the state of the user today
        od = np.concatenate([self._overdue, self._overdue_sched.pop(d)]).astype(np.int64)
        if len(od):
            u = bu[od]
            dpd = d - (bstmt[od] + 15)
            cu = c[u]
            g = self.grit[u]
            hazard = np.where(
                self.shock[u] > 0,
                _CURE_SHOCK[0] * np.exp(_CURE_SHOCK[1] * cu + _CURE_SHOCK[2] * g),
                np.where(
                    self.distress[u],
                    _CURE_DISTRESS[0] * np.exp(_CURE_DISTRESS[1] * cu + _CURE_DISTRESS[2] * g),
                    _CURE_NORMAL[0] * np.exp(_CURE_NORMAL[1] * cu + _CURE_NORMAL[2] * g),
                ),
            )
            hazard = np.where(d - self.open[u] < _NEW_ACCOUNT[0], _NEW_ACCOUNT[2] * hazard, hazard)
            # collections step up once a bill is 90 days past due: many then find the money
            hazard = np.where(dpd > 90, _COLLECTIONS_BOOST * hazard, hazard)
            hazard = np.where(closed[u], 0.0, hazard)
            cured = rng.random(len(od)) < hazard
            amt = self.bills["amount"][od]
            if cured.any():
                pc = amt[cured] + np.rint(amt[cured] * 0.0005 * dpd[cured]).astype(np.int64)
                parts.append(
                    BillRows(od[cured], np.full(int(cured.sum()), d), pc, np.full(int(cured.sum()), d), dpd[cured])
                )
            report = ~cured & ((dpd - 1) % 30 == 0) & (dpd <= MAX_DPD_REPORTED)
            if report.any():
                k = int(report.sum())
                z0 = np.zeros(k, dtype=np.int64)
                parts.append(BillRows(od[report], np.full(k, d), z0, z0 - 1, dpd[report]))
            charged = ~cured & (dpd >= MAX_DPD_REPORTED)
            if charged.any():
                cu_users = np.unique(u[charged])
                self.closed_until[cu_users] = d + rng.integers(30, 120, size=len(cu_users))
                cand = cu_users[~self.listed[cu_users]]
                go = cand[rng.random(len(cand)) < 0.1]
                self.listed[go] = True
                self._listings.add(d + rng.integers(15, 120, size=len(go)), go)
            self._overdue = od[~cured & ~charged]
        return BillRows.concat(parts)
