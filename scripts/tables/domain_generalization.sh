#!/bin/bash
# CoCoOp paper Table 3 (domain generalisation): train on ImageNet (seeds), then test on the 4 ImageNet variants.
#   bash scripts/tables/domain_generalization.sh [sweep.py options]      (TARGETS, TRAINER and CFG may be set)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (scripts/common.sh).
set -e
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
sweep_transfer "${TARGETS:-${DG_TARGETS}}" "$@"
summarise_hint
