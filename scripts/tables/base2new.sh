#!/bin/bash
# CoCoOp paper Table 1 (base-to-new): 11 datasets x seeds; each job trains on base, then tests on new.
#   bash scripts/tables/base2new.sh [sweep.py options]
#   TRAINER=CoOp bash scripts/tables/base2new.sh     the CoOp baseline (vit_b16_ctxv1; ImageNet ep50)
#   TRAINER=<Name> CFG=<config> [IMAGENET_CFG=<config>] bash scripts/tables/base2new.sh    any other method
#   TRAINER=<Name> CONFIG_FILE=/path/to/<cfg>.yaml [PLUGIN=<module or file>] bash scripts/tables/base2new.sh
#                                                     a plugin's method, its config outside the checkout
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS,
# EXTRA_OPTS, CONFIG_FILE and PLUGIN are passed on to the protocol scripts (scripts/common.sh).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
DATASETS=${DATASETS:-${BENCHMARKS}}
TRAINER=${TRAINER:-CoCoOp}
if [ "${TRAINER}" = CoOp ] && [ -z "${CONFIG_FILE:-}" ]; then
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
done | sweep "$@"
summarise_hint
