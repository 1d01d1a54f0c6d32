"""drf-spectacular post-processing: one schema whatever the database.

Model integer fields get `maximum` (and `format: int64`) from the database backend's integer range
(SQLite's and PostgreSQL's differ), so the committed docs/openapi.yaml would depend on the profile it
was generated in. Database-sized bounds say nothing to a client: they are dropped.
"""

DB_LIMITS = {2**31 - 1, 2**63 - 1, -(2**31), -(2**63)}


def _strip(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("maximum", "minimum"):
                if node.get(key) in DB_LIMITS:
                    del node[key]
            if node.get("format") == "int64":
                del node["format"]
        for value in node.values():
            _strip(value)
    elif isinstance(node, list):
        for value in node:
            _strip(value)


def drop_database_integer_bounds(result, generator, request, public):
    _strip(result)
    return result
