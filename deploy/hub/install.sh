#!/bin/sh
# Install the telecare hub on a Raspberry Pi (Raspberry Pi OS / Debian), as root, from a
# checkout of this repository:   sudo sh deploy/hub/install.sh
#
# Creates the system user telecare-hub (in group bluetooth), a virtualenv in
# /opt/telecare-hub with '.[hub]', /etc/telecare-hub with the example configuration and a
# placeholder password file, and the systemd unit. It does NOT enable or start the hub
# while the configuration still holds placeholders: edit /etc/telecare-hub/hub.toml and
# /etc/telecare-hub/password, then run this script again (or `systemctl enable --now telecare-hub`).
set -eu

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PREFIX=/opt/telecare-hub
ETC=/etc/telecare-hub
PLACEHOLDER=replace-with-the-hub-password-from-the-centre   # hub_agent/config.py EXAMPLE_PASSWORD

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root" >&2
    exit 1
fi

apt-get install -y --no-install-recommends python3-venv bluez
getent group bluetooth >/dev/null || groupadd --system bluetooth
if ! id telecare-hub >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/telecare-hub --no-create-home --shell /usr/sbin/nologin \
        --groups bluetooth telecare-hub
fi

python3 -m venv "$PREFIX/.venv"
"$PREFIX/.venv/bin/pip" install --upgrade pip
"$PREFIX/.venv/bin/pip" install "$SRC[hub]"

install -d -m 0750 -o root -g telecare-hub "$ETC"
if [ ! -e "$ETC/hub.toml" ]; then
    install -m 0640 -o root -g telecare-hub "$SRC/deploy/hub/hub.example.toml" "$ETC/hub.toml"
fi
if [ ! -e "$ETC/password" ]; then
    umask 077
    printf '%s\n' "$PLACEHOLDER" > "$ETC/password"
    chown telecare-hub:telecare-hub "$ETC/password"
    chmod 0600 "$ETC/password"
fi
install -m 0644 "$SRC/deploy/hub/telecare-hub.service" /etc/systemd/system/telecare-hub.service
systemctl daemon-reload

# Enable only a configuration the hub accepts: its own check, as the hub's user.
if runuser -u telecare-hub -- "$PREFIX/.venv/bin/python" -c '
import sys
from pathlib import Path
from hub_agent.config import ConfigError, centre_password, load_config
try:
    centre_password(load_config(Path(sys.argv[1])))
except ConfigError as error:
    print(f"not enabled: {error}", file=sys.stderr)
    sys.exit(2)
' "$ETC/hub.toml"; then
    systemctl enable --now telecare-hub
    echo "telecare-hub enabled and started; follow it with: journalctl -u telecare-hub -f"
else
    echo "Edit $ETC/hub.toml and $ETC/password, then run this script again." >&2
fi
