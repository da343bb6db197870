"""The simulator's array helpers: random streams and hashes keyed by purpose, probabilities and money in cents,
Arrow columns built in bulk (fixed-width ids and timestamps, takes, texts) and day-keyed queues and growing
columns for the world's state."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa


def _rng(seed: int, purpose: str, day: int = 0) -> np.random.Generator:
    """A PCG64 generator that depends only on the seed, a purpose label and a day ordinal."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode("utf-8")), int(day)]))
    )


def _hash(seed: int, purpose: str, idx: np.ndarray) -> np.ndarray:
    """SplitMix64 of (seed, purpose, index) as uint64: values that depend on nothing else, drawn without taking
    anything from a random stream (so adding one leaves every other simulated value as it was)."""
    base = (int(seed) * 0x9E3779B97F4A7C15 + (zlib.crc32(purpose.encode("utf-8")) << 20)) % 2**64
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


_CHUNK_ROWS = 4_000_000  # rows formatted at a time when building fixed-width strings


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
                buf[:, pos : pos + wd] = np.frombuffer(x.encode("ascii"), dtype=np.uint8)
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
    """ "YYYY-MM-DDTHH:MM:SS" for seconds into the day `iso_day`."""
    secs = np.asarray(secs, dtype=np.int64)
    return _fixed_width([f"{iso_day}T", (secs // 3600, 2), ":", (secs // 60 % 60, 2), ":", (secs % 60, 2)], len(secs))


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
    return pa.chunked_array(
        [pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)], type=pa.string()
    )


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
            self.cols[k][self.n : self.n + m] = v
        idx = np.arange(self.n, self.n + m)
        self.n += m
        return idx

    def __getitem__(self, k: str) -> np.ndarray:
        return self.cols[k][: self.n]
