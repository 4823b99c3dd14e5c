"""Shared by the tests of deployed settings: ``manage.py`` in a fresh process, configured only
by the variables given (no .env), as a production server would be."""

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION = {"ALLOWED_HOSTS": "keyturn.example.com"}  # DEBUG off, HTTPS on: the defaults


def manage(*args, **variables) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "KEYTURN_ENV_FILE": os.devnull, **variables}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fresh_keys() -> dict[str, str]:
    """A deployable key set from ``generate_keys``, as {variable: value}."""
    done = manage("generate_keys")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def settings_of(names, **variables) -> dict:
    """The values of the settings ``names`` in a process started with ``variables``."""
    code = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=str))"
    )
    done = manage("shell", "--no-imports", "-c", code, **variables)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
