"""The score service under attack, beside the schemathesis fuzzing: every endpoint against every credential (no key,
an unknown, malformed or revoked key, each single scope), malformed ids wherever an id goes, and the service's own
log free of raw upstream ids across a series of requests that includes 500s (in process and under uvicorn).
Oversized bodies, consent lapsing mid-build, tampered reports and an altered audit log are checked in
test_service_budget, test_service_reports and test_audit. No Spark."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import uvicorn
from fastapi.testclient import TestClient

from sesame.config import Settings
from sesame.privacy import user_key
from sesame.service import app as app_module
from sesame.service import issuing as issuing_module
from sesame.service import store as store_module
from sesame.service.app import create_app
from sesame.service.audit import read_entries, verify_chain
from sesame.service.budget import Limits
from sesame.service.store import ScoresIndex
from tests.service_snapshots import publish_night, score_of

DS, N = "2026-11-23", 40
UID = "U00000008"  # scored that night; its consent is on record, so an allowed report call is served
SCORE = score_of(7)
SINGLE_SCOPES = ("scores:read", "visa:read", "visa:read:LU", "visa:read:SG", "reports:issue", "consents:write")
# Written here, not taken from the service: an upstream id as the issue defines it, in any case
RAW_ID = re.compile(r"[Uu]\d{8}")
SERVICE_LOGGERS = ("sesame.service", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
PUBLIC = None

# Every endpoint the app serves: (method, path, destination, the single scopes that may call it or PUBLIC, the
# audit action). A visa endpoint is listed once per destination, so that visa:read:LU is seen not to read SG.
CASES = [
    ("GET", "/v1/health", None, PUBLIC, None),
    ("GET", "/v1/reports/public-key", None, PUBLIC, None),
    ("GET", "/v1/reports/keys", None, PUBLIC, None),
    ("POST", "/v1/reports/verify", None, PUBLIC, "reports.verify"),
    ("GET", "/openapi.json", None, PUBLIC, None),
    ("GET", "/docs", None, PUBLIC, None),
    ("GET", "/docs/oauth2-redirect", None, PUBLIC, None),
    ("GET", "/redoc", None, PUBLIC, None),
    ("GET", "/v1/scores/{user_id}", None, {"scores:read"}, "scores.lookup"),
    ("GET", "/v1/visa/destinations", None, {"visa:read", "visa:read:LU", "visa:read:SG"}, "visa.destinations"),
    ("GET", "/v1/visa/{destination}/users/{user_id}", "LU", {"visa:read", "visa:read:LU"}, "visa.eligibility"),
    ("GET", "/v1/visa/{destination}/users/{user_id}", "SG", {"visa:read", "visa:read:SG"}, "visa.eligibility"),
    ("GET", "/v1/visa/{destination}/eligible", "LU", {"visa:read", "visa:read:LU"}, "visa.eligible_list"),
    ("GET", "/v1/visa/{destination}/eligible", "SG", {"visa:read", "visa:read:SG"}, "visa.eligible_list"),
    ("POST", "/v1/consents", None, {"consents:write"}, "consents.record"),
    ("POST", "/v1/reports", None, {"reports:issue"}, "reports.issue"),
]
BODIES = {
    ("POST", "/v1/consents"): {"json": {"user_id": UID, "reference": "matrix"}},
    ("POST", "/v1/reports"): {"json": {"user_id": UID, "format": "html"}},
    ("POST", "/v1/reports/verify"): {"content": b"not a report", "headers": {"Content-Type": "application/pdf"}},
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    """One app for the module: a published night, a key per single scope, a revoked key, UID's consent."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SESAME_HOME", str(tmp_path_factory.mktemp("adversarial") / "home"))
        cfg = Settings()
        publish_night(cfg.published, DS, n=N)
        app = create_app(cfg, reload_seconds=0, limits=Limits())
        services = app.state.services
        keys = {scope: services.keys.create(scope.replace(":", "-"), [scope])[0] for scope in SINGLE_SCOPES}
        revoked = services.keys.create("revoked", ["scores:read", "visa:read", "reports:issue"])[0]
        services.keys.revoke(key_id(revoked))
        services.consents.record(UID, True, "adversarial", recorded_by="test")
        credentials = {
            "no key": None,
            "unknown key": "sk_000000000000_" + "A" * 43,
            "malformed key": "not-a-key",
            "revoked key": revoked,
            **keys,
        }
        yield SimpleNamespace(
            client=TestClient(app, raise_server_exceptions=False),
            app=app,
            cfg=cfg,
            services=services,
            keys=keys,
            credentials=credentials,
        )
        services.audit.close()


def key_id(key: str | None) -> str | None:
    return key.split("_")[1] if key else None


def served_endpoints(app) -> set[tuple[str, str]]:
    """(method, path) of every operation in the OpenAPI document and every route outside it (docs, the schema)."""
    spec = app.openapi()
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "patch", "options", "trace")
    }
    routed = {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    }  # HEAD is answered by the GET route
    return documented | routed


def call(client, method: str, template: str, destination: str | None, key: str | None):
    path = template.replace("{user_id}", UID).replace("{destination}", destination or "")
    request = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BODIES.get((method, template), {}).items()}
    headers = request.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = key
    return client.request(method, path, headers=headers, **request)


def refusal_for(credential: str, may_call: set[str] | None) -> tuple[int, str] | None:
    """(status, error code) the documentation promises for this credential, or None where the call is allowed."""
    if may_call is PUBLIC:
        return None
    if credential == "no key":
        return 401, "missing_api_key"
    if credential in ("unknown key", "malformed key"):
        return 401, "invalid_api_key"
    if credential == "revoked key":
        return 401, "revoked_api_key"
    return None if credential in may_call else (403, "missing_scope")


def log_text(records) -> str:
    """What the service's and uvicorn's handlers would print: message and traceback of each record."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) for r in records if r.name.startswith(SERVICE_LOGGERS))


@pytest.fixture
def service_log(caplog):
    """Everything the service and uvicorn log, down to DEBUG."""
    for name in SERVICE_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


# ---------------------------------------------------------------------------------------------- authorization


def test_every_endpoint_against_every_credential(svc):
    # a new endpoint without a line in CASES fails here, before anything else
    expected = {(method, path) for method, path, *_ in CASES}
    assert served_endpoints(svc.app) == expected, "an endpoint without an expectation, or one no longer served"

    audit_path = svc.services.files.audit
    wrong = []
    for method, template, destination, may_call, action in CASES:
        for credential, key in svc.credentials.items():
            label = f"{method} {template} [{destination}] with {credential}"
            before = len(read_entries(audit_path))
            r = call(svc.client, method, template, destination, key)
            added = read_entries(audit_path)[before:]
            refusal = refusal_for(credential, may_call)
            if refusal is None:
                if r.status_code in (401, 403) or r.status_code >= 500:
                    wrong.append(f"{label}: {r.status_code} where the call is allowed: {r.text[:200]}")
                elif action is not None and [(e["action"], e["status"]) for e in added] != [(action, r.status_code)]:
                    wrong.append(f"{label}: audited as {added}")
                elif action is None and added:
                    wrong.append(f"{label}: a public read was audited: {added}")
                elif may_call is PUBLIC and any(e["key_id"] is not None for e in added):
                    wrong.append(f"{label}: an anonymous endpoint attributed the call to a key")
                continue
            status, code = refusal
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
            if (r.status_code, (body or {}).get("error")) != (status, code):
                wrong.append(f"{label}: {r.status_code} {r.text[:200]} where {status} {code} was due")
                continue
            # the Error shape and nothing else: no score, no snapshot, no id
            if set(body) != {"error", "message"} or UID in r.text or DS in r.text or re.search(rf"\b{SCORE}\b", r.text):
                wrong.append(f"{label}: the refusal carries more than an error: {r.text[:300]}")
            if status == 401 and r.headers.get("WWW-Authenticate") != "ApiKey":
                wrong.append(f"{label}: a 401 without WWW-Authenticate")
            # audited: one line, attributed to the key when there is a valid one, the user pseudonymous
            who = key_id(key) if credential == "revoked key" or status == 403 else None
            line = added[0] if len(added) == 1 else {}
            if (line.get("action"), line.get("status"), line.get("outcome"), line.get("key_id")) != (
                action,
                status,
                code,
                who,
            ) or len(added) != 1:
                wrong.append(f"{label}: audited as {added}")
            elif "{user_id}" in template and line["user_key"] != user_key(UID, svc.cfg.user_key_secret):
                wrong.append(f"{label}: the refused user is not recorded pseudonymously: {line}")
            elif line["destination"] != destination:
                wrong.append(f"{label}: destination recorded as {line['destination']}")
    assert not wrong, "\n".join(wrong)
    # what the refusals and the calls allowed appended is still one intact chain
    check = verify_chain(audit_path)
    assert check.ok, (check.problem, check.line)
    assert check.lines == len(read_entries(audit_path)) > len(CASES)


# ---------------------------------------------------------------------------------------------- malformed ids

# Values of no valid form (the id pattern or a two-letter code): refused with 422 before any lookup
MALFORMED_IDS = {
    "SQL injection": "U00000008' OR '1'='1",
    "SQL comment": "U00000008;--",
    "NUL byte": "U00000008\x00",
    "trailing newline": "U00000008\n",
    "path traversal": "../../etc/passwd",
    "fullwidth digits": "U０００００００８",
    "Armenian U": "Ս00000008",
    "zero-width space": "U00000008\u200b",
    "very long": "U" + "0" * 10_240,
}
MALFORMED_DESTINATIONS = {
    "three letters": "LUX",
    "punctuation": "L!",
    "SQL": "' OR 1=1--",
    "fullwidth": "ＬＵ",
    "zero-width space": "L\u200bU",
    "very long": "L" * 10_240,
}


def id_positions(bad: str):
    """(what, method, path, request kwargs, key scope) for each place a user id or a destination goes."""
    p = quote(bad, safe="")
    return [
        ("score path", "GET", f"/v1/scores/{p}", {}, "scores:read"),
        ("eligibility path", "GET", f"/v1/visa/LU/users/{p}", {}, "visa:read"),
        ("eligible list cursor", "GET", "/v1/visa/LU/eligible", {"params": {"after": bad}}, "visa:read"),
        ("consent body", "POST", "/v1/consents", {"json": {"user_id": bad, "reference": "x"}}, "consents:write"),
        ("report body", "POST", "/v1/reports", {"json": {"user_id": bad, "format": "html"}}, "reports:issue"),
    ]


def destination_positions(bad: str):
    p = quote(bad, safe="")
    # visa:read, not one destination's scope: a per-destination key is refused (403) before the code is read
    return [
        ("eligibility destination", "GET", f"/v1/visa/{p}/users/{UID}", {}, "visa:read"),
        ("eligible list destination", "GET", f"/v1/visa/{p}/eligible", {}, "visa:read"),
    ]


@pytest.mark.parametrize("kind", ["ids", "destinations"])
def test_malformed_ids_are_422_or_401_and_never_logged(svc, service_log, kind):
    values, positions = (
        (MALFORMED_IDS, id_positions) if kind == "ids" else (MALFORMED_DESTINATIONS, destination_positions)
    )
    audit_path = svc.services.files.audit
    wrong, sent = [], 0
    for name, bad in values.items():
        for where, method, path, kwargs, scope in positions(bad):
            for key in (svc.keys[scope], None):
                before = len(read_entries(audit_path))
                r = svc.client.request(method, path, headers={"X-API-Key": key} if key else {}, **kwargs)
                sent += 1
                # a "/" in a path segment matches no route at all: 404 from the router, before any key check
                routed_away = "/" in bad and where.endswith(("path", "destination"))
                due = 404 if routed_away else 422 if key else 401
                if r.status_code != due:
                    wrong.append(f"{name} in {where}, {'with' if key else 'no'} key: {r.status_code} {r.text[:200]}")
                added = read_entries(audit_path)[before:]
                if not routed_away and [e["status"] for e in added] != [due]:
                    wrong.append(f"{name} in {where}: audited as {added}")
    assert not wrong, "\n".join(wrong)
    assert sent == len(values) * len(positions("x")) * 2
    # neither the raw value nor a hash of it in the audit log; the service logged none of them either
    audit_text = audit_path.read_text(encoding="utf-8")
    logged = log_text(service_log.records)
    for name, bad in values.items():
        for form in {bad, quote(bad, safe=""), bad.strip()}:
            assert form not in audit_text and form not in logged, name
        assert user_key(bad, svc.cfg.user_key_secret) not in audit_text, name


def test_look_alike_ids_of_the_valid_form_get_nobody_and_no_consent(svc):
    """The documented id form (letters, digits, . _ : -) admits a short or lower-case id: such a one names nobody,
    and a consent recorded under it counts for nobody else (U00000009 has none on record)."""
    other = "U00000009"
    for look_alike in ("U123", "u00000009", "U0000009", "U000000090"):
        assert (
            svc.client.get(f"/v1/scores/{look_alike}", headers={"X-API-Key": svc.keys["scores:read"]}).status_code
            == 404
        ), look_alike
        assert (
            svc.client.get(f"/v1/visa/LU/users/{look_alike}", headers={"X-API-Key": svc.keys["visa:read"]}).status_code
            == 404
        ), look_alike
        r = svc.client.post(
            "/v1/consents",
            json={"user_id": look_alike, "reference": "form"},
            headers={"X-API-Key": svc.keys["consents:write"]},
        )
        assert r.status_code in (201, 422), (look_alike, r.status_code)
    r = svc.client.post(
        "/v1/reports", json={"user_id": other, "format": "html"}, headers={"X-API-Key": svc.keys["reports:issue"]}
    )
    assert r.status_code == 403 and r.json()["error"] == "consent_required"
    assert "u00000009" not in svc.services.files.consents.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- the service's log


@pytest.fixture
def fresh(home):
    """A home with a night of its own, for tests that break their app."""
    cfg = Settings()
    publish_night(cfg.published, DS, n=N)
    return cfg


def test_no_raw_id_in_the_service_log_across_requests_and_errors(fresh, service_log, monkeypatch):
    cfg = fresh
    app = create_app(cfg, reload_seconds=0, limits=Limits())  # its first load is logged: which night is served
    services = app.state.services
    client = TestClient(app, raise_server_exceptions=False)
    reader = {"X-API-Key": services.keys.create("reader", ["scores:read", "visa:read"])[0]}
    issuer = {"X-API-Key": services.keys.create("issuer", ["reports:issue"])[0]}
    recorder = {"X-API-Key": services.keys.create("recorder", ["consents:write"])[0]}
    secret = cfg.user_key_secret

    # the everyday: found, unknown, refused, malformed, a consent and a report
    assert client.get(f"/v1/scores/{UID}", headers=reader).status_code == 200
    assert client.get("/v1/scores/U99999999", headers=reader).status_code == 404
    assert client.get(f"/v1/scores/{UID}").status_code == 401
    assert client.get("/v1/visa/LU/users/U0000000%0A", headers=reader).status_code == 422
    assert client.post("/v1/consents", json={"user_id": UID, "reference": "f"}, headers=recorder).status_code == 201
    assert client.post("/v1/reports", json={"user_id": UID, "format": "html"}, headers=issuer).status_code == 200

    # 500s whose exception text carries an id: a lookup and a report build
    def index_broken(self, user_id):
        raise KeyError(user_id)

    def build_broken(served, user_id, *args):
        raise RuntimeError(f"no history rows for {user_id} (neighbour U00000003)")

    monkeypatch.setattr(ScoresIndex, "get", index_broken)
    monkeypatch.setattr(issuing_module, "build_report", build_broken)
    assert client.get(f"/v1/scores/{UID}", headers=reader).status_code == 500
    assert client.post("/v1/reports", json={"user_id": UID, "format": "html"}, headers=issuer).status_code == 500

    # a night that fails to load with an error quoting a row
    def load_broken(root, dataset, snapshot):
        raise ValueError(f"duplicate user_id U00000005 in {dataset}")

    monkeypatch.setattr(store_module, "load", load_broken)
    publish_night(cfg.published, "2026-11-24", n=N, run_id="r2")
    assert services.store.refresh() is False
    services.audit.close()

    records = [r for r in service_log.records if r.name.startswith(SERVICE_LOGGERS)]
    text = log_text(records)
    assert RAW_ID.search(text) is None, RAW_ID.search(text)
    assert RAW_ID.search(service_log.text) is None  # as pytest's own handler printed them
    # what operators need is still there: which night is served, each error with its route, type and frames
    snapshot = services.store.current.scores.info.snapshot
    assert any(r.getMessage().startswith("serving") and snapshot in r.getMessage() for r in records)
    errors = [r for r in records if r.getMessage().startswith("unexpected error on")]
    assert [r.getMessage() for r in errors] == [
        "unexpected error on GET /v1/scores/{user_id}",
        "unexpected error on POST /v1/reports",
    ]
    lookup, report = (logging.Formatter().format(r) for r in errors)
    assert "Traceback" in lookup and "in index_broken" in lookup and "KeyError" in lookup
    assert "in build_broken" in report and "RuntimeError: no history rows for" in report
    # the id's place holds its pseudonym: the line can be matched to the audit log's
    assert f"KeyError: 'user_key:{user_key(UID, secret)}'" in lookup
    assert user_key("U00000003", secret) in report
    failed = next(r.getMessage() for r in records if r.getMessage().startswith("not serving"))
    assert failed.endswith(f"duplicate user_id user_key:{user_key('U00000005', secret)} in sesame_scores")


def test_uvicorn_prints_a_failed_request_without_its_id(fresh, service_log, monkeypatch):
    """Under uvicorn, an exception that reaches the app's error handler is raised on to the server, whose error
    logger prints its traceback: that line too holds no raw id."""
    app = create_app(fresh, reload_seconds=0, limits=Limits())
    key = app.state.services.keys.create("reader", ["scores:read"])[0]

    def index_broken(self, user_id):
        raise KeyError(user_id)

    monkeypatch.setattr(ScoresIndex, "get", index_broken)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/scores/{UID}"
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(urllib.request.Request(url, headers={"X-API-Key": key}), timeout=10)
        assert failed.value.code == 500
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.services.audit.close()
    printed = [r for r in service_log.records if r.name == "uvicorn.error" and r.levelno >= logging.ERROR]
    text = log_text(printed)
    assert "Exception in ASGI application" in text and "in index_broken" in text and "KeyError" in text
    assert RAW_ID.search(text) is None, RAW_ID.search(text)
    assert RAW_ID.search(log_text(service_log.records)) is None


def test_serve_prints_no_raw_id_on_its_console(fresh, monkeypatch, capsys):
    """serve()'s console handler also hides ids of a logger made after the app (none of the filters on the
    loggers then covers it)."""

    def run(app, **kw):
        assert kw["access_log"] is False  # access lines would hold the ids in the paths
        logging.getLogger("sesame.service.made_later").error("lookup of %s failed", UID)

    real_create_app, apps = app_module.create_app, []
    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setattr(
        app_module, "create_app", lambda cfg, **kw: apps.append(real_create_app(cfg, reload_seconds=0)) or apps[-1]
    )
    service_logger = logging.getLogger("sesame.service")
    level, handlers = service_logger.level, list(service_logger.handlers)
    try:
        app_module.serve(cfg=fresh)
    finally:  # serve() leaves its console handler behind, as a process that serves until it ends may
        service_logger.setLevel(level)
        for added in set(service_logger.handlers) - set(handlers):
            service_logger.removeHandler(added)
        for app in apps:
            app.state.services.audit.close()
    console = capsys.readouterr().err
    assert "serving sesame_scores" in console  # the first load, on the console
    assert "lookup of user_key:" in console and RAW_ID.search(console) is None, console


def test_the_filter_keeps_what_has_no_id_as_it_was():
    """A record without an id is left as logged (uvicorn's coloured console formats from its args); one with an id
    loses its coloured copy too; a broken format string neither raises into the caller nor leaks its arguments."""
    from uvicorn.logging import DefaultFormatter

    from sesame.service.logfilter import RawIdFilter

    hider, console = RawIdFilter("s" * 64), DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True)

    def record(msg, args):
        made = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
        made.color_message = msg.replace("%s", "\x1b[1m%s\x1b[0m")
        assert hider.filter(made) is True
        return made

    assert "running on \x1b[1mhttp://127.0.0.1:8000\x1b[0m" in console.format(
        record("running on %s", ("http://127.0.0.1:8000",))
    )
    printed = console.format(record("lookup of %s", (UID,)))
    assert printed.endswith(f"lookup of user_key:{user_key(UID, 's' * 64)}")
    broken = record("lookup %d of %s", ("one", UID))
    assert RAW_ID.search(logging.Formatter().format(broken)) is None
