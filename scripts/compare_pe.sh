#!/usr/bin/env bash
# The PE comparison of the README: one training budget, seven positional encodings, held-out F1 for each.
#
#   scripts/compare_pe.sh [STEPS] [LANES]        # defaults: 450 steps of 4 rooms, 2 runs side by side
#
# Every row trains configs/train-rooms.yaml from the same seed on the same cached rooms (data/train-3000.pt),
# then scripts/eval_rooms.sh scores it on the 50 held-out rooms. Results: runs/pe/<row>/ (model, training.json,
# heldout/scores.json). A row whose scores exist is skipped, so an interrupted comparison resumes.
set -euo pipefail
steps=${1:-450}
lanes=${2:-2}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
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

# Build the shared room cache once, before the lanes start.
python scripts/train_rooms.py --prepare-only > /dev/null

run_row() {
    local name=${1%%|*} flags=${1#*|}
    local dir=runs/pe/$name
    [[ -f $dir/heldout/scores.json ]] && return 0
    # shellcheck disable=SC2086
    python scripts/train_rooms.py --out "$dir" $flags --steps "$steps" --threads "$threads" --resume \
        > "$dir.train.log" 2>&1 || { echo "$name: training failed, see $dir.train.log" >&2; return 1; }
    OMP_NUM_THREADS=$threads scripts/eval_rooms.sh "$dir" "$dir/heldout" > /dev/null
    echo "$name: done"
}

mkdir -p runs/pe
for (( lane = 0; lane < lanes; lane++ )); do
    (
        for (( i = lane; i < ${#rows[@]}; i += lanes )); do
            run_row "${rows[$i]}" || true
        done
    ) &
done
wait
python scripts/pe_table.py runs/pe
