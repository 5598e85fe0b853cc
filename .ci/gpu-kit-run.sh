#!/usr/bin/env bash
# run.sh OUTDIR: the batchlab GPU kit's whole check, on a GPU machine with
# nothing but an NVIDIA driver and the CUDA libraries (no Go, no compiler, no
# network). make gpu-kit copies this file (.ci/gpu-kit-run.sh) into
# dist/gpu-kit/run.sh beside the prebuilt binaries, MNIST and the PyTorch
# script; CI runs it against the fake driver (kernels/fakecuda) with no Go on
# PATH, so the first run on a real GPU is a script that already ran.
#
# Steps, each PASS or FAIL (SKIP only where the tool is absent or cannot
# start: compute-sanitizer, PyTorch):
#   devices      batchlab devices lists a CUDA device
#   conformance  the CUDA device's tests: the conformance suite against the
#                CPU reference, large inputs, kernel errors, OOM, graphs
#   training     TestGPUTrainMNIST and TestCUDATraining: CPU vs GPU vs GPU with
#                graphs from one seed (fails, not skips, without MNIST)
#   cli          batchlab train --device cuda for every --transfer, with and
#                without --graph, against --device cpu (TestTrainCUDAMatchesCPU)
#   train-*      the batchlab binary trains an epoch of MNIST on the GPU, at
#                small and large batches, with and without graphs, the MLP and
#                LeNet-5: samples/s
#   bench-h2d    go test -bench H2D at a few batch sizes
#   bench-transfer  batchlab bench transfer: the fit t(B) = α + bytes/β
#   memcheck     compute-sanitizer memcheck over the conformance suite
#   pytorch      PyTorch on the same GPU beside batchlab (bench/compare_pytorch.sh),
#                the MLP; pytorch-lenet5 the same for LeNet-5
#
# OUTDIR gets log.txt (everything), steps/NAME.txt (each step's output: the
# tests' -test.v output), nvidia-smi.txt, results.json (each step's name,
# status, seconds and key numbers) and summary.txt, which ends with
# "N passed, N failed". The exit status is 0 only if no step failed.
#
# KIT_SIZE=full (the default) sizes the runs for a real GPU, well under 5
# minutes on an H100/H200; KIT_SIZE=ci sizes them for the fake driver, which
# multiplies by a reference loop on the host. The steps are the same.
set -uo pipefail

if [ $# != 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
kit=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1/steps" || exit 2
out=$(cd "$1" && pwd)
size=${KIT_SIZE:-full}
case $size in
full | ci) ;;
*)
	echo "run.sh: KIT_SIZE=$size: want full or ci" >&2
	exit 2
	;;
esac

# Sizes and time limits (seconds) per step.
if [ "$size" = full ]; then
	train_env=()                                  # TestGPUTrainMNIST's defaults: 784-512-512-10, 200 steps of 64
	speed_runs=("128 pageable" "128 pinned-async --graph" "1024 resident" "1024 resident --graph"
		"128 uint8 --model lenet5 --lr 0.03" "1024 resident --graph --model lenet5 --lr 0.03")
	speed_args=(--data "$kit/data/mnist")
	h2d_bench='H2D/batch=(1|64|1024|8192)/'
	h2d_time=0.2s
	transfer_args=(--batches 1,4,16,64,256,1024,4096 --repeats 5 --min-time 10ms)
	torch_env=(BATCHES="64 1024" EPOCHS=2 RUNS=1)
	limit_conformance=150 limit_training=120 limit_cli=120 limit_speed=120 limit_bench=120 limit_memcheck=240 limit_torch=180
else
	train_env=(BATCHLAB_GPU_STEPS=20 BATCHLAB_GPU_BATCH=32 BATCHLAB_GPU_HIDDEN=64)
	speed_runs=("100 pageable --hidden 64" "100 resident --graph --hidden 64" "100 uint8 --model lenet5 --lr 0.03")
	speed_args=(--data "$kit/tree/testdata/mnist-subset" --train-samples 1000)
	h2d_bench='H2D/batch=(1|64)/'
	h2d_time=3x
	transfer_args=(--batches 1,16,256 --repeats 3 --min-time 1ms --samples 6000)
	torch_env=(BATCHES="100" EPOCHS=1 RUNS=1)
	limit_conformance=900 limit_training=900 limit_cli=900 limit_speed=600 limit_bench=600 limit_memcheck=900 limit_torch=600
fi

# Where the loader cannot find cuBLAS, add the usual CUDA library folders
# after whatever LD_LIBRARY_PATH already holds (so a fake driver put first
# by the caller still wins).
cublas_found() {
	local d
	local IFS=:
	for d in ${LD_LIBRARY_PATH:-}; do
		ls "$d"/libcublas.so.1[123] >/dev/null 2>&1 && return 0
	done
	local ldconfig
	ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
	"$ldconfig" -p 2>/dev/null | grep -q 'libcublas\.so\.1[123] '
}
cuda_libs() {
	cublas_found && return
	local d
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu; do
		if ls "$d"/libcublas.so.1[123] >/dev/null 2>&1; then
			export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d
			return
		fi
	done
}

# step ID NAME LIMIT DIR WANT CMD...: runs CMD in $kit/DIR for at most LIMIT
# seconds, its output in steps/ID.txt and the log. PASS when it exits 0, a
# line matches the extended regexp WANT (proof that the checks ran: a
# -test.run that matches nothing also exits 0) and no test skipped. Sets
# STATUS, SECONDS_TAKEN, REASON and FILE for record.
step() {
	local id=$1 name=$2 limit=$3 dir=$4 want=$5
	shift 5
	FILE=$out/steps/$id.txt
	echo
	echo "== $name"
	echo "\$ (cd $dir && $*)"
	local start rc
	start=$(date +%s.%N)
	(cd "$kit/$dir" && timeout -k 10 "$limit" "$@") 2>&1 | tee "$FILE"
	rc=${PIPESTATUS[0]}
	SECONDS_TAKEN=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	STATUS=PASS REASON=
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		STATUS=FAIL REASON="timed out after ${limit}s"
	elif [ $rc != 0 ]; then
		# the first failed test, else the last line: what went wrong, in short
		STATUS=FAIL REASON="exit status $rc: $({ grep -m1 -- '--- FAIL' "$FILE" || grep -v '^[[:space:]]*$' "$FILE" | tail -1; } | sed 's/^ *//' | cut -c1-160)"
	elif ! grep -Eq -- "$want" "$FILE"; then
		STATUS=FAIL REASON="no line matching '$want': the checks did not run"
	elif grep -q -- '--- SKIP' "$FILE"; then
		STATUS=FAIL REASON="a test skipped: $(grep -m1 -A1 -- '--- SKIP' "$FILE" | tr -s ' \n' ' ')"
	fi
	echo "-- $STATUS: $name (${SECONDS_TAKEN}s)${REASON:+: $REASON}"
}

# skip ID NAME REASON: a step that could not run here.
skip() {
	FILE=$out/steps/$1.txt STATUS=SKIP SECONDS_TAKEN=0 REASON=$3
	echo "$3" >"$FILE"
	echo
	echo "== $2"
	echo "-- SKIP: $2: $3"
}

# record ID NAME [METRICS]: adds the last step to results and the summary.
# METRICS is a JSON object of the step's key numbers.
steps_json=() summary=() passed=0 failed=0 skipped=0
record() {
	local metrics=${3:-"{}"}
	steps_json+=("$(printf '{"id": "%s", "name": "%s", "status": "%s", "seconds": %s, "reason": "%s", "output": "steps/%s.txt", "metrics": %s}' \
		"$1" "$(json_escape "$2")" "$STATUS" "$SECONDS_TAKEN" "$(json_escape "$REASON")" "$1" "$metrics")")
	summary+=("$(printf '%-4s  %-66s %6ss%s' "$STATUS" "$2" "$SECONDS_TAKEN" "${REASON:+  ($REASON)}")")
	case $STATUS in
	PASS) passed=$((passed + 1)) ;;
	FAIL) failed=$((failed + 1)) ;;
	SKIP) skipped=$((skipped + 1)) ;;
	esac
	report
}

# report rewrites results.json and summary.txt from the steps so far: after
# every step, so that a run cut short still says how far it got.
started=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
report() {
	{
		printf '{"kit": "%s", "started": "%s", "size": "%s", "build": "%s",\n "passed": %d, "failed": %d, "skipped": %d,\n "steps": [\n  ' \
			"$(json_escape "$kit")" "$started" "$size" "$(json_escape "$(tr '\n' ' ' <"$kit/BUILD.txt")")" "$passed" "$failed" "$skipped"
		local i
		for i in "${!steps_json[@]}"; do
			[ "$i" = 0 ] || printf ',\n  '
			printf '%s' "${steps_json[$i]}"
		done
		printf '\n]}\n'
	} >"$out/results.json"
	local gpu
	gpu=$(grep -m1 '^  cuda:0' "$out/steps/devices.txt" 2>/dev/null | sed 's/^ *//')
	{
		echo "batchlab GPU kit, $started, size $size, ${gpu:-no CUDA device}"
		printf '%s\n' "${summary[@]}"
		echo "$passed passed, $failed failed"
	} >"$out/summary.txt"
}

json_escape() { printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g'; }

# The metrics extractors read a step's output file and print a JSON object.
# num prints its argument if it is a JSON number, else null.
awk_lib='function num(x) { return x ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ ? x : "null" }'

go_test_counts() { # the tests that passed and failed (top level and subtests)
	awk '/^ *--- PASS/ { p++ } /^ *--- FAIL/ { f++ } END { printf "{\"tests_passed\": %d, \"tests_failed\": %d}", p, f }' "$1"
}

training_metrics() { # TestGPUTrainMNIST's summary line and samples/s of each run
	awk "$awk_lib"'
		/GPU vs CPU: largest difference/ {
			for (i = 1; i <= NF; i++) {
				if ($i == "difference") worst = $(i + 1)
				if ($i == "steps") last = $(i + 1)
				if ($i == "none:") graph = $(i + 1)
			}
			sub(/,$/, "", worst); sub(/;$/, "", last)
		}
		/graph=(true|false): [0-9]+ steps/ {
			for (i = 1; i <= NF; i++) if ($(i + 1) == "samples/s,") { r = $i }
			for (i = 1; i <= NF; i++) if ($i ~ /^graph=/) { key = $(i - 1) "_" $i; sub(/:$/, "", key) }
			sps[key] = r
		}
		/^ *--- PASS/ { p++ } /^ *--- FAIL/ { f++ }
		END {
			printf "{\"tests_passed\": %d, \"tests_failed\": %d, \"max_loss_diff_gpu_vs_cpu\": %s, \"mean_loss_diff_last_steps\": %s, \"max_loss_diff_graph_vs_eager\": %s",
				p, f, num(worst), num(last), num(graph)
			for (k in sps) printf ", \"samples_per_sec_%s\": %s", k, num(sps[k])
			printf "}"
		}' "$1"
}

cli_metrics() {
	awk "$awk_lib"'
		/CLI GPU vs CPU: largest step-loss difference/ { worst = $NF }
		/^ *--- PASS/ { p++ } /^ *--- FAIL/ { f++ }
		END { printf "{\"tests_passed\": %d, \"tests_failed\": %d, \"max_step_loss_diff_gpu_vs_cpu\": %s}", p, f, num(worst) }' "$1"
}

bench_metrics() { # every benchmark line: name → its metrics
	awk "$awk_lib"'
		/^Benchmark/ {
			name = $1; sub(/-[0-9]+$/, "", name)
			s = sprintf("\"%s\": {\"n\": %s", name, num($2))
			for (i = 3; i < NF; i += 2) s = s sprintf(", \"%s\": %s", $(i + 1), num($i))
			all = all (all == "" ? "" : ", ") s "}"
		}
		END { printf "{%s}", all }' "$1"
}

train_metrics() { # the last epoch of a batchlab train --json run
	tr -d '\n' <"$1" | sed 's/.*"epochs": *\[//' | awk "$awk_lib"'{
		sps = $0; sub(/.*"samples_per_sec": */, "", sps); sub(/[,}].*/, "", sps)
		acc = $0; sub(/.*"test_accuracy": */, "", acc); sub(/[,}].*/, "", acc)
		printf "{\"samples_per_sec\": %s, \"test_accuracy\": %s}", num(sps), num(acc)
	}'
}

transfer_metrics() { # the fits from bench transfer's JSON
	local f=$out/steps/transfer/transfer.json
	if [ -f "$f" ]; then
		tr -d '\n\t ' <"$f" | grep -o '"fits":\[[^]]*\]' | sed 's/^"fits":/{"fits": /; s/$/}/'
	fi
}

# The sanitizer's outcome: PASS with 0 errors and the suite passing, FAIL when
# it reports errors or the suite fails under it, SKIP when it did not start
# (e.g. "Device not supported" on some container runtimes).
memcheck() {
	local tool
	tool=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
	if [ -z "$tool" ]; then
		skip memcheck "compute-sanitizer memcheck: conformance suite" "compute-sanitizer is not installed"
		return
	fi
	step memcheck "compute-sanitizer memcheck: conformance suite" "$limit_memcheck" tree/engine/device 'ERROR SUMMARY: 0 errors' \
		"$tool" --tool memcheck --error-exitcode 99 "$kit/tests/device.test" -test.run '^TestCUDAConformance$/^gridCap=device$' -test.count 1 -test.v
	if [ "$STATUS" = FAIL ] && ! grep -q -- '^=== RUN' "$FILE" && ! grep -q 'ERROR SUMMARY' "$FILE"; then
		STATUS=SKIP REASON="compute-sanitizer did not start: $(grep -m1 -i 'error' "$FILE" | tr -d '=' | sed 's/^ *//')"
		echo "-- counted as SKIP: $REASON"
	fi
}

# pytorch ID NAME MODEL: bench/compare_pytorch.sh for MODEL on the GPU.
pytorch() {
	local py
	py=$(command -v python3)
	if [ -z "$py" ]; then
		skip "$1" "$2" "no python3"
		return
	fi
	if ! "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
		skip "$1" "$2" "no PyTorch with CUDA in $py"
		return
	fi
	step "$1" "$2" "$limit_torch" . '^ *[0-9]+ +[0-9]' \
		env DEVICE=cuda MODEL="$3" BATCHLAB="$kit/bin/batchlab" BATCHLAB_DATA="$kit/data/mnist" PYTHON="$py" "${torch_env[@]}" \
		bash "$kit/bench/compare_pytorch.sh"
}

# run_id ARGS...: a speed run's step ID from its batch, transfer and flags
# ("128 pinned-async --graph --model lenet5" is train-b128-pinned-async-graph-lenet5;
# --hidden, the fake's small MLP, and --lr are left out). LeNet-5 trains at
# lr 0.03: at the default 0.1 with momentum 0.9 it stays at chance.
run_id() {
	local id="train-b$1-$2"
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--graph) id+=-graph ;;
		--model) id+=-${2//[:,]/-} && shift ;;
		--hidden | --lr) shift ;;
		esac
		shift
	done
	echo "$id"
}

torch_metrics() { # the JSON lines the comparison prints per run
	grep -o '{"engine".*}' "$1" | awk 'BEGIN { printf "{\"runs\": [" } { printf "%s%s", (NR > 1 ? ", " : ""), $0 } END { printf "]}" }'
}

main() {
	echo "batchlab GPU kit, $started, size $size"
	cat "$kit/BUILD.txt"
	echo "kit: $kit"
	echo "host: $(uname -n), $(nproc) cores"
	cuda_libs
	echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
	if command -v nvidia-smi >/dev/null; then
		{ nvidia-smi && nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv; } >"$out/nvidia-smi.txt" 2>&1
		cat "$out/nvidia-smi.txt"
	else
		echo "nvidia-smi: not found (no NVIDIA driver tools on PATH)" | tee "$out/nvidia-smi.txt"
	fi
	export BATCHLAB_DATA=$kit/data/mnist

	step devices "batchlab devices lists a CUDA device" 60 . '^  cuda:0' "$kit/bin/batchlab" devices
	record devices "batchlab devices lists a CUDA device" "{\"device\": \"$(json_escape "$(grep -m1 '^  cuda:0' "$FILE" | sed 's/^ *//')")\"}"

	step conformance "CUDA device: conformance suite and device tests" "$limit_conformance" tree/engine/device '^--- PASS: TestCUDAConformance' \
		"$kit/tests/device.test" -test.v -test.count 1 -test.run 'CUDA'
	record conformance "CUDA device: conformance suite and device tests" "$(go_test_counts "$FILE")"

	step training "MNIST training: CPU vs GPU vs GPU with graphs" "$limit_training" tree/engine '^--- PASS: TestGPUTrainMNIST' \
		env "${train_env[@]}" "$kit/tests/engine.test" -test.v -test.count 1 -test.run '^(TestGPUTrainMNIST|TestCUDATraining)$'
	record training "MNIST training: CPU vs GPU vs GPU with graphs" "$(training_metrics "$FILE")"

	step cli "batchlab train --device cuda, every --transfer, ±--graph, vs cpu" "$limit_cli" tree/cmd/batchlab '^--- PASS: TestTrainCUDAMatchesCPU' \
		"$kit/tests/batchlab.test" -test.v -test.count 1 -test.run '^TestTrainCUDAMatchesCPU$'
	record cli "batchlab train --device cuda, every --transfer, ±--graph, vs cpu" "$(cli_metrics "$FILE")"

	local r name id
	for r in "${speed_runs[@]}"; do
		set -- $r
		name="batchlab train, 1 epoch: batch $1, --transfer $2${3:+ ${*:3}}"
		id=$(run_id "$@")
		step "$id" "$name" "$limit_speed" . '"samples_per_sec"' \
			"$kit/bin/batchlab" train --device cuda --epochs 1 --json --no-progress \
			"${speed_args[@]}" --batch "$1" --transfer "$2" "${@:3}"
		record "$id" "$name" "$(train_metrics "$FILE")"
	done

	step bench-h2d "benchmarks: go test -bench H2D" "$limit_bench" tree/bench/transfer '^BenchmarkH2D/' \
		"$kit/tests/transfer.test" -test.run '^$' -test.bench "$h2d_bench" -test.benchtime "$h2d_time"
	record bench-h2d "benchmarks: go test -bench H2D" "$(bench_metrics "$FILE")"

	step bench-transfer "batchlab bench transfer: α + bytes/β" "$limit_bench" . '^fit t\(B\)' \
		"$kit/bin/batchlab" bench transfer --device cuda --no-progress "${transfer_args[@]}" --out "$out/steps/transfer"
	record bench-transfer "batchlab bench transfer: α + bytes/β" "$(transfer_metrics)"

	memcheck
	record memcheck "compute-sanitizer memcheck: conformance suite" "$(go_test_counts "$FILE")"

	pytorch pytorch "PyTorch on the same GPU beside batchlab" mlp
	record pytorch "PyTorch on the same GPU beside batchlab" "$(torch_metrics "$FILE")"
	pytorch pytorch-lenet5 "PyTorch on the same GPU beside batchlab: LeNet-5" lenet5
	record pytorch-lenet5 "PyTorch on the same GPU beside batchlab: LeNet-5" "$(torch_metrics "$FILE")"

	echo
	echo "== summary ($out)"
	cat "$out/summary.txt"
	[ "$failed" = 0 ]
}

main 2>&1 | tee "$out/log.txt"
exit "${PIPESTATUS[0]}"
