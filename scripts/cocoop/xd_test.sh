#!/bin/bash
# Cross-dataset / domain generalisation, step 2: test the ImageNet model of xd_train.sh on DATASET:
#   bash scripts/cocoop/xd_test.sh DATASET SEED      (the 10 other datasets, or imagenetv2,
#                                                     imagenet_sketch, imagenet_a, imagenet_r)
# TRAINER and CFG may be set for other methods, e.g. the CoOp baseline of the CoCoOp paper:
#   TRAINER=CoOp CFG=vit_b16_ctxv1 (vit_b16_ep50_ctxv1 for ImageNet).
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, SHOTS, LOADEP) and skipping of finished runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 2 "DATASET SEED" "$@"

DATASET=$1 SEED=$2
TRAINER=${TRAINER:-CoCoOp} CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1} SHOTS=${SHOTS:-16}  # the CoCoOp paper's

RUN=${TRAINER}/${CFG}_${SHOTS}shots
eval_run "${OUTPUT}/evaluation/${RUN}/${DATASET}/seed${SEED}" "${OUTPUT}/imagenet/${RUN}/seed${SEED}" --seed "${SEED}"
