#!/usr/bin/env bash
#SBATCH --job-name=spatialvlm-infer
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=12:00:00
#SBATCH --output=%x-%j.log
# Run `spatialvlm infer` over a folder of scans on several nodes: one torchrun per node (srun), one process per GPU
# (or NPROC_PER_NODE processes on CPU nodes), the scenes split by rank, one run manifest in OUT_DIR.
#
#   sbatch scripts/slurm_infer.sh SCENES_DIR OUT_DIR [extra infer flags...]
#   sbatch --nodes 4 scripts/slurm_infer.sh data/testset out/sl11 -m manycore-research/SpatialLM1.1-Qwen-0.5B --greedy
#
# SCENES_DIR and OUT_DIR must be on a file system every node sees. Resume a run that stopped (time limit, lost
# node) with the same command plus --skip_existing: scenes done with the same model, PE and settings are kept.
# Environment: NPROC_PER_NODE (default: the GPUs SLURM gave this node, else 1), MASTER_ADDR (default: the job's
# first node), MASTER_PORT (29500), SRUN (default srun; empty runs torchrun here once, as on a single machine).
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '9,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
scenes_dir=$1
out_dir=$2
shift 2

nodes=${SLURM_JOB_NUM_NODES:-1}
nproc=${NPROC_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
if [ -n "${MASTER_ADDR:-}" ]; then
    head_node=$MASTER_ADDR
elif [ -n "${SLURM_JOB_NODELIST:-}" ]; then
    head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
else
    echo "error: not in a SLURM job: submit with sbatch, or set MASTER_ADDR (and SRUN= to run here)" >&2
    exit 2
fi
port=${MASTER_PORT:-29500}
launcher=${SRUN-srun}

# c10d rendezvous: every node's torchrun meets at the head node under the job's id, then numbers the processes
# RANK 0 .. nodes*nproc-1 (LOCAL_RANK picks the GPU on each node).
# shellcheck disable=SC2086  # $launcher is empty or one word
exec $launcher python -m torch.distributed.run --nnodes "$nodes" --nproc-per-node "$nproc" \
    --rdzv-backend c10d --rdzv-endpoint "$head_node:$port" --rdzv-id "${SLURM_JOB_ID:-spatialvlm-infer}" \
    -m spatialvlm_cli infer --point_cloud "$scenes_dir" --output "$out_dir" "$@"
