"""mypy (with django-stubs) passes on the typed core: the driver, the state machine and the services
packages ([tool.mypy] in pyproject.toml names them). Runs mypy in a subprocess, as a developer would."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_passes_on_the_typed_core(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.setdefault("KVMCLUSTER_DATA_DIR", str(tmp_path))  # the plugin imports the settings (embedded profile)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
