#!/bin/bash
# Base-to-new, step 1: train on the base half of the classes (16 shots) and test on base:
#   bash scripts/cocoop/base2new_train.sh DATASET SEED
# TRAINER and CFG may be set for other methods, e.g. the CoOp baseline of the CoCoOp paper:
#   TRAINER=CoOp CFG=vit_b16_ctxv1 (vit_b16_ep50_ctxv1 for ImageNet).
# A plugin's trainer with its config outside the checkout: TRAINER=<Name> CONFIG_FILE=/path/to/<cfg>.yaml
# [PLUGIN=<module or .py file>] (an installed plugin package needs no PLUGIN).
# Environment (DATA, OUTPUT, PYTHON, EXTRA_OPTS, CONFIG_FILE, PLUGIN, SHOTS) and skipping of finished
# runs: scripts/common.sh.
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
expect_args 2 "DATASET SEED" "$@"

DATASET=$1 SEED=$2
TRAINER=${TRAINER:-CoCoOp} CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1} SHOTS=${SHOTS:-16}  # the CoCoOp paper's

train_run "${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}" \
    --seed "${SEED}" DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES base
