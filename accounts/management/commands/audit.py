"""`manage.py audit verify` checks the keyed hash chain (every break) and recorded heads;
`manage.py audit head` prints (and with --append anchors) the signed head line."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.anchor import append_anchor, check_anchor, check_anchor_file, head_line, parse_line
from accounts.chain import verify_chain

# Breaks named in the error line itself; all of them are printed above it.
SUMMARY_BREAKS = 20


class Command(BaseCommand):
    help = "Audit trail tools: 'verify' checks the hash chain; 'head' prints the signed head line."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="Walk the chain; exit 1 naming every altered/inserted/deleted row.")
        verify.add_argument(
            "--head",
            metavar="LINE",
            help="Also require a head recorded earlier to still be there: a signed head line "
            "(from 'audit head') or ID:HASH. Catches deleted tail rows.",
        )
        verify.add_argument(
            "--anchors",
            metavar="FILE",
            nargs="?",
            const=str(settings.AUDIT_ANCHOR_FILE),
            help=f"Also check every signed head line in FILE (default {settings.AUDIT_ANCHOR_FILE}).",
        )
        head = sub.add_parser("head", help="Print the signed head line (id, hash, time, HMAC signature).")
        head.add_argument(
            "--append",
            action="store_true",
            help=f"Also append it to the anchor file ({settings.AUDIT_ANCHOR_FILE}).",
        )

    def handle(self, *args, subcommand, **options):
        if subcommand == "head":
            self._head(options["append"])
            return
        report = verify_chain()
        problems = [p.message for p in report.problems]
        if options.get("head"):
            wrong = check_anchor(self._parse_head(options["head"]))
            problems += [wrong] if wrong else []
        if options.get("anchors"):
            path = Path(options["anchors"])
            if not path.exists():
                raise CommandError(f"no anchor file at {path}")
            lines, anchor_problems = check_anchor_file(path)
            problems += [p.message for p in anchor_problems]
            self.stdout.write(f"{lines} anchored heads checked in {path}")
        if problems:
            for message in problems:
                self.stderr.write(f"broken: {message}")
            shown = "; ".join(problems[:SUMMARY_BREAKS])
            hidden = len(problems) - SUMMARY_BREAKS
            more = f"; and {hidden} more (listed above)" if hidden > 0 else ""
            raise CommandError(f"audit chain broken, {len(problems)} problem(s) in {report.rows} rows: {shown}{more}")
        self.stdout.write(f"ok, {report.rows} rows")

    def _head(self, append: bool) -> None:
        line = head_line()
        if line is None:
            self.stdout.write("empty")
            return
        if append:
            line = append_anchor(force=True) or line
        self.stdout.write(line)

    def _parse_head(self, spec: str) -> dict:
        spec = spec.strip()
        if spec.startswith("{"):
            try:
                return parse_line(spec)
            except ValueError as err:
                raise CommandError(f"--head: {err}") from err
        row_id, _, expected = spec.partition(":")
        if not row_id.isdigit() or not expected:
            raise CommandError("--head takes a signed head line or ID:HASH, as printed by 'manage.py audit head'.")
        return {"id": int(row_id), "hash": expected, "at": "by hand"}
