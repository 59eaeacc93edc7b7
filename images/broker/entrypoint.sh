#!/bin/bash
# Runs Tansu. `tansu broker ...` is exec'd as it is. `tansu proxy ...` (the broker's host
# listener) is supervised: Tansu 0.6.0's proxy keeps its connection to the origin broker and
# never reconnects, so after the broker restarts every request through the proxy fails. Every
# second this script sends a Kafka ApiVersions request through the proxy's own listener; after
# three unanswered ones in a row it restarts the proxy as soon as the origin accepts
# connections again. SIGTERM stops the proxy and the script.
set -u
if [ "${1:-}" != "proxy" ]; then
    exec /usr/local/bin/tansu "$@"
fi

origin=""
listener=""
previous=""
for arg in "$@"; do
    [ "$previous" = "--origin-url" ] && origin="${arg#*://}"
    [ "$previous" = "--listener-url" ] && listener="${arg#*://}"
    previous="$arg"
done
if [ -z "$origin" ] || [ -z "$listener" ]; then
    echo "entrypoint: tansu proxy needs --origin-url and --listener-url" >&2
    exit 2
fi
origin_host="${origin%:*}"
origin_port="${origin##*:}"
listener_port="${listener##*:}"

# The origin accepts TCP connections.
reachable() {
    (exec 3<>"/dev/tcp/${origin_host}/${origin_port}") 2>/dev/null
}

# The proxy answers an ApiVersions v0 request (correlation id 7, client id "hc") within 3 s.
serves() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/${listener_port}" || exit 1
        printf '\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02hc' >&3
        [ "$(timeout 3 head -c 8 <&3 | wc -c)" -eq 8 ]
    ) 2>/dev/null
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
    sleep 1
    failures=0
    while kill -0 "$pid" 2>/dev/null && [ "$failures" -lt 3 ]; do
        if serves; then failures=0; else failures=$((failures + 1)); fi
        sleep 1
    done
    echo "entrypoint: the proxy stopped answering (origin ${origin}); restarting it" >&2
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
done
