#!/bin/bash
# CoCoOp paper Table 2 (cross-dataset transfer): train on ImageNet (seeds), then test on 10 datasets.
#   bash scripts/tables/cross_dataset.sh [sweep.py options]      (TARGETS, TRAINER and CFG may be set)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (scripts/common.sh).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
sweep_transfer "${TARGETS:-${XD_TARGETS}}" "$@"
summarise_hint
