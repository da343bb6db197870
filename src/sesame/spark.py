"""The one place a SparkSession is made, and the one way the pipeline launches a Spark job.

Jobs in spark_jobs/ are pure DataFrame transforms with a small main(); the pipeline runs each under
spark-submit against SESAME_SPARK_MASTER (local[*] by default, a standalone cluster in production) and ships
the project's code to executors as a zip on --py-files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sesame.config import REPO_ROOT, Settings, settings
from sesame.durable import dies_with_parent

T = TypeVar("T")


def extra_conf(text: str) -> dict[str, str]:
    """SESAME_SPARK_CONF's properties: "key=value" pairs separated by commas, every key a spark.* property."""
    extra = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().startswith("spark.") or not value.strip():
            raise ValueError(
                f"SESAME_SPARK_CONF: {pair!r} is not spark.<property>=<value>; pairs are separated by commas"
            )
        extra[key.strip()] = value.strip()
    return extra


# Spark generates one Java method per query stage; the JVM leaves methods over 8,000 bytes of bytecode
# uncompiled (interpreted), and ingest's checks of a many-column source make one: validating a day of KYC
# snapshots took 16.8 s interpreted, 5.4 s compiled.
# The parallel collector: G1's concurrent marking used 41 s of the two cores' time in the nightly feature job at
# 1,000,000 users, the parallel collector 17 s (the job 231 -> 214 s; a 5-day catch-up pass 240 -> 232 s, its peak
# 8.3 -> 6.4 GB). The jobs are batch work that wants throughput, not short pauses.
JVM_OPTIONS = "-XX:-DontCompileHugeMethods -XX:+UseParallelGC"


# Class data sharing: a Spark driver loads tens of thousands of classes (Spark's, Scala's, Hadoop's), each read
# from a jar, parsed and verified at every start. The installation keeps them in an archive the JVM maps instead
# (`make_class_archive`, run by `sesame setup`): a short Spark job on 2 cores took 17 s instead of 23, its session
# ready 2.5 s sooner. A JVM that cannot use the archive (another Java runtime, another class path) runs without it,
# silently.
def class_archive() -> Path | None:
    """This installation's archive of the Spark driver's classes, named by what it depends on (the Java runtime
    spark-submit starts and the pyspark install); None where no Java runtime is found or the path holds a space."""
    import hashlib

    import pyspark

    java_home = os.environ.get("JAVA_HOME")  # spark-submit's choice: $JAVA_HOME/bin/java, else java on PATH
    java = Path(java_home, "bin", "java") if java_home else Path(shutil.which("java") or "")
    if not java.name or not java.exists():
        return None
    java = java.resolve()
    jars = Path(pyspark.__file__).parent / "jars"
    made_from = f"{java}:{java.stat().st_mtime_ns}:{pyspark.__version__}:{sorted(p.name for p in jars.glob('*.jar'))}"
    key = hashlib.sha256(made_from.encode()).hexdigest()[:16]
    archive = Path(sys.prefix) / "share" / "sesame" / f"spark-classes-{key}.jsa"
    # the driver's JVM options are one string split at spaces: a path with one cannot be passed
    return None if any(c.isspace() for c in str(archive)) else archive


def driver_jvm_options() -> str:
    """The driver's JVM options: JVM_OPTIONS, and the class archive when the installation has one."""
    archive = class_archive()
    if archive is None or not archive.exists():
        return JVM_OPTIONS
    return f"{JVM_OPTIONS} -XX:SharedArchiveFile={archive} -Xlog:cds=off -Xlog:cds+dynamic=off"


def make_class_archive(cfg: Settings) -> Path | None:
    """Make the installation's class archive (`class_archive`) when it has none: the JVM writes the classes a short
    job loaded (spark_jobs/warm_up.py) as it exits. Returns the archive, or None when it could not be made (the
    jobs then start without one)."""
    archive = class_archive()
    if archive is None or archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    dumping = archive.with_name(f".{archive.name}.{os.getpid()}")  # renamed into place once whole
    cmd, env = submit_command("warm_up", [], cfg)
    at = next(i for i, arg in enumerate(cmd) if arg.startswith("spark.driver.extraJavaOptions="))
    cmd[at] += f" -XX:ArchiveClassesAtExit={dumping}"
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not dumping.exists():
        dumping.unlink(missing_ok=True)
        return None
    for older in archive.parent.glob("spark-classes-*.jsa"):  # made for a runtime no longer installed
        older.unlink()
    os.replace(dumping, archive)
    return archive


def spark_conf(cfg: Settings) -> dict[str, str]:
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.spark_shuffle_partitions),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # ds=YYYY-MM-DD partition values stay strings, whatever the zone
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        # A zone holds one folder per delivery day; listing a year of them from the driver takes milliseconds,
        # while the default (a Spark job to list more than 32 folders) cost seconds per read.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.parquet.compression.codec": "zstd",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": cfg.spark_driver_memory,
        "spark.sql.legacy.timeParserPolicy": "CORRECTED",
        "spark.driver.extraJavaOptions": driver_jvm_options(),
        "spark.executor.extraJavaOptions": JVM_OPTIONS,
        **extra_conf(cfg.spark_conf),
    }


def get_session(app_name: str = "sesame", cfg: Settings | None = None):
    """A SparkSession configured for the pipeline. Under spark-submit the master comes from the command line."""
    from pyspark.sql import SparkSession

    cfg = cfg or settings()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors use the project's interpreter
    builder = SparkSession.builder.appName(app_name)
    if not os.environ.get("SESAME_UNDER_SUBMIT"):  # spark-submit already set the master
        builder = builder.master(cfg.spark_master)
    for key, value in spark_conf(cfg).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def iso_date(text: str) -> str:
    """A command-line date (YYYY-MM-DD), checked, in its ISO form."""
    return dt.date.fromisoformat(text).isoformat()


def run_job(
    name: str,
    description: str,
    argv: list[str] | None,
    work: Callable[..., object],
    options: dict[str, dict] | None = None,
    many_nights: bool = False,
    refused: tuple[type[Exception], ...] = (),
) -> int:
    """The main() of every Spark job: parse its command line (--ds, the night, given once or, with `many_nights`,
    once per night; then the job's own `options`, flag: add_argument keywords), open the session sesame-<name>,
    call work(spark, cfg, args), stop the session, print what work returned (None: nothing) and return the exit
    code: 0, or 1 when work raised one of `refused` (the job rejected its input: one `SESAME-ERROR:` line, which
    JobFailed shows). Argument errors exit 2, as argparse does."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--ds", required=True, action="append" if many_nights else "store", type=iso_date)
    for flag, keywords in (options or {}).items():
        parser.add_argument(flag, **keywords)
    args = parser.parse_args(argv)
    cfg = settings()
    spark = get_session(f"sesame-{name}", cfg)
    try:
        result = work(spark, cfg, args)
    except refused as exc:
        print(f"SESAME-ERROR: {exc}", flush=True)
        return 1
    finally:
        spark.stop()
    if result is not None:
        print(result)
    return 0


class StepClock:
    """The wall time of a job's steps, in seconds by step name (a step run again, once per night, adds up). Spark
    is lazy: a step's time is the work that runs within it (a write, a count, a collect), not that of the frames
    it only defines, which the step that first writes them pays for. Steps may run in threads side by side: a
    step's time is then the time while any part of it ran, the times of different steps overlap, and `busy` is
    the time while any step ran. The Spark jobs a step starts carry its name (the local property STEP_PROPERTY of
    the thread running it), so that Spark's event log tells what each step cost in tasks, however they overlap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.busy = 0.0
        # step (None: any step) -> (parts running, when the first of them began)
        self._running: dict[str | None, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        now = time.perf_counter()
        with self._lock:
            for key in (step, None):
                parts, began = self._running.get(key, (0, now))
                self._running[key] = (parts + 1, began)
        outer = _mark_spark_jobs(step)
        try:
            yield
        finally:
            _mark_spark_jobs(outer)
            now = time.perf_counter()
            with self._lock:
                for key in (step, None):
                    parts, began = self._running.pop(key)
                    if parts > 1:
                        self._running[key] = (parts - 1, began)
                    elif key is None:
                        self.busy = round(self.busy + now - began, 2)
                    else:
                        self.seconds[key] = round(self.seconds.get(key, 0.0) + now - began, 2)

    def timed(self, step: str, work: Callable[..., T]) -> Callable[..., T]:
        """`work` timed as (part of) `step` whenever it is called."""

        def timed_work(*args, **kwargs) -> T:
            with self(step):
                return work(*args, **kwargs)

        return timed_work


# The Spark local property naming the `StepClock` step whose thread starts a job.
STEP_PROPERTY = "sesame.step"


def _mark_spark_jobs(step: str | None) -> str | None:
    """Name `step` (None: no step) on the Spark jobs this thread starts from now on, when a Spark session is
    running; returns the step named before."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None:
        return None
    before = context.getLocalProperty(STEP_PROPERTY)
    context.setLocalProperty(STEP_PROPERTY, step)
    return before


def broadcast_when_small(frame, max_rows: int):
    """`frame` (materialized: it is counted) marked to go whole to every task when it has at most `max_rows` rows,
    for a join whose other side Spark would otherwise shuffle to meet it; Spark cannot tell from the sources' sizes
    that a filtered or aggregated side is small."""
    from pyspark.sql import functions as F

    return F.broadcast(frame) if frame.count() <= max_rows else frame


def kept_rows(frame):
    """`frame` computed once, its rows kept (in memory, spilling to disk) for the reads that follow; `release_rows`
    frees them. For a frame read whole several times: Spark's columnar cache (`persist`) cost as much to build as
    parsing and checking a delivery (three days of payments: 5.5 s against 3.1 s kept as rows)."""
    return frame.localCheckpoint()


def release_rows(frame) -> None:
    """Free the rows `kept_rows` keeps (else they stay until the JVM collects the frame's plan)."""
    frame._jdf.queryExecution().logical().rdd().unpersist(False)


def write_days(frame, path: Path) -> None:
    """Overwrite the delivery days in `frame` under `path` (one folder per `ds`), leaving other days alone.

    Each day is written by one task, so a day is one file rather than one per shuffle partition: the nightly
    jobs read up to a year of days, and thousands of tiny files cost more to open than to read."""
    frame.repartition("ds").write.mode("overwrite").partitionBy("ds").parquet(str(path))


def write_beside(frame, kept: Path, target: Path) -> None:
    """Make the folder `target` hold the data files of the folder `kept` (hard links: nothing is copied) and
    `frame`, written as one more file: a state only ever added to, kept without rewriting it every night. The
    folder is assembled aside and renamed into place, so that a reader finds the old `target` or the whole new one.
    Raises OSError where the file system has no hard links (nothing is left behind)."""
    staging, aside = (target.with_name(f"_{what}-{target.name}") for what in ("staging", "replaced"))
    for leftover in (staging, aside):
        shutil.rmtree(leftover, ignore_errors=True)
    frame.coalesce(1).write.mode("overwrite").parquet(str(staging))
    try:
        for path in kept.iterdir():
            if "_SUCCESS" not in path.name:  # the data files and their checksums
                os.link(path, staging / path.name)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, aside)
    os.replace(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


# What executors import: the library and the jobs, nothing else of the repository (not the DAGs, the tests or
# the benchmarks).
SHIPPED_PACKAGES = (REPO_ROOT / "src" / "sesame", REPO_ROOT / "spark_jobs")


def code_zip(cfg: Settings) -> Path:
    """Zip the library and the jobs (SHIPPED_PACKAGES) so executors on other machines import the same code."""
    target = cfg.code_zip
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in SHIPPED_PACKAGES:
            for path in sorted(package.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zf.write(path, str(path.relative_to(package.parent)))
    os.replace(tmp, target)
    return target


def submit_command(job: str, args: list[str], cfg: Settings | None = None) -> tuple[list[str], dict[str, str]]:
    """The spark-submit command line and environment that run spark_jobs/<job>.py."""
    cfg = cfg or settings()
    pyspark_home = Path(__import__("pyspark").__file__).parent
    spark_submit = pyspark_home / "bin" / "spark-submit"
    cmd = [
        str(spark_submit),
        "--master",
        cfg.spark_master,
        "--name",
        f"sesame-{job}",
        "--py-files",
        str(code_zip(cfg)),
        "--driver-memory",
        cfg.spark_driver_memory,
    ]
    for key, value in spark_conf(cfg).items():
        if key != "spark.driver.memory":
            cmd += ["--conf", f"{key}={value}"]
    cmd += [str(REPO_ROOT / "spark_jobs" / f"{job}.py"), *args]
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["SESAME_UNDER_SUBMIT"] = "1"
    env["SESAME_HOME"] = str(cfg.home)
    env["SESAME_REPO"] = str(REPO_ROOT)
    return cmd, env


def submit(job: str, args: list[str], cfg: Settings | None = None) -> None:
    """Run spark_jobs/<job>.py under spark-submit; raise JobFailed with the job's last error lines on failure."""
    cmd, env = submit_command(job, args, cfg)
    proc = subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=dies_with_parent
    )
    sys.stdout.write(proc.stdout[-20000:])
    if proc.returncode != 0:
        raise JobFailed(job, proc.returncode, proc.stdout)


class JobFailed(RuntimeError):
    def __init__(self, job: str, returncode: int, output: str):
        lines = [ln for ln in output.splitlines() if ln.strip()]
        # A job that fails closed prints one line starting with "SESAME-ERROR:"; show that when present.
        reasons = [ln.split("SESAME-ERROR:", 1)[1].strip() for ln in lines if "SESAME-ERROR:" in ln]
        detail = reasons[-1] if reasons else "\n".join(lines[-15:])
        super().__init__(f"Spark job {job} failed (exit {returncode}): {detail}")
        self.job = job
        self.detail = detail
        self.rejected = bool(reasons)  # the job refused its input: running it again gives the same answer
