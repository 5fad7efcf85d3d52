#!/bin/bash
# Few-shot training of a method that has no prompt options (CLIP-Adapter, CLIP-LoRA, Tip-Adapter(-F)),
# seeds 1 2 3 (or $SEEDS):
#   TRAINER=<Name> bash scripts/fewshot/main.sh DATASET CFG SHOTS
#   e.g. TRAINER=CLIP_LoRA bash scripts/fewshot/main.sh dtd vit_b16 16
#        TRAINER=Tip_Adapter_F CFG_TRAINER=Tip_Adapter bash scripts/fewshot/main.sh dtd dtd 16
# Runs go to OUTPUT/DATASET/TRAINER/CFG_<SHOTS>shots/seed<S>, the layout results.py reads.
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, SEEDS, CFG_TRAINER) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 3 "DATASET CFG SHOTS" "$@"
[ -n "${TRAINER:-}" ] || { echo "$0: set TRAINER (e.g. TRAINER=CLIP_LoRA)" >&2; exit 2; }

DATASET=$1
CFG=$2   # configs/trainers/${CFG_TRAINER:-$TRAINER}/$CFG.yaml
SHOTS=$3 # number of shots (1, 2, 4, 8, 16)

for SEED in ${SEEDS}; do
    train_run "${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED}" --seed "${SEED}" DATASET.NUM_SHOTS "${SHOTS}"
done
