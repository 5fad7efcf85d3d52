#!/bin/bash
# Zero-shot CLIP on the 11 datasets (and the ImageNet variants) with a CoOp config's backbone:
#   CFG=vit_b16 bash scripts/tables/zeroshot.sh [sweep.py options]      (CFG defaults to rn50)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (scripts/common.sh).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
DATASETS=${DATASETS:-${BENCHMARKS} ${DG_TARGETS}}
CFG=${CFG:-rn50}

for DATASET in ${DATASETS}; do echo "bash scripts/coop/zeroshot.sh ${DATASET} ${CFG}"; done | sweep "$@"
summarise_hint
