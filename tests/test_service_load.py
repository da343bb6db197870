"""The load test's own machinery, on a small snapshot: the service starts on loopback, the open-loop generator
holds its rate and counts every answer, and wrk's output is read back into figures."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import service_load
from sesame.config import Settings
from sesame.service.access import KeyStore
from sesame.service.layout import service_files

USERS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("load")
    home = base / "home"
    service_load.prepare_home(home, USERS)
    key, _ = KeyStore(service_files(Settings(home=home)).api_keys).create("load", ["scores:read", "visa:read"])
    with service_load.Server(home, base / "service.log") as running:
        yield running, key, base


def test_synthetic_snapshot_is_published_whole(server):
    running, _, _ = server
    from sesame import snapshots

    published = Settings(home=running.home).published
    assert snapshots.latest(published, "sesame_scores")["row_count"] == USERS
    table = snapshots.open_latest("sesame_scores", root=published).to_table()
    assert table.column("score").to_numpy().min() >= 350 and table.column("score").to_numpy().max() <= 950


def test_open_loop_generator_holds_the_rate(server):
    running, key, _ = server
    result = service_load.run_fixed_rate(running.url, key, USERS, rate=200, seconds=1.5, warmup=0.5)
    assert result["statuses"] == {"200": result["requests"]} and result["requests"] == 300
    assert 150 <= result["achieved_rps"] <= 220
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make wrk)")
def test_wrk_figures_are_read_back(server):
    running, key, base = server
    result = service_load.run_wrk(running.url, key, "/v1/scores/U%08d", USERS, 1, 2, base)
    assert result["requests"] > 50 and result["non_2xx"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
