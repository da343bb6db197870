"""Identity documents: the check character and the mask, and the night's identities dataset (who each scored user
is, for credit reports) taken from the KYC snapshot the night scored on."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sesame import identity
from sesame.config import Settings
from sesame.night import _identities

# The example number of the standard (GB 11643), and one digit of it mistyped
STANDARD_EXAMPLE = "11010519491231002X"


def test_check_character_mask_and_validity():
    assert identity.check_character(STANDARD_EXAMPLE[:17]) == "X"
    assert identity.is_valid(STANDARD_EXAMPLE)
    for wrong in (
        "11010519491231012X",
        "110105194912310021",
        STANDARD_EXAMPLE[:17],
        STANDARD_EXAMPLE.lower(),
        "A1010519491231002X",
    ):
        assert not identity.is_valid(wrong), wrong
    assert identity.mask(STANDARD_EXAMPLE) == "**************002X"


def _profile(cfg: Settings, ds: str, users: list[str], documents: bool = True) -> None:
    folder = cfg.zone("validated", "users", ds=ds)
    folder.mkdir(parents=True, exist_ok=True)
    columns = {
        "user_id": pa.array(users, pa.string()),
        "full_name": pa.array([f"Name {u} {ds}" for u in users], pa.string()),
        "identity_verified": pa.array([i % 2 for i, _ in enumerate(users)], pa.int32()),
    }
    if documents:
        columns["id_document_number"] = pa.array([identity.mask(STANDARD_EXAMPLE)] * len(users), pa.string())
    pq.write_table(pa.table(columns), folder / "part-0.parquet")


@pytest.fixture
def cfg(tmp_path):
    return Settings(home=tmp_path)


def test_the_latest_snapshot_with_rows_of_the_month_names_the_scored_users(cfg):
    _profile(cfg, "2026-10-01", ["U1", "U2", "U3"])  # older than the month before the night
    _profile(cfg, "2026-11-10", ["U1", "U2", "U3"])
    _profile(cfg, "2026-11-12", [])  # delivered, every record quarantined
    _profile(cfg, "2026-11-20", ["U1", "U2"])  # after the night
    out = _identities(cfg, "2026-11-15", pa.chunked_array([["U1", "U3"]]))
    assert sorted(out["user_id"]) == ["U1", "U3"]
    assert set(out["registered_name"]) == {"Name U1 2026-11-10", "Name U3 2026-11-10"}
    assert set(out["profile_ds"]) == {dt.date(2026, 11, 10)} and set(out["ds"]) == {dt.date(2026, 11, 15)}
    assert list(out.sort_values("user_id")["identity_verified"]) == [False, False]
    assert set(out["id_document_masked"]) == {"**************002X"}
    assert set(out["id_document_type"]) == {identity.DOCUMENT_TYPE}

    # a month with no snapshot names nobody (the night's audit then fails: identities.cover_scores)
    assert _identities(cfg, "2027-01-31", pa.chunked_array([["U1"]])).empty


def test_a_snapshot_from_before_the_document_column_names_without_a_document(cfg):
    _profile(cfg, "2026-11-10", ["U1"], documents=False)
    (row,) = _identities(cfg, "2026-11-10", pa.chunked_array([["U1"]])).to_dict("records")
    assert row["registered_name"] == "Name U1 2026-11-10"
    assert row["id_document_masked"] is None and row["id_document_type"] is None
