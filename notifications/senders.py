"""Sending one delivery: a signed HTTP POST (httpx) or an email (Django's email backend).

Both return a SendResult and never raise for the remote side's trouble: the caller records it.
"""

from __future__ import annotations

import json
import smtplib
import time
from dataclasses import dataclass

import httpx
from django.core.mail import send_mail

from notifications import signing
from notifications.addresses import AddressRefused, checked_address, split_url

WEBHOOK_TIMEOUT_SECONDS = 10.0
USER_AGENT = "kvmcluster-webhooks/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    http_status: int | None = None
    error: str = ""
    permanent: bool = False  # no retry: it would be refused the same way


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def post_webhook(url: str, secret: str, payload: dict, delivery_id: int, now: float | None = None) -> SendResult:
    """POST `payload` to `url`, signed; connects to the address the allow-list just checked."""
    try:
        scheme, host, _ = split_url(url)
        address = checked_address(url)
    except AddressRefused as err:
        return SendResult(ok=False, error=f"refused: {err}", permanent=True)
    body = body_bytes(payload)
    timestamp = int(now if now is not None else time.time())
    parsed = httpx.URL(url)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Host": parsed.netloc.decode("ascii"),
        signing.EVENT_HEADER: payload.get("event", ""),
        signing.DELIVERY_HEADER: str(delivery_id),
        signing.TIMESTAMP_HEADER: str(timestamp),
        signing.SIGNATURE_HEADER: signing.signature(secret, timestamp, body),
    }
    # TLS still verifies the certificate against the typed host name (sni_hostname), not the address.
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    try:
        # trust_env=False: a proxy from the environment would connect on our behalf, past the address check.
        with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            # Streamed and never read: only the status matters, and a huge answer must not fill memory.
            with client.stream(
                "POST", parsed.copy_with(host=str(address)), content=body, headers=headers, extensions=extensions
            ) as response:
                status, phrase = response.status_code, response.reason_phrase
    except httpx.HTTPError as err:
        return SendResult(ok=False, error=f"{type(err).__name__}: {err}"[:1000])
    if 200 <= status < 300:
        return SendResult(ok=True, http_status=status)
    reason = "redirects are not followed" if 300 <= status < 400 else phrase
    return SendResult(ok=False, http_status=status, error=f"HTTP {status} {reason}")


def send_email(recipients: list[str], payload: dict) -> SendResult:
    """One plain-text email to every recipient: the summary, then the JSON payload."""
    if not recipients:
        return SendResult(ok=False, error="no recipients", permanent=True)
    text = payload.get("summary", payload.get("event", ""))
    body = f"{text}\n\n{json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)}\n"
    try:
        send_mail(" ".join(f"[kvmcluster] {text}".split())[:200], body, None, recipients, fail_silently=False)
    except (smtplib.SMTPException, OSError, ValueError) as err:
        return SendResult(ok=False, error=f"{type(err).__name__}: {err}"[:1000])
    return SendResult(ok=True)
