"""Keys and private files for the settings module: no Django imports (settings imports this first).

* production (`required_key`): a key comes from the environment or the process refuses to start;
* embedded (`install_key`): generated once per install under the data directory, mode 0600, then reused;
* the data directory is 0700 and the SQLite files 0600, whatever the umask says.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

MIN_KEY_LENGTH = 32
# Keys that were ever in the repository or its docs: public, so never acceptable in production.
PUBLIC_KEYS = frozenset({"dev-only-insecure-key-change-me-in-production"})


def required_key(name: str, *, distinct_from: dict[str, str] | None = None) -> str:
    """The key in environment variable `name`; ImproperlyConfigured (the process stops) if it is missing,
    public, too short or equal to one of `distinct_from`."""
    value = os.environ.get(name, "")
    hint = f'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))" and set {name}'
    if not value:
        raise ImproperlyConfigured(f"{name} is not set: production (DATABASE_URL/REDIS_URL) needs a key; {hint}")
    if value in PUBLIC_KEYS or value.startswith("django-insecure"):
        raise ImproperlyConfigured(f"{name} is a public default from the repository; {hint}")
    if len(value) < MIN_KEY_LENGTH or len(set(value)) < 8:
        raise ImproperlyConfigured(f"{name} is too weak (at least {MIN_KEY_LENGTH} varied characters); {hint}")
    for other, other_value in (distinct_from or {}).items():
        if value == other_value:
            raise ImproperlyConfigured(f"{name} must differ from {other}; {hint}")
    return value


def data_dir(path: Path) -> Path:
    """Create the data directory 0700 (or tighten ours to 0700): it holds keys and the databases."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if missing; tighten it to 0600 if it exists and is ours."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(FileNotFoundError):
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(0o600)


def sqlite_file(path: Path) -> Path:
    """An SQLite database path whose file (and any -wal/-shm/-journal left over) is 0600.

    SQLite creates its -wal and -shm files with the main file's permission bits, so creating the main
    file 0600 before SQLite first opens it is enough for the files it makes later."""
    _private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            _private_file(side)
    return path


def install_key(path: Path) -> str:
    """This install's key, generated on first use. Web and worker may start together: the key is
    written to a private temporary file and published with link(), which fails if another process
    got there first, so every process ends up with the same key."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if len(key) >= MIN_KEY_LENGTH:
        _private_file(path)
        return key
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        # Read what was published, ours or another process's. Only a file that is still not a usable
        # key (empty or truncated, never a key anyone used) is replaced. Deciding that from the first
        # read instead let a process overwrite a key another one had just published and was using.
        if len(path.read_text().strip()) < MIN_KEY_LENGTH:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path.read_text().strip()
