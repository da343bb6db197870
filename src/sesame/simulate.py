"""Synthetic upstream deliveries for every source declared in `sesame.schemas`.

The simulator keeps a hidden creditworthiness per user and lets it drive every source: shopping
(`orders`), wallet movements (`payments`), credit-product bills (`bills`), the social graph
(`social_edges`) and the court list (`blacklist`), beside the daily KYC snapshot (`users`).

Model, in short:

* The platform opened `_PLATFORM_DAYS` before the end and has grown steadily since: registrations
  rise by about 20% a year, so most users registered years before the window, some during it (about
  1.5% of the population in a 30-day window, a fifth in a 490-day one), and the flow of newcomers
  does not jump at the window's start.
* Users live in communities of 20-200 members that mostly share a city. Creditworthiness
  ``z`` is standard normal and partly shared within a community, so friends resemble each other.
  Gender and birth year are drawn independently of ``z``; income barely depends on age.
* The creditworthiness a user shows on a day is ``c = 0.8 z + 0.6 drift`` where ``drift`` is a slow
  AR(1) process, partly shared by the community (local economic ups and downs). A two-state
  "distress" chain is entered far more often and left more slowly by users with a low ``c`` (about
  2.5% of users are distressed on a given day, two thirds of them from the lowest tenth of ``c``);
  while distressed, salaries mostly stop, wallets drain, friends lend money, orders get cancelled.
* Idiosyncratic shocks hit anyone, whatever ``z`` (about 3.5% of users a year, 2% in one on a given
  day): job loss (salary stops), illness (no visible sign) and fraud (the wallet is emptied once).
  They last months and push some otherwise good users into arrears, those with less of a cushion
  (low ``c``) more often.
* Credit products: about a third of the users open one within weeks of registering; the others may
  open one on any later day, with a small hazard (about a third of those without a product open one
  within a year) that is several times higher in hardship, when money is short. New-to-credit users
  therefore keep appearing, at a steady rate, and an account's first six months are riskier (bills
  missed more often, paid more slowly).
* Bills are missed now and then by anyone and mostly paid within days; users in hardship miss
  most bills and cure slowly, collections step up at 90 days past due, and a bill still unpaid at
  181 days is charged off (never paid; the account is closed for a while). Low ``c`` makes every
  step worse. A hidden payment discipline ("grit"), seen in no source but the bills, lets some weak
  users pay through hard times and makes others late, so behaviour is only a noisy proxy of
  outcomes and prior delinquency predicts, without deciding, the next one.
* Observable traits (income, cancellations and returns, balances, utility regularity, identity
  checks) follow ``z`` loosely, with wide individual noise.
* Credit bills are simulated for a year before the window (a warm-up), and the first delivery
  carries that history, so credit-history features are informative from the first day.

Calibration, measured on ``generate(20000, 490, date(2025, 3, 31), seed=7)`` at the observation date
90 days into the window (2024-02-26), with the platform's performance definition (credit file: a
statement on record; in default: a bill unpaid 90+ days past its due date; bad: a bill reported 90+
days past due within the next 365 days):

* credit-file users not in default: 3.6% go bad (11,605 users); the hidden ``c`` on that day ranks
  them with an AUC of 0.85; the worst days past due of the last year with an AUC of 0.78 (16% of
  those 30+ days late go bad, 1.9% of the others);
* 26.6% of the registered users have no credit file; 33.9% of them open a product within the year,
  and 6.5% of those new-to-credit users go bad (``c`` AUC about 0.8);
* the same figures at observation dates 270 days earlier to 125 days later stay within 3.4-3.8%,
  26.5-28%, 33-35% and 5.5-7%;
* charged-off users (in default for good) are 0.3% of the product holders at the end of the run,
  users in default 0.7% of those with a credit file.

Generation and writing are separate: :func:`generate` yields one pandas DataFrame per source and
day, in schema column order; :func:`sesame.deliveries.write_delivery` writes one of them in the declared format.
Anything that alters data on its way (for instance injecting dirt) fits between the two.

Every random draw comes from a generator seeded by ``(seed, purpose, day)``, so the same arguments
give byte-identical files.
"""
from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sesame import identity
from sesame.deliveries import MARKER, write_delivery
from sesame.progress import Progress
from sesame.schemas import (
    CREDIT_PRODUCTS,
    ESSENTIAL_CATEGORIES,
    LOCAL_SERVICE_CATEGORIES,
    ORDER_CATEGORIES,
    RELATIONS,
    SOURCES,
)

SUCCESS_MARKER = MARKER
SIMULATION_FILE = "_simulation.json"

WARMUP_DAYS = 365          # credit history simulated (and delivered on the first day) before the window
MAX_DPD_REPORTED = 181     # a bill is charged off after this
_EPOCH = date(1970, 1, 1).toordinal()
_NEVER = np.iinfo(np.int64).max // 2   # the opening day of an account not (yet) opened

# --------------------------------------------------------------------------------------------------
# Static vocabularies
# --------------------------------------------------------------------------------------------------

# (city, court code, tier)
CITIES: tuple[tuple[str, str, int], ...] = (
    ("Beijing", "BJ", 1), ("Shanghai", "SH", 1), ("Guangzhou", "GZ", 1), ("Shenzhen", "SZ", 1),
    ("Hangzhou", "HZ", 2), ("Chengdu", "CD", 2), ("Wuhan", "WH", 2), ("Nanjing", "NJ", 2),
    ("Xi'an", "XA", 2), ("Chongqing", "CQ", 2), ("Suzhou", "SU", 2), ("Tianjin", "TJ", 2),
    ("Luoyang", "LY", 3), ("Guilin", "GL", 3), ("Yichang", "YC", 3), ("Shantou", "ST", 3),
    ("Yancheng", "YN", 3), ("Zhanjiang", "ZJ", 3),
    ("Zhoukou", "ZK", 4), ("Shangqiu", "SQ", 4), ("Heze", "HE", 4), ("Anshun", "AS", 4),
    ("Tianshui", "TS", 4), ("Qujing", "QJ", 4),
)
# the first four digits of each city's administrative division code (GB/T 2260), for identity card numbers
_CITY_DIVISION = {
    "Beijing": 1101, "Shanghai": 3101, "Guangzhou": 4401, "Shenzhen": 4403, "Hangzhou": 3301, "Chengdu": 5101,
    "Wuhan": 4201, "Nanjing": 3201, "Xi'an": 6101, "Chongqing": 5001, "Suzhou": 3205, "Tianjin": 1201,
    "Luoyang": 4103, "Guilin": 4503, "Yichang": 4205, "Shantou": 4405, "Yancheng": 3209, "Zhanjiang": 4408,
    "Zhoukou": 4116, "Shangqiu": 4114, "Heze": 3717, "Anshun": 5204, "Tianshui": 6205, "Qujing": 5303,
}
_TIER_SHARE = {1: 0.20, 2: 0.35, 3: 0.25, 4: 0.20}
_TIER_INCOME = {1: 0.40, 2: 0.15, 3: -0.10, 4: -0.28}   # log-income shift
_TIER_LOCAL = {1: 0.60, 2: 0.30, 3: 0.00, 4: -0.35}     # propensity for local on-demand services

SURNAMES = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Song", "Tang", "Han",
    "Feng", "Deng", "Cao", "Peng", "Zeng", "Xiao", "Tian", "Dong", "Pan", "Yuan", "Cai", "Jiang",
)
_SURNAME_WEIGHT = np.linspace(3.0, 0.6, len(SURNAMES))
GIVEN_F = (
    "Fang", "Hong", "Juan", "Li", "Ling", "Mei", "Min", "Na", "Ping", "Qian", "Qing", "Rui", "Shan",
    "Ting", "Wen", "Xia", "Xin", "Xue", "Yan", "Yi", "Ying", "Yu", "Yun", "Jing", "Hui", "Lan",
)
GIVEN_M = (
    "Bin", "Bo", "Chao", "Cheng", "Feng", "Gang", "Hao", "Hui", "Jian", "Jie", "Jun", "Kai", "Lei",
    "Long", "Ming", "Peng", "Qiang", "Tao", "Wei", "Wen", "Xiang", "Yang", "Yong", "Zhi", "Hong", "Guo",
)
OCCUPATIONS = (
    "factory_worker", "driver", "sales", "service_worker", "office_worker", "teacher", "nurse",
    "engineer", "civil_servant", "manager", "self_employed", "freelancer",
)
# log-income slope of each occupation's logit (higher income -> more likely professional roles)
_OCC_BASE = np.array([0.6, 0.3, 0.5, 0.6, 0.8, 0.0, -0.2, 0.0, -0.3, -0.8, 0.2, -0.2])
_OCC_SLOPE = np.array([-1.6, -1.0, -0.3, -1.5, 0.2, 0.4, 0.2, 1.6, 0.9, 2.4, 0.5, 0.4])
_NO_SALARY_OCC = ("self_employed", "freelancer", "student")

BLACKLIST_REASONS = (
    "loan default", "failure to perform judgment", "contract dispute", "credit card default",
    "guarantee liability",
)

# order categories: (median CNY, log sigma, return propensity)
_CAT_AMOUNT = {
    "electronics": (650.0, 0.95, -2.4), "apparel": (160.0, 0.70, -1.9), "groceries": (85.0, 0.60, -4.5),
    "home": (190.0, 0.80, -3.0), "books": (48.0, 0.50, -3.6), "travel": (1100.0, 0.80, -3.4),
    "food_delivery": (36.0, 0.45, -5.5), "flowers": (150.0, 0.50, -4.6), "beauty": (210.0, 0.60, -4.6),
    "cleaning": (150.0, 0.40, -5.0), "car_repair": (580.0, 0.80, -5.0),
}
_CAT_INDEX = {c: i for i, c in enumerate(ORDER_CATEGORIES)}
_CAT_BASE_WEIGHT = {
    "electronics": 0.8, "apparel": 1.6, "groceries": 2.4, "home": 1.0, "books": 0.5, "travel": 0.3,
    "food_delivery": 3.0, "flowers": 0.25, "beauty": 0.6, "cleaning": 0.35, "car_repair": 0.2,
}
_DOW_ORDERS = np.array([0.94, 0.93, 0.95, 0.98, 1.08, 1.14, 1.02])  # Monday..Sunday
_DOW_MERCHANT = np.array([0.97, 0.96, 0.97, 0.99, 1.05, 1.10, 1.00])
_NORMAL_HOURS = np.array([1, 0.6, 0.3, 0.2, 0.2, 0.4, 1.0, 2.0, 3.0, 4.0, 5.0, 5.5, 5.5, 5.0, 4.5,
                          4.5, 4.6, 4.8, 5.0, 5.8, 6.5, 6.8, 5.5, 3.0])
_MEAL_HOURS = np.array([0.6, 0.3, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 1.5, 1.2, 2.0, 8.0, 10.0, 4.0, 1.5,
                        1.2, 1.8, 6.0, 9.0, 6.0, 3.0, 2.5, 1.8, 1.0])
_ORDER_SUBGROUPS = (  # (essential, local)
    [c for c in ORDER_CATEGORIES if c not in ESSENTIAL_CATEGORIES and c not in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c not in ESSENTIAL_CATEGORIES and c in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c in ESSENTIAL_CATEGORIES and c not in LOCAL_SERVICE_CATEGORIES],
    [c for c in ORDER_CATEGORIES if c in ESSENTIAL_CATEGORIES and c in LOCAL_SERVICE_CATEGORIES],
)

_GROWTH = 0.0005           # registrations per day grow by this share a day (about 20% a year)
_PLATFORM_DAYS = 4000      # the first users registered this many days before the end
_INCOME_REF = 6500.0       # CNY per month, the median salary the shapes below are scaled around
_MAX_AMOUNT_CENTS = 100_000_000   # payments.amount max (1,000,000 CNY)

# idiosyncratic shocks (job loss, illness, fraud): monthly probabilities of entering and leaving,
# independent of creditworthiness, and the share of each kind
_SHOCK_KINDS = ("job_loss", "illness", "fraud")
_SHOCK_SHARE = np.array([0.45, 0.35, 0.20])
_SHOCK_ENTER, _SHOCK_LEAVE = 0.003, 0.15
_JOB_LOSS, _ILLNESS, _FRAUD = 1, 2, 3
# distress: monthly logits of entering (a - b c) and leaving (a + b c)
_DISTRESS_ENTER = (-6.5, 1.9)
_DISTRESS_LEAVE = (-0.6, 0.6)
# missing a bill at statement: logit a - b c - g grit, in hardship and otherwise
_MISS_HARD = (0.0, 0.8, 0.4)
_MISS_NORMAL = (-3.3, 0.8, 0.3)
# daily hazard of paying an overdue bill: base * exp(b c + g grit), in a shock, in distress, otherwise
_CURE_SHOCK = (0.012, 0.8, 0.4)
_CURE_DISTRESS = (0.025, 0.6, 0.3)
_CURE_NORMAL = (0.12, 0.5, 0.3)
_COLLECTIONS_BOOST = 4.0
# credit products: a share of users opens one within weeks of registering (mean delay in days); the
# others may open one any day later, with a daily hazard base * exp(-b c) * (1 + boost in hardship)
_OPEN_QUICK, _OPEN_QUICK_DAYS = 0.35, 35.0
_OPEN_HAZARD = (0.0009, 0.0, 6.0)
# an account's first months (days since opening): its statements are missed more often (a shift of the
# miss logit) and its overdue bills paid more slowly (a factor on the hazard)
_NEW_ACCOUNT = (180, 0.8, 0.5)

_ORDER_STATUS_NAMES = ("completed", "cancelled", "returned")
_PAY = {"salary": 0, "transfer": 1, "merchant": 2, "utility": 3, "wealth_buy": 4, "wealth_redeem": 5}


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------

def _rng(seed: int, purpose: str, day: int = 0) -> np.random.Generator:
    """A PCG64 generator that depends only on the seed, a purpose label and a day ordinal."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [int(seed), zlib.crc32(purpose.encode("utf-8")), int(day)])))


def _hash(seed: int, purpose: str, idx: np.ndarray) -> np.ndarray:
    """SplitMix64 of (seed, purpose, index) as uint64: values that depend on nothing else, drawn without taking
    anything from a random stream (so adding one leaves every other simulated value as it was)."""
    base = (int(seed) * 0x9E3779B97F4A7C15 + (zlib.crc32(purpose.encode("utf-8")) << 20)) % 2 ** 64
    x = np.asarray(idx, dtype=np.uint64) + np.uint64(base)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _monthly_to_daily(p):
    """Daily probability equivalent to a per-30-day probability."""
    return -np.expm1(np.log1p(-np.clip(p, 0.0, 0.999999)) / 30.0)


def _lookup(table: dict[int, float], keys: np.ndarray) -> np.ndarray:
    return np.array([table[t] for t in range(1, 5)])[np.asarray(keys, dtype=np.int64) - 1]


def _nulls(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """An object array of `values` with None where `mask` is set."""
    out = np.asarray(values, dtype=object).copy()
    out[mask] = None
    return out


_CHUNK_ROWS = 4_000_000    # rows formatted at a time when building fixed-width strings


def _fixed_width(parts: list, n: int) -> pa.ChunkedArray:
    """`n` strings of equal width built in bulk from literal text (str) and zero-padded
    non-negative integers ((values, width) pairs), without making a Python object per string."""
    widths = [len(x.encode("ascii")) if isinstance(x, str) else int(x[1]) for x in parts]
    w = sum(widths)
    for x in parts:
        if not isinstance(x, str) and len(x[0]) and (np.min(x[0]) < 0 or np.max(x[0]) >= 10 ** x[1]):
            raise ValueError(f"value does not fit in {x[1]} digits")
    chunks = []
    for lo in range(0, max(n, 1), _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        buf = np.empty((hi - lo, w), dtype=np.uint8)
        pos = 0
        for x, wd in zip(parts, widths):
            if isinstance(x, str):
                buf[:, pos:pos + wd] = np.frombuffer(x.encode("ascii"), dtype=np.uint8)
            else:
                v = np.asarray(x[0][lo:hi], dtype=np.int64).copy()
                for k in range(wd - 1, -1, -1):
                    buf[:, pos + k] = v % 10 + 48
                    v //= 10
            pos += wd
        offsets = np.arange(0, (hi - lo + 1) * w, w, dtype=np.int32)
        chunks.append(pa.StringArray.from_buffers(hi - lo, pa.py_buffer(offsets), pa.py_buffer(buf)))
    return pa.chunked_array(chunks, type=pa.string())


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.ChunkedArray:
    numbers = np.asarray(numbers, dtype=np.int64)
    return _fixed_width([prefix, (numbers, width)], len(numbers))


def _timestamps(iso_day: str, secs: np.ndarray) -> pa.ChunkedArray:
    """"YYYY-MM-DDTHH:MM:SS" for seconds into the day `iso_day`."""
    secs = np.asarray(secs, dtype=np.int64)
    return _fixed_width([f"{iso_day}T", (secs // 3600, 2), ":", (secs // 60 % 60, 2), ":", (secs % 60, 2)],
                        len(secs))


def _take(values: pa.Array | pa.ChunkedArray, idx, null: np.ndarray | None = None) -> pa.ChunkedArray:
    """values[idx] as an Arrow array; null where `null` is set."""
    idx = np.asarray(idx, dtype=np.int64)
    if null is not None and null.any():
        indices = pa.array(np.where(null, 0, idx), mask=np.asarray(null, dtype=bool))
    else:
        indices = pa.array(idx)
    out = values.take(indices)
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out], type=out.type)


def _texts(values) -> pa.ChunkedArray:
    """A string column from Python strings (None for null)."""
    return pa.chunked_array([pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)],
                            type=pa.string())


def _col(values) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A DataFrame column: Arrow arrays stay in Arrow memory (no Python object per value)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pd.arrays.ArrowExtensionArray(values)
    return values


def _frame(columns: dict) -> pd.DataFrame:
    return pd.DataFrame({k: _col(v) for k, v in columns.items()}, copy=False)


def _hours_to_secs(rng: np.random.Generator, n: int, hour_weights: np.ndarray) -> np.ndarray:
    cum = np.cumsum(hour_weights) / hour_weights.sum()
    hours = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), 23)
    return hours * 3600 + rng.integers(0, 3600, size=n)


def _cents(x) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=np.float64) * 100.0).astype(np.int64)


def _money(cents: np.ndarray) -> np.ndarray:
    return np.asarray(cents, dtype=np.int64) / 100.0


def _group_cumsum(keys_sorted: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum of `values` within runs of equal `keys_sorted` (keys already sorted)."""
    cs = np.cumsum(values)
    if len(cs) == 0:
        return cs
    starts = np.r_[True, keys_sorted[1:] != keys_sorted[:-1]]
    base = np.maximum.accumulate(np.where(starts, np.arange(len(cs)), 0))
    return cs - (cs - values)[base]


def _gumbel_top_k(rng: np.random.Generator, logits: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or len(logits) == 0:
        return np.zeros(0, dtype=np.int64)
    k = min(k, len(logits))
    keys = logits + rng.gumbel(size=len(logits))
    return np.sort(np.argpartition(-keys, k - 1)[:k])


class _Buckets:
    """Day-keyed queues of integer arrays (scheduled events)."""

    def __init__(self) -> None:
        self._d: dict[int, list[np.ndarray]] = {}

    def add(self, days: np.ndarray, items: np.ndarray) -> None:
        if len(items) == 0:
            return
        order = np.argsort(days, kind="stable")
        days, items = days[order], items[order]
        uniq, start = np.unique(days, return_index=True)
        for d, part in zip(uniq.tolist(), np.split(items, start[1:])):
            self._d.setdefault(int(d), []).append(part)

    def pop(self, day: int) -> np.ndarray:
        parts = self._d.pop(day, None)
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(parts).astype(np.int64)

    def pop_until(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Everything scheduled up to `day`: (items, their days)."""
        items, days = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
        for k in sorted(k for k in self._d if k <= day):
            part = np.concatenate(self._d.pop(k)).astype(np.int64)
            items.append(part)
            days.append(np.full(len(part), k, dtype=np.int64))
        return np.concatenate(items), np.concatenate(days)


class _Grow:
    """Column arrays that grow by appending (amortised doubling)."""

    def __init__(self, **dtypes) -> None:
        self.n = 0
        self._cap = 1024
        self.cols = {k: np.zeros(self._cap, dtype=t) for k, t in dtypes.items()}

    def append(self, **values) -> np.ndarray:
        m = len(next(iter(values.values())))
        if self.n + m > self._cap:
            while self.n + m > self._cap:
                self._cap *= 2
            for k, a in self.cols.items():
                b = np.zeros(self._cap, dtype=a.dtype)
                b[: self.n] = a[: self.n]
                self.cols[k] = b
        for k, v in values.items():
            self.cols[k][self.n: self.n + m] = v
        idx = np.arange(self.n, self.n + m)
        self.n += m
        return idx

    def __getitem__(self, k: str) -> np.ndarray:
        return self.cols[k][: self.n]


# --------------------------------------------------------------------------------------------------
# The simulated world
# --------------------------------------------------------------------------------------------------

@dataclass
class _BillRows:
    bill: np.ndarray
    status: np.ndarray
    paid_cents: np.ndarray
    paid: np.ndarray       # paid ordinal or -1
    dpd: np.ndarray

    _DTYPES = {"bill": np.int64, "status": np.int32, "paid_cents": np.int64, "paid": np.int32, "dpd": np.int32}

    @staticmethod
    def concat(parts: list[_BillRows]) -> _BillRows:
        """One set of rows (in compact types: a year of them is kept for the first delivery)."""
        return _BillRows(*(np.concatenate([np.zeros(0, t)] + [getattr(p, f) for p in parts]).astype(t, copy=False)
                           for f, t in _BillRows._DTYPES.items()))


class _World:
    def __init__(self, users: int, days: int, end_ds: date, seed: int,
                 activity: float = 1.0, contacts: float = 1.0) -> None:
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
        N, start, end = self.N, self.start, self.end
        rng = self.rng("population")
        end_year = date.fromordinal(end).year

        # registration: the platform opened `_PLATFORM_DAYS` before the end and has grown steadily since
        # (registrations rise by `_GROWTH` a day), so most users registered years before the window and
        # some during it (thin files), at a rate that does not jump at the window's start
        back = -np.log1p(-rng.random(N) * -np.expm1(-_GROWTH * _PLATFORM_DAYS)) / _GROWTH
        reg = end - np.minimum(np.floor(back).astype(np.int64), _PLATFORM_DAYS - 1)
        self.reg = np.sort(reg).astype(np.int64)          # user i is the i-th to register
        self.uid = _ids("U", np.arange(1, N + 1), 8).combine_chunks()

        # protected attributes: drawn independently of creditworthiness (age is only bounded below so
        # that nobody registered as a child)
        self.gender = np.where(rng.random(N) < 0.49, "F", "M").astype(object)
        self.gender_pa = _texts(self.gender).combine_chunks()
        age = np.clip(18 + np.floor(rng.gamma(2.3, 8.5, size=N)), 18, 78).astype(np.int64)
        reg_year = (self.reg - _EPOCH).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        age = np.maximum(age, end_year - reg_year + 17)
        max_year = int(SOURCES["users"].column("birth_year").max or end_year)
        self.birth_year = np.minimum(end_year - age, max_year).astype(np.int64)
        birth_ord = ((self.birth_year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
                     + _EPOCH)

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

        # communities (20-200 members), a shared creditworthiness component and a home city
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
        indiv = 0.15 * tenure + np.sqrt(1 - 0.15 ** 2) * rng.standard_normal(N)
        self.z = np.sqrt(0.5) * comm_effect[self.comm] + np.sqrt(0.5) * indiv
        z = self.z

        tiers = np.array([t for _, _, t in CITIES])
        city_p = np.array([_TIER_SHARE[t] / (tiers == t).sum() for t in tiers])
        home_city = rng.choice(len(CITIES), size=n_comm, p=city_p)
        self.city = np.where(rng.random(N) < 0.8, home_city[self.comm],
                             rng.choice(len(CITIES), size=N, p=city_p)).astype(np.int64)
        self._city_name = np.array([c for c, _, _ in CITIES], dtype=object)
        self._city_name_pa = pa.array(list(self._city_name), type=pa.string())
        self._product_pa = pa.array(list(CREDIT_PRODUCTS), type=pa.string())
        self._city_code = np.array([k for _, k, _ in CITIES], dtype=object)
        self._city_tier = tiers.astype(np.int64)
        self._city_p = city_p
        tier = self._city_tier[self.city]
        self.id_number = self._identity_numbers(birth_city=self.city.copy())

        # income and occupation: income follows creditworthiness only loosely, and barely depends on
        # age (pensions are close to the last salary; students often have part-time pay)
        student = (age <= 23) & (rng.random(N) < 0.35)
        retired = (age >= 60) & (rng.random(N) < 0.75)
        log_inc = (np.log(_INCOME_REF) + _lookup(_TIER_INCOME, tier) + 0.26 * z
                   + 0.55 * rng.standard_normal(N))
        rel = log_inc - np.log(_INCOME_REF)
        logits = _OCC_BASE[None, :] + _OCC_SLOPE[None, :] * rel[:, None] + rng.gumbel(size=(N, len(OCCUPATIONS)))
        occ = np.array(OCCUPATIONS, dtype=object)[np.argmax(logits, axis=1)]
        occ = np.where(student, "student", np.where(retired, "retired", occ)).astype(object)
        log_inc = np.where(student, log_inc + np.log(0.75), np.where(retired, log_inc + np.log(0.92), log_inc))
        self.income = np.clip(np.exp(log_inc), 800.0, 300_000.0)   # CNY / month
        self.occupation = _texts(_nulls(occ, rng.random(N) < 0.03)).combine_chunks()
        self.inc_rel = self.income / _INCOME_REF

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

        # wallet habits
        has_salary_occ = ~np.isin(occ, _NO_SALARY_OCC) | (student & (rng.random(N) < 0.75))   # part-time
        self.has_salary = has_salary_occ & (rng.random(N) < _sigmoid(0.8 + 0.3 * z))
        self.pay_day = np.where(rng.random(N) < 0.6, rng.choice([1, 5, 10, 15, 20, 25, 28], size=N),
                                rng.integers(1, 29, size=N))
        self.util_user = rng.random(N) < _sigmoid(0.9 + 0.35 * z)
        self.util_day = rng.integers(1, 29, size=N)
        # share of months paid on the day itself
        self.util_regular = _sigmoid(1.2 + 0.6 * z + 1.0 * rng.standard_normal(N))
        self.keep = self.income * 0.9 * np.exp(0.15 * z + 0.6 * rng.standard_normal(N))
        self.wealth_holder = rng.random(N) < _sigmoid(-0.6 + 0.6 * z + 0.5 * np.log(self.inc_rel)
                                                      + 0.5 * rng.standard_normal(N))
        # `activity` multiplies everyday payments and transfers; each is smaller by as much, so the money
        # moved (and every wallet's course) stays the same
        self.merchant_rate = self.activity * 0.55 * self.inc_rel ** 0.25 * np.exp(0.3 * rng.standard_normal(N))
        self.merchant_mu = np.log(42.0 * self.inc_rel ** 0.6) - np.log(self.activity)
        self.p2p_rate = np.minimum(
            self.activity * 0.045 * self.inc_rel ** 0.2 * np.exp(0.4 * rng.standard_normal(N)), 1.0)
        self.p2p_mu = np.log(150.0 * self.inc_rel ** 0.5) - np.log(self.activity)
        self.topup_base = np.where(self.has_salary, 0.01, 0.05)

        # shopping habits
        self.order_rate = self.activity * 0.28 * self.inc_rel ** 0.2 * np.exp(0.6 * rng.standard_normal(N) - 0.18)
        self.p_ess = _sigmoid(0.15 + 0.3 * z + 0.5 * rng.standard_normal(N))
        self.p_local = _sigmoid(-1.0 + _lookup(_TIER_LOCAL, tier) + 0.25 * z
                                + 0.5 * rng.standard_normal(N))
        self.cancel_bias = 0.6 * rng.standard_normal(N)
        self.return_bias = 0.5 * rng.standard_normal(N)

        # credit products: a share opens one within weeks of registering; the others may open one any
        # day later (see `_open_accounts`), so that new-to-credit users keep appearing
        quick = rng.random(N) < _OPEN_QUICK
        self.product = np.where(rng.random(N) < 0.75, 0, 1).astype(np.int64)   # huabei / jiebei
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

        # initial wallet balances (cents)
        self.balance = _cents(np.minimum(self.income * np.exp(rng.normal(-0.6 + 0.25 * z, 1.0)), 5e6))
        self.wealth = np.where(self.wealth_holder,
                               _cents(np.minimum(self.income * np.exp(rng.normal(0.9 + 0.3 * z, 1.1)), 5e7)),
                               0).astype(np.int64)
        new = self.reg >= start
        self.balance[new] = self.balance[new] // 5
        self.wealth[new] = 0

        # payment discipline: how a user handles bills beside their means, seen nowhere but in the bills
        self.grit = rng.standard_normal(N)
        self.spend_bias = rng.standard_normal(N)    # habitual use of the credit limit

    # ---- social graph ------------------------------------------------------------------------------
    def _build_graph(self) -> None:
        N, start, end = self.N, self.start, self.end
        rng = self.rng("graph")
        w = np.exp(0.15 * self.z + 0.7 * rng.standard_normal(N))    # attachment weight (hubs)
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
        rel_p_in = np.cumsum([0.55, 0.15, 0.30])     # friend, family, colleague
        rel_p_out = np.cumsum([0.60, 0.05, 0.35])
        r = rng.random(m)
        rel = np.where(intra, np.searchsorted(rel_p_in, r, side="right"),
                       np.searchsorted(rel_p_out, r, side="right"))
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

    def neighbour(self, rng: np.random.Generator, users: np.ndarray, d: int, n_active: int,
                  p_neigh: float = 0.85) -> np.ndarray:
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
            (h % np.uint64(9)).astype(np.int64) + 1)
        year = self.birth_year
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        born = ((year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
                + ((h >> np.uint64(8)) % (365 + leap).astype(np.uint64)).astype(np.int64))
        ymd = ((born.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
               + (born.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
               + (born - born.astype("datetime64[M]")).astype(np.int64) + 1)
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
        first17 = division * 10 ** 11 + ymd * 1000 + sequence
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
        self.shock = np.where(rng.random(N) < _SHOCK_ENTER / (_SHOCK_ENTER + _SHOCK_LEAVE),
                              1 + rng.choice(len(_SHOCK_KINDS), size=N, p=_SHOCK_SHARE), 0).astype(np.int8)
        self.shock_start = np.full(N, -10**6, dtype=np.int64)
        self.closed_until = np.full(N, -1, dtype=np.int64)   # account closed after a charge-off
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
        return (_sigmoid(_DISTRESS_ENTER[0] - _DISTRESS_ENTER[1] * c),
                _sigmoid(_DISTRESS_LEAVE[0] + _DISTRESS_LEAVE[1] * c))

    def hardship(self) -> np.ndarray:
        """Users who struggle to pay today: in distress or hit by a shock."""
        return self.distress | (self.shock > 0)

    def step_state(self, d: int) -> None:
        rng = self.rng("state", d)
        phi = np.exp(-1.0 / 365.0)
        self.drift = phi * self.drift + np.sqrt(1 - phi * phi) * rng.standard_normal(self.N)
        self.comm_drift = (phi * self.comm_drift
                           + np.sqrt(1 - phi * phi) * rng.standard_normal(len(self.comm_drift)))
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

    def credit_step(self, d: int) -> _BillRows:
        rng = self.rng("bills", d)
        c = self.c_now()
        self._open_accounts(d, c)
        parts: list[_BillRows] = []
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
            idx = self.bills.append(user=cand, stmt=np.full(len(cand), d), amount=amount,
                                    limit=self.limit_cents[cand])
            bu, bstmt = self.bills["user"], self.bills["stmt"]
            # a bill is missed now and then by anyone (and then mostly paid within days); users in
            # hardship miss most bills, unless their payment discipline carries them through
            g = self.grit[cand]
            young = (d - self.open[cand]) < _NEW_ACCOUNT[0]
            p_miss = _sigmoid(np.where(dis, _MISS_HARD[0] - _MISS_HARD[1] * cu - _MISS_HARD[2] * g,
                                       _MISS_NORMAL[0] - _MISS_NORMAL[1] * cu - _MISS_NORMAL[2] * g)
                              + _NEW_ACCOUNT[1] * young)
            miss = rng.random(len(cand)) < p_miss
            on_time = idx[~miss]
            self._pay_sched.add(d + rng.integers(1, 16, size=len(on_time)), on_time)
            self._overdue_sched.add(np.full(int(miss.sum()), d + 16), idx[miss])
            z0 = np.zeros(len(idx), dtype=np.int64)
            parts.append(_BillRows(idx, np.full(len(idx), d), z0, z0 - 1, z0))

        # payments made on time (scheduled at statement)
        paid = self._pay_sched.pop(d)
        if len(paid):
            z0 = np.zeros(len(paid), dtype=np.int64)
            today = np.full(len(paid), d)
            parts.append(_BillRows(paid, today, self.bills["amount"][paid], today, z0))

        # overdue bills: cure with a hazard that depends on the state of the user today
        od = np.concatenate([self._overdue, self._overdue_sched.pop(d)]).astype(np.int64)
        if len(od):
            u = bu[od]
            dpd = d - (bstmt[od] + 15)
            cu = c[u]
            g = self.grit[u]
            hazard = np.where(self.shock[u] > 0, _CURE_SHOCK[0] * np.exp(_CURE_SHOCK[1] * cu + _CURE_SHOCK[2] * g),
                              np.where(self.distress[u],
                                       _CURE_DISTRESS[0] * np.exp(_CURE_DISTRESS[1] * cu + _CURE_DISTRESS[2] * g),
                                       _CURE_NORMAL[0] * np.exp(_CURE_NORMAL[1] * cu + _CURE_NORMAL[2] * g)))
            hazard = np.where(d - self.open[u] < _NEW_ACCOUNT[0], _NEW_ACCOUNT[2] * hazard, hazard)
            # collections step up once a bill is 90 days past due: many then find the money
            hazard = np.where(dpd > 90, _COLLECTIONS_BOOST * hazard, hazard)
            hazard = np.where(closed[u], 0.0, hazard)
            cured = rng.random(len(od)) < hazard
            amt = self.bills["amount"][od]
            if cured.any():
                pc = amt[cured] + np.rint(amt[cured] * 0.0005 * dpd[cured]).astype(np.int64)
                parts.append(_BillRows(od[cured], np.full(int(cured.sum()), d), pc,
                                       np.full(int(cured.sum()), d), dpd[cured]))
            report = ~cured & ((dpd - 1) % 30 == 0) & (dpd <= MAX_DPD_REPORTED)
            if report.any():
                k = int(report.sum())
                z0 = np.zeros(k, dtype=np.int64)
                parts.append(_BillRows(od[report], np.full(k, d), z0, z0 - 1, dpd[report]))
            charged = ~cured & (dpd >= MAX_DPD_REPORTED)
            if charged.any():
                cu_users = np.unique(u[charged])
                self.closed_until[cu_users] = d + rng.integers(30, 120, size=len(cu_users))
                cand = cu_users[~self.listed[cu_users]]
                go = cand[rng.random(len(cand)) < 0.1]
                self.listed[go] = True
                self._listings.add(d + rng.integers(15, 120, size=len(go)), go)
            self._overdue = od[~cured & ~charged]
        return _BillRows.concat(parts)

    def bills_frame(self, rows: _BillRows) -> pd.DataFrame:
        """One row per status change; columns are built one by one to keep a year of history small."""
        o = np.lexsort((rows.bill, rows.status))
        b = rows.bill[o]
        u = self.bills["user"][b]
        stmt = self.bills["stmt"][b]
        cols: dict[str, object] = {}
        cols["bill_id"] = _fixed_width(["B", (u + 1, 8), (self._ymd_num[stmt - self._date_base], 8)], len(u))
        cols["user_id"] = _take(self.uid, u)
        cols["product"] = _take(self._product_pa, self.product[u])
        del u
        cols["credit_limit"] = _money(self.bills["limit"][b])
        cols["statement_date"] = self.dates(stmt)
        cols["due_date"] = self.dates(stmt + 15)
        del stmt
        cols["amount_due"] = _money(self.bills["amount"][b])
        del b
        cols["amount_paid"] = _money(rows.paid_cents[o])
        paid = rows.paid[o]
        cols["paid_date"] = self.dates(paid, null=paid < 0)
        del paid
        cols["days_past_due"] = rows.dpd[o].astype(np.int32)
        cols["status_date"] = self.dates(rows.status[o])
        return _frame(cols)

    # ---- users -----------------------------------------------------------------------------------
    def users_frame(self, d: int) -> pd.DataFrame:
        n = self.n_reg(d)
        return _frame({
            "user_id": self.uid[:n],
            "full_name": self.full_name[:n],
            "gender": self.gender_pa[:n],
            "birth_year": self.birth_year[:n],
            "city": _take(self._city_name_pa, self.city[:n]),
            "city_tier": self._city_tier[self.city[:n]],
            "registered_date": self.dates(self.reg[:n]),
            "identity_verified": (self.verify[:n] <= d).astype(np.int64),
            "phone_tenure_months": np.clip((d - self.phone_start[:n]) * 12 // 365, 0, 600),
            "address_months": np.clip((d - self.addr_start[:n]) * 12 // 365, 0, 1200),
            "occupation": self.occupation[:n],
            "id_document_number": self.id_number[:n],
        })

    # ---- orders ----------------------------------------------------------------------------------
    def orders_frame(self, d: int) -> pd.DataFrame:
        rng = self.rng("orders", d)
        day = date.fromordinal(d)
        n = self.n_reg(d)
        c = self.c_now()
        season = 1.0 + 0.08 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 350) / 365.0)
        season *= {(11, 11): 2.2, (11, 10): 1.3, (6, 18): 1.6, (12, 12): 1.4}.get((day.month, day.day), 1.0)
        lam = (self.order_rate[:n] * _DOW_ORDERS[day.weekday()] * season
               * np.where(self.distress[:n], 0.8, 1.0) * np.where(self.shock[:n] == _JOB_LOSS, 0.85, 1.0))
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
        sub = (rng.random(m) < self.p_ess[u]).astype(np.int64) * 2 + (rng.random(m) < self.p_local[u])
        cat = np.minimum((rng.random(m)[:, None] >= cum[sub]).sum(axis=1), len(ORDER_CATEGORIES) - 1)
        med = np.array([_CAT_AMOUNT[x][0] for x in ORDER_CATEGORIES])
        sig = np.array([_CAT_AMOUNT[x][1] for x in ORDER_CATEGORIES])
        ret = np.array([_CAT_AMOUNT[x][2] for x in ORDER_CATEGORIES])
        amount = np.exp(np.log(med[cat]) + 0.25 * np.log(self.inc_rel[u]) + sig[cat] * rng.standard_normal(m))
        cents = np.clip(_cents(amount), 1, 20_000_000)
        cu = c[u]
        dis = self.distress[u]
        p_cancel = _sigmoid(-3.0 - 0.45 * cu + 0.7 * dis + self.cancel_bias[u])
        p_return = _sigmoid(ret[cat] - 0.3 * cu + 0.4 * dis + self.return_bias[u])
        r = rng.random(m)
        status = np.where(r < p_cancel, 1, np.where(r < p_cancel + p_return, 2, 0))   # _ORDER_STATUS_NAMES
        meal = cat == _CAT_INDEX["food_delivery"]
        secs = np.where(meal, _hours_to_secs(rng, m, _MEAL_HOURS), _hours_to_secs(rng, m, _NORMAL_HOURS))
        local = np.isin(cat, [_CAT_INDEX[x] for x in LOCAL_SERVICE_CATEGORIES])
        rank = np.floor(600 * rng.random(m) ** 3).astype(np.int64)
        merchant = cat * 1_000_000 + np.where(local, self.city[u] * 10_000, 900_000) + rank
        o = np.lexsort((u, secs))
        ymd = self.ymd(d)
        return _frame({
            "order_id": _ids(f"O{ymd}", np.arange(1, m + 1), 7),
            "user_id": _take(self.uid, u[o]),
            "order_ts": _timestamps(self.iso(d), secs[o]),
            "category": _take(pa.array(list(ORDER_CATEGORIES)), cat[o]),
            "amount": _money(cents[o]),
            "status": _take(pa.array(list(_ORDER_STATUS_NAMES)), status[o]),
            "merchant_id": _ids("M", merchant[o], 8),
        })

    # ---- payments --------------------------------------------------------------------------------
    def payments_frame(self, d: int) -> pd.DataFrame:
        rng = self.rng("payments", d)
        day = date.fromordinal(d)
        n = self.n_reg(d)
        c = self.c_now()
        act = np.arange(n)
        dis = self.distress[:n]
        bal = self.balance[:n]
        inc = self.income[:n]
        rows: dict[str, list[np.ndarray]] = {
            k: [np.zeros(0, dtype=bool if k == "out" else np.int64)]
            for k in ("user", "secs", "kind", "out", "cents", "cp", "pair", "wd")}

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
        shock = self.shock[:n]
        s = act[self.has_salary[:n] & (self.pay_day[:n] == day.day)]
        skip = rng.random(len(s)) < np.where(shock[s] == _JOB_LOSS, 0.85, np.where(dis[s], 0.75, 0.015))
        s = s[~skip]
        amt = inc[s] * (1 + 0.03 * rng.standard_normal(len(s)))
        if day.month == 1:
            amt *= np.where(rng.random(len(s)) < 0.25, 1.3 + 1.2 * rng.random(len(s)), 1.0)
        add(s, 8 * 3600 + rng.integers(0, 4 * 3600, len(s)), "salary", False, _cents(amt))

        # top-ups from the user's own bank card when the wallet runs low
        p = self.topup_base[:n] + 0.25 * (bal < _cents(0.15 * inc))
        p = p * np.where(dis, 0.4, 1.0)
        t = act[rng.random(n) < p]
        share = np.where(self.has_salary[t], 0.15, 0.4)
        add(t, 9 * 3600 + rng.integers(0, 14 * 3600, len(t)), "transfer", False,
            _cents(inc[t] * share * rng.lognormal(0, 0.5, len(t))))

        # a fraud victim's wallet is emptied the day it happens
        fv = act[(shock == _FRAUD) & (self.shock_start[:n] == d) & (bal > 100)]
        add(fv, rng.integers(0, 86400, len(fv)), "transfer", True,
            np.floor(bal[fv] * (0.5 + 0.45 * rng.random(len(fv)))).astype(np.int64))

        # merchant payments (QR codes in shops)
        rate = (self.merchant_rate[:n] * _DOW_MERCHANT[day.weekday()] * np.where(dis, 0.7, 1.0)
                * np.where(shock == _JOB_LOSS, 0.85, 1.0))
        k = rng.poisson(rate)
        mu_ = np.repeat(act, k)
        add(mu_, _hours_to_secs(rng, len(mu_), _NORMAL_HOURS), "merchant", True,
            _cents(np.exp(self.merchant_mu[mu_] + 0.95 * rng.standard_normal(len(mu_)))))

        # utilities: monthly on a user-specific day; less creditworthy users pay late or skip
        due = act[self.util_user[:n] & (self.util_day[:n] == day.day)]
        pay = rng.random(len(due)) < _sigmoid(1.8 + 0.6 * c[due] - 1.0 * self.distress[due])
        due = due[pay]
        delay = np.where(rng.random(len(due)) < self.util_regular[due], 0,
                         rng.integers(1, 12, len(due)))
        self._utility_sched.add(d + delay, due)
        ut = self._utility_sched.pop(d)
        ut = ut[ut < n]
        tfac = _lookup({1: 1.25, 2: 1.15, 3: 1.0, 4: 0.85}, self._city_tier[self.city[ut]])
        seas = 1.3 if day.month in (1, 2, 7, 8, 12) else 1.0
        add(ut, 9 * 3600 + rng.integers(0, 13 * 3600, len(ut)), "utility", True,
            _cents(120.0 * seas * tfac * self.inc_rel[ut] ** 0.3 * rng.lognormal(0, 0.35, len(ut))))

        # transfers between users: a contact mostly; distressed users borrow from contacts
        snd = act[(rng.random(n) < self.p2p_rate[:n]) & (bal > 0)]
        rcv = self.neighbour(rng, snd, d, n)
        amt = np.exp(self.p2p_mu[snd] + 0.9 * rng.standard_normal(len(snd)))
        amt = np.where(rng.random(len(snd)) < 0.5, np.maximum(1.0, np.round(amt, -1)), amt)
        brw = act[dis & (rng.random(n) < 0.06)]
        lender = self.neighbour(rng, brw, d, n, p_neigh=0.95)
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
        keep = _cents(self.keep[:n])
        sw = act[(bal > 2 * keep) & (rng.random(n) < 0.12)]
        to_wealth = self.wealth_holder[sw] & (rng.random(len(sw)) < 0.75)
        samt = np.minimum(bal[sw] - keep[sw], _MAX_AMOUNT_CENTS)
        ssec = 19 * 3600 + rng.integers(0, 5 * 3600, len(sw))
        add(sw[to_wealth], ssec[to_wealth], "wealth_buy", True, samt[to_wealth], wd=samt[to_wealth])
        add(sw[~to_wealth], ssec[~to_wealth], "transfer", True, samt[~to_wealth])
        # regular small investments
        hold = self.wealth_holder[:n]
        ai = act[hold & ~dis & (rng.random(n) < 0.03)]
        aamt = _cents(0.1 * inc[ai] * rng.lognormal(0, 0.5, len(ai)))
        add(ai, 7 * 3600 + rng.integers(0, 16 * 3600, len(ai)), "wealth_buy", True, aamt, wd=aamt)
        # redemptions: more often when distressed or short of cash (at most one per user a day)
        wl = self.wealth[:n]
        p = 0.008 + 0.05 * dis + 0.2 * (bal < _cents(0.1 * inc))
        rd = act[(wl > 100) & (rng.random(n) < p)]
        ramt = np.minimum(np.maximum(1, np.floor(wl[rd] * (0.1 + 0.6 * rng.random(len(rd))))).astype(np.int64),
                          _MAX_AMOUNT_CENTS)
        add(rd, 8 * 3600 + rng.integers(0, 14 * 3600, len(rd)), "wealth_redeem", False, ramt, wd=-ramt)

        user, secs, kind, out, cents, cp, pair, wd = (np.concatenate(rows[k]) for k in rows)
        seq = np.arange(len(user))
        signed = np.where(out, -cents, cents)

        # keep wallets non-negative: an outgoing movement that the balance cannot cover fails
        # (and so does the incoming side of a failed transfer); repeat until nothing fails
        o = np.lexsort((seq, secs, user))
        u_s, sg_s, out_s, pair_s = user[o], signed[o], out[o], pair[o]
        alive = np.ones(len(o), dtype=bool)
        start_bal = self.balance[u_s]
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
        w_run = self.wealth[u_s] + _group_cumsum(u_s, wd[o])
        # new state: last value per user
        last = np.r_[u_s[1:] != u_s[:-1], True] if len(u_s) else np.zeros(0, bool)
        self.balance[u_s[last]] = run[last]
        self.wealth[u_s[last]] = w_run[last]
        # wealth products accrue a small yield every day (no wallet movement)
        self.wealth += (self.wealth * 0.025 / 365.0).astype(np.int64)
        return self._payments_df(d, user[o], secs[o], kind[o], out[o], cents[o], cp[o], run, w_run, seq[o])

    def _payments_df(self, d: int, user, secs, kind, out, cents, cp, bal, wbal, seq) -> pd.DataFrame:
        fin = np.lexsort((seq, user, secs))
        m = len(user)
        cpf = cp[fin]
        return _frame({
            "payment_id": _ids(f"P{self.ymd(d)}", np.arange(1, m + 1), 8),
            "user_id": _take(self.uid, user[fin]),
            "payment_ts": _timestamps(self.iso(d), secs[fin]),
            "direction": _take(pa.array(["in", "out"]), out[fin].astype(np.int64)),
            "kind": _take(pa.array(list(_PAY)), kind[fin]),
            "amount": _money(cents[fin]),
            "counterparty_id": _take(self.uid, cpf, null=cpf < 0),
            "balance_after": _money(bal[fin]),
            "wealth_balance_after": _money(wbal[fin]),
        })

    # ---- social edges ----------------------------------------------------------------------------
    def edges_frame(self, d: int, first: bool) -> pd.DataFrame:
        sel = (self.e_created <= d) if first else (self.e_created == d)
        idx = np.flatnonzero(sel)
        idx = idx[np.lexsort((self.e_dst[idx], self.e_src[idx], self.e_created[idx]))]
        return _frame({
            "src_user_id": _take(self.uid, self.e_src[idx]),
            "dst_user_id": _take(self.uid, self.e_dst[idx]),
            "relation": _take(pa.array(list(RELATIONS)), self.e_rel[idx]),
            "created_date": self.dates(self.e_created[idx]),
        })

    # ---- court list ------------------------------------------------------------------------------
    def blacklist_frame(self, d: int, first: bool) -> pd.DataFrame:
        rng = self.rng("blacklist", d)
        n = self.n_reg(d)
        # a small daily hazard of new judgements, higher for low creditworthiness and in distress
        h = 8e-6 * np.exp(-1.5 * self.z[:n]) * np.where(self.distress[:n], 3.0, 1.0)
        new = np.flatnonzero((rng.random(n) < h) & ~self.listed[:n] & (self.reg[:n] < d - 30))
        self.listed[new] = True
        self._listings.add(np.full(len(new), d), new)
        if first:
            # everything scheduled up to today: the existing list plus charge-offs from the history
            users, when = self._listings.pop_until(d)
        else:
            users = self._listings.pop(d)
            when = np.full(len(users), d)
        o = np.lexsort((users, when))
        users, when = users[o], when[o]
        k = len(users)
        court_no = rng.integers(0, 2, size=k)
        city = self.city[users]
        seq = self._case_seq + np.arange(1, k + 1)
        self._case_seq += k
        years = np.array([date.fromordinal(int(x)).year for x in when], dtype=np.int64)
        case = [f"({y}){cc}{cn + 1:02d}zhi{s:07d}" for y, cc, cn, s in
                zip(years.tolist(), self._city_code[city].tolist(), court_no.tolist(), seq.tolist())]
        court = np.where(court_no == 0, self._city_name[city] + " Intermediate People's Court",
                         self._city_name[city] + " People's Court")
        reasons = np.array(BLACKLIST_REASONS, dtype=object)
        reason = reasons[rng.choice(len(reasons), size=k, p=[0.45, 0.25, 0.15, 0.1, 0.05])]
        reason = _nulls(reason, rng.random(k) < 0.05)
        return _frame({
            "case_id": _texts(case),
            "user_id": _take(self.uid, users),
            "court": _texts(court),
            "listed_date": self.dates(when),
            "reason": _texts(reason),
        })


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------

def _finish(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Order the columns as declared."""
    names = SOURCES[name].column_names
    return df if list(df.columns) == names else df[names]


def generate(users: int, days: int, end_ds: date, seed: int = 7, progress: bool = False,
             activity: float = 1.0, contacts: float = 1.0) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Yield ``(source, ds, frame)`` for every source and day, in day order.

    Frames hold the declared columns in declared order. Text columns are Arrow-backed strings
    (``string[pyarrow]``), dates Arrow dates (``date32[day][pyarrow]``, written as "YYYY-MM-DD"),
    timestamps ISO strings ("YYYY-MM-DDTHH:MM:SS"), numbers numpy integers and floats; nulls are
    missing values. A frame is built when it is asked for and not kept afterwards.

    `activity` multiplies the everyday payments, orders and transfers per user (each payment and transfer
    smaller by as much) and `contacts` the social graph's mean degree; both 1 by default, for sizing runs.
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be positive")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if activity <= 0 or contacts <= 0:
        raise ValueError("activity and contacts must be positive")
    world = _World(users, days, end_ds, seed, activity, contacts)
    bar = Progress("simulate", total=world.days, unit="day", quiet=not progress)
    history: list[_BillRows] = []
    for d in range(world.warm, world.start):
        world.step_state(d)
        history.append(world.credit_step(d))
    for i, d in enumerate(range(world.start, world.end + 1)):
        first = i == 0
        ds = str(world.iso(d))
        world.step_state(d)
        bill_rows: _BillRows | None = world.credit_step(d)
        if first:
            bill_rows = _BillRows.concat(history + [bill_rows])
            history = []
        # frames are built one at a time, in this order (some change the world's state), and
        # dropped once handed over, so that only one large frame is alive at a time
        for name in SOURCES:
            if name == "users":
                frame = world.users_frame(d)
            elif name == "orders":
                frame = world.orders_frame(d)
            elif name == "payments":
                frame = world.payments_frame(d)
            elif name == "bills":
                frame, bill_rows = world.bills_frame(bill_rows), None
            elif name == "social_edges":
                frame = world.edges_frame(d, first)
            else:
                frame = world.blacklist_frame(d, first)
            yield name, ds, _finish(name, frame)
            del frame
        bar.update(status=ds)
    bar.close()


def simulate(raw_dir: Path, users: int, days: int, end_ds: date, seed: int = 7,
             progress: bool = False, dirty: dict[str, float | int | str] | str | None = None,
             activity: float = 1.0, contacts: float = 1.0) -> dict:
    """Write `days` days of upstream deliveries ending at `end_ds` (inclusive) under `raw_dir`.

    Each source gets ``raw_dir/<source>/ds=YYYY-MM-DD/<file>`` plus a ``_SUCCESS`` marker with the
    file's control totals (records, bytes, sha256).
    `dirty` asks for dirt (see :mod:`sesame.dirt`): a profile name such as ``"default"``, a spec
    such as ``"default,late=0.05"``, or ``{kind: rate}``; each delivery then also gets a
    ``_dirt.json`` with what was done and what ingestion should count.
    Returns (and writes to ``raw_dir/_simulation.json``) the parameters and the records delivered:
    ``{"users", "days", "start_ds", "end_ds", "seed", "activity", "contacts", "rows": {source: total},
    "per_day": {source: {ds: rows}}, "dirty": None | {"spec", "values", "faults", "records",
    "expected"}, "control_totals": True}``.
    """
    raw_dir = Path(raw_dir)
    start_ds = end_ds - timedelta(days=days - 1)
    injector = None
    if dirty is not None:
        from sesame.dirt import DirtInjector

        injector = DirtInjector(dirty, seed, [(start_ds + timedelta(days=i)).isoformat() for i in range(days)])
        if not injector.active:   # e.g. the "none" profile: a clean run
            injector = None
    raw_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {name: {} for name in SOURCES}
    for name, ds, frame in generate(users, days, end_ds, seed, progress, activity, contacts):
        if injector is None:
            write_delivery(raw_dir, name, ds, frame)
            counts[name][ds] = int(len(frame))
        else:
            delivery = injector.apply(name, ds, frame)
            del frame
            delivery.write(raw_dir)
            counts[name][ds] = delivery.delivered
    summary = {
        "users": int(users),
        "days": int(days),
        "start_ds": start_ds.isoformat(),
        "end_ds": end_ds.isoformat(),
        "seed": int(seed),
        "activity": float(activity),
        "contacts": float(contacts),
        "rows": {name: sum(per_day.values()) for name, per_day in counts.items()},
        "per_day": counts,
        "dirty": injector.summary() if injector is not None else None,
        "control_totals": True,  # markers carry the upstream's control totals (older simulations: empty markers)
    }
    tmp = raw_dir / f".{SIMULATION_FILE}.inprogress"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, raw_dir / SIMULATION_FILE)
    return summary
