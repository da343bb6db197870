"""Load measurement of the score service on loopback, against a 1,000,000-user snapshot.

    python -m benchmarks.service_load            # measure, write benchmarks/service.json, print the Markdown section
    from benchmarks.service_load import service_benchmark; print(service_benchmark())

What it does: writes a synthetic published snapshot of SESAME_BENCH_SERVICE_USERS users (default 1,000,000) into
a private SESAME_HOME (kept under SESAME_BENCH_DIR when set, so a second run reuses it), starts `sesame serve`
on 127.0.0.1, and measures single lookups by random user id:

- throughput: wrk, closed loop (each connection sends its next request when the last one returns), for the most
  requests per second the service sustains, with wrk's p50/p99;
- latency at a fixed 1,000 requests per second: wrk cannot hold a rate (that is wrk2, not packaged), so an open-loop
  generator in this module sends on a fixed schedule whatever the responses do, and measures each latency from
  the moment the request was due, so a stall shows up in the figures instead of slowing the sender down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks import RESULTS
from benchmarks.render import service_section
from sesame import FACTORS
from sesame.config import Settings
from sesame.scale import SCORE_MAX, SCORE_MIN, TIERS

RESULT_FILE = RESULTS / "service.json"
DS = "2026-11-23"
REASONS = ["CH01", "CH03", "BP02", "FC02", "FC04", "IT01", "SC02", "SC03"]
# uvicorn closes keep-alive connections idle for 5 s; the generator does not reuse one idle for longer than this
IDLE_REUSE_SECONDS = 3.0


# ------------------------------------------------------------------------------------------- the snapshot


def synthetic_scores(users: int, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    score = np.clip(np.rint(rng.normal(640, 70, users)), SCORE_MIN, SCORE_MAX).astype(np.int32)
    tier = np.select([score <= high for _, _, high in TIERS[:-1]], [name for name, _, _ in TIERS[:-1]], TIERS[-1][0])
    lengths = rng.integers(0, 5, users)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    codes = pa.array(np.array(REASONS)[rng.integers(0, len(REASONS), int(offsets[-1]))])
    return pa.table(
        {
            "ds": pa.array(np.full(users, np.datetime64(DS), dtype="datetime64[D]")),
            "user_id": pa.array([f"U{i:08d}" for i in range(1, users + 1)], pa.string()),
            "segment": pa.array(np.where(rng.random(users) < 0.7, "credit_file", "no_credit_file")),
            "score": score,
            **{f"{f}_score": np.round(rng.uniform(0, 100, users), 2) for f in FACTORS},
            **{f"{f}_points": ((score - SCORE_MIN) // 5).astype(np.int32) for f in FACTORS},
            "reason_codes": pa.ListArray.from_arrays(pa.array(offsets), codes),
            "model_version": pa.array(["scorecard-bench"] * users, pa.string()),
            "tier": pa.array(tier),
        }
    )


def synthetic_visa(scores: pa.Table) -> pa.Table:
    floors = {"LU": 750, "SG": 700, "AE": 650}
    ids = scores.column("user_id").to_numpy(zero_copy_only=False)
    score = scores.column("score").to_numpy()
    parts = [(d, ids[score >= floor], score[score >= floor]) for d, floor in floors.items()]
    return pa.table(
        {
            "ds": pa.array(np.full(sum(len(p[1]) for p in parts), np.datetime64(DS), dtype="datetime64[D]")),
            "destination": pa.array(np.concatenate([np.full(len(p[1]), p[0]) for p in parts])),
            "user_id": pa.array(np.concatenate([p[1] for p in parts])),
            "score": pa.array(np.concatenate([p[2] for p in parts])),
            "rule_version": pa.array(np.concatenate([np.full(len(p[1]), f"{p[0]}-2024.1") for p in parts])),
        }
    )


def prepare_home(home: Path, users: int) -> None:
    """A SESAME_HOME with one published night of `users` users (kept if already there at that size)."""
    from sesame import snapshots

    cfg = Settings(home=home)
    pointer = snapshots.latest(cfg.published, "sesame_scores")
    if pointer and pointer.get("row_count") == users and snapshots.latest(cfg.published, "visa_eligibility"):
        return
    shutil.rmtree(cfg.published, ignore_errors=True)
    scores = synthetic_scores(users)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    checks = [{"name": "synthetic", "passed": True}]
    written = {
        dataset: snapshots.write_snapshot(cfg.published, dataset, DS, run_id, table, "scorecard-bench", checks)
        for dataset, table in (("sesame_scores", scores), ("visa_eligibility", synthetic_visa(scores)))
    }
    snapshots.publish_night(cfg.published, DS, run_id, written)


# ---------------------------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`sesame serve` in a child process, on loopback, with its own SESAME_HOME."""

    def __init__(self, home: Path, log: Path):
        self.home, self.port, self.log = home, _free_port(), log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {**os.environ, "SESAME_HOME": str(self.home), "SESAME_SERVE_RELOAD_SECONDS": "5"}
        with open(self.log, "w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sesame.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        started = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited ({self.proc.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/health", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() - started > 300:
                raise RuntimeError(f"the service did not become ready in 300 s; see {self.log}")
            time.sleep(0.25)
        self.ready_seconds = time.monotonic() - started
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ------------------------------------------------------------------------------------------ wrk (closed loop)

_WRK_SCRIPT = """
math.randomseed(%(seed)d)
wrk.headers["X-API-Key"] = "%(key)s"
request = function()
  return wrk.format("GET", string.format("%(path)s", math.random(1, %(users)d)))
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, key: str, path: str, users: int, seconds: int, connections: int, work: Path) -> dict:
    """Closed-loop run; `path` has one %08d-style placeholder for the user number."""
    script = work / "lookup.lua"
    script.write_text(_WRK_SCRIPT % {"seed": 7, "key": key, "path": path, "users": users})
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": _ms(latency["50"]),
        "p90_ms": _ms(latency["90"]),
        "p99_ms": _ms(latency["99"]),
        "connections": connections,
        "seconds": seconds,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


# ------------------------------------------------------------------------------- open loop at a fixed rate


async def _open_loop(host: str, port: int, key: str, users: int, rate: float, seconds: float, warmup: float) -> dict:
    clock = time.perf_counter  # the event loop's clock may tick in whole milliseconds
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    opened, latencies, service_times, statuses = 0, [], [], {}
    rng = random.Random(7)

    async def one(due: float, measured: bool) -> None:
        nonlocal opened
        request = (
            f"GET /v1/scores/U{rng.randint(1, users):08d} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\n\r\n"
        ).encode()
        sent = clock()
        for attempt in range(2):
            reader = writer = None
            while idle and attempt == 0:
                reader, writer, last_used = idle.pop()
                if clock() - last_used < IDLE_REUSE_SECONDS:
                    break
                writer.close()  # the server may be closing it right now: do not race it
                reader = writer = None
            reused = writer is not None
            if not reused:
                reader, writer = await asyncio.open_connection(host, port)
                opened += 1
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                await reader.readexactly(length)
                break
            except (OSError, asyncio.IncompleteReadError, AttributeError) as exc:
                writer.close()
                # a kept-alive connection can still be closed under us: resend once on a new connection, as
                # HTTP clients do; the time lost counts in this request's latency
                if reused and isinstance(exc, (OSError, asyncio.IncompleteReadError)):
                    continue
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                return
        done = clock()
        idle.append((reader, writer, done))
        if measured:
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(done - due)  # from when it was due: waiting for a connection counts
            service_times.append(done - sent)

    total = int(rate * (warmup + seconds))
    start = clock() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, i >= rate * warmup)))
    await asyncio.gather(*tasks)
    achieved = len(latencies) / (clock() - (start + warmup))
    for _, writer, _ in idle:
        writer.close()
    lat = np.array(latencies) * 1000
    svc = np.array(service_times) * 1000
    return {
        "target_rps": rate,
        "achieved_rps": round(achieved, 1),
        "seconds": seconds,
        "requests": len(latencies),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p90_ms": round(float(np.percentile(lat, 90)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "p999_ms": round(float(np.percentile(lat, 99.9)), 2),
        "max_ms": round(float(lat.max()), 2),
        "service_p50_ms": round(float(np.percentile(svc, 50)), 2),
        "service_p99_ms": round(float(np.percentile(svc, 99)), 2),
        "connections_opened": opened,
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
    }


def run_fixed_rate(url: str, key: str, users: int, rate: float, seconds: float, warmup: float = 3.0) -> dict:
    host, port = url.removeprefix("http://").split(":")
    try:
        import uvloop  # the generator's own overhead is part of what it measures: keep it small

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    return runner(_open_loop(host, int(port), key, users, rate, seconds, warmup))


# ---------------------------------------------------------------------------------------------- the run


def service_benchmark(work: Path | None = None, users: int | None = None) -> str:
    """Measure, write benchmarks/service.json, and return the Markdown section for BENCHMARKS.md."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found: `apt-get install -y wrk` (or `make wrk`)")
    users = users or int(os.environ.get("SESAME_BENCH_SERVICE_USERS", "1000000"))
    keep = work or (Path(os.environ["SESAME_BENCH_DIR"]) if os.environ.get("SESAME_BENCH_DIR") else None)
    base = keep or Path(tempfile.mkdtemp(prefix="sesame-service-bench-"))
    home = base / "service-home"
    load_before = os.getloadavg()[0]  # the cores are shared: say how busy they were
    try:
        prepare_home(home, users)
        from sesame.service.access import KeyStore
        from sesame.service.layout import service_files

        key, _ = KeyStore(service_files(Settings(home=home)).api_keys).create("load-test", ["scores:read", "visa:read"])
        with Server(home, base / "service.log") as server:
            run_wrk(server.url, key, "/v1/scores/U%08d", users, 5, 16, base)  # warm-up
            scores = run_wrk(server.url, key, "/v1/scores/U%08d", users, 20, 16, base)
            visa = run_wrk(server.url, key, "/v1/visa/LU/users/U%08d", users, 10, 16, base)
            fixed = run_fixed_rate(server.url, key, users, rate=1000, seconds=30)
            rss = server.rss_mb()
            ready = server.ready_seconds
        from sesame import snapshots

        result = {
            "users": users,
            "visa_rows": snapshots.latest(Settings(home=home).published, "visa_eligibility")["row_count"],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ready_seconds": round(ready, 2),
            "rss_mb": round(rss, 1),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "wrk_scores": scores,
            "wrk_eligibility": visa,
            "fixed_rate": fixed,
            "measured_on": dt.date.today().isoformat(),
        }
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    RESULT_FILE.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return service_section(result)


if __name__ == "__main__":
    print(service_benchmark())
