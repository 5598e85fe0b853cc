#!/usr/bin/env bash
# Train the reference MLP 784-512-512-10 (ReLU, softmax cross-entropy,
# momentum SGD, float32) on MNIST with PyTorch and with batchlab's CPU device
# (OpenBLAS build) on this machine, with the same thread count and batch
# sizes, and print samples/s per batch size — the median over RUNS runs —
# and batchlab's ratio to PyTorch.
#
# PyTorch runs twice per round: as installed (torch.set_num_threads and
# OPENBLAS_NUM_THREADS = THREADS) and with OMP_WAIT_POLICY=PASSIVE, which on
# a 2-core machine keeps its idle OpenMP threads from spinning against
# OpenBLAS's. The ratio is taken against the faster of the two. batchlab runs
# with GOMAXPROCS = THREADS (its GEMMs split across that many goroutines),
# twice as well: with --transfer uint8, the same data path as the PyTorch
# script's (gather the batch's bytes, convert them to float32 on the
# device), and with the default pageable transfer (normalize on the host,
# copy float32). The runs are interleaved, in an order that rotates each
# round, so that a noisy machine slows them alike.
#
# Each run trains EPOCHS epochs and times the last one's training pass.
# With GEMM=1 it first times the GEMMs of a step alone (GFLOP/s): PyTorch's
# torch.matmul, batchlab's device Gemm with OpenBLAS and with its Go SGEMM,
# and gonum's Sgemm (engine/device BenchmarkGemm).
#
#   bash bench/compare_pytorch.sh            (or: make compare-pytorch)
#   RUNS=3 BATCHES="32 2048" GEMM=1 bash bench/compare_pytorch.sh
#
# MODEL=lenet5 (or cnn:F,F,…, batchlab's --model) compares that CNN instead
# of the MLP, the same way (batches 32, 128 and 512 unless BATCHES says).
# Both train with momentum 0.9 at lr LR: 0.1 for the MLP (batchlab train's
# default), 0.03 for a CNN, where 0.1 leaves LeNet-5 at chance in many runs.
# ACCURACY=1 compares what the two learn instead of their speed: each trains
# MODEL for EPOCHS epochs at BATCH (default 128) once per seed of SEEDS (default "1 2 3"),
# interleaved, on DATASET (mnist or fashion-mnist, as --dataset); it prints each run's test accuracy and training
# seconds, and the means. E.g. the README's LeNet-5 on Fashion-MNIST:
#
#   ACCURACY=1 MODEL=lenet5 EPOCHS=5 DATASET=fashion-mnist bash bench/compare_pytorch.sh
#
# Needs Debian's python3-torch with libopenblas0-pthread (else PyTorch runs on
# the reference BLAS), libopenblas-dev for batchlab, and MNIST (make data).
#
# DEVICE=cuda compares on the GPU instead: PyTorch on cuda (data resident on
# the GPU) against batchlab --device cuda with --transfer pageable and with
# --transfer resident --graph, the same model, batches and epochs. With
# BATCHLAB=path a prebuilt batchlab runs and no Go is needed (the GPU kit's
# run.sh does this):
#
#   DEVICE=cuda BATCHLAB=bin/batchlab BATCHES="64 1024" bash bench/compare_pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
MODEL=${MODEL:-mlp}
if [ "$MODEL" = mlp ]; then
	BATCHES=${BATCHES:-"32 128 512 2048"} LR=${LR:-0.1}
	model_flags=()
else
	BATCHES=${BATCHES:-"32 128 512"} LR=${LR:-0.03}
	model_flags=(--model "$MODEL")
fi
model_flags+=(--lr "$LR" --momentum 0.9)
TORCH_FLAGS=(--lr "$LR" --momentum 0.9)
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-2}
PYTHON=${PYTHON:-/usr/bin/python3}
DATASET=${DATASET:-mnist}
case $DATASET in
mnist) DATA=${BATCHLAB_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/mnist} ;;
fashion-mnist) DATA=${BATCHLAB_DATA:-/usr/share/datasets/fashion-mnist} ;; # Debian's dataset-fashion-mnist
*)
	echo "compare-pytorch: DATASET=$DATASET: want mnist or fashion-mnist" >&2
	exit 1
	;;
esac
DEVICE=${DEVICE:-cpu}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case $DEVICE in
cpu) tags=cpu,openblas ;;
cuda) tags= ;;
*)
	echo "compare-pytorch: DEVICE=$DEVICE: want cpu or cuda" >&2
	exit 1
	;;
esac
batchlab=${BATCHLAB:-$out/batchlab}
[ -n "${BATCHLAB:-}" ] || go build -tags "$tags" -o "$batchlab" ./cmd/batchlab
"$PYTHON" -c 'import torch' 2>/dev/null || {
	echo "compare-pytorch: $PYTHON has no torch (Debian: apt-get install python3-torch libopenblas0-pthread)" >&2
	exit 1
}
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
	echo "compare-pytorch: DEVICE=cuda, but PyTorch in $PYTHON sees no CUDA device" >&2
	exit 1
fi

run_batchlab() { # batch, engine name, train flags → one JSON line
	env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS GOMAXPROCS="$THREADS" \
		"$batchlab" train --device "$DEVICE" --dataset "$DATASET" --data "$DATA" "${model_flags[@]}" --batch "$1" "${@:3}" --epochs "$EPOCHS" --json --no-progress |
		"$PYTHON" -c 'import json, sys
r = json.load(sys.stdin); e = r["epochs"][-1]
print(json.dumps({"engine": "batchlab-" + sys.argv[1], "batch": e["batch"], "samples_per_sec": e["samples_per_sec"], "test_accuracy": e["test_accuracy"]}))' "$2"
}

run_torch() { # batch, engine name, extra environment → one JSON line
	env OPENBLAS_NUM_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" "${@:3}" \
		"$PYTHON" bench/torch_mlp.py --device "$DEVICE" --data "$DATA" --model "$MODEL" --batch "$1" --threads "$THREADS" --epochs "$EPOCHS" "${TORCH_FLAGS[@]}" |
		"$PYTHON" -c 'import json, sys; r = json.loads(sys.stdin.read()); r["engine"] = sys.argv[1]; print(json.dumps(r))' "$2"
}

if [ "${ACCURACY:-0}" = 1 ]; then
	# PyTorch with OMP_WAIT_POLICY=PASSIVE, its faster setting here.
	echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%Y-%m-%d); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "model $MODEL, data $DATA, batch ${BATCH:-128}, lr $LR, momentum 0.9, $EPOCHS epochs, seeds ${SEEDS:-1 2 3}, threads $THREADS"
	for seed in ${SEEDS:-1 2 3}; do
		env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS GOMAXPROCS="$THREADS" \
			"$batchlab" train --device "$DEVICE" --dataset "$DATASET" --data "$DATA" "${model_flags[@]}" --batch "${BATCH:-128}" \
			--epochs "$EPOCHS" --seed "$seed" --json --no-progress |
			"$PYTHON" -c 'import json, sys
r = json.load(sys.stdin); e = r["epochs"]
print(json.dumps({"engine": "batchlab", "seed": int(sys.argv[1]), "test_accuracy": e[-1]["test_accuracy"], "train_seconds": sum(x["seconds"] for x in e)}))' "$seed"
		TORCH_FLAGS=(--seed "$seed" --lr "$LR" --momentum 0.9)
		run_torch "${BATCH:-128}" pytorch OMP_WAIT_POLICY=PASSIVE
	done | tee "$out/runs.jsonl"
	"$PYTHON" - "$out/runs.jsonl" <<'EOF'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["engine"]].append(r)
print()
for e, rs in sorted(runs.items()):
    acc = [100 * r["test_accuracy"] for r in rs]
    sec = [r["train_seconds"] for r in rs]
    print("%-9s test accuracy %s: mean %.2f%% (sd %.2f); training %.0f s per run (median)" % (
        e, ", ".join("%.2f%%" % a for a in acc), statistics.mean(acc), statistics.stdev(acc) if len(acc) > 1 else 0,
        statistics.median(sec)))
EOF
	exit 0
fi

if [ "$DEVICE" = cuda ]; then
	echo "GPU: $("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0), "· torch", torch.__version__)'); $(date -u +%Y-%m-%d)"
	echo "model $MODEL, lr $LR, momentum 0.9, threads $THREADS, $RUNS runs, epochs $EPOCHS (the last timed), batches $BATCHES"
	for run in $(seq "$RUNS"); do
		for b in $BATCHES; do
			run_torch "$b" pytorch-cuda
			run_batchlab "$b" pageable --transfer pageable
			run_batchlab "$b" resident-graph --transfer resident --graph
		done | tee -a "$out/runs.jsonl" | sed "s/^/run $run: /" >&2
	done
	"$PYTHON" - "$out/runs.jsonl" <<'EOF'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["batch"], r["engine"])].append(r["samples_per_sec"])
med = {k: statistics.median(v) for k, v in runs.items()}
print()
print("median samples/s over %d runs, on the GPU" % max(len(v) for v in runs.values()))
print("%6s  %12s  %17s  %23s  %s" % ("batch", "pytorch", "batchlab pageable", "batchlab resident graph",
                                     "batchlab / pytorch (pageable, resident graph)"))
for b in sorted({k[0] for k in med}):
    t = med.get((b, "pytorch-cuda"), 0) or float("nan")
    g, r = med.get((b, "batchlab-pageable"), 0), med.get((b, "batchlab-resident-graph"), 0)
    print("%6d  %12.0f  %17.0f  %23.0f  %.2fx, %.2fx" % (b, t, g, r, g / t, r / t))
EOF
	exit 0
fi

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the numbers)"

if [ "${GEMM:-0}" = 1 ]; then
	echo "GEMM GFLOP/s on a step's products, $THREADS threads (PyTorch: median of 5; Go: mean of 5 runs)"
	for b in $BATCHES; do
		OPENBLAS_NUM_THREADS="$THREADS" "$PYTHON" bench/torch_mlp.py --data "$DATA" --gemm --batch "$b" --threads "$THREADS"
	done | "$PYTHON" -c 'import json, sys
for l in sys.stdin:
    r = json.loads(l); print("  batch=%d/op=%s/impl=pytorch  %.1f GFLOP/s" % (r["batch"], r["op"], r["gflops"]))'
	batches="($(echo $BATCHES | tr ' ' '|'))"
	for run in "cpu,openblas openblas" "cpu (go|gonum)"; do
		set -- $run
		env -u OPENBLAS_NUM_THREADS GOMAXPROCS="$THREADS" go test -tags "$1" -run '^$' -bench "Gemm/batch=$batches//impl=$2\$" -count 5 ./engine/device |
			awk '/^Benchmark/ { name = $1; sub(/^BenchmarkGemm\//, "", name); sub(/-[0-9]+$/, "", name); s[name] += $5; n[name]++ }
				END { for (k in s) printf "  %s  %.1f GFLOP/s\n", k, s[k] / n[k] }' | sort -V
	done
	echo
fi
echo "model $MODEL, lr $LR, momentum 0.9, threads $THREADS, $RUNS runs, epochs $EPOCHS (the last timed), batches $BATCHES"
for run in $(seq "$RUNS"); do
	for b in $BATCHES; do
		engines=(uint8 pytorch pageable pytorch-passive)
		for i in 0 1 2 3; do
			e=${engines[$(((i + run) % 4))]}
			case $e in
			uint8 | pageable) run_batchlab "$b" "$e" --transfer "$e" ;;
			pytorch) run_torch "$b" pytorch ;;
			pytorch-passive) run_torch "$b" pytorch-passive OMP_WAIT_POLICY=PASSIVE ;;
			esac
		done | tee -a "$out/runs.jsonl" | sed "s/^/run $run: /" >&2
	done
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" - "$out/runs.jsonl" <<'EOF'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["batch"], r["engine"])].append(r["samples_per_sec"])
med = {k: statistics.median(v) for k, v in runs.items()}
print()
print("median samples/s over %d runs" % max(len(v) for v in runs.values()))
print("%6s  %8s  %16s  %15s  %18s  %s" % ("batch", "pytorch", "pytorch passive", "batchlab uint8", "batchlab pageable",
                                           "batchlab / best pytorch (uint8, pageable)"))
for b in sorted({k[0] for k in med}):
    t, p = med.get((b, "pytorch"), 0), med.get((b, "pytorch-passive"), 0)
    u, g = med.get((b, "batchlab-uint8"), 0), med.get((b, "batchlab-pageable"), 0)
    best = max(t, p) or float("nan")
    print("%6d  %8.0f  %16.0f  %15.0f  %18.0f  %.2fx, %.2fx" % (b, t, p, u, g, u / best, g / best))
EOF
