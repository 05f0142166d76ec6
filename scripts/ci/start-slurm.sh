#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (munged, slurmctld, slurmd) without systemd,
# for the Slurm launcher tests.
#
# Prerequisites: run as root; slurm-wlm, slurmctld, slurmd and munge are installed (CI does
#   apt-get install -y --no-install-recommends slurm-wlm slurmctld slurmd munge
# before calling this script; this script installs nothing).
#
# Environment:
#   SLURM_STATE  state folder: spool, logs, pid files, finished-job file  (default /tmp/xpm-slurm)
#
# It writes /etc/slurm/slurm.conf (the default path: sbatch and squeue need no SLURM_CONF), with
# no accounting database (sacct says "accounting storage is disabled"), jobs kept by the
# controller for 300 s after they end, and no scheduling delay. Idempotent: daemons already
# running are left alone.
#
# On success, stdout is exactly one line that can be given to `export`:
#   XPM_TEST_SLURM=1
# Stop the cluster with: scripts/ci/stop-slurm.sh
set -euo pipefail
state=${SLURM_STATE:-/tmp/xpm-slurm}
node=$(hostname -s)
cpus=$(nproc)
memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
memory=$(( memory * 9 / 10 ))   # slurmd refuses a node that has less than it is declared with
mkdir -p "$state/ctld" "$state/d" /etc/slurm

# Slurm needs the node name to resolve.
getent hosts "$node" >/dev/null || echo "127.0.0.1 $node" >> /etc/hosts

# munge: the authentication Slurm's daemons and commands share.
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
munge -n >/dev/null 2>&1 || runuser -u munge -- /usr/sbin/munged
for _ in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=xpmci
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
ReturnToService=2
MinJobAge=300
MailProg=/bin/true
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running "$state/slurmctld.pid" || /usr/sbin/slurmctld -i
running "$state/slurmd.pid" || /usr/sbin/slurmd
for _ in $(seq 300); do
    [ "$(sinfo -h -n "$node" -o %T 2>/dev/null || true)" = idle ] && break
    sleep 0.1
done
if [ "$(sinfo -h -n "$node" -o %T 2>/dev/null || true)" != idle ]; then
    echo "slurm: node $node is not idle" >&2
    tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
    exit 1
fi
echo "XPM_TEST_SLURM=1"
