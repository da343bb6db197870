"""The versioned schemas of the published datasets (contracts/<dataset>/v<major>.json; see contracts/README.md).

Publishing conforms each night's table to its dataset's contract (column order, Arrow types) and checks it
(columns, types, nulls, key); readers ask for the major version they understand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from sesame.config import REPO_ROOT

CONTRACTS = REPO_ROOT / "contracts"
TYPES = {
    "date": pa.date32(),
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "list<string>": pa.list_(pa.string()),
}
CURRENT_MAJOR = 1
# The conditions of a visa rule, in the rule's order: the values of visa_rule_checks.failed_conditions.
VISA_CONDITIONS = ("min_score", "identity_verified", "not_court_listed", "min_history_days", "min_qualifying_nights")


class ContractError(ValueError):
    pass


def contract_path(dataset: str, major: int = CURRENT_MAJOR, root: Path = CONTRACTS) -> Path:
    return root / dataset / f"v{major}.json"


def load(dataset: str, major: int = CURRENT_MAJOR, root: Path = CONTRACTS) -> dict:
    path = contract_path(dataset, major, root)
    if not path.exists():
        raise ContractError(f"{dataset}: no contract {path} (every published dataset has one)")
    contract = json.loads(path.read_text(encoding="utf-8"))
    if major_of(contract["schema_version"]) != major:
        raise ContractError(f"{path}: schema_version {contract['schema_version']} is not of major version {major}")
    return contract


def major_of(schema_version: str) -> int:
    return int(str(schema_version).split(".")[0])


def arrow_schema(contract: dict) -> pa.Schema:
    return pa.schema([pa.field(c["name"], TYPES[c["type"]], nullable=c["nullable"]) for c in contract["columns"]])


def conform(table: pa.Table, contract: dict) -> pa.Table:
    """The table with the contract's columns in its order and types (a producer's cast: int64 counts to int32,
    Spark's list<element> to list<item>); raises ContractError naming the column that cannot be."""
    names = [c["name"] for c in contract["columns"]]
    missing = [n for n in names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in names]
    if missing or extra:
        raise ContractError(f"{contract['dataset']}: columns missing {missing}, not in the contract {extra}")
    columns = []
    for field in arrow_schema(contract):
        try:
            columns.append(table.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ContractError(
                f"{contract['dataset']}.{field.name}: {table.schema.field(field.name).type} cannot "
                f"be {field.type}: {exc}"
            ) from None
    return pa.Table.from_arrays(columns, schema=arrow_schema(contract))


def violations(table: pa.Table, contract: dict) -> list[str]:
    """Everything in which the table differs from the contract: columns and their order, types, nulls, the key."""
    problems = []
    expected = arrow_schema(contract)
    if table.column_names != expected.names:
        problems.append(f"columns {table.column_names}, the contract says {expected.names}")
        return problems
    for field in expected:
        got = table.schema.field(field.name).type
        if not (
            got == field.type
            or (pa.types.is_list(got) and pa.types.is_list(field.type) and got.value_type == field.type.value_type)
        ):
            problems.append(f"column {field.name} is {got}, the contract says {field.type}")
        elif not field.nullable and table.column(field.name).null_count:
            problems.append(
                f"column {field.name} has {table.column(field.name).null_count} nulls, the contract allows none"
            )
    key = contract.get("key") or []
    if key and not problems and table.num_rows:
        counts = table.group_by(key).aggregate([([], "count_all")])
        duplicated = pc.sum(pc.greater(counts.column("count_all"), 1)).as_py() or 0
        if duplicated:
            problems.append(f"{duplicated} values of the key {key} appear more than once")
    return problems


def check(table: pa.Table, contract: dict) -> None:
    problems = violations(table, contract)
    if problems:
        path = contract_path(contract["dataset"], major_of(contract["schema_version"]))
        raise ContractError(
            f"{contract['dataset']} does not match its contract {path.relative_to(REPO_ROOT)} "
            f"(schema_version {contract['schema_version']}): " + "; ".join(problems)
        )
