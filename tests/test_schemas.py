"""The declared schemas and their documentation agree, and the suites cover every declared rule."""

from __future__ import annotations

import json
from pathlib import Path

from sesame.schemas import PROTECTED_COLUMNS, SOURCES, sources_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_table_is_current():
    assert (ROOT / "docs" / "sources.md").read_text() == sources_markdown(), (
        "regenerate with: python -m sesame.schemas > docs/sources.md"
    )


def test_every_source_has_a_suite_covering_its_rules():
    for source in SOURCES.values():
        suite = json.loads((ROOT / "expectations" / "suites" / f"validated.{source.name}.json").read_text())
        covered = {(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]}
        for col in source.columns:
            if col.required:
                assert ("expect_column_values_to_not_be_null", col.name) in covered, (source.name, col.name)
            if col.allowed:
                assert ("expect_column_values_to_be_in_set", col.name) in covered, (source.name, col.name)
            if col.min is not None or col.max is not None:
                assert ("expect_column_values_to_be_between", col.name) in covered, (source.name, col.name)


def test_protected_attributes_are_declared():
    assert {"gender", "birth_year"} <= PROTECTED_COLUMNS
