"""A small HTTP client for /api/v1/ (the standard library's urllib: one host, JSON in and out, no
sessions or retries to manage, so a dependency would add nothing)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


class ApiError(Exception):
    """The API refused: `status` and the problem document's `detail` (and `errors` / `checks`)."""

    def __init__(self, status: int, problem: dict):
        self.status, self.problem = status, problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())


@dataclass
class Client:
    url: str
    token: str
    timeout: float = 30.0

    def get(self, path: str, **params) -> dict | list:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return self._call("GET", path + (f"?{query}" if query else ""))

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._call("POST", path, body or {})

    def all(self, path: str, **params) -> list:
        """Every row of a paginated list, following the cursor links."""
        page = self.get(path, **params)
        rows = list(page["results"])
        while page.get("next"):
            page = self._call("GET", page["next"])
            rows.extend(page["results"])
        return rows

    def _call(self, method: str, path: str, body: dict | None = None) -> dict | list:
        target = path if path.startswith("http") else f"{self.url.rstrip('/')}/api/v1/{path.lstrip('/')}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Authorization": f"Token {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(target, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            try:
                problem = json.loads(err.read() or b"{}")
            except ValueError:
                problem = {"detail": err.reason}
            raise ApiError(err.code, problem) from err
