"""The declared schema of every upstream source: one place that the simulator, ingestion, the quality
gate and the docs (docs/sources.md) all read.

Types are Spark SQL type names. `event_col` routes late records to the day they happened; `key` is the
natural key used to deduplicate across deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sesame import identity

ORDER_CATEGORIES = (
    # ordinary ecommerce
    "electronics",
    "apparel",
    "groceries",
    "home",
    "books",
    "travel",
    # local on-demand services
    "food_delivery",
    "flowers",
    "beauty",
    "cleaning",
    "car_repair",
)
LOCAL_SERVICE_CATEGORIES = ("food_delivery", "flowers", "beauty", "cleaning", "car_repair")
ESSENTIAL_CATEGORIES = ("groceries", "food_delivery", "cleaning", "car_repair", "home")
ORDER_STATUSES = ("completed", "cancelled", "returned")
PAYMENT_KINDS = ("salary", "transfer", "merchant", "utility", "wealth_buy", "wealth_redeem")
PAYMENT_DIRECTIONS = ("in", "out")
CREDIT_PRODUCTS = ("huabei", "jiebei")
RELATIONS = ("friend", "family", "colleague")


# A KYC snapshot is a full daily delivery; one older than this is too stale to score on (or to name anyone by).
PROFILE_MAX_AGE_DAYS = 30


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark SQL type name
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    protected: bool = False  # never a model input; used only to measure fairness
    description: str = ""
    pattern: str | None = None  # a regular expression the whole value must match
    checksum: str | None = None  # a check character the value must carry: "iso7064_mod11_2" (sesame.identity)
    keep_last: int | None = None  # past the raw zone, only the last this many characters are kept, behind a mask


@dataclass(frozen=True)
class Source:
    name: str
    format: str  # csv | jsonl | parquet
    file: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    event_col: str | None
    description: str
    full_snapshot: bool = False  # each delivery is the whole table, not the day's changes
    options: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="users",
            format="csv",
            file="users.csv",
            key=("user_id",),
            event_col=None,
            full_snapshot=True,
            description="KYC profiles: the whole customer table as of the delivery day.",
            columns=(
                Column("user_id", "string", description="upstream customer id"),
                Column("full_name", "string", description="legal name (restricted)"),
                Column("gender", "string", allowed=("F", "M"), protected=True, required=False),
                Column("birth_year", "int", min=1900, max=2015, protected=True, required=False),
                Column("city", "string"),
                Column("city_tier", "int", min=1, max=4),
                Column("registered_date", "date", description="account opening date"),
                Column("identity_verified", "int", allowed=("0", "1"), description="1 when ID and face checks passed"),
                Column("phone_tenure_months", "int", min=0, max=600),
                Column("address_months", "int", min=0, max=1200, description="months at the current address"),
                Column("occupation", "string", required=False),
                Column(
                    "id_document_number",
                    "string",
                    required=False,
                    pattern=identity.PATTERN,
                    checksum="iso7064_mod11_2",
                    keep_last=identity.KEPT_CHARACTERS,
                    description=f"{identity.DOCUMENT_TYPE} number (restricted): checked, then only its last "
                    f"{identity.KEPT_CHARACTERS} characters are kept past the raw zone, masked",
                ),
            ),
        ),
        Source(
            name="orders",
            format="jsonl",
            file="orders.jsonl",
            key=("order_id",),
            event_col="order_ts",
            description="Marketplace and local on-demand service orders placed that day.",
            columns=(
                Column("order_id", "string"),
                Column("user_id", "string"),
                Column("order_ts", "timestamp"),
                Column("category", "string", allowed=ORDER_CATEGORIES),
                Column("amount", "double", min=0.01, max=200000.0, description="CNY"),
                Column("status", "string", allowed=ORDER_STATUSES),
                Column("merchant_id", "string", required=False),
            ),
        ),
        Source(
            name="payments",
            format="csv",
            file="payments.csv",
            key=("payment_id",),
            event_col="payment_ts",
            description="Wallet movements: salary and transfers in, merchant, utility and transfers out, "
            "wealth-product purchases and redemptions.",
            columns=(
                Column("payment_id", "string"),
                Column("user_id", "string"),
                Column("payment_ts", "timestamp"),
                Column("direction", "string", allowed=PAYMENT_DIRECTIONS),
                Column("kind", "string", allowed=PAYMENT_KINDS),
                Column("amount", "double", min=0.01, max=1000000.0, description="CNY"),
                Column("counterparty_id", "string", required=False, description="other user for transfers"),
                Column("balance_after", "double", min=-1000000.0, max=100000000.0, description="wallet balance, CNY"),
                Column(
                    "wealth_balance_after",
                    "double",
                    min=0.0,
                    max=100000000.0,
                    required=False,
                    description="wealth-product holdings after the movement, CNY",
                ),
            ),
        ),
        Source(
            name="bills",
            format="parquet",
            file="bills.parquet",
            key=("bill_id", "status_date"),
            event_col="status_date",
            description="Credit-product bills: one row each time a bill's status changes (statement issued, "
            "due date passed, repaid, or every 30 days while overdue).",
            columns=(
                Column("bill_id", "string"),
                Column("user_id", "string"),
                Column("product", "string", allowed=CREDIT_PRODUCTS),
                Column("credit_limit", "double", min=0.0, max=10000000.0),
                Column("statement_date", "date"),
                Column("due_date", "date"),
                Column("amount_due", "double", min=0.0, max=10000000.0),
                Column("amount_paid", "double", min=0.0, max=10000000.0),
                Column("paid_date", "date", required=False),
                Column("days_past_due", "int", min=0, max=3650),
                Column("status_date", "date"),
            ),
        ),
        Source(
            name="social_edges",
            format="parquet",
            file="social_edges.parquet",
            key=("src_user_id", "dst_user_id", "relation"),
            event_col="created_date",
            description="Social graph: contacts added that day (the first delivery holds the graph so far).",
            columns=(
                Column("src_user_id", "string"),
                Column("dst_user_id", "string"),
                Column("relation", "string", allowed=RELATIONS),
                Column("created_date", "date"),
            ),
        ),
        Source(
            name="blacklist",
            format="csv",
            file="blacklist.csv",
            key=("case_id",),
            event_col="listed_date",
            description="Court list of judgement defaulters: entries added that day.",
            columns=(
                Column("case_id", "string"),
                Column("user_id", "string"),
                Column("court", "string"),
                Column("listed_date", "date"),
                Column("reason", "string", required=False),
            ),
        ),
    )
}

PROTECTED_COLUMNS = frozenset(c.name for s in SOURCES.values() for c in s.columns if c.protected)


def sources_markdown() -> str:
    """docs/sources.md: the declared schemas as tables (a test keeps the file in step with this module)."""
    out = [
        "# Upstream sources",
        "",
        "Generated from `src/sesame/schemas.py` (`python -m sesame.schemas > docs/sources.md`). Every delivery "
        "lands in `lake/raw/<source>/ds=YYYY-MM-DD/<file>` with a `_SUCCESS` marker written last.",
        "",
    ]
    for s in SOURCES.values():
        out += [
            f"## {s.name}",
            "",
            f"{s.description} File `{s.file}` ({s.format}); natural key "
            f"({', '.join(s.key)}); "
            + (f"event date from `{s.event_col}`." if s.event_col else "a full snapshot each day."),
            "",
            "| column | type | required | rule | note |",
            "|---|---|---|---|---|",
        ]
        for c in s.columns:
            rules = []
            if c.allowed:
                rules.append("one of " + ", ".join(c.allowed))
            if c.min is not None or c.max is not None:
                rules.append(
                    f"between {c.min:g} and {c.max:g}"
                    if c.min is not None and c.max is not None
                    else (f">= {c.min:g}" if c.min is not None else f"<= {c.max:g}")
                )
            if c.pattern:
                rules.append(f"matches `{c.pattern}`")
            if c.checksum:
                rules.append(f"check character {c.checksum}")
            note = "protected: never a model input" if c.protected else c.description
            out.append(f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | {'; '.join(rules)} | {note} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(sources_markdown(), end="")
