#!/bin/bash
# Cross-dataset / domain generalisation, step 2: test the ImageNet model of xd_train.sh on DATASET:
#   bash scripts/cocoop/xd_test.sh DATASET SEED      (the 10 other datasets, or imagenetv2,
#                                                     imagenet_sketch, imagenet_a, imagenet_r)
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
# The checkpoint to test is the last epoch of the config (OPTIM.MAX_EPOCH) unless LOADEP is set.
CONFIG=configs/trainers/${TRAINER}/${CFG}.yaml
LOADEP=${LOADEP:-$(sed -n "s/^[[:space:]]*MAX_EPOCH:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "${CONFIG}" 2>/dev/null | head -n 1)}
if [ -z "${LOADEP}" ]; then
    echo "Cannot read OPTIM.MAX_EPOCH from ${CONFIG}: set LOADEP" >&2
    exit 1
fi

MODEL_DIR=${OUTPUT}/imagenet/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED}
DIR=${OUTPUT}/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED}
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
    --model-dir "${MODEL_DIR}" \
    --load-epoch ${LOADEP} \
    --eval-only \
    ${EXTRA_OPTS:-}
