#!/usr/bin/env bash
# Set-up for a fresh Debian 12 or Raspberry Pi OS: Debian packages that are missing
# (as root, with apt-get), then a virtual environment in .venv with the project in it.
#   scripts/setup.sh          what `make demo` needs
#   scripts/setup.sh --test   also what the tests need (Chromium, PostgreSQL, VictoriaMetrics)
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || want+=(python3-venv python3-pip)
have mosquitto || want+=(mosquitto)
if [ "${1:-}" = "--test" ]; then
  have chromium || want+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
  have victoria-metrics || want+=(victoria-metrics)  # stands in for InfluxDB 2 (same /api/v2/write)
fi

if [ ${#want[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian packages: ${want[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}"
    # Debian starts system-wide services (a broker on 1883, VictoriaMetrics on 8428); ours are
    # started per run, on their own ports.
    for service in mosquitto victoria-metrics; do
      if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl disable --now "$service" || true
      fi
    done
  else
    echo "Missing Debian packages: ${want[*]} (run as root, or: sudo apt-get install ${want[*]})" >&2
    [ "${1:-}" = "--test" ] && exit 1
  fi
fi

if [ "${1:-}" != "--test" ] || [ ! -x .venv/bin/python ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
fi
