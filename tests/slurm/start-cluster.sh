#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, without systemd, for tests/test_slurm.py:
#
#   sudo bash tests/slurm/start-cluster.sh
#
# Installs Debian's slurm-wlm and munge when they are missing (Debian 12: Slurm 22.05), starts
# munged by hand, writes /etc/slurm/slurm.conf (the executor's job step drops SLURM_CONF, so the
# file must sit at the default path) and /etc/slurm/gres.conf, then starts slurmctld and slurmd
# on localhost and waits until the node is idle. The node has the machine's real CPUs and memory
# and two fake GPUs (gres on /dev/null and /dev/zero, type "fake") so that GPU requests are
# scheduled for real. Two partitions share the node: "cpu" (the default) and "gpu".
# No accounting (sacct has nothing to report): Snakemake needs --slurm-status-command squeue.
#
# Idempotent: when the daemons already run with the same configuration it only checks the node.
# Exits non-zero with a message when the cluster cannot be brought up.
set -euo pipefail

SLURM_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm
LOG_DIR=/var/log/slurm
WAIT_S=${SLURM_START_TIMEOUT:-90}

die() {
    echo "start-cluster.sh: $*" >&2
    exit 1
}

alive() {  # alive PIDFILE: the daemon recorded in PIDFILE is running
    [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop() {  # stop PIDFILE: end the daemon recorded in PIDFILE and wait for it
    local pid
    alive "$1" || return 0
    pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons)"

# --- packages ---------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get"
    echo "start-cluster.sh: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi

# --- munge ------------------------------------------------------------------------------------
mkdir -p /run/munge /var/lib/munge /var/log/munge /etc/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge /etc/munge
chmod 0755 /run/munge
chmod 0700 /etc/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key \
        || die "cannot create /etc/munge/munge.key"
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"
fi

# --- configuration ----------------------------------------------------------------------------
NODE=$(hostname -s)
# "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=N"
HARDWARE=$(slurmd -C | head -n 1) || die "slurmd -C cannot describe this machine"
[[ $HARDWARE == NodeName=* ]] || die "unexpected output of slurmd -C: $HARDWARE"
NODE_LINE="${HARDWARE/NodeName=* CPUs=/NodeName=$NODE NodeAddr=127.0.0.1 CPUs=} Gres=gpu:fake:2"

mkdir -p "$SLURM_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd" "$LOG_DIR"
CONF=$(cat <<EOF
# Written by tests/slurm/start-cluster.sh: a one-node test cluster on localhost.
ClusterName=neuralogcm-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
KillWait=30
SchedulerType=sched/backfill
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$NODE_LINE State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
)
GRES=$(cat <<EOF
# Written by tests/slurm/start-cluster.sh: two fake GPUs for scheduling tests.
NodeName=$NODE Name=gpu Type=fake File=/dev/null
NodeName=$NODE Name=gpu Type=fake File=/dev/zero
EOF
)

changed=0
if [[ ! -f $SLURM_DIR/slurm.conf ]] || [[ $(cat "$SLURM_DIR/slurm.conf") != "$CONF" ]]; then
    printf '%s\n' "$CONF" > "$SLURM_DIR/slurm.conf"
    changed=1
fi
if [[ ! -f $SLURM_DIR/gres.conf ]] || [[ $(cat "$SLURM_DIR/gres.conf") != "$GRES" ]]; then
    printf '%s\n' "$GRES" > "$SLURM_DIR/gres.conf"
    changed=1
fi

# --- daemons ----------------------------------------------------------------------------------
if [[ $changed -eq 1 ]]; then
    stop /run/slurmd.pid
    stop /run/slurmctld.pid
fi
if ! alive /run/slurmctld.pid; then
    # -i: start even if the saved state does not match the configuration (e.g. a new node)
    slurmctld -i || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
fi
for _ in $(seq 50); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP \
    || die "slurmctld does not answer (see $LOG_DIR/slurmctld.log)"
if ! alive /run/slurmd.pid; then
    slurmd -N "$NODE" || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
fi

# --- wait for the node --------------------------------------------------------------------------
state=""
for _ in $(seq $((WAIT_S * 2))); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n 1)
    case $state in
        idle | mix | alloc) break ;;
        drain* | drng | down*)  # left over from an earlier configuration
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
case $state in
    idle | mix | alloc) ;;
    *)
        tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
        die "node $NODE is '$state', not idle, after ${WAIT_S}s" ;;
esac
echo "start-cluster.sh: Slurm is up: node $NODE is $state ($(sinfo -h -o '%P %c CPUs %m MB %G' | tr '\n' ';'))"
