"""The HTTP client of kvmctl: httpx (maintained, timeouts and connection reuse built in) against /api/v1/."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx


class ApiError(Exception):
    """The API refused: `status` and the problem document's `detail` (and `errors` / `checks`)."""

    def __init__(self, status: int, problem: dict):
        self.status, self.problem = status, problem
        head = " ".join(str(p) for p in (status or "", problem.get("title", "")) if p)
        super().__init__(f"{head}: {problem.get('detail', '')}" if head else str(problem.get("detail", "")))


@dataclass
class Client:
    url: str
    token: str
    timeout: float = 30.0
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=f"{self.url.rstrip('/')}/api/v1/",
            headers={"Accept": "application/json", "Authorization": f"Token {self.token}"},
            timeout=self.timeout,
        )

    def get(self, path: str, **params) -> dict | list:
        return self._call("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    def post(self, path: str, body: dict | None = None) -> dict:
        return self._call("POST", path, json=body or {})

    def all(self, path: str, **params) -> list:
        """Every row of a paginated list, following the cursor links."""
        page = self.get(path, **params)
        rows = list(page["results"])
        while page.get("next"):
            page = self._call("GET", page["next"])
            rows.extend(page["results"])
        return rows

    def first(self, path: str, limit: int, **params) -> list:
        """At most `limit` rows of a paginated list, newest first (a big list is not read to its end)."""
        page = self.get(path, page_size=min(limit, 500), **params)
        rows = list(page["results"])
        while page.get("next") and len(rows) < limit:
            page = self._call("GET", page["next"])
            rows.extend(page["results"])
        return rows[:limit]

    def _call(self, method: str, path: str, **kwargs) -> dict | list:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.reason_phrase}
            raise ApiError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})
        return response.json() if response.content else {}
