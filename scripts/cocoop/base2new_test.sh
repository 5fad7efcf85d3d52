#!/bin/bash
# Base-to-new, step 2: test the model trained by base2new_train.sh on the new half of the classes:
#   bash scripts/cocoop/base2new_test.sh DATASET SEED
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
SUB=new
# The checkpoint to test is the last epoch of the config (OPTIM.MAX_EPOCH) unless LOADEP is set.
CONFIG=configs/trainers/${TRAINER}/${CFG}.yaml
LOADEP=${LOADEP:-$(sed -n "s/^[[:space:]]*MAX_EPOCH:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "${CONFIG}" 2>/dev/null | head -n 1)}
if [ -z "${LOADEP}" ]; then
    echo "Cannot read OPTIM.MAX_EPOCH from ${CONFIG}: set LOADEP" >&2
    exit 1
fi

COMMON_DIR=${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
MODEL_DIR=${OUTPUT}/base2new/train_base/${COMMON_DIR}
DIR=${OUTPUT}/base2new/test_new/${COMMON_DIR}
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
    DATASET.NUM_SHOTS ${SHOTS} \
    DATASET.SUBSAMPLE_CLASSES ${SUB} \
    ${EXTRA_OPTS:-}
