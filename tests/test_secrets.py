"""The user-key secret: no default, refused when short or an example, generated once per SESAME_HOME by setup, and
kept out of every file dbt leaves behind. No Spark, no Airflow."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from sesame import dbt_runner, night
from sesame.cli import main as sesame
from sesame.config import (
    USER_KEY_SECRET_FILE,
    Settings,
    UnsafeSecret,
    check_user_key_secret,
    ensure_user_key_secret_file,
    user_key_secret_problem,
)

REFUSED = {
    "": "not set",
    "change-me-in-production": "characters, fewer than 32",
    "change-me-in-production-change-me-please": "an example value",
    "a" * 40: "distinct characters",
    "0123456789abcdef": "16 characters",
}


@pytest.mark.parametrize("secret", list(REFUSED))
def test_unsafe_secrets_are_named_and_never_echoed(secret, tmp_path):
    problem = user_key_secret_problem(secret)
    assert problem is not None and REFUSED[secret] in problem
    with pytest.raises(UnsafeSecret) as refused:  # a home without a generated secret file to fall back on
        check_user_key_secret(Settings(user_key_secret=secret, home=tmp_path))
    message = str(refused.value)
    assert "SESAME_USER_KEY_SECRET" in message and "sesame setup" in message
    assert not secret or secret not in message


@pytest.mark.parametrize(
    "command",
    [
        ["night", "--ds", "2026-03-01"],
        ["backfill", "--start", "2026-03-01", "--end", "2026-03-02"],
        ["train"],
        ["serve"],
        ["consent", "grant", "U00000001", "--reference", "form-1"],
        ["credit-report", "issue", "U00000001"],
        ["docs"],
    ],
)
def test_commands_that_pseudonymize_refuse_an_example_secret(command, home, monkeypatch, capsys):
    monkeypatch.setenv("SESAME_USER_KEY_SECRET", "change-me-in-production")
    assert sesame(command) == 2
    err = capsys.readouterr().err
    assert "SESAME_USER_KEY_SECRET" in err and "change-me-in-production" not in err
    assert not (home / "airflow").exists() and not (home / "service").exists()  # refused before any work


def test_commands_refuse_when_no_secret_is_set_nor_generated(home, monkeypatch, capsys):
    monkeypatch.delenv("SESAME_USER_KEY_SECRET")
    assert sesame(["night", "--ds", "2026-03-01"]) == 2
    assert "is not set" in capsys.readouterr().err
    # verifying a report checks a signature only: no secret needed
    report = home / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    code = sesame(["credit-report", "verify", str(report)])
    assert code != 0 and "SESAME_USER_KEY_SECRET" not in capsys.readouterr().err  # judged invalid, not refused


def test_setup_generates_the_secret_once_private_and_random(tmp_path, monkeypatch):
    monkeypatch.delenv("SESAME_USER_KEY_SECRET")
    homes = [tmp_path / "one", tmp_path / "two"]
    files = [ensure_user_key_secret_file(h) for h in homes]
    assert files == [h / USER_KEY_SECRET_FILE for h in homes]
    first = files[0].read_text()
    assert ensure_user_key_secret_file(homes[0]) == files[0] and files[0].read_text() == first  # kept, not renewed
    assert first != files[1].read_text()  # one per installation
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600 and stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    cfg = Settings(home=homes[0])
    assert cfg.user_key_secret == first.strip() and len(bytes.fromhex(cfg.user_key_secret)) == 32
    check_user_key_secret(cfg)  # accepted
    # the environment's secret wins, and then no file is written
    monkeypatch.setenv("SESAME_USER_KEY_SECRET", "f" * 8 + "0123456789abcdef" * 2)
    assert ensure_user_key_secret_file(tmp_path / "three") is None and not (tmp_path / "three").exists()
    assert Settings(home=homes[0]).user_key_secret.startswith("ffffffff")


def test_a_scheduled_stage_fails_closed_on_an_unsafe_secret(home, monkeypatch):
    """Airflow's tasks do not go through the command line: the dbt stages check the secret themselves."""
    monkeypatch.setenv("SESAME_USER_KEY_SECRET", "short")
    with pytest.raises(night.NightFailed, match="rule secret.user_key: SESAME_USER_KEY_SECRET is 5 characters"):
        night.dbt_features(Settings(), "2026-03-01", "run1")


def _fake_dbt(folder, exit_code: int) -> None:
    """A `dbt` beside the interpreter that writes compiled SQL and a log holding the secret, as dbt does."""
    script = folder / "dbt"
    script.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--target-path" ]; do shift; done; target="$2"\n'
        'while [ "$1" != "--log-path" ]; do shift; done; logs="$2"\n'
        'mkdir -p "$target/compiled" "$logs"\n'
        'echo "select sha256(\'$SESAME_USER_KEY_SECRET\' || id)" > "$target/compiled/m.sql"\n'
        'echo "ERROR in model m: select \'$SESAME_USER_KEY_SECRET\'" | tee "$logs/dbt.log"\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)


@pytest.mark.parametrize("exit_code", [0, 1])
def test_dbt_leaves_no_file_with_the_secret(home, tmp_path, monkeypatch, capsys, exit_code):
    """Compiled SQL and dbt.log are written in a private folder that goes with the build; a failed build keeps its
    log with the secret blanked out, and what dbt printed is blanked out too."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_dbt(bin_dir, exit_code)
    os.symlink(sys.executable, bin_dir / "python")
    monkeypatch.setattr(dbt_runner.sys, "executable", str(bin_dir / "python"))
    cfg = Settings()
    seen = {}

    def build():
        with night.private_dbt_work(cfg) as work:
            seen["mode"] = stat.S_IMODE(work.stat().st_mode)
            night.dbt(cfg, tmp_path / "w.duckdb", ["build"], "2026-03-01", work=work)
            seen["compiled"] = (work / "target" / "compiled" / "m.sql").read_text()

    if exit_code:
        with pytest.raises(night.NightFailed, match="Full log: .*logs/dbt/dbt-build-2026-03-01") as failed:
            build()
        assert cfg.user_key_secret not in str(failed.value)
        kept = list((home / "logs" / "dbt").glob("*.log"))
        assert len(kept) == 1 and "ERROR in model m: select '<SESAME_USER_KEY_SECRET>'" in kept[0].read_text()
    else:
        build()
        assert cfg.user_key_secret in seen["compiled"]  # the fake wrote what dbt writes
    assert seen["mode"] == 0o700
    assert cfg.user_key_secret not in capsys.readouterr().out
    leaking = [p for p in home.rglob("*") if p.is_file() and cfg.user_key_secret.encode() in p.read_bytes()]
    assert leaking == []
    assert list((home / "tmp" / "dbt").iterdir()) == []


def test_a_killed_builds_work_folder_is_removed_by_the_next(home):
    cfg = Settings()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = home / "tmp" / "dbt" / f"work-{dead.pid}-abc123"
    (orphan / "target").mkdir(parents=True)
    (orphan / "target" / "m.sql").write_text(cfg.user_key_secret)
    alive = home / "tmp" / "dbt" / f"work-{os.getpid()}-def456"  # a build of a process still running
    alive.mkdir()
    with night.private_dbt_work(cfg) as work:
        assert work.exists()
    assert not orphan.exists() and alive.exists()


@pytest.mark.parametrize("group_readable, wanted", [("0", 0o700), ("1", 0o750)])
def test_folders_with_personal_data_are_never_world_readable(home, monkeypatch, group_readable, wanted):
    from sesame.privacy import PRIVATE_FOLDERS, keep_private

    monkeypatch.setenv("SESAME_GROUP_READABLE", group_readable)
    (home / "lake").mkdir(parents=True, mode=0o777)  # made by hand, or by a tool under a loose umask
    os.chmod(home / "lake", 0o777)
    with night.stage(Settings(), "2026-03-01", "run1", "ingest"):  # every stage of a night keeps them so
        pass
    assert {name: stat.S_IMODE((home / name).stat().st_mode) for name in PRIVATE_FOLDERS} == {
        name: wanted for name in PRIVATE_FOLDERS
    }
    keep_private(home)  # and again: nothing to change
    assert stat.S_IMODE((home / "lake").stat().st_mode) == wanted


def test_duckdb_computes_the_user_key_the_library_computes():
    import duckdb
    import pyarrow as pa

    from sesame.privacy import user_key, user_keys_sql

    secret = "a" * 64
    ids = ["U00000001", "U00000002", "ü-用户-1", "o'brien|x"]
    con = duckdb.connect()
    con.register("people", pa.table({"user_id": ids}))
    keys = dict(con.execute(user_keys_sql("people"), {"secret": secret}).fetchall())
    assert keys == {user_key(u, secret): u for u in ids}
