"""Settings, all read from environment variables prefixed SESAME_, with working defaults.

Every setting is documented in README.md ("Settings"). Paths derive from SESAME_HOME so that one
variable moves a whole installation.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

# The project's files (dags, dbt, expectations). Jobs under spark-submit import this module from a zip,
# so the launcher passes the real location on.
REPO_ROOT = Path(os.environ.get("SESAME_REPO") or Path(__file__).resolve().parents[2])

# The stages of one night in order: the task ids of sesame_nightly (dags/sesame_nightly.py chains its tasks in this
# order) and the rows of the run report. Spark's features (windows, state, the graph), then dbt's.
NIGHTLY_STAGES = (
    "check_deliveries",
    "ingest",
    "quality_gate",
    "features",
    "dbt_features",
    "feature_store",
    "score",
    "warehouse",
    "audit",
    "publish",
    "report",
)


# The run logs' folders under SESAME_HOME: the nights', and the training runs' apart from them.
NIGHT_RUNS = "runs"
TRAIN_RUNS = "runs/train"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SESAME_{name}", default)


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(_env("HOME", str(REPO_ROOT / "var"))).resolve())
    spark_master: str = field(default_factory=lambda: _env("SPARK_MASTER", "local[*]"))
    spark_driver_memory: str = field(default_factory=lambda: _env("SPARK_DRIVER_MEMORY", "4g"))
    spark_shuffle_partitions: int = field(default_factory=lambda: int(_env("SPARK_SHUFFLE_PARTITIONS", "8")))
    # More Spark properties for every job, "key=value,key=value"; they win over the project's own.
    spark_conf: str = field(default_factory=lambda: _env("SPARK_CONF", ""))
    # Feast's online store: "sqlite" (the embedded default, a file under feature_store/) or a Redis server,
    # redis://[:password@]host:port[/db], which the night writes in bulk (sesame.online_store).
    online_store: str = field(default_factory=lambda: _env("ONLINE_STORE", "sqlite"))
    # Secret for the keyed hash that turns upstream ids into analysts' user_key: SESAME_USER_KEY_SECRET, or else the
    # file `sesame setup` generates once per SESAME_HOME (USER_KEY_SECRET_FILE). There is no default: upstream ids
    # are few enough to try them all, so a known secret would undo every pseudonym.
    user_key_secret: str = field(default_factory=lambda: _env("USER_KEY_SECRET", ""))
    # Performance definition: a user is "bad" at an observation date when a bill newly reaches this many days
    # past due within the performance window that follows it; users already there are outside the development
    # sample and get CURRENT_DEFAULT at night. The score's odds refer to this window.
    bad_dpd: int = field(default_factory=lambda: int(_env("BAD_DPD", "90")))
    performance_days: int = field(default_factory=lambda: int(_env("PERFORMANCE_DAYS", "365")))
    # Thin files: fewer days of history than this and a user gets an exclusion code, not a score.
    min_history_days: int = field(default_factory=lambda: int(_env("MIN_HISTORY_DAYS", "14")))
    # A source with a larger share of records quarantined fails the night.
    max_quarantine_share: float = field(default_factory=lambda: float(_env("MAX_QUARANTINE_SHARE", "0.01")))
    # Promotion gates for a challenger model.
    gate_auc_tolerance: float = field(default_factory=lambda: float(_env("GATE_AUC_TOLERANCE", "0.01")))
    gate_min_fairness_ratio: float = field(default_factory=lambda: float(_env("GATE_MIN_FAIRNESS_RATIO", "0.8")))
    gate_min_group_size: int = field(default_factory=lambda: int(_env("GATE_MIN_GROUP_SIZE", "200")))
    # A fairness measurement that could not be made (fewer than two groups of the minimum size, or nobody approved)
    # fails the gate unless an operator accepts it; the acceptance is recorded in the model card.
    accept_untested_fairness: bool = field(
        default_factory=lambda: _env("ACCEPT_UNTESTED_FAIRNESS", "0").lower() in ("1", "true", "yes")
    )
    # Calibration gate: the out-of-time calibration slope must lie in this range, and in every score band with at
    # least this many bads the claimed bad rate must lie inside the observed rate's 95% Wilson interval.
    gate_calibration_slope_min: float = field(default_factory=lambda: float(_env("GATE_CALIBRATION_SLOPE_MIN", "0.8")))
    gate_calibration_slope_max: float = field(default_factory=lambda: float(_env("GATE_CALIBRATION_SLOPE_MAX", "1.25")))
    gate_calibration_min_bads: int = field(default_factory=lambda: int(_env("GATE_CALIBRATION_MIN_BADS", "10")))
    # The scorecards' fit: each bin holds at least this many bads (and goods), and the inverse L2 strength of the
    # regression. 20 bads a bin keeps the thin no-file segment's bins stable (its development has under 100 bads).
    scorecard_min_bin_bads: int = field(default_factory=lambda: int(_env("SCORECARD_MIN_BIN_BADS", "20")))
    scorecard_c: float = field(default_factory=lambda: float(_env("SCORECARD_C", "1.0")))
    # A segment needs at least this many bads in development for a scorecard of its own.
    min_segment_bads: int = field(default_factory=lambda: int(_env("MIN_SEGMENT_BADS", "30")))
    # Training observation dates: one every `obs_step_days`, the latest `oot_dates` held out for validation.
    obs_step_days: int = field(default_factory=lambda: int(_env("OBS_STEP_DAYS", "7")))
    # An observation date needs this many days of delivered history, so that its 90-day windows are full and
    # the model learns on the same kind of population it will score.
    maturity_days: int = field(default_factory=lambda: int(_env("MATURITY_DAYS", "90")))
    oot_dates: int = field(default_factory=lambda: int(_env("OOT_DATES", "1")))
    # A record re-delivered within this many days of its first delivery counts as a duplicate; bounding the
    # look-back keeps a night's ingestion cost independent of the length of history.
    dedupe_lookback_days: int = field(default_factory=lambda: int(_env("DEDUPE_LOOKBACK_DAYS", "60")))
    # An operator's acceptance of score or characteristic drift beyond the failing PSI for a night.
    accept_drift: bool = field(default_factory=lambda: _env("ACCEPT_DRIFT", "0").lower() in ("1", "true", "yes"))
    # The night of day D waits for its deliveries (checking every `delivery_poke_seconds`, without holding a worker
    # slot) until this many hours after D ends, UTC; then it fails closed naming the sources still missing.
    delivery_deadline_hours: float = field(default_factory=lambda: float(_env("DELIVERY_DEADLINE_HOURS", "6")))
    delivery_poke_seconds: int = field(default_factory=lambda: int(_env("DELIVERY_POKE_SECONDS", "300")))
    # A task that fails for a transient reason (a Spark JVM that died, out of memory) is retried this many times,
    # the delay doubling from `retry_delay_seconds`; a data error (bad delivery, failed check) fails at once.
    task_retries: int = field(default_factory=lambda: int(_env("TASK_RETRIES", "2")))
    retry_delay_seconds: int = field(default_factory=lambda: int(_env("RETRY_DELAY_SECONDS", "60")))
    # The first night the scheduler runs (the platform's go-live day), an optional last one, and whether it also
    # runs the nights between the go-live day and today that have no run yet (catch-up); by default it runs only the
    # night of the day that has just ended.
    schedule_start: str = field(default_factory=lambda: _env("SCHEDULE_START", "2026-01-01"))
    schedule_end: str = field(default_factory=lambda: _env("SCHEDULE_END", ""))
    schedule_catchup: bool = field(
        default_factory=lambda: _env("SCHEDULE_CATCHUP", "0").lower() in ("1", "true", "yes")
    )
    # Nights of published snapshots kept; the one LATEST names is never removed.
    retention_nights: int = field(default_factory=lambda: int(_env("RETENTION_NIGHTS", "30")))
    # Every delivery's _SUCCESS marker must carry the upstream's control totals (records, bytes, sha256 of each
    # file): without them a file cut short in transit reads as a smaller day. 0 accepts a bare marker, for an
    # upstream that cannot send them yet.
    require_control_totals: bool = field(
        default_factory=lambda: _env("REQUIRE_CONTROL_TOTALS", "1").lower() in ("1", "true", "yes")
    )
    # Tonight's records per source against the median of its last nights: an upstream that loses part of a day
    # sends totals that agree with what it sent, so only the volume shows it. On simulated days ordinary nights stay
    # above 0.77 of the median and half a day's payments falls to 0.39-0.60. A trailing median under
    # `volume_min_records` is not tested (a few records a day swing by half by chance), nor bills by default: no
    # statements on the 29th-31st leave under half the usual rows, which 14 nights cannot tell from a lost half.
    volume_trailing_nights: int = field(default_factory=lambda: int(_env("VOLUME_TRAILING_NIGHTS", "14")))
    volume_warn_ratio: float = field(default_factory=lambda: float(_env("VOLUME_WARN_RATIO", "0.65")))
    volume_fail_ratio: float = field(default_factory=lambda: float(_env("VOLUME_FAIL_RATIO", "0.4")))
    volume_min_records: int = field(default_factory=lambda: int(_env("VOLUME_MIN_RECORDS", "200")))
    volume_skip_sources: str = field(default_factory=lambda: _env("VOLUME_SKIP_SOURCES", "bills"))
    # The quality gates' expectation suites run side by side in up to this many processes (GX validates a frame on
    # one core); 1 runs them one after another in the stage's own process.
    quality_processes: int = field(default_factory=lambda: int(_env("QUALITY_PROCESSES", str(os.cpu_count() or 1))))

    def __post_init__(self):
        if not self.user_key_secret:
            secret_file = self.user_key_secret_file
            if secret_file.is_file():
                object.__setattr__(self, "user_key_secret", secret_file.read_text(encoding="ascii").strip())

    # ---------------------------------------------------------------------------------- the layout of SESAME_HOME
    # Every path under SESAME_HOME is named here, once (README.md, "Where state lives"); other modules ask for them
    # and never join the segments themselves (tests/test_layout.py). The service's own files are
    # sesame.service.layout's, under `service_home`.

    @property
    def lake(self) -> Path:
        """lake/: deliveries, validated records, features, scores and checks, one ds=YYYY-MM-DD folder a night."""
        return self.home / "lake"

    @property
    def raw(self) -> Path:
        """lake/raw/<source>/ds=…/: deliveries as delivered, each with its _SUCCESS marker."""
        return self.lake / "raw"

    @property
    def warehouse_path(self) -> Path:
        """warehouse/sesame.duckdb: the analysts' warehouse, schema marts."""
        return self.home / "warehouse" / "sesame.duckdb"

    @property
    def published(self) -> Path:
        """published/: the snapshots for services and the NIGHT pointer that publishes a night."""
        return self.home / "published"

    @property
    def models(self) -> Path:
        """models/: the model registry (versions, model cards, the champion)."""
        return self.home / "models"

    @property
    def airflow_home(self) -> Path:
        """airflow/: AIRFLOW_HOME."""
        return self.home / "airflow"

    @property
    def reports(self) -> Path:
        """reports/: the nights' HTML reports (reports/index.html lists them)."""
        return self.home / "reports"

    def zone(self, *parts: str, ds: str | None = None) -> Path:
        """A lake path: lake/<zone>[/<dataset>][/ds=YYYY-MM-DD]."""
        p = self.lake.joinpath(*parts)
        return ds_partition(p, ds) if ds else p

    def staged_warehouse(self, run_id: str) -> Path:
        """The analysts' copy of the warehouse a run builds, until publish puts it in place of the live one."""
        return self.warehouse_path.parent / ".staging" / f"sesame-{run_id}.duckdb"

    @property
    def docs_warehouse(self) -> Path:
        """The copy of the live warehouse that dbt docs read (removed once the docs are generated)."""
        return self.warehouse_path.parent / ".staging" / "docs.duckdb"

    def run_log(self, ds: str, run_id: str, runs: str = NIGHT_RUNS) -> Path:
        """<runs>/<ds>/<run_id>.json: every stage of one run, its status, wall time and rows (runs: NIGHT_RUNS for
        the nights, TRAIN_RUNS for the training runs)."""
        return self.run_logs(ds, runs) / f"{run_id}.json"

    def run_logs(self, ds: str | None = None, runs: str = NIGHT_RUNS) -> Path:
        """The folder of the run logs of the night ds (of every night without ds)."""
        return self.home / runs / ds if ds else self.home / runs

    @property
    def alerts_dir(self) -> Path:
        """alerts/: one JSON file per failed task, kept per night (<dag>-<ds>-<task>.json), and alerts_file."""
        return self.home / "alerts"

    @property
    def alerts_file(self) -> Path:
        """alerts/alerts.jsonl: one line per failed task, the file an operator watches."""
        return self.alerts_dir / "alerts.jsonl"

    def alert_file(self, dag: str | None, ds: str | None, task: str | None) -> Path:
        """The alert of one failed task of one night, kept beside alerts_file."""
        return self.alerts_dir / f"{dag}-{ds}-{task}.json"

    def report_page(self, ds: str, run_id: str) -> Path:
        """reports/<ds>/<run_id>.html: the HTML report of one run of a night (index.html beside it: the latest)."""
        return self.reports / ds / f"{run_id}.html"

    @property
    def logs(self) -> Path:
        """logs/: the full Airflow log of every `sesame night` / `sesame train`, the SQL endpoint's log, and the
        failed dbt commands' logs (logs/dbt)."""
        return self.home / "logs"

    def dag_run_log(self, dag_id: str, ds: str, started: dt.datetime) -> Path:
        """The Airflow log of one DAG run started by the CLI."""
        return self.logs / f"{dag_id}-{ds}-{started:%Y%m%dT%H%M%S}.log"

    def failed_dbt_log(self, command: str, ds: str, at: dt.datetime) -> Path:
        """The dbt.log of a failed dbt command, secret blanked out (its work folder is removed)."""
        return self.logs / "dbt" / f"dbt-{command}-{ds}-{at:%Y%m%dT%H%M%S}.log"

    @property
    def sql_endpoint_log(self) -> Path:
        """What the Spark Thrift Server (`sesame sql`) prints."""
        return self.logs / "sql-endpoint.log"

    @property
    def tmp(self) -> Path:
        """tmp/: a run's scratch, removed or replaced by the runs that write it."""
        return self.home / "tmp"

    @property
    def dbt_work_root(self) -> Path:
        """tmp/dbt: dbt's private work folders (work-<pid>-*, 0700: compiled SQL holds the secret), its scratch
        databases and the warehouse builds' invocation records."""
        return self.tmp / "dbt"

    def dbt_scratch_database(self, kind: str, run_id: str) -> Path:
        """tmp/dbt/<kind>-<run_id>.duckdb: the database a dbt build of `kind` (features, warehouse) works in,
        removed when it ends."""
        return self.dbt_work_root / f"{kind}-{run_id}.duckdb"

    def dbt_invocation(self, run_id: str) -> Path:
        """The warehouse build's dbt invocation (id, version, command, results), for the manifests' provenance."""
        return self.dbt_work_root / f"invocation-{run_id}.json"

    def audited_dir(self, run_id: str) -> Path:
        """Where the audit leaves the datasets it verified, for publish to write out unchanged."""
        return self.tmp / "audited" / run_id

    @property
    def code_zip(self) -> Path:
        """The library and the Spark jobs, zipped for executors on other machines."""
        return self.tmp / "sesame_code.zip"

    @property
    def dbt_docs(self) -> Path:
        """docs/dbt: dbt docs for analysts (not compiled: compiled SQL would carry the secret)."""
        return self.home / "docs" / "dbt"

    @property
    def data_docs_index(self) -> Path:
        """The Great Expectations Data Docs' front page (the GX project's root is SESAME_HOME itself)."""
        return self.home / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"

    @property
    def feature_store_home(self) -> Path:
        """feature_store/: Feast's registry and online store (the repo's feature_store/feature_store.yaml names them
        too)."""
        return self.home / "feature_store"

    @property
    def spark_warehouse(self) -> Path:
        """spark-warehouse/: the tables of dbt's spark target."""
        return self.home / "spark-warehouse"

    @property
    def metastore(self) -> Path:
        """metastore_db/: the Derby Hive metastore of dbt's spark target and the SQL endpoint (derby.system.home
        is SESAME_HOME itself, keep in step with dbt/profiles.yml)."""
        return self.home / "metastore_db"

    @property
    def airflow_initialized(self) -> Path:
        """The marker `sesame` leaves in AIRFLOW_HOME once its metadata database is migrated."""
        return self.airflow_home / ".sesame-initialized"

    @property
    def airflow_db(self) -> Path:
        """Airflow's SQLite metadata database (unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN names another)."""
        return self.airflow_home / "airflow.db"

    @property
    def service_home(self) -> Path:
        """service/: private to the score service (0700); sesame.service.layout names its files."""
        return self.home / "service"

    @property
    def holds_dir(self) -> Path:
        """lake/holds/: deliveries set aside by an operator, one file per held day, and the ledger of holds."""
        return self.lake / "holds"

    @property
    def user_key_secret_file(self) -> Path:
        """The installation's user-key secret, written once by `sesame setup` (0600)."""
        return self.home / USER_KEY_SECRET_FILE


# The OS lock that lets one night or training run at a time use a SESAME_HOME (sesame.durable.exclusive).
HOME_LOCK_FILE = ".sesame.lock"
# The folders under SESAME_HOME that hold personal data or the keys to it (sesame.privacy.keep_private).
PRIVATE_FOLDERS = ("lake", "published", "service", "models", "secrets")


def home_lock(home: Path) -> Path:
    """The lock file of a SESAME_HOME."""
    return Path(home) / HOME_LOCK_FILE


def private_folders(home: Path) -> list[Path]:
    """The folders of a SESAME_HOME kept from everyone but the owner (and the group, if readable)."""
    return [Path(home) / name for name in PRIVATE_FOLDERS]


def ds_partition(folder: Path, ds: str) -> Path:
    """The partition of the night ds in a folder partitioned by night: <folder>/ds=YYYY-MM-DD."""
    return folder / f"ds={ds}"


def ds_partitions(
    folder: Path, first: str | None = None, last: str | None = None, holding: str | None = None
) -> list[str]:
    """The nights (YYYY-MM-DD) a folder partitioned by night holds, oldest first: those from `first` to `last`
    (both included) when given, and only those holding a file that matches `holding` (a glob, e.g. "*.parquet",
    or a marker's name) when given. A missing folder holds none."""
    nights = []
    for path in folder.glob("ds=*"):
        night = path.name[len("ds=") :]
        if (
            (first is None or first <= night)
            and (last is None or night <= last)
            and (holding is None or any(path.glob(holding)))
        ):
            nights.append(night)
    return sorted(nights)


def settings() -> Settings:
    return Settings()


def positive_env(variable: str, kind: type, default, why: str = ""):
    """A number above 0 from the environment variable `variable` (its whole name), else `default`; a ValueError
    naming the variable otherwise (`why` says what a value of 0 or less would mean)."""
    raw = os.environ.get(variable)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{variable} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{variable} must be above 0, not {raw!r}{why}")
    return value


# ------------------------------------------------------------------------------------------ the user-key secret
def days_before(ds: str, days: int) -> str:
    """The ISO date `days` days before the ISO date `ds`: days_before("2026-03-01", 1) == "2026-02-28"."""
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=days)).isoformat()


USER_KEY_SECRET_FILE = "secrets/user-key-secret"
MIN_USER_KEY_SECRET_CHARS = 32
# Secrets that documentation, examples and earlier releases showed: never accepted, whatever their length.
EXAMPLE_SECRET_MARKERS = (
    "change-me",
    "changeme",
    "change_me",
    "example",
    "not-for-production",
    "secret-here",
    "placeholder",
    "your-secret",
)


class UnsafeSecret(Exception):
    """The user-key secret is missing, too short or an example: commands that pseudonymize refuse to run."""


def user_key_secret_problem(secret: str) -> str | None:
    """Why a secret would not protect the pseudonyms, or None. Never echoes the secret."""
    if not secret:
        return "not set"
    if len(secret) < MIN_USER_KEY_SECRET_CHARS:
        return f"{len(secret)} characters, fewer than {MIN_USER_KEY_SECRET_CHARS}"
    lowered = secret.lower()
    if any(marker in lowered for marker in EXAMPLE_SECRET_MARKERS):
        return "an example value"
    if len(set(secret)) < 8:
        return f"only {len(set(secret))} distinct characters"
    return None


def check_user_key_secret(cfg: Settings) -> None:
    problem = user_key_secret_problem(cfg.user_key_secret)
    if problem:
        raise UnsafeSecret(
            f"SESAME_USER_KEY_SECRET is {problem}: the keyed hash of user ids would not hide them (upstream ids can "
            f"all be tried). Run `sesame setup`, which writes a random secret to {cfg.user_key_secret_file} "
            f"(mode 0600) once, or set SESAME_USER_KEY_SECRET to a random value of {MIN_USER_KEY_SECRET_CHARS} "
            "characters or more (python -c 'import secrets; print(secrets.token_hex(32))'). Changing it changes "
            "every user_key: keep it with the installation."
        )


def ensure_user_key_secret_file(home: Path) -> Path | None:
    """Generate the installation's secret file once (32 random bytes, hex; mode 0600 in a 0700 folder), unless
    SESAME_USER_KEY_SECRET is set. Returns the file, or None when the environment provides the secret."""
    if os.environ.get("SESAME_USER_KEY_SECRET"):
        return None
    path = home / USER_KEY_SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return path
