"""`make bench`: run the benchmark profiles, keep each one's figures in benchmarks/<profile>.json, and rewrite
BENCHMARKS.md from all of them.

    python -m benchmarks                          # every profile
    python -m benchmarks feature_history          # one profile; the others keep their last figures
    python -m benchmarks --render                 # no measuring: BENCHMARKS.md from the kept figures

Run from the repository's root.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import RESULTS, render
from benchmarks.profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run benchmark profiles and write BENCHMARKS.md."
    )
    parser.add_argument("profiles", nargs="*", metavar="profile", help=f"any of {', '.join(PROFILES)} (default: all)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite BENCHMARKS.md from the figures kept in benchmarks/*.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        render.write()
        return 0
    unknown = [p for p in args.profiles if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profile {', '.join(unknown)}; choose from {', '.join(PROFILES)}")
    keep = os.environ.get("SESAME_BENCH_DIR")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="sesame-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    try:
        for name in args.profiles or list(PROFILES):
            result = PROFILES[name](work)
            result["measured_on"] = dt.date.today().isoformat()
            (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    print(render.write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
