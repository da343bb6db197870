"""The service's commands of the `sesame` command line: serve, keys, consent, credit-report."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from sesame.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
        print(f"revoked {record['key_id']} at {record['revoked_at']}")
    else:
        for record in keys.list():
            state = f"revoked {record['revoked_at']}" if record.get("revoked_at") else "active"
            print(f"{record['key_id']}  {record.get('name') or '-':20s} {','.join(record['scopes']):40s} "
                  f"created {record['created_at']}  {state}")
    return EXIT_OK


def cmd_consent(args, cfg: Settings) -> int:
    from sesame.service.consent import ConsentRegister
    from sesame.service.layout import service_files

    register = ConsentRegister(service_files(cfg).consents, cfg.user_key_secret)
    if args.action == "show":
        in_force = register.active(args.user_id) is not None
        print(json.dumps({"latest": register.latest(args.user_id), "in_force": in_force}, indent=1))
        return EXIT_OK
    if not args.reference:
        print(f"consent {args.action} needs --reference (the signed form or request it comes from)", file=sys.stderr)
        return EXIT_USAGE
    entry = register.record(args.user_id, args.action == "grant", args.reference,
                            recorded_by=f"cli:{getpass.getuser()}", valid_days=args.valid_days)
    print(json.dumps(entry, indent=1))
    return EXIT_OK


def cmd_report(args, cfg: Settings) -> int:
    from sesame.service.layout import service_files
    from sesame.service.reports import load_public_key, verify_document

    files = service_files(cfg)
    if args.action == "verify":
        if not args.target:
            print("credit-report verify needs the report file", file=sys.stderr)
            return EXIT_USAGE
        key_path = Path(args.public_key) if args.public_key else files.public_key
        if not key_path.exists():
            print(f"no public key at {key_path}; pass --public-key", file=sys.stderr)
            return EXIT_USAGE
        result = verify_document(Path(args.target).read_bytes(), load_public_key(key_path.read_bytes()))
        print(("VALID: " if result.valid else "INVALID: ") + result.reason)
        if result.report_id:
            print(f"report {result.report_id}, issued {result.issued_at}, key {result.key_id}")
        return EXIT_OK if result.valid else EXIT_FAILED
    if args.action == "public-key":
        from sesame.service.reports import signing_key

        key = signing_key(files.signing_key, files.public_key)
        print(f"# key id {key.key_id}, published at {files.public_key}")
        print(key.public_pem.decode(), end="")
        return EXIT_OK
    # issue: an operator's issue, with the same consent rule and the same audit trail as the endpoint
    from sesame.service.app import issue, open_services

    if not args.target or not args.output:
        print("credit-report issue needs a user id and --output FILE", file=sys.stderr)
        return EXIT_USAGE
    services = open_services(cfg, reload_seconds=0)
    actor = f"cli:{getpass.getuser()}"
    if services.consents.active(args.target) is None:
        services.audit.record(key_id=actor, action="reports.issue", status=403, outcome="consent_required",
                              user_id=args.target)
        print(f"no consent of user {args.target} to a credit report is on record; "
              "record it first with `sesame consent grant`", file=sys.stderr)
        return EXIT_FAILED
    from sesame.service.reports import ReportError

    try:
        document, report = issue(services, args.target, args.format, issuer=actor)
    except ReportError as exc:
        print(exc.message, file=sys.stderr)
        return EXIT_FAILED
    services.audit.record(key_id=actor, action="reports.issue", status=200, outcome="issued", user_id=args.target,
                          report_id=report["report_id"])
    Path(args.output).write_bytes(document)
    print(f"report {report['report_id']} written to {args.output}")
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
    s.add_argument("--scopes", help="comma-separated: scores:read, visa:read, visa:read:<XX>, reports:issue, "
                                    "consents:write")
    s.set_defaults(func=cmd_keys)

    s = sub.add_parser("consent", help="the consent register of personal credit reports")
    s.add_argument("action", choices=["grant", "withdraw", "show"])
    s.add_argument("user_id")
    s.add_argument("--reference", help="the evidence: signed form id or request reference")
    s.add_argument("--valid-days", type=int, help="a grant expires after this many days")
    s.set_defaults(func=cmd_consent)

    s = sub.add_parser("credit-report",
                       help="personal credit reports: verify a file offline, issue one, print the public key")
    s.add_argument("action", choices=["verify", "issue", "public-key"])
    s.add_argument("target", nargs="?", help="verify: the report file; issue: the user id")
    s.add_argument("--public-key", help="verify: the PEM file (default: the one this installation publishes)")
    s.add_argument("--format", choices=["pdf", "html"], default="pdf")
    s.add_argument("--output", "-o", help="issue: where to write the report")
    s.set_defaults(func=cmd_report)
