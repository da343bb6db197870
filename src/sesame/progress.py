"""Progress on long commands (simulate, backfill, bench): a bar on stderr while a person watches the terminal,
and nothing at all when stderr is a file or a pipe, so logs and CI output stay clean.

    from sesame.progress import Progress, track

    for day in track(days, "simulate", unit="day"):
        ...

    with Progress("backfill", total=len(nights), unit="night") as bar:
        bar.print("[1/3] 2026-11-23 already published")   # a line that does not break the bar
        bar.update()
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from sesame.config import NIGHT_RUNS

T = TypeVar("T")


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """A counter toward `total` (or open-ended when total is None), drawn only on a terminal."""

    def __init__(
        self, desc: str, total: int | None = None, unit: str = "it", quiet: bool = False, stream: TextIO | None = None
    ):
        self.desc, self.total, self.unit = desc, total, unit
        self.count = 0
        self.stream = stream if stream is not None else sys.stderr
        self.shown = not quiet and is_terminal(self.stream)
        self._bar = None
        if self.shown:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=True)
            except ImportError:  # a plain counter does the job
                self._bar = None

    def update(self, n: int = 1, status: str | None = None) -> None:
        self.count += n
        if not self.shown:
            return
        if self._bar is not None:
            if status is not None:
                self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(n)
        else:
            of = f"/{self.total}" if self.total is not None else ""
            extra = f" {status}" if status else ""
            print(f"\r{self.desc}: {self.count}{of} {self.unit}{extra}", end="", file=self.stream, flush=True)

    def print(self, message: str, file: TextIO | None = None) -> None:
        """Print a line (to stdout by default) without garbling the bar."""
        file = file if file is not None else sys.stdout
        if self._bar is not None:
            from tqdm import tqdm

            tqdm.write(message, file=file)
        else:
            if self.shown and file is self.stream:
                print(file=self.stream)  # end the counter's line first
            print(message, file=file, flush=True)

    def close(self) -> None:
        if not self.shown:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            print(file=self.stream, flush=True)
        self.shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(
    items: Iterable[T],
    desc: str,
    total: int | None = None,
    unit: str = "it",
    quiet: bool = False,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Iterate over `items`, counting them on a terminal."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(desc, total=total, unit=unit, quiet=quiet, stream=stream) as bar:
        for item in items:
            yield item
            bar.update()


class NightWatch:
    """While Airflow runs a night or a training run (its own log goes to a file), say what it is doing: each stage
    as it starts and as it ends (status, seconds, rows, and on failure the log to open), from the run log
    (runs/<ds>/<run_id>.json), and, before the first stage starts, the deliveries the night is still waiting for.
    Plain lines, so a terminal, a pipe and a file read the same."""

    def __init__(
        self,
        cfg,
        ds: str,
        run_id: str,
        stream: TextIO | None = None,
        runs: str = NIGHT_RUNS,
        log: str | None = None,
        deliveries: bool = True,
    ):
        self.cfg, self.ds, self.log, self.deliveries = cfg, ds, log, deliveries
        self.run_log = cfg.run_log(ds, run_id, runs)
        self.stream = stream if stream is not None else sys.stdout
        self.said: set[tuple[int, str]] = set()
        self.waiting_for: list[str] = []

    def _stages(self) -> list[dict] | None:
        import json

        try:
            return json.loads(self.run_log.read_text(encoding="utf-8"))["stages"]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError):  # caught half written: read it at the next look
            return None

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def poll(self) -> None:
        stages = self._stages()
        if stages is None:
            return
        for i, entry in enumerate(stages):
            status = entry["status"]
            if status != "running" and (i, "running") not in self.said:
                self.said.add((i, "running"))  # ended between two looks: its start goes without saying
            if (i, status) in self.said:
                continue
            self.said.add((i, status))
            if status == "running":
                self._say(f"  {entry['stage']}: started")
                continue
            rows = f", {entry['rows']:,} rows" if isinstance(entry.get("rows"), int) else ""
            line = f"  {entry['stage']}: {status} in {float(entry['seconds']):.1f} s{rows}"
            if status != "ok" and self.log:
                line += f" (log: {self.log})"
            self._say(line)
        if not stages and self.deliveries:
            from sesame.night import delivery_deadline, waiting_for_deliveries

            missing = [m.split(",")[0].removeprefix("source ") for m in waiting_for_deliveries(self.cfg, self.ds)]
            if missing and missing != self.waiting_for:
                self._say(
                    f"  waiting for the deliveries of {self.ds} from {', '.join(missing)} (until "
                    f"{delivery_deadline(self.cfg, self.ds):%Y-%m-%d %H:%M} UTC)"
                )
            self.waiting_for = missing
