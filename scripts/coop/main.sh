#!/bin/bash
# CoOp few-shot training (COOP.md), seeds 1 2 3 (or $SEEDS):
#   bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
#   e.g. bash scripts/coop/main.sh caltech101 rn50_ep50 end 16 1 False
# Runs from any folder: it works in the repository root. DATA (dataset root, default data/ in the
# repository) and OUTPUT (default output/ in the repository), when given as relative paths, are taken
# from the folder you call it from. PYTHON (default python) runs train.py; EXTRA_OPTS adds KEY VALUE
# config overrides. A run whose folder holds a finished metrics.json is skipped; an unfinished one is
# run again (train.py resumes from its last checkpoint).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [ $# -ne 6 ]; then echo "usage: $0 DATASET CFG CTP NCTX SHOTS CSC" >&2; exit 2; fi

TRAINER=CoOp
DATASET=$1
CFG=$2   # config file name: rn50_ep50 (1 shot), rn50_ep100 (2, 4 shots), rn50 (8, 16 shots)
CTP=$3   # class token position (end or middle)
NCTX=$4  # number of context tokens
SHOTS=$5 # number of shots (1, 2, 4, 8, 16)
CSC=$6   # class-specific context (False or True)

for SEED in ${SEEDS:-1 2 3}; do
    DIR=${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}
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
        TRAINER.COOP.N_CTX ${NCTX} \
        TRAINER.COOP.CSC ${CSC} \
        TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} \
        DATASET.NUM_SHOTS ${SHOTS} \
        ${EXTRA_OPTS:-}
done
