"""docker-compose.yml agrees with the code (services, DAG folder, settings, image built from the repo) and is closed by
default: only the score service and the Airflow UI publish ports, on loopback unless configured; the Spark cluster
authenticates with a secret from compose secrets; service/ (API keys, signing key) goes to the score service alone;
the deliveries (lake/raw) only to the services that ingest, read-only; no service mounts the whole SESAME_HOME."""

from __future__ import annotations

import os
import posixpath
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from sesame.config import Settings

ROOT = Path(__file__).resolve().parents[1]
HOME = "/data/sesame"
RAW = f"{HOME}/lake/raw"
SERVICE_STATE = f"{HOME}/service"
PUBLISHING = {"score-service", "airflow-apiserver"}
SPARK_SECRET = "spark_auth_secret"
ENTRYPOINT = "/usr/local/bin/sesame-entrypoint"


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(svc: dict) -> dict:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: str(value) for key, value in env.items()}


def _command(svc: dict) -> str:
    cmd = svc.get("command") or ""
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


@dataclass(frozen=True)
class Mount:
    source: str | None
    target: str
    read_only: bool


# source:target[:mode], where the source may be ${VAR:-default} (whose colon is not a separator)
_SHORT_MOUNT = re.compile(r"^(?:(?P<source>(?:\$\{[^}]*\}|[^:$])+):)?(?P<target>/[^:]*)(?::(?P<mode>[^:]+))?$")


def _mounts(svc: dict) -> list[Mount]:
    mounts = []
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            mounts.append(
                Mount(volume.get("source"), posixpath.normpath(volume["target"]), bool(volume.get("read_only")))
            )
            continue
        match = _SHORT_MOUNT.match(volume)
        assert match, f"cannot read the volume {volume!r}"
        mounts.append(
            Mount(match["source"], posixpath.normpath(match["target"]), "ro" in (match["mode"] or "").split(","))
        )
    return mounts


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _mount_of(svc: dict, path: str) -> Mount | None:
    """The mount a service sees `path` through: the deepest one whose target holds it."""
    holding = [m for m in _mounts(svc) if _within(path, m.target)]
    return max(holding, key=lambda m: len(m.target)) if holding else None


def _spark_roles(services: dict) -> dict[str, str]:
    """The Spark master, its workers, and every service that runs drivers against the cluster."""
    roles = {}
    for name, svc in services.items():
        if "org.apache.spark.deploy.master.Master" in _command(svc):
            roles[name] = "master"
        elif "org.apache.spark.deploy.worker.Worker" in _command(svc):
            roles[name] = "worker"
        elif _env(svc).get("SESAME_SPARK_MASTER", "").startswith("spark://"):
            roles[name] = "driver"
    return roles


def _ports(svc: dict) -> list[tuple[str | None, str, str]]:
    """(host address, host port, container port) of each published port."""
    out = []
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip"), str(port.get("published", "")), str(port["target"])))
            continue
        parts = re.findall(r"\$\{[^}]*\}|[^:]+", str(port))
        host_ip = parts[0] if len(parts) == 3 else None
        out.append((host_ip, parts[-2] if len(parts) > 1 else "", parts[-1].split("/")[0]))
    return out


def _default_of(value: str) -> str:
    """What compose makes of a value when its variables are unset: ${VAR:-default} gives default."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def _entrypoint_script() -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf'^ENTRYPOINT \["{re.escape(ENTRYPOINT)}"\]', dockerfile, re.M), (
        "every container of the image starts through the entrypoint that sets up Spark's secret"
    )
    found = re.search(
        rf"^COPY [^\n]*<<'(?P<tag>\w+)' {re.escape(ENTRYPOINT)}\n(?P<body>.*?)^(?P=tag)$", dockerfile, re.M | re.S
    )
    assert found, f"the Dockerfile writes {ENTRYPOINT} from a here-document"
    return found["body"]


# ---------------------------------------------------------------------------------------------- agreement with code


def test_services_of_a_multi_machine_deployment():
    services = _compose()["services"]
    assert {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "spark-master",
        "spark-worker",
        "score-service",
    } <= set(services)
    assert services["score-service"]["command"][:2] == ["sesame", "serve"]
    assert services["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_every_sesame_service_runs_the_repo_image():
    services = _compose()["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, svc in services.items():
        if name in ("postgres", "redis"):
            continue
        assert svc["build"] == "." and (ROOT / "Dockerfile").exists()
        assert name == "spark-master" or _env(svc)["SESAME_HOME"] == HOME, name
        if name.startswith("airflow-"):
            env = _env(svc)
            assert env["AIRFLOW_HOME"] == f"{HOME}/airflow"
            assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/sesame/dags"
            assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
            assert _mount_of(svc, f"{HOME}/airflow/logs").target == f"{HOME}/airflow", "Airflow's home is shared"
    drivers = [name for name, role in _spark_roles(services).items() if role == "driver"]
    assert "airflow-scheduler" in drivers  # LocalExecutor: the scheduler's container runs every task
    for name in drivers:
        assert _env(services[name])["SESAME_SPARK_MASTER"] == "spark://spark-master:7077"
    # the image holds what the DAG folder and the settings point at
    for folder in ("dags", "spark_jobs", "dbt", "expectations", "feature_store", "src"):
        assert f"COPY {folder} ./{folder}" in dockerfile and (ROOT / folder).is_dir()
    assert "WORKDIR /opt/sesame" in dockerfile and "requirements.lock" in dockerfile


def test_settings_named_in_compose_exist_in_the_code():
    text = (ROOT / "docker-compose.yml").read_text()
    fields = {f.upper() for f in Settings.__dataclass_fields__}
    for name in set(re.findall(r"SESAME_([A-Z_]+):", text)):
        assert name in fields, f"SESAME_{name} is not a setting of sesame.config.Settings"
    readme = (ROOT / "README.md").read_text()
    for name in fields:
        if name not in ("HOME",):
            assert f"SESAME_{name}" in readme, f"SESAME_{name} is not documented in README"
    # the deployment's own variables (addresses, ports, folders) are documented too
    for name in set(re.findall(r"\$\{(\w+)", text)):
        assert f"`{name}`" in readme, f"{name} (docker-compose.yml) is not documented in README"


def test_spark_cluster_commands_match_pyspark():
    services = _compose()["services"]
    assert services["spark-master"]["command"][:2] == ["spark-class", "org.apache.spark.deploy.master.Master"]
    assert services["spark-worker"]["command"][-1] == "spark://spark-master:7077"


def test_image_can_reach_postgres():
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^psycopg2-binary==", lock, re.M), "Airflow on Postgres needs a driver in the lock"


def test_extra_spark_properties_reach_every_job_and_bad_ones_are_named(tmp_path):
    import pytest

    from sesame.spark import spark_conf, submit_command

    cfg = Settings(home=tmp_path, spark_conf=" spark.sql.shuffle.partitions=3 , spark.sql.codegen.wholeStage=false")
    conf = spark_conf(cfg)
    assert conf["spark.sql.shuffle.partitions"] == "3"  # an operator's property wins over the project's
    assert conf["spark.sql.codegen.wholeStage"] == "false"
    cmd, _ = submit_command("score", ["--ds", "2026-01-01"], cfg)
    assert "spark.sql.codegen.wholeStage=false" in cmd
    for bad in ("wholeStage=false", "spark.sql.codegen.wholeStage", "spark.x="):
        with pytest.raises(ValueError, match="SESAME_SPARK_CONF"):
            spark_conf(Settings(spark_conf=bad))


def test_spark_drivers_start_from_the_class_archive_once_the_installation_has_one(tmp_path, monkeypatch):
    from sesame import spark

    archive = tmp_path / "share" / "spark-classes-0123.jsa"
    monkeypatch.setattr(spark, "class_archive", lambda: archive)
    cfg = Settings(home=tmp_path / "home")
    assert spark.spark_conf(cfg)["spark.driver.extraJavaOptions"] == spark.JVM_OPTIONS  # none made yet
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"classes")
    conf = spark.spark_conf(cfg)
    driver = conf["spark.driver.extraJavaOptions"].split()
    assert driver[: len(spark.JVM_OPTIONS.split())] == spark.JVM_OPTIONS.split()
    assert f"-XX:SharedArchiveFile={archive}" in driver
    # executors may run on other machines, where the installation's path means nothing
    assert conf["spark.executor.extraJavaOptions"] == spark.JVM_OPTIONS
    cmd, _ = spark.submit_command("score", ["--ds", "2026-01-01"], cfg)
    assert f"spark.driver.extraJavaOptions={conf['spark.driver.extraJavaOptions']}" in cmd


def test_the_class_archive_is_named_by_the_java_runtime_and_pyspark_it_was_made_for(tmp_path, monkeypatch):
    from sesame.spark import class_archive

    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    first = class_archive()
    assert first is not None and first.name.startswith("spark-classes-") and first.suffix == ".jsa"
    assert class_archive() == first
    os.utime(java, ns=(1, 1))  # another runtime installed in its place
    assert class_archive() != first
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    assert class_archive() is None


def test_the_class_archive_is_made_once_whole_or_not_at_all(tmp_path, monkeypatch):
    import pytest

    from sesame import spark

    archive = tmp_path / "share" / "spark-classes-new.jsa"
    older = archive.with_name("spark-classes-old.jsa")
    older.parent.mkdir(parents=True)
    older.write_bytes(b"classes of a runtime no longer installed")
    monkeypatch.setattr(spark, "class_archive", lambda: archive)
    cfg = Settings(home=tmp_path / "home")

    def job(script: str):
        # the JVM's options come last, as spark-submit's --conf: sh sees them as $0
        return lambda name, args, cfg: (["sh", "-c", script, "spark.driver.extraJavaOptions=-Xss4m"], {})

    monkeypatch.setattr(spark, "submit_command", job('touch "${0##*=}"; exit 3'))  # dumped part, then failed
    assert spark.make_class_archive(cfg) is None
    assert sorted(p.name for p in archive.parent.iterdir()) == [older.name]  # nothing half made is left
    monkeypatch.setattr(
        spark, "submit_command", job('case "$0" in *-XX:ArchiveClassesAtExit=*) echo x > "${0##*=}";; esac')
    )
    assert spark.make_class_archive(cfg) == archive
    assert sorted(p.name for p in archive.parent.iterdir()) == [archive.name]  # and the stale one is gone
    monkeypatch.setattr(spark, "submit_command", lambda *a: pytest.fail("made again"))
    assert spark.make_class_archive(cfg) == archive


def test_the_drivers_spark_properties_are_valid_for_the_project():
    from sesame.spark import extra_conf

    for name, role in _spark_roles(_compose()["services"]).items():
        if role == "driver":
            extra = extra_conf(_env(_compose()["services"][name]).get("SESAME_SPARK_CONF", ""))
            # executors on other machines call the driver back by a name they can resolve, not localhost
            assert extra.get("spark.driver.host") == name, name


# ---------------------------------------------------------------------------------------------- closed by default


def test_only_the_score_service_and_the_airflow_ui_publish_ports_on_loopback_by_default():
    services = _compose()["services"]
    assert {name for name, svc in services.items() if svc.get("ports")} == PUBLISHING
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", f"{name} would listen on every interface of the machine"
    container_ports = {"score-service": "8000", "airflow-apiserver": "8080"}
    for name in PUBLISHING:
        ports = _ports(services[name])
        assert len(ports) == 1, name
        host_ip, _, container = ports[0]
        assert host_ip is not None, f"{name} publishes on every interface: name the address"
        assert _default_of(host_ip) == "127.0.0.1", f"{name} publishes on {host_ip}, not 127.0.0.1 by default"
        assert container == container_ports[name] and f"--port {container}" in _command(services[name])


def test_spark_authenticates_master_workers_and_drivers_with_a_compose_secret():
    compose = _compose()
    services = compose["services"]
    roles = _spark_roles(services)
    assert set(roles.values()) == {"master", "worker", "driver"}, roles
    secret = compose.get("secrets", {}).get(SPARK_SECRET)
    assert secret and set(secret) == {"file"}, "the Spark secret comes from a file, not from the environment"
    secret_file = posixpath.normpath(secret["file"])
    assert not secret_file.startswith(("/", "..")), secret_file
    folder = secret_file.split("/")[0]
    assert f"/{folder}/" in (ROOT / ".gitignore").read_text().splitlines(), f"{folder}/ is not git-ignored"
    assert re.search(rf"^{re.escape(secret_file)}:", (ROOT / "Makefile").read_text(), re.M), (
        "a make target generates the secret file"
    )
    for name, role in roles.items():
        svc = services[name]
        names = [s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []]
        assert SPARK_SECRET in names, f"{name} ({role}) is not given the Spark secret"
        env = _env(svc)
        assert env.get("SPARK_AUTH_SECRET_FILE") == f"/run/secrets/{SPARK_SECRET}", name
        conf_dir = env.get("SPARK_CONF_DIR")
        assert conf_dir and any(str(t).split(":")[0] == conf_dir for t in svc.get("tmpfs") or []), (
            f"{name}: the configuration that carries the secret is on a tmpfs, never on disk"
        )
        for key in ("SESAME_SPARK_CONF", "SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS", "SPARK_DAEMON_JAVA_OPTS"):
            assert not re.search(r"spark\.authenticate=false", env.get(key, "")), f"{name}: {key}"
    for name, svc in services.items():
        for key, value in _env(svc).items():
            assert "spark.authenticate.secret" not in value and key != "_SPARK_AUTH_SECRET", (
                f"{name}: the Spark secret is in the environment ({key})"
            )


def test_the_entrypoint_turns_the_compose_secret_into_sparks_configuration(tmp_path):
    script = tmp_path / "entrypoint"
    script.write_text(_entrypoint_script())
    secret = "0123456789abcdef" * 4

    def run(content: str | None, with_file: bool = True):
        conf_dir = tmp_path / "conf"
        for leftover in conf_dir.glob("*"):
            leftover.unlink()
        env = {k: v for k, v in os.environ.items() if k not in ("SPARK_AUTH_SECRET_FILE", "SPARK_CONF_DIR")}
        if with_file:
            secret_file = tmp_path / "secret"
            secret_file.unlink(missing_ok=True)
            if content is not None:
                secret_file.write_text(content)
            env.update(SPARK_AUTH_SECRET_FILE=str(secret_file), SPARK_CONF_DIR=str(conf_dir))
        proc = subprocess.run(
            ["sh", str(script), "sh", "-c", "echo started"],
            env=env,
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
        )
        defaults = conf_dir / "spark-defaults.conf"
        return proc, (defaults if defaults.exists() else None)

    proc, defaults = run(secret + "\n")
    assert proc.returncode == 0 and proc.stdout.strip() == "started", proc.stderr
    properties = dict(line.split(None, 1) for line in defaults.read_text().splitlines() if line.strip())
    assert properties["spark.authenticate"] == "true"
    assert properties["spark.authenticate.secret"] == secret
    assert properties["spark.master.rest.enabled"] == "false"  # Spark's REST submission takes no authentication
    assert stat.S_IMODE(defaults.stat().st_mode) == 0o600
    assert secret not in proc.stdout + proc.stderr
    for bad in (None, "", "short-secret", f"{secret[:20]} {secret[20:]}", f"{secret}\n{secret}"):
        proc, defaults = run(bad)
        assert proc.returncode == 2 and "started" not in proc.stdout and defaults is None, bad
        assert "SPARK" in proc.stderr or "Spark" in proc.stderr
    proc, defaults = run(None, with_file=False)  # services outside the cluster start as they are
    assert proc.returncode == 0 and proc.stdout.strip() == "started" and defaults is None


def test_signing_key_and_key_store_are_mounted_into_the_score_service_only():
    services = _compose()["services"]
    score = _mount_of(services["score-service"], f"{SERVICE_STATE}/report-signing-key.pem")
    assert score is not None and score.target == SERVICE_STATE and not score.read_only
    for name, svc in services.items():
        if name == "score-service":
            continue
        for path in (f"{SERVICE_STATE}/api_keys.json", f"{SERVICE_STATE}/report-signing-key.pem"):
            assert _mount_of(svc, path) is None, f"{name} mounts {path}"
        assert score.source not in {m.source for m in _mounts(svc)}, f"{name} mounts the volume of service/"


def test_raw_lake_is_mounted_read_only_where_jobs_ingest_and_nowhere_else():
    services = _compose()["services"]
    roles = _spark_roles(services)
    ingesting = {name for name, role in roles.items() if role in ("worker", "driver")}
    seeing_raw = {name for name, svc in services.items() if _mount_of(svc, f"{RAW}/orders/ds=2026-01-01")}
    assert seeing_raw == ingesting, f"raw deliveries are mounted into {sorted(seeing_raw)}"
    raw_sources = set()
    for name in ingesting:
        raw = _mount_of(services[name], f"{RAW}/orders/ds=2026-01-01")
        assert raw.target == RAW, f"{name} sees the deliveries through {raw.target}, which holds more"
        assert raw.read_only, f"{name} only reads the deliveries: read-only"
        raw_sources.add(raw.source)
        # executors write the other zones, and the driver commits what they wrote
        zones = _mount_of(services[name], f"{HOME}/lake/validated/orders")
        assert zones is not None and not zones.read_only and zones.source not in raw_sources, name
    for name, svc in services.items():
        for mount in _mounts(svc):
            assert mount.source not in raw_sources or mount.target == RAW, f"{name} mounts the deliveries elsewhere"


def test_no_service_mounts_the_whole_home():
    for name, svc in _compose()["services"].items():
        for mount in _mounts(svc):
            assert not _within(HOME, mount.target), f"{name} mounts {mount.target}: all of SESAME_HOME"


def test_each_service_mounts_only_what_it_uses():
    services = _compose()["services"]
    homes = {name: {m.target for m in _mounts(svc) if _within(m.target, HOME)} for name, svc in services.items()}
    assert homes["spark-master"] == set()
    assert homes["score-service"] == {SERVICE_STATE, f"{HOME}/published", f"{HOME}/warehouse"}
    assert _mount_of(services["score-service"], f"{HOME}/warehouse/sesame.duckdb").read_only
    for name in ("airflow-init", "airflow-apiserver", "airflow-dag-processor", "airflow-triggerer"):
        assert homes[name] == {f"{HOME}/airflow"}, name
    # the user-key secret only where ids are pseudonymized: the pipeline (dbt) and the score service
    holders = {name for name, svc in services.items() if "SESAME_USER_KEY_SECRET" in _env(svc)}
    assert holders == {"airflow-scheduler", "score-service"}


def test_the_online_store_is_redis_with_a_password_reached_by_the_pipeline_alone():
    services = _compose()["services"]
    command = services["redis"]["command"]
    assert command[0] == "redis-server" and command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    (network,) = services["redis"]["networks"]
    assert _compose()["networks"][network]["internal"] is True
    on_it = {name for name, svc in services.items() if network in (svc.get("networks") or [])}
    assert on_it == {"redis", "airflow-scheduler"}
    url = _env(services["airflow-scheduler"])["SESAME_ONLINE_STORE"]
    assert url.startswith("redis://:${REDIS_PASSWORD:?") and url.endswith("@redis:6379/0")
    holders = {name for name, svc in services.items() if "REDIS_PASSWORD" in str(svc)}
    assert holders == {"redis", "airflow-scheduler"}


def test_the_score_service_shares_no_network_with_spark_or_postgres():
    services = _compose()["services"]

    def networks(name):
        return set(services[name].get("networks") or ["default"])

    for other in ("spark-master", "spark-worker", "postgres"):
        assert not networks("score-service") & networks(other), other
