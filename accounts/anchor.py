"""Anchoring the audit chain's head outside the database.

A head line is one JSON object: the newest row's id and hash, when it was taken, and an HMAC signature
over those with a key derived from settings.AUDIT_KEY (so the line cannot be forged by someone who can
write the database, and a signature can never be mistaken for a chain hash). Lines are appended to
settings.AUDIT_ANCHOR_FILE every AUDIT_ANCHOR_EVERY rows (audit_record, after commit) and by the django-q2
schedule "audit-anchor" (every 10 minutes, only when the head moved), and also logged on the
"kvmcluster.audit.anchor" logger so a remote log handler can ship them off the machine.
`manage.py audit verify --anchors FILE` then checks that every anchored row still carries its hash: a
deleted tail, or a chain rewritten with the key but after an anchor, shows up there.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from accounts.models import AuditEvent

log = logging.getLogger("kvmcluster.audit.anchor")
VERSION = 1


def _key() -> bytes:
    return hmac.new(settings.AUDIT_KEY.encode(), b"kvmcluster audit head anchor v1", hashlib.sha256).digest()


def _sign(row_id: int, row_hash: str, at: str) -> str:
    return hmac.new(_key(), f"{VERSION}|{row_id}|{row_hash}|{at}".encode(), hashlib.sha256).hexdigest()


def head_line() -> str | None:
    """The signed head line for the newest row, or None if the table is empty."""
    last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    if last is None:
        return None
    at = timezone.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = {"v": VERSION, "id": last[0], "hash": last[1], "at": at, "sig": _sign(last[0], last[1], at)}
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def _last_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def append_anchor(path: Path | None = None, *, force: bool = False) -> str | None:
    """Append the signed head line to the anchor file (created 0600) unless the last one already names
    this head; return the line written, or None."""
    path = Path(path or settings.AUDIT_ANCHOR_FILE)
    line = head_line()
    if line is None:
        return None
    head = json.loads(line)
    if not force:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            last = json.loads(_last_line(path))
            if (last["id"], last["hash"]) == (head["id"], head["hash"]):
                return None
    # O_APPEND: web and worker may both append; each line is one write() well under PIPE_BUF.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    log.info("audit head %s", line)
    return line


@dataclass(frozen=True)
class AnchorProblem:
    line_no: int
    message: str


def parse_line(text: str) -> dict:
    """A head line's fields, ValueError if it is malformed or its signature is wrong."""
    try:
        head = json.loads(text)
        row_id, row_hash, at, sig = int(head["id"]), str(head["hash"]), str(head["at"]), str(head["sig"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError("not a head line") from err
    if not hmac.compare_digest(sig, _sign(row_id, row_hash, at)):
        raise ValueError("bad signature (not made with this install's audit key)")
    return {"id": row_id, "hash": row_hash, "at": at}


def check_anchor(head: dict) -> str | None:
    """None if row head['id'] still carries head['hash'], else what is wrong."""
    stored = AuditEvent.objects.filter(pk=head["id"]).values_list("hash", flat=True).first()
    if stored is None:
        return f"recorded head row #{head['id']} (anchored {head['at']}) was deleted"
    if stored != head["hash"]:
        return f"recorded head row #{head['id']} (anchored {head['at']}) no longer carries its hash"
    return None


def check_anchor_file(path: Path) -> tuple[int, list[AnchorProblem]]:
    """Check every line of an anchor file: (lines checked, problems)."""
    problems, count = [], 0
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for no, text in enumerate(fh, 1):
            if not text.strip():
                continue
            count += 1
            try:
                head = parse_line(text)
            except ValueError as err:
                problems.append(AnchorProblem(no, f"line {no}: {err}"))
                continue
            wrong = check_anchor(head)
            if wrong:
                problems.append(AnchorProblem(no, f"line {no}: {wrong}"))
    return count, problems
