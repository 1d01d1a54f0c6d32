"""Token authentication: django-rest-knox's, plus what the project asks of every credential check.

* A refused token (unknown, revoked, expired, its user deactivated, a malformed header) is an
  `auth.denied` audit row like any refusal, rate-limited per (client, path) by accounts.denials.
* A token that works has its last use recorded (accounts.tokens.api_token_used), shown on the tokens page.
"""

from __future__ import annotations

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.audit import request_ip
from accounts.denials import record_denial
from accounts.tokens import api_token_used


class TokenAuthentication(KnoxTokenAuthentication):
    _expired_key = ""

    def authenticate(self, request):
        try:
            result = super().authenticate(request)
        except AuthenticationFailed as exc:
            why = f"expired (token {self._expired_key})" if self._expired_key else str(exc.detail).rstrip(".")
            record_denial(
                user=None,
                method=request.method,
                path=request.path,
                source_ip=request_ip(request),
                interface="api",
                reason=f"API token refused: {why}",
            )
            raise
        if result is not None:
            api_token_used(result[1], request_ip(request))
        return result

    def _cleanup_token(self, auth_token) -> bool:
        # knox deletes an expired token as it meets it and then answers "Invalid token": keep its prefix
        # so the refusal can say it was expired (DRF builds authenticators per request: no sharing).
        expired = super()._cleanup_token(auth_token)
        if expired:
            self._expired_key = auth_token.token_key
        return expired


class TokenScheme(KnoxTokenScheme):
    """The schema describes it as knox's scheme (the same header, the same name in docs/openapi.yaml)."""

    target_class = TokenAuthentication
