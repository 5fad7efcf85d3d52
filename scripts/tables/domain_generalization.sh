#!/bin/bash
# CoCoOp paper Table 3 (domain generalisation): train on ImageNet (seeds), then test on the 4 ImageNet variants.
#   bash scripts/tables/domain_generalization.sh [sweep.py options]
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (relative DATA / OUTPUT are taken from here).
set -e
[[ -z ${DATA:-} || $DATA == /* ]] || export DATA="$PWD/$DATA"
[[ -z ${OUTPUT:-} || $OUTPUT == /* ]] || export OUTPUT="$PWD/$OUTPUT"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
TARGETS=${TARGETS:-imagenetv2 imagenet_sketch imagenet_a imagenet_r}
export TRAINER=${TRAINER:-CoCoOp} CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}

for SEED in ${SEEDS}; do echo "bash scripts/cocoop/xd_train.sh ${SEED}"; done | $PYTHON sweep.py "$@"
for DATASET in ${TARGETS}; do
    for SEED in ${SEEDS}; do echo "bash scripts/cocoop/xd_test.sh ${DATASET} ${SEED}"; done
done | $PYTHON sweep.py "$@"
echo "Summarise with: python results.py ${OUTPUT:-output}"
