"""Production profile: secure cookies and HSTS; both profiles: the CSP middleware and password validators."""

import json
import os
import subprocess
import sys

CODE = (
    "import django, os, json; os.environ['DJANGO_SETTINGS_MODULE']='kvmcluster.settings'; django.setup();"
    "from django.conf import settings as s;"
    "print(json.dumps({'secure': s.SESSION_COOKIE_SECURE, 'csrf_secure': s.CSRF_COOKIE_SECURE,"
    " 'hsts': s.SECURE_HSTS_SECONDS, 'httponly': s.SESSION_COOKIE_HTTPONLY, 'mw': s.MIDDLEWARE,"
    " 'validators': [v['NAME'].rsplit('.', 1)[1] for v in s.AUTH_PASSWORD_VALIDATORS]}))"
)

# Production refuses to start without its two keys (tests/unit/test_settings_keys.py).
KEYS = {
    "KVMCLUSTER_SECRET_KEY": "t3st-s3cret-key-0123456789-abcdefghijklmnop",
    "KVMCLUSTER_AUDIT_KEY": "t3st-audit-key-9876543210-qrstuvwxyzABCDEF",
}


def _settings(**env) -> dict:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "KVMCLUSTER_INSECURE_COOKIES")
    }
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_profile_has_secure_cookies_and_hsts():
    s = _settings(DATABASE_URL="postgres://u@127.0.0.1:5432/x", REDIS_URL="redis://127.0.0.1:6379/0", **KEYS)
    assert s["secure"] and s["csrf_secure"] and s["httponly"] and s["hsts"] >= 31536000


def test_every_profile_sends_a_content_security_policy_and_checks_passwords():
    prod = {"DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "REDIS_URL": "redis://h:6379/0", **KEYS}
    for s in (_settings(), _settings(**prod)):
        mw = s["mw"]
        assert "kvmcluster.middleware.ContentSecurityPolicyMiddleware" in mw
        assert mw.index("django.contrib.auth.middleware.LoginRequiredMiddleware") > mw.index(
            "django.contrib.auth.middleware.AuthenticationMiddleware"
        )
        assert {"MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"} <= set(s["validators"])
