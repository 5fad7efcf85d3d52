#!/bin/bash
# Evaluate ImageNet-trained CoOp (16 shots, M=16, unified context, end) on DATASET, seeds 1 2 3:
#   bash scripts/coop/eval.sh DATASET CFG
# CFG is the config the ImageNet model was trained with (e.g. rn50_ep50, as main.sh writes it); the
# released weights go under output/imagenet/CoOp/rn50_16shots/... and need CFG=rn50 LOADEP=50.
# TRAINER (default CoOp) may name another method with CoOp's TRAINER.COOP options.
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, SEEDS, LOADEP) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 2 "DATASET CFG" "$@"

TRAINER=${TRAINER:-CoOp}
DATASET=$1
CFG=$2
SHOTS=16
NCTX=16
CSC=False
CTP=end
VARIANT=${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}

for SEED in ${SEEDS}; do
    eval_run "${OUTPUT}/evaluation/${TRAINER}/${VARIANT}/${DATASET}/seed${SEED}" \
        "${OUTPUT}/imagenet/${TRAINER}/${VARIANT}/seed${SEED}" \
        --seed "${SEED}" \
        TRAINER.COOP.N_CTX "${NCTX}" TRAINER.COOP.CSC "${CSC}" TRAINER.COOP.CLASS_TOKEN_POSITION "${CTP}"
done
