"""The `sesame` command line. Exit codes: 0 success, 1 the night failed closed, 2 wrong usage."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from sesame.config import REPO_ROOT, TRAIN_RUNS, Settings, settings
from sesame.durable import dies_with_parent
from sesame.progress import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {value!r}")
    return number


# ------------------------------------------------------------------ Airflow


def airflow_env(cfg: Settings) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(cfg.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "SESAME_HOME": str(cfg.home),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "FEAST_USAGE": "False",
            "GX_ANALYTICS_ENABLED": "False",
            "PYSPARK_PYTHON": sys.executable,
        }
    )
    return env


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


def ensure_airflow(cfg: Settings) -> None:
    """Prepare AIRFLOW_HOME with a SQLite metadata database, once."""
    marker = cfg.airflow_initialized
    if marker.exists():
        return
    cfg.airflow_home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([_airflow_bin(), "db", "migrate"], env=airflow_env(cfg), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(EXIT_FAILED)
    marker.write_text("ok\n")


def run_dag(cfg: Settings, dag_id: str, ds: str, conf: dict | None = None, watch=None) -> tuple[bool, str]:
    """Run one DAG run for ds through Airflow (`airflow dags test`); returns (succeeded, log path). `watch.poll()`,
    if given, is called every second while it runs (sesame.progress.NightWatch)."""
    ensure_airflow(cfg)
    log = cfg.dag_run_log(dag_id, ds, dt.datetime.now(dt.timezone.utc))
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [_airflow_bin(), "dags", "test", dag_id, ds]
    if conf:
        cmd += ["-c", json.dumps(conf)]
    if watch is not None:
        watch.log = str(log)  # the file to open when a stage fails
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd, env=airflow_env(cfg), stdout=fh, stderr=subprocess.STDOUT, preexec_fn=dies_with_parent
        )
        while True:
            try:
                proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                if watch is not None:
                    watch.poll()
    if watch is not None:
        watch.poll()
    return proc.returncode == 0, str(log)


def failure_reason(log_path: str) -> str:
    """The first error a failed stage raised, from the run's log."""
    text = Path(log_path).read_text(errors="replace")
    for pattern in (
        r"NightFailed: (.*?)(?:\n\S|\Z)",
        r"GateFailed: (.*?)(?:\n\S|\Z)",
        r"AirflowFailException: (.*?)(?:\n\S|\Z)",
        r"\w+Error: (.*?)(?:\n|\Z)",
    ):
        match = re.search(pattern, text, re.S)
        if match:
            return match.group(1).strip()[:4000]
    return "see the log"


# ------------------------------------------------------------------ commands


def cmd_simulate(args, cfg: Settings) -> int:
    from sesame.privacy import keep_private
    from sesame.simulate import simulate

    keep_private(cfg.home)  # simulated people are people's data as far as the folders go
    end = dt.date.fromisoformat(args.end_ds) if args.end_ds else dt.date.today() - dt.timedelta(days=1)
    marker = cfg.raw / "_simulation.json"
    if args.if_missing and marker.exists():
        previous = json.loads(marker.read_text())
        previous_dirt = (previous.get("dirty") or {}).get("spec") if isinstance(previous.get("dirty"), dict) else None
        if (
            previous.get("users"),
            previous.get("days"),
            previous.get("seed"),
            previous_dirt,
            previous.get("activity", 1.0),
            previous.get("contacts", 1.0),
            previous.get("control_totals"),
        ) == (args.users, args.days, args.seed, args.dirty, args.activity, args.contacts, True):
            print(f"simulation already present in {cfg.raw} (ending {previous.get('end_ds')}); reusing it")
            return EXIT_OK
    if args.dirty:
        from sesame.dirt import parse_dirty

        try:
            parse_dirty(args.dirty)
        except ValueError as exc:
            print(f"--dirty: {exc}", file=sys.stderr)
            return EXIT_USAGE
    summary = simulate(
        cfg.raw,
        users=args.users,
        days=args.days,
        end_ds=end,
        seed=args.seed,
        progress=True,
        dirty=args.dirty,  # progress is shown only on a terminal
        activity=args.activity,
        contacts=args.contacts,
    )
    print(
        json.dumps({"raw": str(cfg.raw), **{k: v for k, v in summary.items() if k != "per_day"}}, indent=1, default=str)
    )
    return EXIT_OK


def latest_delivered_day(cfg: Settings) -> str | None:
    from sesame.deliveries import delivered_days

    days = delivered_days(cfg, "9999-12-31")
    return days[-1] if days else None


def airflow_runs_in_progress(cfg: Settings) -> list[str]:
    """The runs of this project's DAGs that Airflow's scheduler has under way (queued or running, whatever their
    trigger), from its metadata database. Runs of `airflow dags test` are left out: `sesame night` starts them
    under this SESAME_HOME's lock, and one killed stays `running` in the database for good."""
    import sqlalchemy

    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{cfg.airflow_db}"
    if conn.startswith("sqlite:///") and not Path(conn.removeprefix("sqlite:///")).exists():
        return []
    engine = sqlalchemy.create_engine(conn)
    try:
        with engine.connect() as db:
            rows = db.execute(
                sqlalchemy.text(
                    "SELECT dag_id, run_id, state, start_date FROM dag_run WHERE dag_id IN ('sesame_nightly', "
                    "'sesame_train') AND state IN ('queued', 'running') AND lower(coalesce(triggered_by, '')) <> 'test' "
                    "ORDER BY id"
                )
            ).fetchall()
    except sqlalchemy.exc.OperationalError:  # no dag_run table yet: Airflow never ran here
        return []
    finally:
        engine.dispose()
    return [
        f"{dag_id} run {run_id} ({state} since {str(start)[:19] if start else 'queued'})"
        for dag_id, run_id, state, start in rows
    ]


def one_at_a_time(what):
    """Run the command holding this SESAME_HOME's lock: a second night, backfill or training exits 2 naming the first,
    and so does one started while the scheduler has a night or training run under way (whose stages take the lock
    one at a time, and whose sensor waits while a command holds it)."""

    def wrap(cmd):
        def locked(args, cfg: Settings) -> int:
            from sesame.durable import Busy, busy_message, exclusive

            try:
                with exclusive(cfg.home, what(args)):
                    scheduled = airflow_runs_in_progress(cfg)
                    if scheduled:
                        raise Busy(busy_message(cfg.home, f"the scheduler's {scheduled[0]}"))
                    return cmd(args, cfg)
            except Busy as exc:
                print(str(exc), file=sys.stderr)
                return EXIT_USAGE

        return locked

    return wrap


@one_at_a_time(lambda args: f"sesame train{' --ds ' + args.ds if args.ds else ''}")
def cmd_train(args, cfg: Settings) -> int:
    ds = args.ds or latest_delivered_day(cfg)
    if not ds:
        print(f"no complete deliveries under {cfg.raw}: run `sesame simulate` first", file=sys.stderr)
        return EXIT_USAGE
    from sesame.progress import NightWatch

    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    print(
        f"training on the deliveries up to {ds}: run {run_id} of sesame_train through Airflow; its stages:", flush=True
    )
    ok, log = run_dag(
        cfg,
        "sesame_train",
        ds,
        {"run_id": run_id},
        watch=NightWatch(cfg, ds, run_id, runs=TRAIN_RUNS, deliveries=False),
    )
    if not ok:
        print(f"sesame_train failed for {ds}: {failure_reason(log)}\nlog: {log}", file=sys.stderr)
        return EXIT_FAILED
    from sesame.registry import Registry

    registry = Registry(cfg.models)
    newest = registry.list()[-1] if registry.list() else None
    card = registry.get(newest["version"]).card if newest else {}
    failed = [name for name, gate in card.get("gates", {}).items() if not gate["passed"]]
    oot = ", ".join(f"{seg} AUC {m['auc']:.3f} KS {m['ks']:.3f}" for seg, m in card.get("out_of_time", {}).items())
    print(
        f"sesame_train {ds}: registered {card.get('version')} (out of time: {oot}); "
        + (f"gates failed: {failed}, champion unchanged" if failed else "all gates passed")
        + f"; champion {registry.champion().version if registry.has_champion() else 'none'}"
    )
    print(f"  model card: {cfg.models / str(card.get('version')) / 'card.html'}")
    return EXIT_OK


def run_night(cfg: Settings, ds: str, quiet: bool = False) -> int:
    from sesame import snapshots
    from sesame.progress import NightWatch
    from sesame.report import report_path

    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    if not quiet:
        print(f"night {ds}: run {run_id} of sesame_nightly through Airflow; its stages as they end:", flush=True)
    ok, log = run_dag(
        cfg, "sesame_nightly", ds, {"run_id": run_id}, watch=None if quiet else NightWatch(cfg, ds, run_id)
    )
    published = snapshots.is_published(cfg.published, ds, run_id)
    if not (ok and published):
        report = report_path(cfg, ds, run_id)
        print(
            f"night {ds} failed closed; nothing was published and NIGHT (and every LATEST) is unchanged.\n"
            f"reason: {failure_reason(log)}\nlog: {log}" + (f"\nreport: {report}" if report.exists() else ""),
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not quiet:
        from sesame.night import summary

        s = summary(cfg, ds)
        latest = snapshots.latest(cfg.published, "sesame_scores")
        print(f"night {ds} published (run {run_id})")
        print(f"  users scored: {s['scored']}  excluded: {s['excluded']}")
        print(
            f"  scores: mean {s['score_mean']:.0f}, p10 {s['score_p10']:.0f}, median {s['score_median']:.0f}, "
            f"p90 {s['score_p90']:.0f}; tiers {s['tiers']}"
        )
        print(
            f"  750 or more: {s['share_750_or_more']:.1%}; at 950: {s['share_at_950']:.2%}, "
            f"at 350: {s['share_at_350']:.2%}; segments {s['segments']}"
        )
        if s["top_first_reason"]:
            print(
                f"  most common first reason code: {s['top_first_reason'][0]} "
                f"(first for {s['top_first_reason'][1]:.1%} of scored users)"
            )
        print(f"  visa-eligible users per destination: {s['visa_eligible']}")
        print(f"  checks passed: {s['checks_passed']}/{s['checks_total']}")
        print(f"  warehouse: {cfg.warehouse_path} (schema marts)")
        print(f"  snapshots: {cfg.published}/NIGHT -> {latest['snapshot'] if latest else None} (every dataset)")
        print(f"  run log: {log}")
        report = report_path(cfg, ds, run_id)
        print(f"  report: {report}" if report.exists() else "  report: not written (see the run log)")
    return EXIT_OK


@one_at_a_time(lambda args: f"sesame night --ds {args.ds}")
def cmd_night(args, cfg: Settings) -> int:
    if args.accept_drift:
        os.environ["SESAME_ACCEPT_DRIFT"] = "1"  # read by the audit stage of this run only
    return run_night(cfg, args.ds)


def cmd_deliveries(args, cfg: Settings) -> int:
    from sesame import holds

    if args.action == "list":
        current = holds.held(cfg)
        for (ds, source), hold in sorted(current.items()):
            print(
                f"{ds} {source}: held by {hold['held_by']} at {hold['held_at']}, "
                f"{hold['delivered'] if hold['delivered'] is not None else 'unknown'} records: {hold['reason']}"
            )
        if not current:
            print("no delivery is held")
        return EXIT_OK
    if not (args.ds and args.source):
        print(f"sesame deliveries {args.action} needs --ds and --source", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.action == "hold":
            hold = holds.hold(cfg, args.ds, args.source, args.reason or "")
            print(
                f"{args.source} of {args.ds} is held ({hold['delivered'] if hold['delivered'] is not None else 'unknown'}"
                " records); later nights go on without it and account for it as held. After a corrected "
                f"re-delivery: sesame deliveries release --ds {args.ds} --source {args.source}"
            )
        else:
            holds.release(cfg, args.ds, args.source)
            print(
                f"{args.source} of {args.ds} is released: the next night ingests it (with the days after it) "
                "once its delivery is complete, and computes its features from the whole history"
            )
    except holds.HoldRefused as exc:
        print(f"sesame deliveries {args.action}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


@one_at_a_time(lambda args: f"sesame backfill --start {args.start} --end {args.end}")
def cmd_backfill(args, cfg: Settings) -> int:
    from sesame import snapshots

    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    if end < start:
        print("--end is before --start", file=sys.stderr)
        return EXIT_USAGE
    nights = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    with Progress("backfill", total=len(nights), unit="night") as bar:
        for i, ds in enumerate(nights, 1):
            done = snapshots.is_published(cfg.published, ds)
            if done and not args.force:
                bar.print(f"[{i}/{len(nights)}] {ds} already published; skipping (--force re-runs it)")
                bar.update(status=ds)
                continue
            bar.print(f"[{i}/{len(nights)}] {ds} ...")
            code = run_night(cfg, ds, quiet=True)
            if code != EXIT_OK:
                bar.close()
                print(f"backfill stopped at {ds}; re-run the same command to resume from it", file=sys.stderr)
                return code
            bar.update(status=ds)
    print(f"backfill {args.start}..{args.end}: done")
    return EXIT_OK


def cmd_models(args, cfg: Settings) -> int:
    from sesame.registry import Registry

    registry = Registry(cfg.models)
    if args.action == "list":
        for entry in registry.list():
            gates = entry.get("gates", {})
            verdict = "passed" if gates and all(g["passed"] for g in gates.values()) else "failed"
            print(
                f"{'*' if entry['champion'] else ' '} {entry['version']}  registered {entry['registered_at']}  "
                f"gates {verdict}"
            )
    elif args.action == "promote":
        if not args.version:
            print("promote needs a version", file=sys.stderr)
            return EXIT_USAGE
        registry.promote(args.version, reason="promoted by an operator")
        print(f"champion: {args.version}")
    else:
        print(f"champion: {registry.rollback()}")
    return EXIT_OK


def cmd_docs(args, cfg: Settings) -> int:
    from sesame.night import NightFailed, docs

    if not cfg.warehouse_path.exists():
        print(f"no warehouse at {cfg.warehouse_path}: run a night first", file=sys.stderr)
        return EXIT_USAGE
    try:
        print(f"dbt docs: {docs(cfg)}")
    except NightFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_report(args, cfg: Settings) -> int:
    from sesame.report import latest_run_id, write_report

    run_id = args.run_id or latest_run_id(cfg, args.ds)
    if not run_id or not cfg.run_log(args.ds, run_id).exists():
        print(
            f"no run of the night {args.ds} under {cfg.run_logs()}: run `sesame night --ds {args.ds}` first",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"report: {write_report(cfg, args.ds, run_id)}")
    return EXIT_OK


def cmd_setup(args, cfg: Settings) -> int:
    from sesame.config import ensure_user_key_secret_file
    from sesame.privacy import keep_private
    from sesame.spark import make_class_archive

    ensure_airflow(cfg)
    secret_file = ensure_user_key_secret_file(cfg.home)
    keep_private(cfg.home)
    archive = make_class_archive(cfg)
    print(f"SESAME_HOME={cfg.home}\nAIRFLOW_HOME={cfg.airflow_home}")
    print(f"user-key secret: {secret_file or 'SESAME_USER_KEY_SECRET'}")
    print(f"Spark's class archive: {archive or 'none (Spark jobs start without one)'}")
    return EXIT_OK


def cmd_has_champion(args, cfg: Settings) -> int:
    from sesame.registry import Registry

    return EXIT_OK if Registry(cfg.models).has_champion() else EXIT_FAILED


def cmd_latest_day(args, cfg: Settings) -> int:
    day = latest_delivered_day(cfg)
    if not day:
        return EXIT_FAILED
    print(day)
    return EXIT_OK


def cmd_sql_endpoint(args, cfg: Settings) -> int:
    from sesame.sql_endpoint import serve

    return serve(cfg, args.host, args.port, build=sorted(args.build or []))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sesame", description="Open, explainable nightly credit scoring.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write upstream deliveries into lake/raw")
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--days", type=int, required=True)
    s.add_argument("--end-ds", type=_date, help="last day (default: yesterday)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument(
        "--dirty",
        metavar="SPEC",
        help="inject dirt with exact counts beside each delivery: a profile (default, heavy) and/or "
        "kind=rate items, e.g. 'default,late=0.05' or 'renamed_column=orders@2026-11-23'",
    )
    s.add_argument(
        "--activity",
        type=_positive,
        default=1.0,
        help="multiply everyday payments, orders and transfers per user, each smaller by as much "
        "(default 1; sizing runs)",
    )
    s.add_argument(
        "--contacts",
        type=_positive,
        default=1.0,
        help="multiply the social graph's mean degree (default 1; sizing runs)",
    )
    s.add_argument("--if-missing", action="store_true", help="reuse an existing simulation with the same sizes")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("night", help="run sesame_nightly for one night through Airflow")
    s.add_argument("--ds", type=_date, required=True)
    s.add_argument(
        "--accept-drift",
        action="store_true",
        help="publish even if score or characteristic PSI reaches the failing level (after review)",
    )
    s.set_defaults(func=cmd_night)

    s = sub.add_parser("train", help="run sesame_train through Airflow and register the model")
    s.add_argument("--ds", type=_date)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("backfill", help="run the nights of a range in order, resuming where it stopped")
    s.add_argument("--start", type=_date, required=True)
    s.add_argument("--end", type=_date, required=True)
    s.add_argument("--force", action="store_true", help="re-run nights already published")
    s.set_defaults(func=cmd_backfill)

    s = sub.add_parser(
        "deliveries",
        help="hold a rejected delivery (later nights go on, it is accounted as held), "
        "release it after a re-delivery, or list what is held",
    )
    s.add_argument("action", choices=["hold", "release", "list"])
    s.add_argument("--ds", type=_date)
    s.add_argument("--source")
    s.add_argument("--reason", help="why the delivery is held (required to hold; it goes into the accounting)")
    s.set_defaults(func=cmd_deliveries)

    s = sub.add_parser("models", help="the model registry")
    s.add_argument("action", choices=["list", "promote", "rollback"])
    s.add_argument("version", nargs="?")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("docs", help="write the dbt docs site for analysts under $SESAME_HOME/docs/dbt")
    s.set_defaults(func=cmd_docs)

    s = sub.add_parser("report", help="(re)write the HTML report of a night under $SESAME_HOME/reports/<ds>/")
    s.add_argument("--ds", type=_date, required=True)
    s.add_argument("--run-id", help="which run of the night (default: the latest)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser(
        "setup", help="prepare Airflow's home (SQLite), the installation's user-key secret and Spark's class archive"
    )
    s.set_defaults(func=cmd_setup)
    s = sub.add_parser("has-champion", help="exit 0 when a champion model is registered")
    s.set_defaults(func=cmd_has_champion)
    s = sub.add_parser("latest-day", help="print the latest completely delivered day")
    s.set_defaults(func=cmd_latest_day)
    s = sub.add_parser(
        "sql-endpoint",
        help="JDBC/ODBC endpoint (Spark Thrift Server) over the marts built by dbt's spark target, until Ctrl-C",
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=10000)
    s.add_argument(
        "--build",
        type=_date,
        action="append",
        metavar="YYYY-MM-DD",
        help="first build that night's marts with dbt's spark target (repeatable; nights build in order)",
    )
    s.set_defaults(func=cmd_sql_endpoint)

    from sesame.service.commands import add_service_commands

    add_service_commands(sub)  # serve, keys, consent, credit-report, audit
    return p


def main(argv: list[str] | None = None) -> int:
    for key in ("DBT_SEND_ANONYMOUS_USAGE_STATS", "FEAST_USAGE", "GX_ANALYTICS_ENABLED"):
        os.environ.setdefault(key, "False")
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    cfg = settings()
    if args.command in PSEUDONYMIZING_COMMANDS and getattr(args, "action", None) not in (
        "verify",
        "public-key",
        "keys",
    ):
        from sesame.config import UnsafeSecret, check_user_key_secret

        try:
            check_user_key_secret(cfg)
        except UnsafeSecret as exc:
            print(f"sesame {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return args.func(args, cfg)


# The commands that turn upstream ids into user keys (dbt's marts and features, the service's lookups, consents and
# reports): they refuse to run with a missing, short or example secret. Verifying a report, or listing the keys
# that sign them, needs none.
PSEUDONYMIZING_COMMANDS = {"night", "train", "backfill", "docs", "sql-endpoint", "serve", "consent", "credit-report"}


if __name__ == "__main__":
    sys.exit(main())
