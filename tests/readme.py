"""The README's SQL examples, run as an analyst pastes them into a warehouse."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def sql_examples() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def examples_without_rows(con) -> list[str]:
    """Every example that returns no rows on the DuckDB connection `con` ($user_key: a user scored on the most
    nights)."""
    key = con.execute(
        "select user_key from marts.sesame_scores group by user_key order by count(*) desc, user_key limit 1"
    ).fetchone()[0]
    return [sql for sql in sql_examples() if not con.execute(sql.replace("$user_key", f"'{key}'")).fetchall()]
