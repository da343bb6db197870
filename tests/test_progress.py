"""Progress on long commands: drawn on a terminal, silent in logs and pipes."""

from __future__ import annotations

import io

from sesame.progress import Progress, is_terminal, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_counts_on_a_terminal():
    screen = Terminal()
    assert list(track(range(3), "simulate", unit="day", stream=screen)) == [0, 1, 2]
    shown = screen.getvalue()
    assert "simulate" in shown and "3/3" in shown and "day" in shown


def test_silent_when_not_a_terminal_or_asked_to_be():
    for stream, quiet in ((io.StringIO(), False), (Terminal(), True)):
        with Progress("backfill", total=2, unit="night", quiet=quiet, stream=stream) as bar:
            bar.update(status="2026-11-23")
            bar.update()
        assert bar.count == 2 and stream.getvalue() == ""


def test_lines_pass_through_the_bar(capsys):
    screen = Terminal()
    with Progress("backfill", total=1, unit="night", stream=screen) as bar:
        bar.print("[1/1] 2026-11-23 ...")
        bar.update()
    assert capsys.readouterr().out == "[1/1] 2026-11-23 ...\n"
    with Progress("backfill", total=1, stream=io.StringIO()) as bar:
        bar.print("[1/1] 2026-11-24 ...")
    assert capsys.readouterr().out == "[1/1] 2026-11-24 ...\n"


def test_closed_or_odd_streams_are_not_terminals():
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed) and not is_terminal(None) and not is_terminal(object())


def test_a_night_is_watched_stage_by_stage_and_its_wait_is_said(tmp_path):
    import json

    from sesame.config import Settings
    from sesame.progress import NightWatch
    from sesame.schemas import SOURCES

    cfg = Settings(home=tmp_path, delivery_deadline_hours=24 * 365 * 100)  # still waiting, whatever today is
    ds, out = "2026-11-23", io.StringIO()
    for name in SOURCES:
        if name != "payments":
            (cfg.raw / name / f"ds={ds}").mkdir(parents=True)
            (cfg.raw / name / f"ds={ds}" / "_SUCCESS").write_text("")
    watch = NightWatch(cfg, ds, "r1", stream=out, log="logs/night.log")
    watch.poll()
    watch.poll()  # said once, not at every look
    assert out.getvalue().count("waiting for the deliveries of 2026-11-23 from payments (until ") == 1
    log = cfg.home / "runs" / ds / "r1.json"
    log.parent.mkdir(parents=True)
    log.write_text('{"ds": "2026-11-23", "stages": [{"stage": "check_deliv')  # caught half written
    watch.poll()
    log.unlink()
    # the stages as the night's tasks record them (whole files, replaced by rename)
    import pandas as pd
    import pytest

    from sesame import night

    with night.stage(cfg, ds, "r1", "check_deliveries"):
        pass
    with night.stage(cfg, ds, "r1", "ingest"):
        watch.poll()  # seen while it runs
        folder = cfg.zone("accounting", ds=ds)
        folder.mkdir(parents=True)
        pd.DataFrame({"source": ["orders", "payments"], "accepted": [1200, 34]}).to_parquet(folder / "p.parquet")
    with pytest.raises(night.NightFailed), night.stage(cfg, ds, "r1", "quality_gate"):
        raise night.NightFailed("rule quarantine.max_share")
    watch.poll()
    watch.poll()
    lines = [
        line.split(" in ")[0] + (" ..." + line.split(" s")[-1] if " in " in line else "")
        for line in out.getvalue().splitlines()[1:]
    ]
    assert lines == [
        "  check_deliveries: ok ...",
        "  ingest: started",
        "  ingest: ok ..., 1,234 rows",
        "  quality_gate: failed ... (log: logs/night.log)",
    ]
    assert json.loads(log.read_text())["stages"][1]["rows"] == 1234
