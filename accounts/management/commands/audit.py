"""`manage.py audit verify` checks the hash chain; `manage.py audit head` prints the last row for anchoring."""

from django.core.management.base import BaseCommand, CommandError

from accounts.chain import verify_chain
from accounts.models import AuditEvent


class Command(BaseCommand):
    help = "Audit trail tools: 'verify' checks the hash chain; 'head' prints the last row's id and hash."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        verify = sub.add_parser("verify", help="Walk the chain; exit 1 naming the first altered/inserted/deleted row.")
        verify.add_argument(
            "--head",
            metavar="ID:HASH",
            help="Also require row ID to still carry HASH (a head recorded earlier): catches deleted tail rows.",
        )
        sub.add_parser("head", help="Print 'ID HASH' of the newest row, to record somewhere safe.")

    def handle(self, *args, subcommand, **options):
        if subcommand == "head":
            last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
            self.stdout.write(f"{last[0]} {last[1]}" if last else "empty")
            return
        report = verify_chain()
        if not report.ok:
            raise CommandError(f"audit chain broken: {report.problem.message} ({report.rows} rows verified before it)")
        if options.get("head"):
            self._check_head(options["head"])
        self.stdout.write(f"ok, {report.rows} rows")

    def _check_head(self, spec: str) -> None:
        row_id, _, expected = spec.partition(":")
        if not row_id.isdigit() or not expected:
            raise CommandError("--head takes ID:HASH, as printed by 'manage.py audit head'.")
        stored = AuditEvent.objects.filter(pk=int(row_id)).values_list("hash", flat=True).first()
        if stored is None:
            raise CommandError(f"audit chain broken: recorded head row #{row_id} was deleted")
        if stored != expected:
            raise CommandError(f"audit chain broken: recorded head row #{row_id} no longer carries its hash")
