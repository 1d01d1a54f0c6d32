"""Errors as RFC 9457 problem documents: a title, the status, a detail that says why, and the fields
(or the failing pre-flight checks) by name."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler


class Conflict(APIException):
    """409: the request is well-formed but the cluster's or the job's state refuses it (`checks` optional)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the job's or the cluster's state."

    def __init__(self, detail: str, checks: list[dict] | None = None):
        super().__init__(detail)
        self.checks = checks or []


class Unprocessable(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well-formed but cannot be processed."


def problem_exception_handler(exc, context):
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: Django's handling (a 500 is a bug, and a test says so)
    data = response.data
    problem = {"type": "about:blank", "title": response.status_text, "status": response.status_code}
    if isinstance(data, dict) and set(data) <= {"detail", "code"}:
        problem["detail"] = str(data.get("detail", ""))
    elif isinstance(data, dict):
        problem["detail"] = "; ".join(
            f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in data.items()
        )
        problem["errors"] = data
    else:
        problem["detail"] = " ".join(map(str, data))
    checks = getattr(exc, "checks", None)
    if checks:
        problem["checks"] = checks
    response.data = problem
    response.content_type = "application/problem+json"
    return response


def _text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)
