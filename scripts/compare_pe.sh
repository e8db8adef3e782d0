#!/usr/bin/env bash
# The PE comparison of the README: one training recipe and budget, seven positional encodings, several seeds each,
# held-out scores for every run.
#
#   scripts/compare_pe.sh [STEPS] [SEEDS] [LANES]   # defaults: 1500 steps of 4 rooms, seeds 0 1 2, 2 runs side by side
#   scripts/compare_pe.sh 1500 "0 1 2 3"
#   ROWS="mixed_rope3d 3d_sinusoidal" scripts/compare_pe.sh 1500 0   # only these rows (names as below)
#
# Every run trains configs/train-rooms.yaml with the recipe that reads the scan (RECIPE, default: the dense loss
# with the wall-offset target, mixed prompts, the read loss from step 500) on the same cached rooms
# (data/train-3000.pt), from its seed (initialisation and batch order), then scripts/eval_rooms.sh scores it on the
# 50 held-out rooms. The run itself lands in runs/pe/<row>/seed<k>/ (model, checkpoint, training.json,
# heldout/scores*.json; machine-local). What the table needs, its training.json and its predictions
# (heldout/pred/*.txt, ~1 KB a room), is copied to RESULTS/<row>/seed<k>/ (default scripts/results/pe, committed),
# so the comparison survives a new machine: `python scripts/pe_table.py scripts/results/pe` prints mean ± sd over
# seeds. A run with results there is skipped and an interrupted one resumes from its checkpoint, so the comparison
# can be spread over several sittings.
set -euo pipefail
steps=${1:-1500}
seeds=(${2:-0 1 2})
lanes=${3:-2}
recipe=${RECIPE:---dense-weight 1 --wall-offset-weight 1 --read-weight 10 --read-from-step 500 --mix-prompts}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
results=${RESULTS:-scripts/results/pe}
threads=$(( $(nproc) / lanes ))
(( threads >= 1 )) || threads=1

rows=(
    "none|--VLM_PE None"
    "3d_rope-3d_only-chunked|--VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_only --pe_option layout=chunked"
    "3d_rope-3d_only-interleaved|--VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_only --pe_option layout=interleaved"
    "3d_rope-3d_with_1d-chunked|--VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_with_1D --pe_option layout=chunked"
    "3d_rope-3d_with_1d-interleaved|--VLM_PE 3D_RoPE --PCD_PE_Merge_Rule 3D_with_1D --pe_option layout=interleaved"
    "mixed_rope3d|--VLM_PE MixedRoPE3D --PCD_PE_Merge_Rule 3D_only"
    "3d_sinusoidal|--VLM_PE 3D_Sinusoidal --PCD_PE_Merge_Rule 3D_only"
)

# ROWS (row names, space-separated) keeps only those rows, in the table's order; a name that is no row is an error.
if [[ -n ${ROWS:-} ]]; then
    names=" ${rows[*]%%|*} "
    for name in $ROWS; do
        if [[ $names != *" $name "* ]]; then
            echo "error: ROWS names '$name', which is no row of this script (rows:${names% })" >&2
            exit 1
        fi
    done
    kept=()
    for row in "${rows[@]}"; do
        [[ " $ROWS " == *" ${row%%|*} "* ]] && kept+=("$row")
    done
    rows=("${kept[@]}")
fi

# Build the shared room cache once, before the lanes start.
python scripts/train_rooms.py --prepare-only > /dev/null

run_one() {
    local row=$1 seed=$2
    local name=${row%%|*} flags=${row#*|}
    local dir=runs/pe/$name/seed$seed kept=$results/$name/seed$seed
    [[ -f $kept/training.json ]] && return 0
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    python scripts/train_rooms.py --out "$dir" $flags $recipe --seed "$seed" --steps "$steps" \
        --threads "$threads" --resume > "$dir/train.log" 2>&1 \
        || { echo "$name seed $seed: training failed, see $dir/train.log" >&2; return 1; }
    OMP_NUM_THREADS=$threads scripts/eval_rooms.sh "$dir" "$dir/heldout" > /dev/null \
        || { echo "$name seed $seed: evaluation failed" >&2; return 1; }
    # training.json last: it marks the copy complete.
    mkdir -p "$kept/heldout/pred"
    cp "$dir"/heldout/pred/*.txt "$kept/heldout/pred/"
    cp "$dir/training.json" "$kept/"
    echo "$name seed $seed: done"
}

# Seed-major order: every row gets its first seed before any row gets a second.
jobs=()
for seed in "${seeds[@]}"; do
    for row in "${rows[@]}"; do
        jobs+=("$seed|$row")
    done
done
for (( lane = 0; lane < lanes; lane++ )); do
    (
        for (( i = lane; i < ${#jobs[@]}; i += lanes )); do
            job=${jobs[$i]}
            run_one "${job#*|}" "${job%%|*}" || true
        done
    ) &
done
wait
python scripts/pe_table.py "$results"
python scripts/pe_table.py "$results" --per-seed
