#!/bin/bash
# Zero-shot CLIP on DATASET with the backbone and preprocessing of a CoOp config (one run, no seed):
#   bash scripts/coop/zeroshot.sh DATASET CFG          e.g. bash scripts/coop/zeroshot.sh dtd rn50
# TRAINER=ZeroshotCLIP2 uses the prompt-template ensemble.
# Runs from any folder: it works in the repository root. DATA (dataset root, default data/ in the
# repository) and OUTPUT (default output/ in the repository), when given as relative paths, are taken
# from the folder you call it from. PYTHON (default python) runs train.py; EXTRA_OPTS adds KEY VALUE
# config overrides. A run whose folder holds a finished metrics.json is skipped; an unfinished one is
# run again (train.py resumes from its last checkpoint).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [ $# -ne 2 ]; then echo "usage: $0 DATASET CFG" >&2; exit 2; fi

TRAINER=${TRAINER:-ZeroshotCLIP}
DATASET=$1
CFG=$2

DIR=${OUTPUT}/${TRAINER}/${CFG}/${DATASET}
if finished "${DIR}"; then
    echo "Oops! The results exist at ${DIR} (so skip this job)"
    exit 0
fi
$PYTHON train.py \
    --root "${DATA}" \
    --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/CoOp/${CFG}.yaml \
    --output-dir "${DIR}" \
    --eval-only \
    ${EXTRA_OPTS:-}
