#!/bin/bash
# CoOp few-shot training (the original repository's COOP.md), seeds 1 2 3 (or $SEEDS):
#   bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
#   e.g. bash scripts/coop/main.sh caltech101 rn50_ep50 end 16 1 False
# TRAINER (default CoOp) may name another method with CoOp's TRAINER.COOP options.
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, SEEDS) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 6 "DATASET CFG CTP NCTX SHOTS CSC" "$@"

TRAINER=${TRAINER:-CoOp}
DATASET=$1
CFG=$2   # config file name: rn50_ep50 (1 shot), rn50_ep100 (2, 4 shots), rn50 (8, 16 shots)
CTP=$3   # class token position (end or middle)
NCTX=$4  # number of context tokens
SHOTS=$5 # number of shots (1, 2, 4, 8, 16)
CSC=$6   # class-specific context (False or True)

for SEED in ${SEEDS}; do
    train_run "${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}" \
        --seed "${SEED}" \
        TRAINER.COOP.N_CTX "${NCTX}" TRAINER.COOP.CSC "${CSC}" TRAINER.COOP.CLASS_TOKEN_POSITION "${CTP}" \
        DATASET.NUM_SHOTS "${SHOTS}"
done
