"""The personal credit report: what a consulate accepts as proof of financial capability.

For one user: score, tier, the five factor sub-scores, reason codes, the score of recent months, the rule versions
of the destinations the user qualifies for, the issue date and a report id; as HTML or PDF.

Signature. The issued file's bytes are signed with Ed25519 and the signature is appended as a last line, which
HTML and PDF readers both ignore (an HTML comment after </html>, a PDF comment after %%EOF):

    <!-- sesame-signature v1 report=<id> key=<key id> issued=<UTC time> ed25519=<base64> -->     (HTML)
    %sesame-signature v1 report=<id> key=<key id> issued=<UTC time> ed25519=<base64>              (PDF)

The signed message is every byte of the file up to and including "ed25519=", so the report id, key id and issue
time in that line are covered too. Any change to the file (a digit of the score, a byte of the PDF) fails
verification. Verify offline with `verify_document()` or `sesame credit-report verify FILE` and the published
public key ($SESAME_HOME/published/report-signing-key.pem, also at GET /v1/reports/public-key), or online at
POST /v1/reports/verify. The key id is the first 16 hex characters of sha256 of the raw public key.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import markupsafe
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sesame import snapshots
from sesame.service import reference
from sesame.service.access import write_private
from sesame.service.store import Served

FACTOR_LABELS = {
    "credit_history": "Credit history", "behavior_preference": "Behavioral preference",
    "fulfillment_capacity": "Fulfillment capacity", "identity_traits": "Identity traits",
    "social_connections": "Social connections",
}
HISTORY_MONTHS = 12
SIGNATURE_PREFIX = b"sesame-signature v1 "
_TRAILER = re.compile(
    rb"(?:<!-- |%)sesame-signature v1 report=(?P<report>[A-Z0-9-]{1,40}) key=(?P<key>[0-9a-f]{16}) "
    rb"issued=(?P<issued>[0-9TZ:-]{20}) ed25519=(?P<sig>[A-Za-z0-9+/]{86}==)(?: -->)?\n\Z")


class ReportError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------------------------------------------ keys

def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    key_id: str
    public_pem: bytes


def signing_key(private_path: Path, public_path: Path) -> SigningKey:
    """The service's report-signing key pair: created on first use, private half readable by its owner only;
    the public half is (re)published beside the snapshots."""
    if private_path.exists():
        private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{private_path}: not an Ed25519 private key")
    else:
        private = Ed25519PrivateKey.generate()
        write_private(private_path, private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    public = private.public_key()
    pem = public_pem(public)
    if not public_path.exists() or public_path.read_bytes() != pem:
        public_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = public_path.with_name(f".{public_path.name}.tmp")
        tmp.write_bytes(pem)
        tmp.replace(public_path)
    return SigningKey(private, public, key_id_of(public), pem)


# ---------------------------------------------------------------------------------------------- content

def tier_of(score: int) -> str:
    return ("poor" if score < 550 else "fair" if score < 600 else "good" if score < 650
            else "very_good" if score < 700 else "excellent")


def odds_of(score: int) -> float:
    """Good:bad odds the score stands for (600 = 19:1, every 50 points double them)."""
    return 19.0 * 2 ** ((score - 600) / 50)


def score_history(user_id: str, published: Path, warehouse: Path | None, user_key: str | None,
                  until: str, months: int = HISTORY_MONTHS) -> list[dict]:
    """The score at the last scored night of each of the recent months: from the warehouse (every night, by
    user_key) when there is one, and from the retained published snapshots (by user_id)."""
    import pyarrow.dataset as pads  # here, not at the top: it pulls in pandas, a second of the service's start

    nights: dict[str, tuple[int, str]] = {}
    end = dt.date.fromisoformat(until)
    first = end.year * 12 + end.month - 1 - (months - 1)  # the first of the `months` calendar months
    since = dt.date(first // 12, first % 12 + 1, 1)
    if warehouse is not None and user_key and warehouse.exists():
        import duckdb

        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                rows = con.execute("select cast(ds as varchar), score, tier from marts.sesame_scores "
                                   "where user_key = ? and ds between ? and ?", [user_key, since, until]).fetchall()
            nights.update({ds: (int(score), tier) for ds, score, tier in rows})
        except duckdb.Error:
            pass  # no marts yet: the published snapshots still give the recent nights
    for ds, night in sorted(snapshots.published_nights(published).items()):
        if not (since.isoformat() <= ds <= until) or "sesame_scores" not in night.get("datasets", {}):
            continue
        folder = published / "sesame_scores" / night["datasets"]["sesame_scores"]["snapshot"]
        if not (folder / "_manifest.json").exists():
            continue  # removed by retention: the warehouse above still has the night
        manifest = snapshots.read_manifest(folder)
        data = pads.dataset([str(folder / f["path"]) for f in manifest["files"]], format="parquet")
        found = data.to_table(columns=["score", "tier"], filter=pads.field("user_id") == user_id).to_pylist()
        if found:
            nights[ds] = (int(found[0]["score"]), found[0]["tier"])
    by_month: dict[str, dict] = {}
    for ds in sorted(nights):
        score, tier = nights[ds]
        by_month[ds[:7]] = {"month": ds[:7], "ds": ds, "score": score, "tier": tier}
    return list(by_month.values())[-months:]


def build_report(served: Served, user_id: str, published: Path, warehouse: Path | None,
                 user_key: str | None, now: dt.datetime | None = None) -> dict:
    if served.scores is None:
        raise ReportError(503, "not_ready", "no score snapshot is loaded yet")
    nights = {(idx.info.ds, idx.info.run_id) for idx in served.indexes().values()}
    if len(nights) > 1:  # a signed report states one night's facts, never a score and a visa list of two
        raise ReportError(503, "mixed_night", "the loaded scores and visa lists are of different nights "
                          f"({', '.join(f'{ds} run {run}' for ds, run in sorted(nights))}); no report is issued "
                          "until one night is loaded whole")
    found = served.scores.get(user_id)
    if found is None:
        raise ReportError(404, "user_not_found", f"no score for user {user_id} in the current snapshot")
    now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    ds = served.scores.info.ds
    rules = served.visa_rules()
    qualifying = []
    if served.visa is not None:
        for destination, listing in sorted(served.visa.by_destination.items()):
            hit = listing.get(user_id)
            if hit:
                rule = rules.get(destination)
                qualifying.append({"destination": destination, "rule_version": hit["rule_version"],
                                   "min_score": rule.min_score if rule else None})
    return {
        "report_id": f"SR-{now:%Y%m%d}-{secrets.token_hex(5).upper()}",
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user_id": user_id,
        "score_date": ds,
        "score": found["score"],
        "tier": found["tier"],
        "odds_good_to_bad": round(odds_of(found["score"]), 1),
        "model_version": found["model_version"],
        "sub_scores": [{"factor": f, "label": FACTOR_LABELS[f], "score": found["sub_scores"][f]}
                       for f in reference.FACTORS],
        "reason_codes": served.explain_codes(found["reason_codes"]),
        "history": score_history(user_id, published, warehouse, user_key, ds),
        "qualifying_destinations": qualifying,
        "visa_snapshot": served.visa.info.snapshot if served.visa is not None else None,
        "score_snapshot": served.scores.info.snapshot,
    }


# -------------------------------------------------------------------------------------------- rendering

_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sesame personal credit report {{ r.report_id }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; max-width: 46em; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0; } .sub { color: #666; margin-top: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
td, th { padding: .25em .8em; text-align: left; border-bottom: 1px solid #ddd; }
.score { font-size: 2.6em; font-weight: bold; } footer { color: #666; font-size: .85em; }
</style></head>
<body>
<h1>Sesame personal credit report</h1>
<p class="sub">Report {{ r.report_id }} &middot; issued {{ r.issued_at }} &middot; signed with key {{ key_id }}</p>
<table>
<tr><th>User id</th><td>{{ r.user_id }}</td></tr>
<tr><th>Score date</th><td>{{ r.score_date }}</td></tr>
<tr><th>Score</th><td><span class="score">{{ r.score }}</span> of 350&ndash;950</td></tr>
<tr><th>Tier</th><td>{{ r.tier }}</td></tr>
<tr><th>Good:bad odds</th>
<td>about {{ r.odds_good_to_bad }}:1 (600 means 19:1; every 50 points double the odds)</td></tr>
<tr><th>Model version</th><td>{{ r.model_version }}</td></tr>
</table>
<h2>Factor sub-scores (0&ndash;100)</h2>
<table>{% for s in r.sub_scores %}
<tr><th>{{ s.label }}</th><td>{{ "%.1f"|format(s.score) if s.score is not none else "not scored: no such characteristic for people without a credit file" }}</td></tr>{% endfor %}
</table>
<h2>Reason codes</h2>
{% if r.reason_codes %}<table><tr><th>Code</th><th>Reason</th><th>原因</th></tr>
{% for c in r.reason_codes %}
<tr><td>{{ c.code }}</td><td>{{ c.description_en }}</td><td>{{ c.description_zh }}</td></tr>{% endfor %}
</table>{% else %}<p>None: no factor falls notably below the average.</p>{% endif %}
<h2>Score history</h2>
<table><tr><th>Month</th><th>Night</th><th>Score</th><th>Tier</th></tr>
{% for h in r.history %}
<tr><td>{{ h.month }}</td><td>{{ h.ds }}</td><td>{{ h.score }}</td><td>{{ h.tier }}</td></tr>{% endfor %}
</table>
<h2>Visa destinations the user qualifies for</h2>
{% if r.qualifying_destinations %}<table><tr><th>Destination</th><th>Rule version</th><th>Minimum score</th></tr>
{% for d in r.qualifying_destinations %}
<tr><td>{{ d.destination }}</td><td>{{ d.rule_version }}</td><td>{{ d.min_score }}</td></tr>{% endfor %}
</table>{% else %}<p>None on the score date.</p>{% endif %}
<footer><p>This document is signed (Ed25519). Verify it, unchanged, with the Sesame public key {{ key_id }}:
<code>sesame credit-report verify FILE --public-key report-signing-key.pem</code>, or by sending it to the
verification endpoint of the Sesame score service (POST /v1/reports/verify). Any change to this file makes
verification fail.</p></footer>
<script type="application/json" id="sesame-report">{{ payload }}</script>
</body></html>
""")


def render_html(report: dict, key_id: str) -> bytes:
    # The machine-readable copy: JSON with "<" escaped so that it cannot close the script element.
    payload = markupsafe.Markup(json.dumps(report, ensure_ascii=False).replace("<", "\\u003c"))
    return _HTML.render(r=report, key_id=key_id, payload=payload).encode("utf-8")


def _latin1(text: str) -> str:
    """The PDF uses the built-in Helvetica, which has Latin-1 glyphs only."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(report: dict, key_id: str) -> bytes:
    from fpdf import FPDF

    issued = dt.datetime.strptime(report["issued_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(issued)
    pdf.set_title(f"Sesame personal credit report {report['report_id']}")
    pdf.set_author("Sesame")
    pdf.set_creator("Sesame score service")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)

    def table(rows: list[list[str]], widths: tuple[int, ...], header: bool = True) -> None:
        with pdf.table(col_widths=widths, first_row_as_headings=header, text_align="LEFT",
                       line_height=6) as t:
            for row in rows:
                r = t.row()
                for value in row:
                    r.cell(_latin1(str(value)))

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Sesame personal credit report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 6, _latin1(f"Report {report['report_id']} - issued {report['issued_at']} - signed with key {key_id}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.ln(2)
    table([["User id", report["user_id"]], ["Score date", report["score_date"]],
           ["Score", f"{report['score']} (of 350-950)"], ["Tier", report["tier"]],
           ["Good:bad odds", f"about {report['odds_good_to_bad']}:1 (600 means 19:1; +50 points double the odds)"],
           ["Model version", report["model_version"]]], (30, 70), header=False)
    heading("Factor sub-scores (0-100)")
    table([["Factor", "Sub-score"]] + [[s["label"], "not scored" if s["score"] is None else f"{s['score']:.1f}"]
                                         for s in report["sub_scores"]], (60, 40))
    heading("Reason codes")
    if report["reason_codes"]:
        table([["Code", "Reason"]] + [[c["code"], c["description_en"]] for c in report["reason_codes"]], (15, 85))
    else:
        pdf.multi_cell(0, 6, "None: no factor falls notably below the average.", new_x="LMARGIN", new_y="NEXT")
    heading("Score history")
    table([["Month", "Night", "Score", "Tier"]] + [[h["month"], h["ds"], h["score"], h["tier"]]
                                                   for h in report["history"]], (20, 30, 20, 30))
    heading("Visa destinations the user qualifies for")
    if report["qualifying_destinations"]:
        table([["Destination", "Rule version", "Minimum score"]] +
              [[d["destination"], d["rule_version"], d["min_score"]] for d in report["qualifying_destinations"]],
              (30, 40, 30))
    else:
        pdf.multi_cell(0, 6, "None on the score date.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(0, 4.5, _latin1(
        f"This document is signed (Ed25519). Verify it, unchanged, with the Sesame public key {key_id}: "
        "`sesame credit-report verify FILE --public-key report-signing-key.pem`, or by sending it to the verification "
        "endpoint of the Sesame score service (POST /v1/reports/verify). Any change to this file makes "
        "verification fail."), new_x="LMARGIN", new_y="NEXT")
    pdf.embed_file(bytes=json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"),
                   basename=f"{report['report_id']}.json", desc="the report's contents, machine-readable",
                   modification_date=issued, creation_date=issued)
    return bytes(pdf.output())


# ------------------------------------------------------------------------------------- sign and verify

def sign_document(document: bytes, fmt: str, report_id: str, issued_at: str, key: SigningKey) -> bytes:
    body = document if document.endswith(b"\n") else document + b"\n"
    opener = b"<!-- " if fmt == "html" else b"%"
    head = (opener + SIGNATURE_PREFIX + f"report={report_id} key={key.key_id} issued={issued_at} ed25519=".encode())
    signature = base64.b64encode(key.private.sign(body + head))
    return body + head + signature + (b" -->\n" if fmt == "html" else b"\n")


@dataclass
class Verification:
    valid: bool
    reason: str
    format: str | None = None
    report_id: str | None = None
    key_id: str | None = None
    issued_at: str | None = None
    sha256: str | None = None
    report: dict | None = field(default=None, repr=False)


def verify_document(data: bytes, public_key: Ed25519PublicKey) -> Verification:
    """Check a report file exactly as received. Offline: needs only the published public key."""
    fmt = "pdf" if data.startswith(b"%PDF-") else "html" if data.lstrip()[:15].lower().startswith(b"<!doctype html") \
        else None
    if fmt is None:
        return Verification(False, "not a Sesame report: neither a PDF nor an HTML document")
    match = _TRAILER.search(data[-400:])
    if match is None or not (match.group(0).startswith(b"<!-- ") == (fmt == "html")):
        return Verification(False, "no Sesame signature at the end of the document", fmt)
    start = len(data) - min(len(data), 400) + match.start("sig")
    report_id, key_id, issued = (match.group(g).decode() for g in ("report", "key", "issued"))
    found = Verification(False, "", fmt, report_id, key_id, issued, hashlib.sha256(data).hexdigest())
    if key_id != key_id_of(public_key):
        found.reason = f"signed with key {key_id}, not with the given public key {key_id_of(public_key)}"
        return found
    try:
        public_key.verify(base64.b64decode(match.group("sig")), data[:start])
    except InvalidSignature:
        found.reason = "the signature does not match the document: it was altered after it was issued"
        return found
    found.valid, found.reason = True, "signature valid: the document is unchanged since Sesame issued it"
    if fmt == "html":
        embedded = re.search(rb'<script type="application/json" id="sesame-report">(.*?)</script>', data, re.S)
        if embedded:
            found.report = json.loads(embedded.group(1).decode("utf-8"))
    return found
