"""The service's commands of the `sesame` command line: serve, keys, consent, credit-report, audit.

Changes made here (keys created or revoked, consents recorded, reports issued) go into the service's audit log
like the API's, with `cli:<user>` as the actor."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from sesame.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# `credit-report verify`: 0 only for a valid report; invalid is EXIT_FAILED
EXIT_EXPIRED, EXIT_REVOKED = 3, 4


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _audit(cfg: Settings, **entry) -> None:
    """One line in the service's audit log, durable before the command goes on."""
    from sesame.service.audit import AuditLog
    from sesame.service.layout import service_files

    log = AuditLog(service_files(cfg).audit, cfg.user_key_secret)
    try:
        log.record(key_id=_actor(), **entry)
    finally:
        log.close()


def cmd_serve(args, cfg: Settings) -> int:
    from sesame.service.app import serve

    serve(args.host, args.port, cfg)
    return EXIT_OK


def cmd_keys(args, cfg: Settings) -> int:
    from sesame.service.access import KeyStore
    from sesame.service.layout import service_files

    keys = KeyStore(service_files(cfg).api_keys)
    if args.action == "create":
        if not args.scopes:
            print("keys create needs --scopes, e.g. --scopes scores:read,visa:read:LU", file=sys.stderr)
            return EXIT_USAGE
        try:
            key, record = keys.create(args.name or "", args.scopes.split(","))
        except ValueError as exc:
            print(f"--scopes: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # the key id and scopes, never the key (nor the free-text name); the key is shown only once this is on disk
        _audit(
            cfg,
            action="keys.create",
            status=201,
            outcome="created",
            subject_key_id=record["key_id"],
            scopes=record["scopes"],
        )
        print(f"key id {record['key_id']} ({record['name'] or 'unnamed'}), scopes {', '.join(record['scopes'])}")
        print("the key (shown only now; send it as the X-API-Key header):")
        print(key)
    elif args.action == "revoke":
        if not args.key_id:
            print("keys revoke needs a key id (see `sesame keys list`)", file=sys.stderr)
            return EXIT_USAGE
        try:
            record = keys.revoke(args.key_id)
        except KeyError:
            print(f"no key with id {args.key_id}", file=sys.stderr)
            return EXIT_USAGE
        _audit(
            cfg,
            action="keys.revoke",
            status=200,
            outcome="revoked",
            subject_key_id=record["key_id"],
            scopes=record["scopes"],
        )
        print(f"revoked {record['key_id']} at {record['revoked_at']}")
    else:
        from sesame.service.access import holds_exclusive_pair

        for record in keys.list():
            state = (
                f"revoked {record['revoked_at']}"
                if record.get("revoked_at")
                else "refused: holds consents:write with reports:issue"
                if holds_exclusive_pair(record["scopes"])
                else "active"
            )
            print(
                f"{record['key_id']}  {record.get('name') or '-':20s} {','.join(record['scopes']):40s} "
                f"created {record['created_at']}  {state}"
            )
    return EXIT_OK


def cmd_consent(args, cfg: Settings) -> int:
    from sesame.service.consent import ConsentRegister, ConsentRegisterError, InvalidValidity
    from sesame.service.layout import service_files

    try:
        register = ConsentRegister(service_files(cfg).consents, cfg.user_key_secret)
    except InvalidValidity as exc:  # SESAME_CONSENT_MAX_VALID_DAYS
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.action == "show":
        try:
            latest, in_force = register.latest(args.user_id), register.active(args.user_id) is not None
        except ConsentRegisterError as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        print(json.dumps({"latest": latest, "in_force": in_force}, indent=1))
        return EXIT_OK
    if not args.reference:
        print(f"consent {args.action} needs --reference (the signed form or request it comes from)", file=sys.stderr)
        return EXIT_USAGE
    try:
        entry = register.record(
            args.user_id, args.action == "grant", args.reference, recorded_by=_actor(), valid_days=args.valid_days
        )
    except InvalidValidity as exc:
        print(f"--valid-days: {exc}", file=sys.stderr)
        return EXIT_USAGE
    revoked = {} if entry["granted"] else {"revoked_reports": _revoke_reports(cfg, entry["user_key"])}
    # as POST /v1/consents records it
    _audit(
        cfg,
        action="consents.record",
        status=201,
        outcome="granted" if entry["granted"] else "withdrawn",
        user_id=args.user_id,
        consent_id=entry["consent_id"],
        **revoked,
    )
    print(json.dumps(entry, indent=1))
    return EXIT_OK


def _revoke_reports(cfg: Settings, user_key: str) -> list[str]:
    """A withdrawal revokes every report issued for the user, and the published revocation list says so."""
    from sesame.service.layout import service_files
    from sesame.service.reports import revoke_user_reports

    revoked = revoke_user_reports(service_files(cfg), user_key)
    if revoked:
        print(f"revoked report(s): {', '.join(revoked)}", file=sys.stderr)
    return revoked


def _verification_inputs(args, files):
    """The key set (or one public key) and the revocation list to verify with; a message instead when one is
    missing: without a revocation list, a revoked report would pass as valid."""
    from sesame.service.reports import KeySet, RevocationList, load_public_key

    if args.public_key and args.keys:
        return "give --keys or --public-key, not both"
    key_path = Path(args.public_key or args.keys or files.published_keys)
    default_revocations = (
        files.published_revocations
        if not (args.public_key or args.keys)
        else key_path.with_name(files.published_revocations.name)
    )
    revocations_path = Path(args.revocations) if args.revocations else default_revocations
    for path, option in (
        (key_path, "--keys" if not args.public_key else "--public-key"),
        (revocations_path, "--revocations"),
    ):
        if not path.exists():
            return f"no {'revocation list' if option == '--revocations' else 'key'} at {path}; pass {option}"
    try:
        keys = load_public_key(key_path.read_bytes()) if args.public_key else KeySet.read(key_path)
        return keys, RevocationList.read(revocations_path)
    except (ValueError, KeyError) as exc:
        return f"cannot read {key_path} or {revocations_path}: {exc}"


def _verify(args, files) -> int:
    from sesame.service.reports import verify_document

    if not args.target:
        print("credit-report verify needs the report file", file=sys.stderr)
        return EXIT_USAGE
    inputs = _verification_inputs(args, files)
    if isinstance(inputs, str):
        print(inputs, file=sys.stderr)
        return EXIT_USAGE
    result = verify_document(Path(args.target).read_bytes(), *inputs)
    print(f"{result.status.upper()}: {result.reason}")
    if result.report_id:
        print(
            f"report {result.report_id}, issued {result.issued_at}, valid until {result.valid_until}, "
            f"key {result.key_id}"
        )
    return {"valid": EXIT_OK, "expired": EXIT_EXPIRED, "revoked": EXIT_REVOKED}.get(result.status, EXIT_FAILED)


def _print_keys(files) -> int:
    from sesame.service.reports import open_keyring

    current, keys = open_keyring(files)
    for entry in keys.entries.values():
        state = f"retired {entry.retired_at}" if entry.retired_at else "current"
        print(f"{entry.key_id}  valid from {entry.valid_from}  {state}")
    print(f"# published at {files.published_keys}, revocations at {files.published_revocations}")
    return EXIT_OK


def _rotate(cfg: Settings, files) -> int:
    from sesame.service.reports import rotate_key

    retired, new = rotate_key(files)
    _audit(
        cfg,
        action="reports.rotate_key",
        status=201,
        outcome="rotated",
        subject_key_id=new.key_id,
        retired_key_id=retired,
    )
    print(
        f"key {new.key_id} signs reports from now on; key {retired} is retired (its private key deleted, its "
        f"public key kept in {files.published_keys})"
    )
    return EXIT_OK


def cmd_report(args, cfg: Settings) -> int:
    from sesame.service.layout import service_files

    files = service_files(cfg)
    if args.action == "verify":
        return _verify(args, files)
    if args.action == "keys":
        return _print_keys(files)
    if args.action == "rotate-key":
        return _rotate(cfg, files)
    if args.action == "public-key":
        from sesame.service.reports import open_keyring

        key, _ = open_keyring(files)
        print(f"# key id {key.key_id}, published at {files.public_key}")
        print(key.public_pem.decode(), end="")
        return EXIT_OK
    # issue: an operator's issue, with the same consent rule and the same audit trail as the endpoint
    from sesame.service.issuing import ConsentLapsed, issue
    from sesame.service.services import open_services

    if not args.target or not args.output:
        print("credit-report issue needs a user id and --output FILE", file=sys.stderr)
        return EXIT_USAGE
    from sesame.service.consent import ConsentRegisterError
    from sesame.service.reports import ReportError

    try:
        services = open_services(cfg, reload_seconds=0)
    except ValueError as exc:  # SESAME_REPORT_VALID_DAYS, or a signing key that was retired
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    actor = _actor()
    try:
        if services.consents.active(args.target) is None:
            services.audit.record(
                key_id=actor, action="reports.issue", status=403, outcome="consent_required", user_id=args.target
            )
            print(
                f"no consent of user {args.target} to a credit report is on record; "
                "record it first with `sesame consent grant`",
                file=sys.stderr,
            )
            return EXIT_FAILED
        document, report = issue(services, args.target, args.format, issuer=actor)
    except ConsentRegisterError as exc:
        services.audit.record(
            key_id=actor, action="reports.issue", status=503, outcome="consent_register_unreadable", user_id=args.target
        )
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except ReportError as exc:
        if isinstance(exc, ConsentLapsed):  # withdrawn or expired during the build: audited as the endpoint does
            services.audit.record(
                key_id=actor, action="reports.issue", status=exc.status, outcome=exc.outcome, user_id=args.target
            )
        print(exc.message, file=sys.stderr)
        return EXIT_FAILED
    services.audit.record(
        key_id=actor,
        action="reports.issue",
        status=200,
        outcome="issued",
        user_id=args.target,
        report_id=report["report_id"],
        superseded=report["superseded"],
    )
    Path(args.output).write_bytes(document)
    print(f"report {report['report_id']} written to {args.output}")
    return EXIT_OK


def cmd_audit(args, cfg: Settings) -> int:
    from sesame.service.audit import rotated_files, verify_chain
    from sesame.service.layout import service_files

    path = Path(args.path) if args.path else service_files(cfg).audit
    if not path.exists() and not rotated_files(path):
        print(f"no audit log at {path}", file=sys.stderr)
        return EXIT_USAGE
    check = verify_chain(path, allow_pruned=args.allow_pruned)
    if not check.ok:
        print(f"line {check.line} of {check.file}: {check.problem}")
        print(f"({check.lines} line(s) before it verified)", file=sys.stderr)
        return EXIT_FAILED
    span = f", seq {check.first_seq} to {check.first_seq + check.lines - 1}" if check.lines else ""
    print(f"audit log intact: {check.lines} line(s) verified{span}, in {', '.join(p.name for p in check.files)}")
    return EXIT_OK


def add_service_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="the score service for downstream systems over the published snapshots")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("keys", help="API keys of the score service (stored hashed; a new key is shown once)")
    s.add_argument("action", choices=["create", "list", "revoke"])
    s.add_argument("key_id", nargs="?", help="for revoke")
    s.add_argument("--name", help="who the key is for")
    s.add_argument(
        "--scopes",
        help="comma-separated: scores:read, visa:read, visa:read:<XX>, reports:issue, "
        "consents:write (never with reports:issue on the same key)",
    )
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser("consent", help="the consent register of personal credit reports")
    s.add_argument("action", choices=["grant", "withdraw", "show"])
    s.add_argument("user_id")
    s.add_argument("--reference", help="the evidence: signed form id or request reference")
    s.add_argument(
        "--valid-days",
        type=int,
        help="a grant expires after this many days (default 90, at most "
        "SESAME_CONSENT_MAX_VALID_DAYS, default 365; never unlimited)",
    )
    s.set_defaults(func=cmd_consent)

    s = sub.add_parser(
        "credit-report",
        help="personal credit reports: verify a file offline (exit 0 valid, 1 invalid, 3 expired, "
        "4 revoked), issue one, list the signing keys, rotate the signing key, print the "
        "current public key",
    )
    s.add_argument("action", choices=["verify", "issue", "keys", "rotate-key", "public-key"])
    s.add_argument("target", nargs="?", help="verify: the report file; issue: the user id")
    s.add_argument("--keys", help="verify: the published key set, report-keys.json (default: this installation's)")
    s.add_argument(
        "--revocations",
        help="verify: the published revocation list (default: report-revocations.json beside the key set)",
    )
    s.add_argument("--public-key", help="verify: one public key (PEM) instead of the key set")
    s.add_argument("--format", choices=["pdf", "html"], default="pdf")
    s.add_argument("--output", "-o", help="issue: where to write the report")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("audit", help="the service's audit log: verify its hash chain (exit 1 names the first bad line)")
    s.add_argument("action", choices=["verify"])
    s.add_argument(
        "--path",
        help="the log (default: $SESAME_HOME/service/audit.jsonl); its rotated files beside it "
        "(audit.jsonl.1, audit.jsonl-20261124, ...) are verified with it",
    )
    s.add_argument(
        "--allow-pruned",
        action="store_true",
        help="accept a chain that starts after seq 1 (its oldest rotated files removed by retention)",
    )
    s.set_defaults(func=cmd_audit)
