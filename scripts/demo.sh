#!/bin/bash
# Offline demo: the whole base-to-new pipeline on generated data, in a few minutes on CPU, no network:
#   bash scripts/demo.sh
# It writes a small image set (10 coloured-shape classes, tools/make_demo_data.py) and a tiny random
# CLIP in OpenAI's file layout (tools/tiny_clip.py), runs the real protocol scripts for CoOp and CoCoOp
# (scripts/cocoop/base2new_train.sh / base2new_test.sh, configs/trainers/*/demo.yaml) and zero-shot
# CLIP on the base and new classes, then prints the Base / New / H table (results.py) and how to get
# mean ± std per setting with parse_test_res.py. The tiny CLIP is random: the numbers prove that the
# pipeline runs end to end, not the papers' accuracy (see README.md for the real protocol).
#
# Environment: DEMO_DIR (default output/demo; relative paths are taken from the calling folder) holds
# data/, tiny-clip.pt, runs/ and results/ (runs/ and results/ are replaced on every call).
# DEMO_SEEDS (default "1 2"), DEMO_EPOCHS (default 5), DEMO_SHOTS (default 8), DEMO_IMAGES (training
# images per class, default 16) and PYTHON (default python).
set -e
DEMO_DIR=${DEMO_DIR:-output/demo}
[[ $DEMO_DIR == /* ]] || DEMO_DIR="$PWD/$DEMO_DIR"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
SEEDS=${DEMO_SEEDS:-1 2}
EPOCHS=${DEMO_EPOCHS:-5}
SHOTS=${DEMO_SHOTS:-8}
IMAGES=${DEMO_IMAGES:-16}
DATASET=imagefolder
CFG=demo
export HF_HUB_OFFLINE=1  # never reach a model hub: the CLIP is the generated file

DATA="${DEMO_DIR}/data"
CLIP="${DEMO_DIR}/tiny-clip.pt"
RUNS="${DEMO_DIR}/runs"
mkdir -p "${DEMO_DIR}"
rm -rf "${RUNS}" "${DEMO_DIR}/results" "${DATA}/split_fewshot"
echo "== data: ${DATA}, tiny CLIP: ${CLIP}"
[ -f "${DATA}/classnames.txt" ] || $PYTHON -m tools.make_demo_data "${DATA}" --train "${IMAGES}"
[ -f "${CLIP}" ] || $PYTHON -W ignore -m tools.tiny_clip "${CLIP}" --image-size 64

export DATA OUTPUT="${RUNS}" SHOTS PYTHON
export EXTRA_OPTS="MODEL.BACKBONE.NAME ${CLIP} OPTIM.MAX_EPOCH ${EPOCHS}"
# run NAME COMMAND...: the command's output goes to RUNS/NAME.out, shown (its end) only if it fails.
run() {
    local out="${RUNS}/$1.out"; shift
    mkdir -p "${RUNS}"
    "$@" >"${out}" 2>&1 || { tail -n 30 "${out}" >&2; echo "demo: failed, full output in ${out}" >&2; exit 1; }
}
for TRAINER in CoOp CoCoOp; do
    for SEED in ${SEEDS}; do
        echo "== ${TRAINER} seed ${SEED}: train on the base classes (and test on them), test on the new ones"
        export TRAINER CFG
        run "${TRAINER}_seed${SEED}_train" bash scripts/cocoop/base2new_train.sh ${DATASET} ${SEED}
        run "${TRAINER}_seed${SEED}_test" bash scripts/cocoop/base2new_test.sh ${DATASET} ${SEED}
    done
done

# Zero-shot CLIP on each half, in the base-to-new layout so results.py puts it in the table as "CLIP".
echo "== zero-shot CLIP on the base classes and on the new ones"
for PHASE in train_base:base test_new:new; do
    run "ZeroshotCLIP_${PHASE#*:}" $PYTHON train.py --root "${DATA}" --seed 1 --trainer ZeroshotCLIP \
        --dataset-config-file configs/datasets/${DATASET}.yaml --config-file configs/trainers/CoOp/${CFG}.yaml \
        --output-dir "${RUNS}/base2new/${PHASE%:*}/${DATASET}/shots_${SHOTS}/ZeroshotCLIP/${CFG}/seed1" \
        --eval-only DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES ${PHASE#*:} MODEL.BACKBONE.NAME "${CLIP}"
done

PLOTS=""
$PYTHON -c "import matplotlib" 2>/dev/null && PLOTS="--plots"
echo
$PYTHON results.py "${RUNS}" --out "${DEMO_DIR}/results" ${PLOTS}
cat <<EOF
Tiny random CLIP on generated images: these numbers show that the pipeline works, not the papers'
accuracy. Files: ${DEMO_DIR}/results. Mean ± std over seeds from the logs, per setting:
  python parse_test_res.py ${RUNS}/base2new/train_base/${DATASET}/shots_${SHOTS}/CoCoOp/${CFG}
  python parse_test_res.py ${RUNS}/base2new/test_new/${DATASET}/shots_${SHOTS}/CoCoOp/${CFG} --test-log
EOF
