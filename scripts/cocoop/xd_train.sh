#!/bin/bash
# Cross-dataset / domain generalisation, step 1: train on ImageNet (all classes, 16 shots):
#   bash scripts/cocoop/xd_train.sh SEED
# TRAINER and CFG may be set for other methods, e.g. the CoOp baseline of the CoCoOp paper:
#   TRAINER=CoOp CFG=vit_b16_ctxv1 (vit_b16_ep50_ctxv1 for ImageNet).
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, SHOTS) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 1 "SEED" "$@"

SEED=$1 DATASET=imagenet
TRAINER=${TRAINER:-CoCoOp} CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1} SHOTS=${SHOTS:-16}  # the CoCoOp paper's

train_run "${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED}" --seed "${SEED}" DATASET.NUM_SHOTS "${SHOTS}"
