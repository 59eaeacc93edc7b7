#!/usr/bin/env bash
# Extra Docker daemons on this machine, one per network namespace, as the nodes of a test swarm
# (tests/swarm.rs). Never touches the main engine: every daemon has its own data root, exec
# root, socket, pidfile and cgroup parent, and its own network namespace, so that the swarm's
# gossip port (7946) and VXLAN devices do not collide.
#
#   swarm_nodes.sh up ROOT N     N daemons; prints one line per node: NAME ADDRESS SOCKET REMOTE
#   swarm_nodes.sh down ROOT     stops them and removes everything `up` made (also after a crash)
#
# Node 2 also listens on tcp://ADDRESS:2376 with TLS, client certificates required (a CA, a
# server certificate for its address and a client certificate made here with openssl); its
# REMOTE is `tls:DIR`, the folder holding the client's ca.pem, cert.pem and key.pem. Node 3 runs
# an sshd in its namespace on ADDRESS:22 that lets one generated key in as root and connects
# it to that node's daemon (`docker system dial-stdio`, whatever command was asked); its REMOTE
# is `ssh:KEY`, the private key. The other nodes' REMOTE is `-`. So fleet reaches one node over
# TCP+TLS and one over SSH, as it would remote hosts. `down` also removes the node's entry
# from root's known_hosts, which ssh adds on the first connection.
#
# Layout: a hub namespace holds bridge `br0`; node i (namespace `fswN<i>`) reaches it through a
# veth with 192.168.213.<10+i>/24; the host joins the bridge with 192.168.213.1/24 so that fleet can
# reach the ports the nodes publish. The nodes have no default route: nothing leaves the machine.
set -euo pipefail

cmd=${1:?usage: swarm_nodes.sh up ROOT N | down ROOT}
root=${2:?ROOT missing}
prefix=fswN
hub=fswHub
subnet=192.168.213
controllers=(cpu cpuacct cpuset memory devices freezer blkio pids)

node_addr() { echo "$subnet.$((10 + $1))"; }

# Stops every daemon and removes the namespaces, links, cgroup folders and roots.
down() {
    if [ -d "$root" ]; then
        for pidfile in "$root"/*/docker.pid; do
            [ -f "$pidfile" ] || continue
            pid=$(cat "$pidfile" 2>/dev/null || true)
            [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        done
        # dockerd stops its containers and its containerd; wait for it, then make sure.
        for _ in $(seq 1 100); do
            alive=0
            for pidfile in "$root"/*/docker.pid; do
                [ -f "$pidfile" ] || continue
                pid=$(cat "$pidfile" 2>/dev/null || true)
                [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
            done
            [ "$alive" = 0 ] && break
            sleep 0.1
        done
        for pidfile in "$root"/*/docker.pid "$root"/*/exec/containerd/containerd.pid; do
            [ -f "$pidfile" ] || continue
            pid=$(cat "$pidfile" 2>/dev/null || true)
            [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
        done
    fi
    # Processes left in a node's namespace (containerd shims, container processes).
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^($prefix[0-9]+|$hub)$" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -9 "$pid" 2>/dev/null || true
        done
    done
    # A namespace whose last process just died may still be busy for a moment.
    for _ in $(seq 1 50); do
        left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^($prefix[0-9]+|$hub)$" || true)
        [ -z "$left" ] && break
        for ns in $left; do ip netns del "$ns" 2>/dev/null || true; done
        sleep 0.1
    done
    ip link del fswHost 2>/dev/null || true
    # ssh's first connection to node 3 recorded its (generated) host key.
    if [ -f /root/.ssh/known_hosts ]; then
        ssh-keygen -q -R "$(node_addr 3)" -f /root/.ssh/known_hosts >/dev/null 2>&1 || true
        rm -f /root/.ssh/known_hosts.old
    fi
    # The cgroup folders the daemons made (deepest first).
    for c in "${controllers[@]}" systemd; do
        base=/sys/fs/cgroup/$c
        for dir in "$base"/fleet-swarm-*; do
            [ -d "$dir" ] || continue
            find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
    done
    if [ -d "$root" ]; then
        # fuse-overlayfs and other mounts under the roots, then the roots.
        { grep -o " $root[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
        rm -rf "$root"
    fi
    if [ -f "/run/fleet-swarm-made-netns" ]; then
        if [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
            umount /run/netns 2>/dev/null || true
            rmdir /run/netns 2>/dev/null || true
        fi
        rm -f /run/fleet-swarm-made-netns
    fi
}

# The script each daemon runs inside its namespaces: cgroups visible again, then dockerd.
write_node_script() {
    cat >"$root/node.sh" <<'EOF'
#!/usr/bin/env bash
# $1 node name, $2 node dir. Runs inside `ip netns exec` (own mount namespace) and `unshare --uts`.
set -eu
name=$1 dir=$2
hostname "$name"
# `ip netns exec` remounts /sys, which hides the cgroup hierarchies dockerd needs.
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir -p /sys/fs/cgroup/$c
    mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mkdir -p /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
# $3, when given: this node's address, also served on :2376 with TLS from $dir/tls.
tls=()
if [ -n "${3:-}" ]; then
    tls=(--tlsverify --tlscacert "$dir/tls/ca.pem" --tlscert "$dir/tls/server-cert.pem"
        --tlskey "$dir/tls/server-key.pem" -H "tcp://$3:2376")
fi
exec dockerd --config-file "$dir/daemon.json" --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" "${tls[@]}" \
    --storage-driver fuse-overlayfs --cgroup-parent "/fleet-swarm-$name" --mtu 1400 --log-level warn
EOF
    chmod +x "$root/node.sh"
}

# A CA, a server certificate for address $2 and a client certificate, in folder $1: the
# server's files for dockerd, the client's (ca.pem, cert.pem, key.pem) in $1/client.
make_tls() {
    local tls=$1 addr=$2
    mkdir -p "$tls/client"
    (
        cd "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fleet-test-ca \
            -keyout ca-key.pem -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$addr" -keyout server-key.pem \
            -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$addr" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile server.ext -out server-cert.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj /CN=fleet -keyout client/key.pem \
            -out client.csr 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile client.ext -out client/cert.pem 2>/dev/null
        cp ca.pem client/ca.pem
    )
}

# An sshd for node folder $1 on address $2, in namespace $3, that connects every login to the
# daemon at socket $4; the client's key is $1/ssh/client_key.
start_sshd() {
    local dir=$1 addr=$2 ns=$3 socket=$4 docker
    docker=$(command -v docker)
    mkdir -p "$dir/ssh" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh/client_key"
    cp "$dir/ssh/client_key.pub" "$dir/ssh/authorized_keys"
    chmod 600 "$dir/ssh/authorized_keys"
    printf '%s\n' "ListenAddress $addr" "Port 22" "HostKey $dir/ssh/host_key" \
        "PidFile $dir/ssh/sshd.pid" "AuthorizedKeysFile $dir/ssh/authorized_keys" \
        "PermitRootLogin prohibit-password" "PasswordAuthentication no" \
        "KbdInteractiveAuthentication no" "UsePAM no" "StrictModes no" \
        "ForceCommand $docker -H unix://$socket system dial-stdio" >"$dir/ssh/sshd_config"
    ip netns exec "$ns" /usr/sbin/sshd -f "$dir/ssh/sshd_config" -E "$dir/ssh/sshd.log"
}

up() {
    local n=${1:?N missing}
    down
    mkdir -p "$root"
    [ -d /run/netns ] || touch /run/fleet-swarm-made-netns
    ip netns add "$hub"
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
    ip -n "$hub" link set lo up
    # The host on the bridge.
    ip link add fswHost type veth peer name host netns "$hub"
    ip addr add "$subnet.1/24" dev fswHost
    ip link set fswHost up
    ip -n "$hub" link set host master br0 up
    write_node_script
    for i in $(seq 1 "$n"); do
        local name=$prefix$i dir=$root/$prefix$i addr
        addr=$(node_addr "$i")
        mkdir -p "$dir"
        echo '{}' >"$dir/daemon.json"
        ip netns add "$name"
        ip link add "n$i" netns "$hub" type veth peer name eth0 netns "$name"
        ip -n "$hub" link set "n$i" master br0 up
        ip -n "$name" link set lo up
        ip -n "$name" addr add "$addr/24" dev eth0
        ip -n "$name" link set eth0 up
        local tls_addr=""
        if [ "$i" = 2 ]; then
            make_tls "$dir/tls" "$addr"
            tls_addr=$addr
        fi
        ip netns exec "$name" unshare --uts "$root/node.sh" "$name" "$dir" $tls_addr >"$dir/dockerd.log" 2>&1 &
    done
    for i in $(seq 1 "$n"); do
        local name=$prefix$i dir=$root/$prefix$i
        for _ in $(seq 1 300); do
            if curl -sf --unix-socket "$dir/docker.sock" http://d/_ping >/dev/null 2>&1; then
                break
            fi
            sleep 0.1
        done
        if ! curl -sf --unix-socket "$dir/docker.sock" http://d/_ping >/dev/null 2>&1; then
            echo "dockerd of $name did not answer within 30 s; its log:" >&2
            tail -n 30 "$dir/dockerd.log" >&2 || true
            exit 1
        fi
        local remote=-
        [ -d "$dir/tls/client" ] && remote=tls:$dir/tls/client
        if [ "$i" = 3 ]; then
            start_sshd "$dir" "$(node_addr "$i")" "$name" "$dir/docker.sock"
            remote=ssh:$dir/ssh/client_key
        fi
        echo "$name $(node_addr "$i") $dir/docker.sock $remote"
    done
}

case "$cmd" in
up) up "${3:-}" ;;
down) down ;;
*)
    echo "usage: swarm_nodes.sh up ROOT N | down ROOT" >&2
    exit 2
    ;;
esac
