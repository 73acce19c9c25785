"""``mesh audit``: read the audit log, or check its hash chain.

    mesh audit [--caller C] [--service S] [--target T] [--outcome O] [--since 10m|2h|ISO] [--until ISO]
               [--limit N] [--json] [--verify] [--db URL]

The log is ``--db URL``, else ``MESH_AUDIT_DB``, else ``$MESH_HOME/audit/audit.db``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from agents.audit import OUTCOMES, AuditLog, AuditRecord, audit_db_url
from agents.cli.common import EXIT_FAILED, EXIT_OK, CliError, CommandFailed
from agents.settings import MeshSettings

__all__ = ["add_parsers", "parse_time"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
REASON_WIDTH = 60  # the reason column is cut here so a row stays on one terminal line


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """``10m``, ``2h``, ``1d``, ``30s`` ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    match = _AGO.match(value.strip())
    if match:
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(f"{value!r} is not a time: give 30s, 10m, 2h, 1d or an ISO time like 2026-05-01T12:00") from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


def _url(args: argparse.Namespace) -> str:
    url = args.db or audit_db_url(MeshSettings.from_env())
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise CommandFailed(f"no audit log at {url.removeprefix('sqlite:///')} (nothing recorded yet, or another "
                            "MESH_HOME / MESH_AUDIT_DB)")
    return url


def _run(args: argparse.Namespace) -> int:
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    url = _url(args)
    return asyncio.run(_verify(url) if args.verify else _show(url, args, since, until))


async def _verify(url: str) -> int:
    log = await AuditLog.open(url)
    try:
        ok, bad_seq = await log.verify()
        count = await log.store.count()
    finally:
        await log.close()
    if ok:
        print(f"audit log intact: {count} records, hash chain verified")
        return EXIT_OK
    print(f"audit log TAMPERED: the hash chain breaks at seq {bad_seq} (a row changed, removed or inserted there)")
    return EXIT_FAILED


async def _show(url: str, args: argparse.Namespace, since: datetime | None, until: datetime | None) -> int:
    log = await AuditLog.open(url)
    try:
        records = await log.query(caller=args.caller, service=args.service, target=args.target,
                                  outcome=args.outcome, since=since, until=until, limit=args.limit)
    finally:
        await log.close()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
    elif records:
        print(render_audit_table(records))
    else:
        print("no audit record matches")
    return EXIT_OK


def render_audit_table(records: list[AuditRecord]) -> str:
    """Newest first, one line each; times in UTC."""
    rows = [["TIME (UTC)", "CALLER", "ACTOR", "SERVICE", "OPERATION", "TARGET", "OUTCOME", "STATUS", "REASON"]]
    for r in records:
        reason = r.reason if len(r.reason) <= REASON_WIDTH else r.reason[: REASON_WIDTH - 1] + "…"
        rows.append([r.at.strftime("%Y-%m-%d %H:%M:%S"), r.caller or "(anonymous)", r.actor or "-", r.service,
                     r.operation, r.target or "-", r.outcome, "-" if r.status is None else str(r.status),
                     reason or "-"])
    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="who called which agent or tool, when, and the outcome; --verify the log")
    audit.add_argument("--caller", help="only this caller (the authenticated subject)")
    audit.add_argument("--service", help='only calls to this agent (or "registry")')
    audit.add_argument("--target", help="only this skill or tool")
    audit.add_argument("--outcome", choices=OUTCOMES, help="only this outcome")
    audit.add_argument("--since", help="from this time: 30s, 10m, 2h, 1d ago, or an ISO time")
    audit.add_argument("--until", help="before this time (same forms as --since)")
    audit.add_argument("--limit", type=int, default=100, help="at most this many, newest first (default 100)")
    audit.add_argument("--json", action="store_true", help="print the records as JSON")
    audit.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 when it is broken")
    audit.add_argument("--db", help="audit log URL: sqlite:///path or postgresql://... (default: MESH_AUDIT_DB, "
                                    "else $MESH_HOME/audit/audit.db)")
    audit.set_defaults(run=_run)
