#!/usr/bin/env bash
# Stop what scripts/ci/start-slurm.sh started (jobs first, then slurmd, slurmctld, munged).
state=${SLURM_STATE:-/tmp/xpm-slurm}
scancel --full $(squeue -h -o %i 2>/dev/null) 2>/dev/null || true
for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" /run/munge/munged.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
done
true
