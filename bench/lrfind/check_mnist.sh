#!/usr/bin/env bash
# The README's check of lr-find against a grid of fixed LRs, on the same
# model, batch and data: lr-find per seed, then each fixed LR trained
# EPOCHS epochs per seed (seeds interleaved with the LRs), its test loss at
# the end. Prints both and the ratio of the median suggestion to the best
# fixed LR (by median test loss).
#
#   bench/lrfind/check_mnist.sh [extra flags for both, e.g. --batch 512]
#
# BIN (default: bin/batchlab, built -tags cpu), DEVICE (cpu), SAMPLES (20000),
# EPOCHS (2), SEEDS (1 2 3), LRS (0.01 0.02 0.05 0.1 0.2 0.5).
set -euo pipefail
BIN=${BIN:-bin/batchlab}
DEVICE=${DEVICE:-cpu}
SAMPLES=${SAMPLES:-20000}
EPOCHS=${EPOCHS:-2}
SEEDS=${SEEDS:-1 2 3}
LRS=${LRS:-0.01 0.02 0.05 0.1 0.2 0.5}
[ -x "$BIN" ] || go build -tags cpu -o "$BIN" ./cmd/batchlab
common=(--device "$DEVICE" --train-samples "$SAMPLES" --no-progress "$@")

sugg=()
for s in $SEEDS; do
	lr=$("$BIN" lr-find "${common[@]}" --seed "$s" --json | jq -r .suggested_lr)
	echo "lr-find seed $s: suggested $lr"
	sugg+=("$lr")
done
declare -A loss
for s in $SEEDS; do
	for lr in $LRS; do
		l=$("$BIN" train "${common[@]}" --seed "$s" --lr "$lr" --epochs "$EPOCHS" --json | jq -r '.epochs[-1].test_loss')
		echo "fixed lr $lr seed $s: test loss $l after $EPOCHS epochs"
		loss[$lr]+="$l "
	done
done
python3 - "${sugg[*]}" "$(for lr in $LRS; do echo "$lr:${loss[$lr]}"; done)" <<'EOF'
import statistics as st, sys
sugg = [float(x) for x in sys.argv[1].split()]
rows = [l.split(":") for l in sys.argv[2].splitlines()]
grid = {float(lr): [float(x) for x in ls.split()] for lr, ls in rows}
print("\nfixed LR  test loss: median [min-max] over seeds")
for lr, ls in grid.items():
    print(f"{lr:8g}  {st.median(ls):.4f} [{min(ls):.4f}-{max(ls):.4f}]")
best = min(grid, key=lambda lr: st.median(grid[lr]))
m = st.median(sugg)
print(f"\nlr-find: median suggestion {m:.3g} [{min(sugg):.3g}-{max(sugg):.3g}]; best fixed LR {best:g}; ratio {m/best:.2f}")
EOF
