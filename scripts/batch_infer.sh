#!/usr/bin/env bash
# Run `spatialvlm infer` over every .ply in a folder, one process per scene.
#
#   scripts/batch_infer.sh SCENES_DIR OUT_DIR [extra infer flags...]
#   scripts/batch_infer.sh scenes out/tiny -m tiny-qwen --VLM_PE 3D_RoPE --greedy --max_new_tokens 256
#
# Resumable: a scene whose OUT_DIR/<name>.txt and .json both exist is skipped. One failing scene is reported
# (its error line goes to OUT_DIR/failed.log) and the batch goes on. Exit status: 0 if every scene is done,
# 1 if any failed, 2 on bad usage. Set SPATIALVLM=... to use another launcher (default: spatialvlm).
set -uo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
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
mkdir -p "$out_dir" || { echo "error: cannot create '$out_dir'" >&2; exit 2; }

shopt -s nullglob nocaseglob
scenes=("$scenes_dir"/*.ply)
shopt -u nocaseglob
if [ ${#scenes[@]} -eq 0 ]; then
    echo "error: no .ply files in '$scenes_dir'" >&2
    exit 2
fi

done_count=0 skipped=0 failed=0 total=${#scenes[@]} index=0 stream=""
interrupted() {
    [ -n "$stream" ] && rm -f "$stream"
    echo "error: interrupted; $done_count of $total scene(s) done; rerun the same command to go on (done scenes are skipped)" >&2
    exit 130
}
trap interrupted INT
for scene in "${scenes[@]}"; do
    index=$((index + 1))
    name=$(basename "${scene%.*}")
    if [ -s "$out_dir/$name.txt" ] && [ -s "$out_dir/$name.json" ]; then
        skipped=$((skipped + 1))
        echo "[$index/$total] skip $name (done)" >&2
        continue
    fi
    echo "[$index/$total] $name" >&2
    # The streamed text goes to a hidden file that is removed whatever happens; stderr is kept for the error line.
    stream="$out_dir/.$name.stream"
    status=0
    if error=$(NO_COLOR=1 $launcher infer --point_cloud "$scene" --output "$out_dir/$name.txt" "$@" 2>&1 \
            >"$stream"); then
        done_count=$((done_count + 1))
    else
        status=$?
        [ "$status" -eq 130 ] && interrupted
        failed=$((failed + 1))
        # failed.log is plain text: colour and cursor escapes are stripped, the first `error:` line is kept.
        plain=$(printf '%s\n' "$error" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tr -d '\r')
        line=$(printf '%s\n' "$plain" | grep -m1 '^error:' || printf '%s\n' "$plain" | grep -v '^[[:space:]]*$' | tail -n 1)
        [ -n "$line" ] || line="error: exit status $status, no message"
        echo "  failed: $line" >&2
        printf '%s\t%s\n' "$name" "$line" >>"$out_dir/failed.log"
    fi
    rm -f "$stream"
done

echo "done: $done_count, skipped: $skipped, failed: $failed (of $total)" >&2
[ "$failed" -eq 0 ]
