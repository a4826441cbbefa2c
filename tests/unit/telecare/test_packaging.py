"""A Raspberry Pi hub installs `telecare[hub]` only: the hub's code must never need the
centre's libraries. Checked by importing every hub module with those libraries hidden."""

import subprocess
import sys
from pathlib import Path

HUB_PACKAGES = ["hub_agent", "telecare_protocol", "firmware_stubs"]
CENTRE_ONLY = ["sqlalchemy", "alembic", "fastapi", "uvicorn", "starlette", "pydantic_settings", "jwt", "argon2",
               "prometheus_client", "amqtt", "apprise", "fhir", "httpx", "aiosmtpd", "psycopg"]
ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import importlib, pkgutil, sys
hidden = set(sys.argv[1].split(","))
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in hidden:
            raise ImportError(f"{name} is a centre-only library")
        return None
sys.meta_path.insert(0, Hide())
for package in sys.argv[2].split(","):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        print(info.name)
"""


def test_the_hub_imports_nothing_from_the_centre() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, ",".join(CENTRE_ONLY), ",".join(HUB_PACKAGES)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    imported = done.stdout.split()
    assert "hub_agent.agent" in imported and "hub_agent.uplink" in imported and "telecare_protocol.codec" in imported
