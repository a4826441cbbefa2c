"""`telecare demo` on a port another program holds: a clear line and exit 2, never the "sign in
as" lines of a demo that is not there."""

import socket
import subprocess
import sys
from pathlib import Path


def test_a_taken_port_is_said_plainly_and_no_sign_in_is_printed(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        finished = subprocess.run([sys.executable, "-m", "telecare.cli", "demo", "--port", str(port), "--duration",
                                   "30", "--data-dir", str(tmp_path / "demo")],
                                  capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2, finished.stdout + finished.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in finished.stdout
    assert "sign in as" not in finished.stdout and "Traceback" not in finished.stderr
