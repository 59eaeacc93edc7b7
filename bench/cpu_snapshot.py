#!/usr/bin/env python3
"""CPU used by every container and host process over a window, in % of one core.

Usage: python3 bench/cpu_snapshot.py SECONDS

Reads the CPU time (user + system, all threads) of every process in /proc at the start and the
end of the window. A process inside a container counts for the container (found by the
container id in its cgroup, named as `docker ps` names it); any other process counts for
`host:<command name>`, so the load generator and docker-proxy show beside the stack. Processes
that start and end inside the window are not seen; a process is matched across the window by
its pid and start time (a kernel worker renames itself), and one started inside the window
counts all its time. Prints the rows of at least 0.5 %, the total and the load average at the
end.

`docker stats` (what e2e-bench samples) shows containers only; this adds what runs on the host,
which on a 2-core machine decides whether the cores are full.
"""

import collections
import os
import re
import subprocess
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CONTAINER_ID = re.compile(r"([0-9a-f]{64})")


def container_names():
    """Full container id -> name, for the running containers."""
    listed = subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(maxsplit=1) for line in listed.splitlines() if line.strip())


def cpu_ticks(names):
    """(pid, start time) -> (container name or `host:<comm>`, CPU ticks used so far)."""
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cgroup") as f:
                cgroup = f.read()
        except OSError:
            continue  # the process ended meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = int(fields[11]) + int(fields[12])  # utime + stime
        started = fields[19]
        found = CONTAINER_ID.search(cgroup)
        if found:
            key = names.get(found.group(1), "container " + found.group(1)[:12])
        else:
            key = "host:" + comm
        ticks[(pid, started)] = (key, used)
    return ticks


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cpu_snapshot.py SECONDS")
    window = float(sys.argv[1])
    names = container_names()
    before, started = cpu_ticks(names), time.monotonic()
    time.sleep(window)
    after, elapsed = cpu_ticks(names), time.monotonic() - started
    shares = collections.Counter()
    for process, (key, used) in after.items():
        _, used_before = before.get(process, (key, 0))
        shares[key] += (used - used_before) / CLOCK_TICKS / elapsed * 100
    total = 0.0
    for key, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        if share >= 0.5:
            print(f"{key:40s} {share:6.1f} %")
            total += share
    with open("/proc/loadavg") as f:
        load = f.read().strip()
    print(f"{'total':40s} {total:6.1f} %   load average {load}")


if __name__ == "__main__":
    main()
