#!/bin/sh
# Entry point of Anchor's test container (see Dockerfile and README.rst).
#
#   /key/root-ca.crt + /key/root-ca-unwrapped.key   both mounted: used as they are
#   /key/root-ca-unwrapped.key only                 a certificate is made for that key
#   nothing in /key                                 a new key (mode 0400) and certificate
#   /config/config.json, /config/config.py          used instead of the container's defaults
#
# Then it runs the command it was given (the Dockerfile's CMD: uwsgi on :5016).
# ANCHOR_ROOT (default /) stands for the file system root, so tests can run
# this script in a temporary directory; it refuses to run as root unless
# ANCHOR_ALLOW_ROOT=1, since a CA service has no business running as root.
set -eu
ROOT=${ANCHOR_ROOT:-/}
APP=${ANCHOR_APP:-/opt/anchor}
KEY_DIR="$ROOT/key"
CONFIG_DIR="$ROOT/config"
CA_DIR="$APP/CA"
PYTHON=${ANCHOR_PYTHON:-python3}

if [ "$(id -u)" = 0 ] && [ "${ANCHOR_ALLOW_ROOT:-0}" != 1 ]; then
    echo "anchor: refusing to run as root; run the container as its 'anchor' user" >&2
    exit 1
fi

mkdir -p "$CA_DIR" "$APP/certs"
if [ -f "$CA_DIR/root-ca.crt" ]; then
    echo "anchor: using the CA already in $CA_DIR"
elif [ -f "$KEY_DIR/root-ca-unwrapped.key" ] && [ -f "$KEY_DIR/root-ca.crt" ]; then
    echo "anchor: using the CA key and certificate mounted at $KEY_DIR"
    cp "$KEY_DIR/root-ca.crt" "$CA_DIR/root-ca.crt"
    cp "$KEY_DIR/root-ca-unwrapped.key" "$CA_DIR/root-ca-unwrapped.key"
    chmod 0400 "$CA_DIR/root-ca-unwrapped.key"
elif [ -f "$KEY_DIR/root-ca-unwrapped.key" ]; then
    echo "anchor: making a certificate for the CA key mounted at $KEY_DIR"
    cp "$KEY_DIR/root-ca-unwrapped.key" "$CA_DIR/root-ca-unwrapped.key"
    chmod 0400 "$CA_DIR/root-ca-unwrapped.key"
    "$PYTHON" -m anchor.testca "$CA_DIR" --existing-key
else
    echo "anchor: no CA mounted at $KEY_DIR; making a new test CA"
    "$PYTHON" -m anchor.testca "$CA_DIR"
fi

if [ -f "$CONFIG_DIR/config.json" ]; then
    export ANCHOR_CONF="$CONFIG_DIR/config.json"
else
    export ANCHOR_CONF="$APP/tools/docker/config.json"
fi
if [ -f "$CONFIG_DIR/config.py" ]; then
    cp "$CONFIG_DIR/config.py" "$APP/config.py"
fi
echo "anchor: config.json is $ANCHOR_CONF"
cd "$APP"
exec "$@"
