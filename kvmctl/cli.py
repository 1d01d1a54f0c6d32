"""kvmctl verbs. argparse (the standard library's parser) is enough for nouns and verbs with flags;
every verb takes --json and prints the API's own JSON instead of a table.

Configuration: --url / KVMCLUSTER_URL (default http://127.0.0.1:8000) and --token / KVMCLUSTER_TOKEN (an
API token: `python manage.py api_token create USER`). Exit status: 0 done, 1 the API refused (its reason is
printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys

import httpx

from kvmctl import maintenance
from kvmctl.client import ApiError, Client
from kvmctl.output import follow, print_json, progress_line, table
from kvmctl.refs import guest_id, host_id

TERMINAL = {"succeeded", "failed", "cancelled"}  # migrations_app.choices.TERMINAL_STATES


def cmd_hypervisors(api: Client, args) -> object:
    rows = api.all("hypervisors/")
    return rows, table(rows, ["id", "name", "state", "cpus", "vcpus_allocated", "memory_free_mib", "last_error"])


def cmd_storage(api: Client, args) -> object:
    rows = api.all("storage-servers/")
    return rows, table(rows, ["id", "name", "protocol", "address", "export_path", "mount_path"])


def cmd_guests(api: Client, args) -> object:
    host = host_id(api, args.host) if args.host else None
    rows = api.all("guests/", q=args.name, hypervisor=host, power=args.power)
    return rows, table(rows, ["id", "name", "hypervisor_name", "power", "vcpus", "memory_mib", "migrating"])


def cmd_guest(api: Client, args) -> object:
    guest = api.get(f"guests/{guest_id(api, args.guest)}/")
    return guest, table([guest], list(guest))


def cmd_power(api: Client, args) -> object:
    if args.action == "destroy" and not args.yes:
        raise ApiError(400, {"detail": "forcing a guest off loses what it has not written: add --yes"})
    guest = api.post(f"guests/{guest_id(api, args.guest)}/power/", {"action": args.action, "confirm": args.yes})
    return guest, f"{guest['name']}: libvirt reports {guest['power']}"


def cmd_targets(api: Client, args) -> object:
    rows = api.get(f"guests/{guest_id(api, args.guest)}/targets/", kind="offline" if args.offline else "live")
    lines = []
    for row in rows:
        lines.append(f"{row['target_name']}: {row['verdict']}")
        lines += [f"  {c['status']:>4}  {c['label']}: {c['evidence']}" for c in row["checks"] if c["status"] != "pass"]
    return rows, "\n".join(lines) or "no other hypervisor"


def cmd_migrate(api: Client, args) -> object:
    options = {
        "bandwidth_mibps": args.bandwidth,
        "max_downtime_ms": args.max_downtime,
        "auto_converge": args.auto_converge,
        "allow_postcopy": args.postcopy,
        "compressed": args.compress,
    }
    body = {  # the API takes ids or names (and "auto") and says which one it could not find
        "guest": args.guest,
        "target": args.target,
        "kind": "offline" if args.offline else "live",
        "options": {k: v for k, v in options.items() if v not in (None, False)},
    }
    job = api.post("migrations/", body)
    if args.wait:
        job = _watch(api, job["id"], quiet=args.json)
        _fail_unless_succeeded(job)
    line = f"migration #{job['id']} {job['guest_name']} {job['source_name']} -> {job['target_name']}: {job['state']}"
    if job.get("target_reason"):  # "auto": why that host
        line += f"\n  target chosen {job['target_reason']}"
    return job, line


def _fail_unless_succeeded(job: dict) -> None:
    """A followed move that did not succeed exits 1 with libvirt's reason and where the guest is."""
    if job["state"] != "succeeded":
        where = f" (guest is on {job['where_guest_is']})" if job.get("where_guest_is") else ""
        raise ApiError(0, {"title": f"migration #{job['id']} {job['state']}", "detail": f"{job['error']}{where}"})


def cmd_migrations(api: Client, args) -> object:
    rows = api.all("migrations/", guest=args.guest, state=args.state)
    return rows, table(rows, ["id", "guest_name", "source_name", "target_name", "kind", "state", "total_ms", "error"])


def cmd_migration(api: Client, args) -> object:
    job = api.get(f"migrations/{args.id}/")
    checks = "\n".join(f"  {c['status']:>4}  {c['label']}: {c['evidence']}" for c in job.get("preflight", []))
    summary = table([job], ["id", "guest_name", "source_name", "target_name", "kind", "state", "phase", "error"])
    return job, f"{summary}\npre-flight:\n{checks}"


def cmd_cancel(api: Client, args) -> object:
    if not args.yes:
        raise ApiError(400, {"detail": "cancelling aborts the move (the guest stays on its source): add --yes"})
    job = api.post(f"migrations/{args.id}/cancel/")
    return job, f"migration #{job['id']}: {job['state']}"


def cmd_bandwidth(api: Client, args) -> object:
    job = api.post(f"migrations/{args.id}/bandwidth/", {"mibps": args.mibps})
    return job, f"migration #{job['id']}: bandwidth {job['bandwidth_mibps']} MiB/s"


def cmd_postcopy(api: Client, args) -> object:
    job = api.post(f"migrations/{args.id}/postcopy/")
    return job, f"migration #{job['id']}: post-copy {'started' if job['postcopy_started'] else 'requested'}"


def cmd_watch(api: Client, args) -> object:
    job = _watch(api, args.id, quiet=args.json)
    _fail_unless_succeeded(job)
    return job, f"migration #{job['id']}: {job['state']}" + (f": {job['error']}" if job["error"] else "")


AGO = re.compile(r"(\d{1,6})([smhdw])")
AGO_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_time(text: str, now: dt.datetime | None = None) -> str:
    """`--since 2h` (s/m/h/d/w ago) or a date/time as the API takes it (ISO 8601; naive means UTC)."""
    ago = AGO.fullmatch(text.strip())
    if ago:
        now = now or dt.datetime.now(dt.UTC)
        return (now - dt.timedelta(**{AGO_UNITS[ago[2]]: int(ago[1])})).isoformat(timespec="seconds")
    return text


def cmd_audit(api: Client, args) -> object:
    filters = {
        "since": since_time(args.since) if args.since else None,
        "until": since_time(args.until) if args.until else None,
        "actor": args.user,
        "action": args.action,
        "outcome": args.outcome,
        "guest": args.guest,
        "hypervisor": args.host,
        "migration": args.migration,
    }
    rows = api.first("audit-events/", args.limit, **filters)
    columns = ["id", "created_at", "actor_username", "action", "guest", "hypervisor", "outcome", "message"]
    return rows, table(rows, columns)


def cmd_proposals(api: Client, args) -> object:
    host = host_id(api, args.host) if args.host else None
    rows = api.all("balancer/proposals/", state=args.state, hypervisor=host)
    return rows, table(rows, ["id", "state", "headline", "predicted_s", "why"])


def cmd_apply(api: Client, args) -> object:
    proposal = api.post(f"balancer/proposals/{args.id}/apply/")
    return proposal, f"{proposal['headline']}: started as guest migration #{proposal['job']}"


def cmd_dismiss(api: Client, args) -> object:
    proposal = api.post(f"balancer/proposals/{args.id}/dismiss/")
    return proposal, f"dismissed: {proposal['headline']}"


def cmd_balancer_policy(api: Client, args) -> object:
    policy = api.get("balancer/policy/")
    return policy, "\n".join(f"{k}: {v}" for k, v in policy.items())


def cmd_readiness(api: Client, args) -> object:
    """Every source × target pair of hosts: the verdict and each check's answer (evidence with --json)."""
    matrix = api.get("hypervisors/readiness/")
    keys = [c["key"] for c in matrix["columns"]]
    rows = [
        {"from": p["source"], "to": p["target"], "verdict": p["verdict"]} | {c["key"]: c["answer"] for c in p["cells"]}
        for p in matrix["pairs"]
    ]
    if not rows:
        return matrix, "readiness compares pairs of hosts: add a second hypervisor"
    return matrix, table(rows, ["from", "to", "verdict", *keys])


def _watch(api: Client, job_id: int, quiet: bool, interval: float = 0.5) -> dict:
    try:
        return _follow(api, job_id, quiet, interval)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        if sys.stdin.isatty() and input(f"Cancel migration #{job_id}? [y/N] ").strip().lower() in ("y", "yes"):
            api.post(f"migrations/{job_id}/cancel/")
            return _follow(api, job_id, quiet, interval)
        print(f"still running: kvmctl watch {job_id}", file=sys.stderr)
        raise SystemExit(130) from None


def _follow(api: Client, job_id: int, quiet: bool, interval: float) -> dict:
    def ended(job: dict) -> bool:
        return job["state"] in TERMINAL

    return follow(lambda: api.get(f"migrations/{job_id}/"), ended, progress_line, quiet, interval)


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    p = argparse.ArgumentParser(prog="kvmctl", description="Drive a kvmcluster dashboard through its REST API.")
    p.add_argument("--url", default=os.environ.get("KVMCLUSTER_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("KVMCLUSTER_TOKEN", ""), help="API token (or KVMCLUSTER_TOKEN)")
    nouns = p.add_subparsers(dest="noun", required=True)

    def verb(sub, name: str, func, help_: str) -> argparse.ArgumentParser:
        v = sub.add_parser(name, parents=[common], help=help_)
        v.set_defaults(func=func)
        return v

    top = nouns
    verb(top, "hosts", cmd_hypervisors, "list hypervisors")
    verb(top, "storage", cmd_storage, "list storage servers")
    g = verb(top, "guests", cmd_guests, "list guests")
    g.add_argument("--name"), g.add_argument("--host"), g.add_argument("--power")
    verb(top, "guest", cmd_guest, "show one guest").add_argument("guest", help="id or name")
    pw = verb(top, "power", cmd_power, "start, shut down or force off a guest")
    pw.add_argument("guest"), pw.add_argument("action", choices=["start", "shutdown", "destroy"])
    pw.add_argument("--yes", action="store_true", help="confirm a force off")
    t = verb(top, "targets", cmd_targets, "pre-flight of every target for a guest (starts nothing)")
    t.add_argument("guest"), t.add_argument("--offline", action="store_true")
    m = verb(top, "migrate", cmd_migrate, "request a guest migration")
    m.add_argument("guest")
    m.add_argument("--to", dest="target", default="auto", help="hypervisor id or name, or auto (the default)")
    m.add_argument("--offline", action="store_true")
    m.add_argument("--bandwidth", type=int, metavar="MIBPS"), m.add_argument("--max-downtime", type=int, metavar="MS")
    m.add_argument("--auto-converge", action="store_true"), m.add_argument("--postcopy", action="store_true")
    m.add_argument("--compress", action="store_true")
    m.add_argument("--wait", action="store_true", help="follow the move to its end (a progress line on a terminal)")
    ms = verb(top, "migrations", cmd_migrations, "list guest migrations")
    ms.add_argument("--guest"), ms.add_argument("--state")
    verb(top, "migration", cmd_migration, "show one guest migration with its pre-flight").add_argument("id", type=int)
    c = verb(top, "cancel", cmd_cancel, "cancel a guest migration")
    c.add_argument("id", type=int), c.add_argument("--yes", action="store_true")
    b = verb(top, "bandwidth", cmd_bandwidth, "change a running move's bandwidth cap")
    b.add_argument("id", type=int), b.add_argument("mibps", type=int)
    verb(top, "postcopy", cmd_postcopy, "switch a running live move to post-copy").add_argument("id", type=int)
    a = verb(top, "audit", cmd_audit, "the audit trail, newest first (filters as on the audit page)")
    a.add_argument("--since", help="2h, 30m, 7d ... ago, or a date/time (ISO 8601, UTC)")
    a.add_argument("--until", help="as --since")
    (
        a.add_argument("--user", help="who did it (username)"),
        a.add_argument("--action", help='exact, or a prefix: "migration."'),
    )
    a.add_argument("--outcome", choices=["ok", "failed", "refused", "pending"])
    a.add_argument("--guest", help="name or UUID"), a.add_argument("--host", help="hypervisor name")
    a.add_argument("--migration", type=int, metavar="ID")
    a.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    verb(top, "watch", cmd_watch, "follow a guest migration until it ends").add_argument("id", type=int)
    verb(top, "readiness", cmd_readiness, "which hosts can take each other's guests (every pair's checks)")
    maintenance.add_verbs(top, verb)
    pr = verb(top, "proposals", cmd_proposals, "the load balancer's proposals (docs/balancing.md)")
    pr.add_argument("--host", help="moves off or onto this hypervisor (id or name)")
    pr.add_argument("--state", default="proposed", choices=["proposed", "applied", "dismissed", "expired"])
    verb(top, "apply", cmd_apply, "start a balancer proposal's move (pre-flight as always)").add_argument(
        "id", type=int
    )
    verb(top, "dismiss", cmd_dismiss, "dismiss a balancer proposal").add_argument("id", type=int)
    verb(top, "balancer-policy", cmd_balancer_policy, "the load-balancing policy (admins change it on its page)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.token:
        print("kvmctl: no API token: pass --token or set KVMCLUSTER_TOKEN", file=sys.stderr)
        return 2
    api = Client(args.url, args.token)
    try:
        data, text = args.func(api, args)
    except ApiError as err:
        if args.json:
            print_json({"status": err.status, **err.problem}, stream=sys.stderr)
        else:
            print(f"kvmctl: {err}", file=sys.stderr)
            for name, errs in (err.problem.get("errors") or {}).items():
                print(f"  {name}: {' '.join(map(str, errs)) if isinstance(errs, list) else errs}", file=sys.stderr)
            for check in err.problem.get("checks") or []:
                print(f"  {check['label']}: {check['evidence']}", file=sys.stderr)
        return 1
    except httpx.HTTPError as err:  # connection refused, timeout: say where we tried
        print(f"kvmctl: cannot reach {args.url}: {err}", file=sys.stderr)
        return 1
    if args.json:
        print_json(data)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
