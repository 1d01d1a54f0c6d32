"""Security events from django.contrib.auth -> audit rows (and the login throttle, socket closing)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts import throttle
from accounts.audit import audit_record
from accounts.clientip import client_ip
from accounts.denials import UNKNOWN_USER, keyed_hash
from accounts.events import user_sessions_changed


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def audit_login(sender, request, user, **kwargs):
    ip = client_ip(request)
    throttle.record_success(user.get_username(), ip)
    audit_record(action="auth.login", actor=user, source_ip=ip)


@receiver(user_logged_out, dispatch_uid="accounts.audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is None:  # logging out an anonymous session: nothing happened
        return
    audit_record(action="auth.logout", actor=user, source_ip=client_ip(request))
    user_sessions_changed(user.pk)


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # `credentials` has the password already masked by Django; keep only the name.
    username = str(credentials.get("username", ""))[:150]
    ip = client_ip(request) if request is not None else ""
    # People type passwords into the username field: store a name only if such a user exists, otherwise
    # "unknown user" and a keyed hash (repeated guesses of one string stay recognisable, not readable).
    known = get_user_model().objects.filter(username__iexact=username).exists()
    shown = username if known else UNKNOWN_USER
    params = {"username": username} if known else {"username": UNKNOWN_USER, "username_hmac": keyed_hash(username)}
    audit_record(
        action="auth.login_failed",
        source_ip=ip,
        params=params,
        outcome="failed",
        message=f"sign-in as “{shown}” failed: wrong username or password, or inactive account",
    )
    # The attempt was already counted by the throttle before the password was checked (forms).
