#!/usr/bin/env bash
# Score a room model on the held-out synthetic rooms: greedy infer over the folder, then the exact metric with the
# geometric errors in metres (eval --exact --geometry) and SpatialLM's metric as a second opinion.
#
#   scripts/eval_rooms.sh MODEL OUT [extra infer flags...]
#   scripts/eval_rooms.sh runs/pe/3d_rope runs/pe/3d_rope/heldout
#   scripts/eval_rooms.sh spatialvlm-rooms out/shipped          # the shipped default model
#
# The 50 held-out rooms (generator seeds 1,000,000..1,000,049) are made in data/heldout/ when missing
# (HELDOUT=folder to use another set). Writes OUT/pred/*.txt|json, OUT/scores_exact.json and OUT/scores.txt (exact
# metric + geometry), OUT/scores.json and OUT/scores_spatiallm.txt (SpatialLM's conventions), and prints the exact
# tables and the row `scripts/pe_table.py` gives the model (exact F1 first, SpatialLM's wall F1 second, median errors).
set -euo pipefail
if [[ $# -lt 2 ]]; then
    echo "usage: $0 MODEL OUT [extra infer flags...]" >&2
    exit 2
fi
model=$1 out=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
heldout=${HELDOUT:-$repo/data/heldout}
if [[ ! -d $heldout ]]; then
    python "$repo/scripts/make_scenes.py" --out "$heldout" --split heldout --start 0 --count 50 > /dev/null
fi
mkdir -p "$out"
if ! spatialvlm infer --point_cloud "$heldout" --output "$out/pred" --model "$model" --greedy --skip_existing "$@" \
    > "$out/infer.log" 2>&1; then
    echo "infer failed: $(tail -n 1 "$out/infer.log") (log: $out/infer.log)" >&2
    exit 1
fi
spatialvlm eval --pred "$out/pred" --gt "$heldout" --exact --geometry --json "$out/scores_exact.json" \
    | tee "$out/scores.txt"
spatialvlm eval --pred "$out/pred" --gt "$heldout" --json "$out/scores.json" > "$out/scores_spatiallm.txt"
python "$repo/scripts/pe_table.py" --row "$(basename "$model")=$out" --gt "$heldout"
