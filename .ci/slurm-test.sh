#!/usr/bin/env bash
# A real single-node Slurm (Debian's slurm-wlm and munge, as root, no
# systemd): submits the quick study as an array of 4 with the example
# script cmd/batchlab/examples/study-array.sbatch, waits, and checks that
# the merged report's numbers equal a single-process quick study's (wall
# times left out). Prints both wall times. Then it submits the array again,
# SIGKILLs task 2's process mid-run, reruns index 2 alone, and checks the
# numbers once more. Everything lives in a temporary
# directory (a private slurm.conf through SLURM_CONF, a private munge
# socket, ports 16817/16818), and the daemons it started are stopped by PID
# on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
array_timeout=${SLURM_TEST_TIMEOUT:-1800} # seconds

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge
fi

tmp=$(mktemp -d /tmp/batchlab-slurm.XXXXXX)
chmod 755 "$tmp" # munged runs as munge and must reach its directory
pids=()
stop() {
	local rc=$?
	[ -n "${jobid:-}" ] && [ "$rc" != 0 ] && scancel "$jobid" 2>/dev/null || true
	for f in "$tmp/slurmd.pid" "$tmp/slurmctld.pid" "$tmp/munge/munged.pid"; do
		if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
	done
	sleep 1
	if [ "$rc" != 0 ]; then
		echo "slurm-test FAILED (exit $rc); logs:"
		tail -n 20 "$tmp"/*.log "$tmp"/shard-*.out 2>/dev/null || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap stop EXIT
fail() { echo "slurm-test: $*" >&2; exit 1; }

echo "== build batchlab (CPU) and make sure MNIST is there"
go build -tags cpu -o "$tmp/batchlab" ./cmd/batchlab
go build -tags cpu -o "$tmp/samenumbers" ./bench/study/internal/samenumbers
"$tmp/batchlab" data >/dev/null

echo "== munged on a private socket"
mkdir -p "$tmp/munge"
chown munge: "$tmp/munge"
chmod 700 "$tmp/munge"
[ -r /etc/munge/munge.key ] || fail "/etc/munge/munge.key missing (the munge package makes it)"
runuser -u munge -- /usr/sbin/munged --force --socket="$tmp/munge/munge.socket" \
	--pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/seed"
for _ in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$tmp/munge/munge.socket" ] || fail "munged did not start"

echo "== slurmctld and slurmd, one node"
host=$(hostname -s)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$tmp/state" "$tmp/spool"
export SLURM_CONF="$tmp/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=batchlabci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
	state=$(sinfo -h -o %t 2>/dev/null || true)
	[ "$state" = idle ] && break
	sleep 1
done
[ "$state" = idle ] || fail "the node did not become idle (sinfo: '$state')"

echo "== the quick study as a Slurm array of 4 (the example script)"
start=$(date +%s)
jobid=$(BATCHLAB="$tmp/batchlab" STUDY_OUT="$tmp/array" sbatch --parsable --chdir="$tmp" \
	--output="$tmp/shard-%a.out" cmd/batchlab/examples/study-array.sbatch)
echo "submitted job array $jobid"
while [ -n "$(squeue -h -j "$jobid" 2>/dev/null)" ]; do
	[ $(($(date +%s) - start)) -lt "$array_timeout" ] || fail "the array did not finish in ${array_timeout}s"
	sleep 2
done
array_s=$(($(date +%s) - start))
not_completed=$(scontrol -o show job "$jobid" | grep -v 'JobState=COMPLETED' || true)
[ -z "$not_completed" ] || fail "array tasks not COMPLETED: $not_completed"
for i in 0 1 2 3; do
	head -n 1 "$tmp/shard-$i.out" | grep -q "shard $i/4 (from SLURM_ARRAY_TASK_ID=$i, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=4)" ||
		fail "task $i did not take its shard from Slurm: $(head -n 1 "$tmp/shard-$i.out")"
done
[ -s "$tmp/array/report.html" ] || fail "no task wrote the report"
echo "array of 4: ${array_s}s from submission to the last task's end"

echo "== the quick study as one process"
start=$(date +%s)
"$tmp/batchlab" study --quick --out "$tmp/single" >"$tmp/single.log" 2>&1 ||
	fail "the single-process study failed: $(tail -n 3 "$tmp/single.log")"
single_s=$(($(date +%s) - start))
echo "one process: ${single_s}s"

echo "== same numbers?"
"$tmp/samenumbers" "$tmp/single" "$tmp/array"
echo "== SIGKILL task 2 mid-run, rerun index 2 alone"
jobid=$(BATCHLAB="$tmp/batchlab" STUDY_OUT="$tmp/killed" sbatch --parsable --chdir="$tmp" \
	--output="$tmp/killed-%a.out" cmd/batchlab/examples/study-array.sbatch)
start=$(date +%s)
pid=
while [ -z "$pid" ]; do
	[ $(($(date +%s) - start)) -lt "$array_timeout" ] || fail "task 2 never started its second run"
	sleep 0.5
	run=$(grep -o '^\[[0-9]*/[0-9]*\] .*' "$tmp/killed-2.out" 2>/dev/null | sed -n 2p | cut -d' ' -f2 || true)
	[ -n "$run" ] || continue
	pid=$(cat "$tmp/killed/runs/$run".claim.* 2>/dev/null | grep -o '"pid":[0-9]*' | cut -d: -f2 || true)
done
kill -KILL "$pid"
echo "killed task 2 (process $pid) in run $run"
while [ -n "$(squeue -h -j "$jobid" 2>/dev/null)" ]; do
	[ $(($(date +%s) - start)) -lt "$array_timeout" ] || fail "the array did not finish in ${array_timeout}s"
	sleep 2
done
[ ! -e "$tmp/killed/runs/$run.json" ] || fail "the killed run $run left a result"
[ ! -e "$tmp/killed/report.html" ] || fail "a report was written with task 2's runs missing"
jobid=$(BATCHLAB="$tmp/batchlab" STUDY_OUT="$tmp/killed" STUDY_ARGS="--quick --shards 4" sbatch --parsable --chdir="$tmp" \
	--array=2 --output="$tmp/rerun-%a.out" cmd/batchlab/examples/study-array.sbatch)
while [ -n "$(squeue -h -j "$jobid" 2>/dev/null)" ]; do
	[ $(($(date +%s) - start)) -lt "$array_timeout" ] || fail "the rerun did not finish in ${array_timeout}s"
	sleep 2
done
head -n 1 "$tmp/rerun-2.out" | grep -q "shard 2/4 (from SLURM_ARRAY_TASK_ID=2 and --shards 4)" ||
	fail "the rerun did not take shard 2/4: $(head -n 1 "$tmp/rerun-2.out")"
grep -q "^\[[0-9]*/[0-9]*\] $run\$" "$tmp/rerun-2.out" || fail "the rerun did not redo $run"
"$tmp/samenumbers" "$tmp/single" "$tmp/killed"
echo "slurm-test: ok (quick study: 1 process ${single_s}s, Slurm array of 4 ${array_s}s, on $(nproc) cores)"
