#!/usr/bin/env bash
# Run `spatialvlm infer` over every .ply in a folder, in one process (the model loads once), resumably.
#
#   scripts/batch_infer.sh SCENES_DIR OUT_DIR [extra infer flags...]
#   scripts/batch_infer.sh scenes out/tiny -m tiny-qwen --VLM_PE 3D_RoPE --greedy --max_new_tokens 256
#
# Resumable: `infer --skip_existing` leaves out the scenes OUT_DIR/manifest.jsonl records as done with the same
# model, PE flags and settings. A failing scene is reported in one line (and in OUT_DIR/failed.log) and the rest go
# on. Exit status: 0 if every scene is done, 1 if any failed, 2 on bad usage, 130 on Ctrl-C (rerun the same command
# to go on). Set SPATIALVLM=... to use another launcher (default: spatialvlm).
set -uo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
scenes_dir=$1
out_dir=$2
shift 2
launcher=${SPATIALVLM:-spatialvlm}

if [ ! -d "$scenes_dir" ]; then
    echo "error: '$scenes_dir' is not a folder" >&2
    exit 2
fi
shopt -s nullglob nocaseglob
scenes=("$scenes_dir"/*.ply)
shopt -u nocaseglob
if [ ${#scenes[@]} -eq 0 ]; then
    echo "error: no .ply files in '$scenes_dir'" >&2
    exit 2
fi

# One process for the folder: start-up and the model load are paid once, not once per scene (infer isolates a
# failing scene and records every scene in the run manifest).
NO_COLOR=1 exec $launcher infer --point_cloud "$scenes_dir" --output "$out_dir" --skip_existing "$@"
