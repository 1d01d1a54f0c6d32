"""Running kvmctl in-process against a live test server, as a user holding a fresh API token."""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout

from knox.models import AuthToken

from kvmctl.cli import main


def kvmctl_as(user, url: str) -> Callable[..., tuple[int, str, str]]:
    """A function taking kvmctl's arguments and giving (exit status, stdout, stderr)."""
    _, token = AuthToken.objects.create(user=user)

    def run(*argv: str) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        with redirect_stdout(stdout), redirect_stderr(stderr):
            code = main(["--url", url, "--token", token, *argv])
        return code, stdout.getvalue(), stderr.getvalue()

    return run
