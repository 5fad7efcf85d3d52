#!/bin/bash
# Base-to-new, step 1: train on the base half of the classes (16 shots) and test on base:
#   bash scripts/cocoop/base2new_train.sh DATASET SEED
# TRAINER and CFG may be set for other methods, e.g. the CoOp baseline of the CoCoOp paper:
#   TRAINER=CoOp CFG=vit_b16_ctxv1 (vit_b16_ep50_ctxv1 for ImageNet).
# Runs from any folder: it works in the repository root. DATA (dataset root, default data/ in the
# repository) and OUTPUT (default output/ in the repository), when given as relative paths, are taken
# from the folder you call it from. PYTHON (default python) runs train.py; EXTRA_OPTS adds KEY VALUE
# config overrides. A run whose folder holds a finished metrics.json is skipped; an unfinished one is
# run again (train.py resumes from its last checkpoint).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [ $# -ne 2 ]; then echo "usage: $0 DATASET SEED" >&2; exit 2; fi

DATASET=$1
SEED=$2
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
SHOTS=${SHOTS:-16}

DIR=${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
if finished "${DIR}"; then
    echo "Oops! The results exist at ${DIR} (so skip this job)"
    exit 0
fi
$PYTHON train.py \
    --root "${DATA}" \
    --seed ${SEED} \
    --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --output-dir "${DIR}" \
    DATASET.NUM_SHOTS ${SHOTS} \
    DATASET.SUBSAMPLE_CLASSES base \
    ${EXTRA_OPTS:-}
