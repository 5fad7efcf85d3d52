#!/bin/bash
# Evaluate ImageNet-trained CoOp (16 shots, M=16, unified context, end) on DATASET, seeds 1 2 3:
#   bash scripts/coop/eval.sh DATASET CFG
# CFG is the config the ImageNet model was trained with (e.g. rn50_ep50, as main.sh writes it); the
# released weights go under output/imagenet/CoOp/rn50_16shots/... and need CFG=rn50 LOADEP=50.
# Runs from any folder: it works in the repository root. DATA (dataset root, default data/ in the
# repository) and OUTPUT (default output/ in the repository), when given as relative paths, are taken
# from the folder you call it from. PYTHON (default python) runs train.py; EXTRA_OPTS adds KEY VALUE
# config overrides. A run whose folder holds a finished metrics.json is skipped; an unfinished one is
# run again (train.py resumes from its last checkpoint).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [ $# -ne 2 ]; then echo "usage: $0 DATASET CFG" >&2; exit 2; fi

TRAINER=CoOp
DATASET=$1
CFG=$2
SHOTS=16
NCTX=16
CSC=False
CTP=end
# The checkpoint to test is the last epoch of the config (OPTIM.MAX_EPOCH) unless LOADEP is set.
CONFIG=configs/trainers/${TRAINER}/${CFG}.yaml
LOADEP=${LOADEP:-$(sed -n "s/^[[:space:]]*MAX_EPOCH:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "${CONFIG}" 2>/dev/null | head -n 1)}
if [ -z "${LOADEP}" ]; then
    echo "Cannot read OPTIM.MAX_EPOCH from ${CONFIG}: set LOADEP" >&2
    exit 1
fi

for SEED in ${SEEDS:-1 2 3}; do
    MODEL_DIR=${OUTPUT}/imagenet/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}
    DIR=${OUTPUT}/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/${DATASET}/seed${SEED}
    if finished "${DIR}"; then
        echo "Oops! The results exist at ${DIR} (so skip this job)"
        continue
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
        TRAINER.COOP.N_CTX ${NCTX} \
        TRAINER.COOP.CSC ${CSC} \
        TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} \
        ${EXTRA_OPTS:-}
done
