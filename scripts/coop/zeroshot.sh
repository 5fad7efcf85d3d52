#!/bin/bash
# Zero-shot CLIP on DATASET with the backbone and preprocessing of a CoOp config (one run, no seed):
#   bash scripts/coop/zeroshot.sh DATASET CFG          e.g. bash scripts/coop/zeroshot.sh dtd rn50
# TRAINER=ZeroshotCLIP2 uses the prompt-template ensemble; CFG_TRAINER (default CoOp) is the folder of
# configs/trainers/ that CFG is read from.
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 2 "DATASET CFG" "$@"

TRAINER=${TRAINER:-ZeroshotCLIP}
CFG_TRAINER=${CFG_TRAINER:-CoOp}
DATASET=$1
CFG=$2

train_run "${OUTPUT}/${TRAINER}/${CFG}/${DATASET}" --eval-only
