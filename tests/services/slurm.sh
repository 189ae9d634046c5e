#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `cluster` (and for trying
# hydra/launcher=slurm by hand). Debian's packages, no systemd, no cgroups, no accounting daemon.
#
#   bash tests/services/slurm.sh install   # apt packages, once per machine (root)
#   bash tests/services/slurm.sh start     # munge, slurmctld, slurmd; waits for the node to be idle
#   bash tests/services/slurm.sh stop      # cancels every job, waits for the queue to empty, stops them
#   bash tests/services/slurm.sh status    # exit 0 when the node takes jobs
#
# The node is this host, with the CPUs and memory `slurmd -C` finds, and no GPU: a CPU-only
# partition named `cpu`, as on many clusters. Partition limits are SLURM's defaults
# (EnforcePartLimits=NO: a job asking for more than the node has waits PENDING forever), so the
# tests show that the launcher's own check refuses such a request instead.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
STATE=/var/lib/slurm
LOGS=/var/log/slurm
PACKAGES=(slurmctld slurmd slurm-client munge)

need_root() {
    if [ "$(id -u)" != 0 ]; then echo "slurm.sh: $1 needs root" >&2; exit 1; fi
}

install() {
    need_root install
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    apt-get update -qq  # a clean machine's package lists are missing or stale
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_config() {
    local node
    node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=...
    mkdir -p /etc/slurm "$STATE/slurmctld" "$STATE/slurmd" "$LOGS"
    cat > "$CONF" <<EOF
# Written by tests/services/slurm.sh: a one-node cluster for lenet-sweeps' tests.
ClusterName=lenet
SlurmctldHost=$(hostname)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
KillWait=10
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
$node State=UNKNOWN
PartitionName=cpu Nodes=$(hostname) Default=YES MaxTime=60 State=UP
EOF
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged
}

status() {
    sinfo -h -N -o '%T' 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'
}

start() {
    need_root start
    if status; then return; fi
    write_config
    start_munge
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 100); do
        if status; then return; fi
        sleep 0.2
    done
    # A node left DOWN by an earlier unclean stop comes back on request.
    scontrol update NodeName="$(hostname)" State=RESUME 2>/dev/null || true
    for _ in $(seq 50); do
        if status; then return; fi
        sleep 0.2
    done
    echo "slurm.sh: the node did not become idle; see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
    sinfo >&2 || true
    exit 1
}

stop() {
    need_root stop
    if pgrep -x slurmctld >/dev/null; then
        scancel --full --quiet --user=root 2>/dev/null || true
        scancel --full --quiet 2>/dev/null || true
        for _ in $(seq 150); do  # KillWait (10 s) then SIGKILL: the queue empties within ~15 s
            [ -z "$(squeue -h 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    for daemon in slurmd slurmctld; do
        pkill -x "$daemon" 2>/dev/null || true
        for _ in $(seq 50); do pgrep -x "$daemon" >/dev/null || break; sleep 0.1; done
    done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
