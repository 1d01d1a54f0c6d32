"""kvmctl verbs for maintenance mode (docs/maintenance.md): a host's drain plan, entering and leaving
maintenance, bringing the guests back, and the operation that runs a drain (show, follow, pause, resume,
cancel). Each verb is a call or two to the REST API; the dashboard decides, kvmctl shows what it said."""

from __future__ import annotations

import sys

from kvmctl.client import ApiError, Client
from kvmctl.output import follow, operation_line, table
from kvmctl.refs import host_id

ENDED = {"done", "incomplete", "cancelled"}  # migrations_app.choices.OperationState's terminal states


def plan_text(plan: dict) -> str:
    """The drain plan as a table: per guest its target, mode, prediction and start; then who cannot move."""
    rows = [
        {
            "#": m["position"],
            "guest": m["guest"],
            "to": m["target"],
            "mode": m["mode"],
            "predicted": m["prediction"]["summary"],
            "starts_at_s": m["start_s"],
        }
        for m in plan["moves"]
    ]
    lines = [f"{plan['source']}: {plan['verdict']}"]
    if rows:
        lines += ["", table(rows, ["#", "guest", "to", "mode", "predicted", "starts_at_s"])]
    for b in plan["blocked"] + plan.get("skipped", []):
        lines += ["", f"cannot move {b['guest']}:"] + [f"  {reason}" for reason in b["reasons"]]
    return "\n".join(lines)


def operation_text(op: dict) -> str:
    """An operation: its state and counts, its moves, and why guests are left (once it ended)."""
    p = op["progress"]
    eta = f", about {p['eta_s']} s left" if p.get("eta_s") is not None else ""
    lines = [
        f"operation #{op['id']} {op['kind']} of {op['hypervisor_name']}: {op['state']}",
        f"  {p['done']}/{p['total']} done, {p['running']} running, {p['waiting']} waiting, "
        f"{p['failed']} failed ({p['percent']}%{eta})",
    ]
    if op["children"]:
        lines += [
            "",
            table(op["children"], ["id", "guest_name", "source_name", "target_name", "kind", "state", "error"]),
        ]
    if op["reasons"]:
        lines += ["", "left:"] + [f"  {reason}" for reason in op["reasons"]]
    return "\n".join(lines)


def _confirm(question: str) -> bool:
    """Ask on the terminal (or read a piped answer); no answer is no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, EOFError):  # no stdin to read
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_drain(api: Client, args) -> object:
    """The drain plan of a host: where each guest would go, how, how long; nothing moves."""
    if not args.dry_run:
        raise ApiError(400, {"detail": "kvmctl drain shows the plan only: add --dry-run (to drain: maintenance enter)"})
    plan = api.get(f"hypervisors/{host_id(api, args.host)}/drain-plan/")
    return plan, plan_text(plan)


def cmd_enter(api: Client, args) -> object:
    """Show the plan, ask (unless --yes), then enter maintenance: the dashboard recomputes the plan and
    runs it as an operation, refusing (409, with each guest and why) when a guest cannot move unless --force."""
    host = host_id(api, args.host)
    if not args.yes:
        plan = api.get(f"hypervisors/{host}/drain-plan/")
        print(plan_text(plan), file=sys.stderr)
        if not _confirm(f"\nEnter maintenance on {plan['source']} and move its guests as planned?"):
            raise ApiError(0, {"title": "not confirmed", "detail": "nothing was changed (--yes confirms)"})
    body = {"stop_on_first_failure": args.stop_on_failure, "force": args.force}
    op = api.post(f"hypervisors/{host}/maintenance/", body)
    return op, operation_text(op) + f"\n\nfollow it: kvmctl operation show {op['id']} --watch"


def cmd_exit(api: Client, args) -> object:
    """Leave maintenance; with --return, bring the guests of the last drain back as one operation."""
    host = host_id(api, args.host)
    left = api.post(f"hypervisors/{host}/maintenance/exit/")
    back = left["reverse_plan"]
    lines = [f"{left['hypervisor']}: {left['state']}"]
    lines += [f"  {m['guest']} is on {m['from']} (moved by operation #{m['of_operation']})" for m in back]
    if not args.return_guests:
        if back:
            lines.append(f"bring them back: kvmctl maintenance return {args.host}")
        return left, "\n".join(lines)
    try:
        op = api.post(f"hypervisors/{host}/maintenance/return/", {"stop_on_first_failure": args.stop_on_failure})
    except ApiError as err:  # the exit stands: say so with the reason the guests stay
        detail = f"{left['hypervisor']} left maintenance, but no guest comes back: {err.problem.get('detail', '')}"
        raise ApiError(err.status, {**err.problem, "detail": detail}) from err
    return {"exit": left, "operation": op}, "\n".join(lines) + "\n\n" + operation_text(op)


def cmd_return(api: Client, args) -> object:
    """Bring the guests of the host's last drain back (the host must be out of maintenance)."""
    body = {"stop_on_first_failure": args.stop_on_failure}
    op = api.post(f"hypervisors/{host_id(api, args.host)}/maintenance/return/", body)
    return op, operation_text(op)


def cmd_show(api: Client, args) -> object:
    if not args.watch:
        op = api.get(f"operations/{args.id}/")
        return op, operation_text(op)
    op = _follow(api, args.id, quiet=args.json)
    if op["state"] != "done":  # followed to an end that left guests behind: exit 1 with the reasons
        raise ApiError(0, {"title": f"operation #{op['id']} {op['state']}", "detail": "; ".join(op["reasons"])})
    return op, operation_text(op)


def _follow(api: Client, op_id: int, quiet: bool, interval: float = 1.0) -> dict:
    """Poll the operation until it ends, a progress line on a terminal's stderr. Ctrl-C stops following
    only: the operation goes on."""
    try:
        return follow(lambda: api.get(f"operations/{op_id}/"), _ended, operation_line, quiet, interval)
    except KeyboardInterrupt:
        print(f"\nstill running: kvmctl operation show {op_id} --watch", file=sys.stderr)
        raise SystemExit(130) from None


def _ended(op: dict) -> bool:
    return op["state"] in ENDED


def _control(name: str):
    def cmd(api: Client, args) -> object:
        if name == "cancel" and not args.yes:
            raise ApiError(
                400, {"detail": "cancelling stops the moves not yet started (running ones finish): add --yes"}
            )
        op = api.post(f"operations/{args.id}/{name}/")
        return op, operation_text(op)

    return cmd


def add_verbs(nouns, verb) -> None:
    """drain, maintenance enter|exit|return, operation show|pause|resume|cancel."""
    d = verb(nouns, "drain", cmd_drain, "the plan for emptying a host: targets, modes, predictions, blockers")
    d.add_argument("host", help="hypervisor id or name")
    d.add_argument("--dry-run", action="store_true", help="show the plan (required: nothing moves)")

    mt = nouns.add_parser("maintenance", help="enter or leave maintenance (a host's guests moved away and back)")
    mt_verbs = mt.add_subparsers(dest="verb", required=True)

    def host_verb(name: str, func, help_: str, stop_help: str = "no further move starts after one fails"):
        v = verb(mt_verbs, name, func, help_)
        v.add_argument("host", help="hypervisor id or name")
        v.add_argument("--stop-on-failure", action="store_true", help=stop_help)
        return v

    e = host_verb("enter", cmd_enter, "show the drain plan, ask, then run it as an operation")
    e.add_argument("--force", action="store_true", help="move the movable guests even if some cannot move")
    e.add_argument("--yes", action="store_true", help="do not ask (the plan is not shown)")
    x = host_verb("exit", cmd_exit, "leave maintenance, list the guests moved away", "with --return: as for enter")
    x.add_argument("--return", dest="return_guests", action="store_true", help="bring those guests back")
    host_verb("return", cmd_return, "bring the guests of the last drain back, as one operation")

    op = nouns.add_parser("operation", help="a maintenance operation: show, follow, pause, resume, cancel")
    op_verbs = op.add_subparsers(dest="verb", required=True)
    s = verb(op_verbs, "show", cmd_show, "an operation's state, counts and moves")
    s.add_argument("id", type=int)
    s.add_argument("--watch", action="store_true", help="follow it until it ends (exit 1 unless done)")
    for name, help_ in (
        ("pause", "no new move starts; running moves finish"),
        ("resume", "start the remaining moves again"),
        ("cancel", "cancel the moves not yet started; running ones finish"),
    ):
        c = verb(op_verbs, name, _control(name), help_)
        c.add_argument("id", type=int)
        if name == "cancel":
            c.add_argument("--yes", action="store_true", help="confirm")
