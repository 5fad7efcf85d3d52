#!/bin/bash
# Cross-dataset / domain generalisation, step 1: train on ImageNet (all classes, 16 shots):
#   bash scripts/cocoop/xd_train.sh SEED
# TRAINER and CFG may be set for other methods, e.g. the CoOp baseline of the CoCoOp paper:
#   TRAINER=CoOp CFG=vit_b16_ctxv1 (vit_b16_ep50_ctxv1 for ImageNet).
# Runs from any folder: it works in the repository root. DATA (dataset root, default data/ in the
# repository) and OUTPUT (default output/ in the repository), when given as relative paths, are taken
# from the folder you call it from. PYTHON (default python) runs train.py; EXTRA_OPTS adds KEY VALUE
# config overrides. A run whose folder holds a finished metrics.json is skipped; an unfinished one is
# run again (train.py resumes from its last checkpoint).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [ $# -ne 1 ]; then echo "usage: $0 SEED" >&2; exit 2; fi

SEED=$1
DATASET=imagenet
TRAINER=${TRAINER:-CoCoOp}
CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
SHOTS=${SHOTS:-16}

DIR=${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED}
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
    ${EXTRA_OPTS:-}
