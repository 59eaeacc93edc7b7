#!/bin/bash
# Runs Tansu. `tansu broker ...` is exec'd as it is. `tansu proxy ...` (the broker's host
# listener) is supervised: Tansu 0.6.0's proxy keeps its connection to the origin broker and
# never reconnects, so after the broker restarts every request through the proxy fails. This
# script watches the origin (a TCP connect every half second) and restarts the proxy once the
# origin went away and answers again. SIGTERM stops the proxy and the script.
set -u
if [ "${1:-}" != "proxy" ]; then
    exec /usr/local/bin/tansu "$@"
fi

origin=""
previous=""
for arg in "$@"; do
    [ "$previous" = "--origin-url" ] && origin="${arg#*://}"
    previous="$arg"
done
if [ -z "$origin" ]; then
    echo "entrypoint: tansu proxy needs --origin-url" >&2
    exit 2
fi
origin_host="${origin%:*}"
origin_port="${origin##*:}"

reachable() {
    (exec 3<>"/dev/tcp/${origin_host}/${origin_port}") 2>/dev/null
}

pid=""
stop() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
    exit 0
}
trap stop TERM INT

while true; do
    until reachable; do sleep 0.5; done
    /usr/local/bin/tansu "$@" &
    pid=$!
    # Keep the proxy while it runs and the origin answers.
    while kill -0 "$pid" 2>/dev/null && reachable; do sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "entrypoint: origin ${origin} went away; restarting the proxy when it is back" >&2
        kill -TERM "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    pid=""
done
