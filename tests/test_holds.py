"""`sesame deliveries hold/release/list`: a hold needs a known source and a reason, is recorded with the upstream's
count of what is set aside, and every hold and release stays in the ledger; the night stops waiting for a held
delivery."""

from __future__ import annotations

import json

from sesame.cli import main as sesame
from sesame.config import Settings
from sesame.deliveries import file_totals, missing_deliveries, write_marker
from sesame.holds import awaited_deliveries

DS = "2026-11-23"


def test_hold_and_release_through_the_cli(home, capsys):
    cfg = Settings()
    folder = cfg.raw / "payments" / f"ds={DS}"
    folder.mkdir(parents=True)
    (folder / "payments.csv").write_text("payment_id,user_id\np1,u1\np2,u2\n")
    write_marker(folder, "payments", DS, [file_totals(folder / "payments.csv", 2)])

    assert sesame(["deliveries", "hold", "--ds", DS, "--source", "payment", "--reason", "x"]) == 2
    assert "unknown source 'payment'" in capsys.readouterr().err
    assert sesame(["deliveries", "hold", "--ds", DS, "--source", "payments"]) == 2
    assert "needs a reason" in capsys.readouterr().err
    assert sesame(["deliveries", "release", "--ds", DS, "--source", "payments"]) == 2
    assert "is not held" in capsys.readouterr().err

    assert sesame(["deliveries", "hold", "--ds", DS, "--source", "payments", "--reason", "sha mismatch"]) == 0
    assert "(2 records)" in capsys.readouterr().out  # as the upstream's control totals count them
    assert sesame(["deliveries", "hold", "--ds", DS, "--source", "payments", "--reason", "again"]) == 2
    assert "already held" in capsys.readouterr().err
    # the night no longer waits for it; the other sources it still waits for
    assert sesame(["deliveries", "hold", "--ds", DS, "--source", "orders", "--reason", "never came"]) == 0
    missing = awaited_deliveries(cfg, DS)
    assert not any("source payments" in m or "source orders" in m for m in missing) and missing
    assert any("source orders" in m for m in missing_deliveries(cfg, DS))
    capsys.readouterr()
    assert sesame(["deliveries", "list"]) == 0
    listed = capsys.readouterr().out
    assert (
        f"{DS} payments" in listed and "2 records: sha mismatch" in listed and "unknown records: never came" in listed
    )

    assert sesame(["deliveries", "release", "--ds", DS, "--source", "payments"]) == 0
    ledger = [json.loads(line) for line in (cfg.lake / "holds" / "ledger.jsonl").read_text().splitlines()]
    assert [(e["event"], e["source"]) for e in ledger] == [
        ("hold", "payments"),
        ("hold", "orders"),
        ("release", "payments"),
    ]
    assert ledger[2]["reason"] == "sha mismatch" and ledger[0]["delivered"] == 2
