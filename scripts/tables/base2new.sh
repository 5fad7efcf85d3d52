#!/bin/bash
# CoCoOp paper Table 1 (base-to-new): 11 datasets x seeds; each job trains on base, then tests on new.
#   bash scripts/tables/base2new.sh [sweep.py options]
#   TRAINER=CoOp bash scripts/tables/base2new.sh     the CoOp baseline (vit_b16_ctxv1; ImageNet ep50)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (relative DATA / OUTPUT are taken from here).
set -e
[[ -z ${DATA:-} || $DATA == /* ]] || export DATA="$PWD/$DATA"
[[ -z ${OUTPUT:-} || $OUTPUT == /* ]] || export OUTPUT="$PWD/$OUTPUT"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
DATASETS=${DATASETS:-imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101}
TRAINER=${TRAINER:-CoCoOp}
if [ "${TRAINER}" = CoOp ]; then
    CFG=${CFG:-vit_b16_ctxv1}
    IMAGENET_CFG=${IMAGENET_CFG:-vit_b16_ep50_ctxv1}
else
    CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
    IMAGENET_CFG=${IMAGENET_CFG:-${CFG}}
fi

for DATASET in ${DATASETS}; do
    cfg=${CFG}
    [ "${DATASET}" = imagenet ] && cfg=${IMAGENET_CFG}
    for SEED in ${SEEDS}; do
        env="TRAINER=${TRAINER} CFG=${cfg}"
        echo "${env} bash scripts/cocoop/base2new_train.sh ${DATASET} ${SEED} && ${env} bash scripts/cocoop/base2new_test.sh ${DATASET} ${SEED}"
    done
done | $PYTHON sweep.py "$@"
echo "Summarise with: python results.py ${OUTPUT:-output}"
