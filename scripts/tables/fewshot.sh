#!/bin/bash
# CoOp paper few-shot curves: CoOp on 11 datasets x shots 1 2 4 8 16 x seeds, with the configs of the original
# repository's COOP.md:
# 1 shot ${CFG_PREFIX}_ep50, 2 and 4 shots ${CFG_PREFIX}_ep100, 8 and 16 shots ${CFG_PREFIX} (200
# epochs); ImageNet ${CFG_PREFIX}_ep50 for every shot count. CFG_PREFIX defaults to rn50 (vit_b16 also
# has all three). The variant: NCTX (16), CSC (False), CTP (end).
#   bash scripts/tables/fewshot.sh [sweep.py options]
#   CSC=True CTP=middle bash scripts/tables/fewshot.sh
#   TRAINER=<Name> bash scripts/tables/fewshot.sh      another method with CoOp's options and configs/trainers/<Name>/
#   TRAINER=<Name> CFG=<config> bash scripts/tables/fewshot.sh    a method without prompt options, one config
#       for every shot count (scripts/fewshot/main.sh), e.g. TRAINER=CLIP_LoRA CFG=vit_b16; CFG=dataset
#       takes the yaml named after each dataset, e.g. TRAINER=Tip_Adapter_F CFG_TRAINER=Tip_Adapter CFG=dataset
#       (CLIP_Adapter uses CoOp's recipe, so the CoOp form: TRAINER=CLIP_Adapter bash scripts/tables/fewshot.sh)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (scripts/common.sh).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
DATASETS=${DATASETS:-${BENCHMARKS}}
SHOTS_LIST=${SHOTS_LIST:-1 2 4 8 16}
CFG_PREFIX=${CFG_PREFIX:-rn50}
NCTX=${NCTX:-16} CSC=${CSC:-False} CTP=${CTP:-end}

config() {  # config() DATASET SHOTS
    if [ "$1" = imagenet ] || [ "$2" -le 1 ]; then echo ${CFG_PREFIX}_ep50
    elif [ "$2" -le 4 ]; then echo ${CFG_PREFIX}_ep100
    else echo ${CFG_PREFIX}; fi
}

job() {  # job() DATASET SHOTS SEED
    if [ -z "${CFG:-}" ]; then
        echo "SEEDS=$3 bash scripts/coop/main.sh $1 $(config "$1" "$2") ${CTP} ${NCTX} $2 ${CSC}"
    else
        local cfg=${CFG}
        [ "${cfg}" = dataset ] && cfg=$1
        echo "SEEDS=$3 TRAINER=${TRAINER} CFG_TRAINER=${CFG_TRAINER:-${TRAINER}} bash scripts/fewshot/main.sh $1 ${cfg} $2"
    fi
}

for DATASET in ${DATASETS}; do
    for SHOTS in ${SHOTS_LIST}; do
        for SEED in ${SEEDS}; do
            job "${DATASET}" "${SHOTS}" "${SEED}"
        done
    done
done | sweep "$@"
summarise_hint
