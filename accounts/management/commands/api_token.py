"""`manage.py api_token create USER [--days N]` prints a new API token once; `list` (with last use);
`revoke PREFIX`. The same services as the tokens page (accounts.tokens)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

from accounts.tokens import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "API tokens for kvmctl and scripts (stored hashed; the token is shown once)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        create = sub.add_parser("create", help="Issue a token for USER and print it once.")
        create.add_argument("username")
        create.add_argument("--days", type=int, default=settings.REST_KNOX["TOKEN_TTL"].days)
        create.add_argument("--note", default="")
        listing = sub.add_parser("list", help="Tokens (prefix, user, expiry); never the tokens themselves.")
        listing.add_argument("username", nargs="?")
        revoke = sub.add_parser("revoke", help="Revoke the tokens whose prefix starts with PREFIX.")
        revoke.add_argument("prefix")

    def handle(self, *args, subcommand, **options):
        if subcommand == "create":
            user = get_user_model().objects.filter(username=options["username"]).first()
            if user is None:
                raise CommandError(f"no user {options['username']!r}")
            try:
                token, text = api_token_create(user=user, days=options["days"], note=options["note"])
            except ValueError as err:
                raise CommandError(str(err)) from err
            self.stdout.write(text)
            self.stderr.write(f"token {token.token_key} for {user.username}, expires {token.expiry:%Y-%m-%d}")
        elif subcommand == "list":
            tokens = AuthToken.objects.select_related("user", "use").order_by("created")
            if options.get("username"):
                tokens = tokens.filter(user__username=options["username"])
            for t in tokens:
                use = getattr(t, "use", None)
                used = f"last used {use.last_used_at:%Y-%m-%d %H:%M} UTC" if use else "never used"
                self.stdout.write(f"{t.token_key}  {t.user.username}  expires {t.expiry:%Y-%m-%d}  {used}")
        else:
            try:
                count = api_token_revoke(prefix=options["prefix"])
            except ValueError as err:
                raise CommandError(str(err)) from err
            if not count:
                raise CommandError(f"no token starts with {options['prefix']!r}")
            self.stdout.write(f"revoked {count}")
