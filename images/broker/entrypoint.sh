#!/bin/sh
# Runs `nisshi "$@"`. The storage engine comes from BROKER_STORAGE (a URL without a password,
# e.g. postgres://nisshi@fleet-broker-storage:5432/nisshi or sqlite://nisshi.db). When
# BROKER_STORAGE_PASSWORD_FILE names a file, its content becomes the URL's password, so the
# password never appears in the container's configuration (`docker inspect`).
set -eu
if [ -n "${BROKER_STORAGE:-}" ]; then
    storage="$BROKER_STORAGE"
    if [ -n "${BROKER_STORAGE_PASSWORD_FILE:-}" ]; then
        password=$(cat "$BROKER_STORAGE_PASSWORD_FILE")
        scheme="${storage%%://*}"
        rest="${storage#*://}"
        user="${rest%%@*}"
        host="${rest#*@}"
        storage="${scheme}://${user}:${password}@${host}"
    fi
    STORAGE_ENGINE="$storage"
    export STORAGE_ENGINE
fi
exec /usr/local/bin/nisshi "$@"
