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
