#!/bin/bash
# Zero-shot CLIP on the 11 datasets (and the ImageNet variants) with a CoOp config's backbone:
#   CFG=vit_b16 bash scripts/tables/zeroshot.sh [sweep.py options]      (CFG defaults to rn50)
# Jobs run through sweep.py: arguments go to it (--jobs N, --executor slurm --partition P, --dry-run),
# one job per visible GPU by default, or $JOBS at a time on CPU. DATA, OUTPUT, PYTHON, SEEDS and
# EXTRA_OPTS are passed on to the protocol scripts (relative DATA / OUTPUT are taken from here).
set -e
[[ -z ${DATA:-} || $DATA == /* ]] || export DATA="$PWD/$DATA"
[[ -z ${OUTPUT:-} || $OUTPUT == /* ]] || export OUTPUT="$PWD/$OUTPUT"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
DATASETS=${DATASETS:-imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101 imagenetv2 imagenet_sketch imagenet_a imagenet_r}
CFG=${CFG:-rn50}

for DATASET in ${DATASETS}; do echo "bash scripts/coop/zeroshot.sh ${DATASET} ${CFG}"; done | $PYTHON sweep.py "$@"
echo "Summarise with: python results.py ${OUTPUT:-output}"
