# Sourced by every protocol script (scripts/coop/, scripts/cocoop/) and per-table script (scripts/tables/).
# The scripts run from any folder: after sourcing this they work in the repository root.
#
# Environment, for all of them:
#   DATA        dataset root (default data/ in the repository)
#   OUTPUT      output root (default output/ in the repository)
#               (relative DATA / OUTPUT paths are taken from the folder the script is called from)
#   PYTHON      the interpreter that runs train.py and sweep.py (default python)
#   EXTRA_OPTS  KEY VALUE config overrides appended to every train.py call
#   SEEDS       the seeds a script loops over (default 1 2 3)
#   TRAINER, CFG  the method and its config, configs/trainers/$TRAINER/$CFG.yaml (each script has defaults;
#               any registered trainer runs through the same scripts)
#   CONFIG_FILE a trainer config outside the checkout (a plugin's), used instead of configs/trainers/;
#               CFG, which names the run folders, defaults to its name without .yaml
#   PLUGIN      passed to every train.py call as --plugin (a module, or a .py file): a trainer or dataset
#               defined outside the toolkit; an installed plugin package needs none (its entry point)
#   LOADEP      the epoch an evaluation loads (default: the one the model folder's checkpoint pointer names)
# A run whose folder holds a finished metrics.json is skipped; an unfinished one runs again (train.py
# resumes it from its last checkpoint).
[[ -z ${DATA:-} || $DATA == /* ]] || DATA="$PWD/$DATA"
[[ -z ${OUTPUT:-} || $OUTPUT == /* ]] || OUTPUT="$PWD/$OUTPUT"
[[ -z ${CONFIG_FILE:-} || $CONFIG_FILE == /* ]] || CONFIG_FILE="$PWD/$CONFIG_FILE"
[[ -z ${PLUGIN:-} || $PLUGIN == /* || ! -e $PLUGIN ]] || PLUGIN="$PWD/$PLUGIN"  # a file; else a module
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DATA=${DATA:-data} OUTPUT=${OUTPUT:-output} PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-1 2 3}
if [ -n "${CONFIG_FILE:-}" ]; then
    export CONFIG_FILE CFG=${CFG:-$(basename "${CONFIG_FILE}" .yaml)}
fi
[ -z "${PLUGIN:-}" ] || export PLUGIN  # the jobs a table script starts see the absolute path too

# The datasets of the papers' tables, in their order.
BENCHMARKS="imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"
XD_TARGETS=${BENCHMARKS#imagenet }  # cross-dataset transfer: from ImageNet to the 10 others
DG_TARGETS="imagenetv2 imagenet_sketch imagenet_a imagenet_r"  # domain generalisation: ImageNet's variants

# expect_args N "USAGE" "$@": stop with the usage line unless the script got N arguments.
expect_args() {
    local n=$1 usage=$2
    shift 2
    if [ $# -ne "${n}" ]; then echo "usage: $0 ${usage}" >&2; exit 2; fi
}

finished() { grep -qs "\"finished\": *true" "$1/metrics.json"; }

# skip_finished DIR: true (and says so) when DIR holds a finished run.
skip_finished() {
    finished "$1" || return 1
    echo "Oops! The results exist at $1 (so skip this job)"
}

# trainer_config: $CONFIG_FILE, else configs/trainers/${CFG_TRAINER:-$TRAINER}/$CFG.yaml.
trainer_config() { echo "${CONFIG_FILE:-configs/trainers/${CFG_TRAINER:-$TRAINER}/${CFG}.yaml}"; }

# train_run DIR [train.py flags and KEY VALUE overrides]: unless DIR holds a finished run, run train.py on
# $DATASET with $TRAINER and its config (trainer_config), writing into DIR.
train_run() {
    local dir=$1
    shift
    skip_finished "${dir}" && return 0
    $PYTHON train.py \
        --root "${DATA}" \
        --trainer "${TRAINER}" \
        ${PLUGIN:+--plugin "${PLUGIN}"} \
        --dataset-config-file "configs/datasets/${DATASET}.yaml" \
        --config-file "$(trainer_config)" \
        --output-dir "${dir}" \
        "$@" ${EXTRA_OPTS:-}
}

# eval_run DIR MODEL_DIR [overrides]: like train_run, testing the model trained into MODEL_DIR.
eval_run() {
    local dir=$1 model_dir=$2 epoch
    shift 2
    skip_finished "${dir}" && return 0
    epoch=$(load_epoch "${model_dir}")
    train_run "${dir}" --model-dir "${model_dir}" --load-epoch "${epoch}" --eval-only "$@"
}

# load_epoch MODEL_DIR: $LOADEP; else the epoch of the file that MODEL_DIR/<model name>/checkpoint names
# (the engine's pointer to the last epoch written, dasslite/engine/checkpoint.py); else, for a model
# folder without the pointer (not trained yet, or weights from elsewhere), OPTIM.MAX_EPOCH of the config.
load_epoch() {
    local pointer name config
    if [ -n "${LOADEP:-}" ]; then echo "${LOADEP}"; return 0; fi
    for pointer in "$1"/*/checkpoint; do
        [ -f "${pointer}" ] || continue
        name=$(head -n 1 "${pointer}")
        if [[ ${name} =~ ^model\.pth\.tar-([0-9]+)$ ]]; then
            finished "$1" || echo "Note: $1 is not a finished run; testing its last checkpoint, ${name}" >&2
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done
    config=$(trainer_config)
    $PYTHON -c 'import sys, yaml; print(int(yaml.safe_load(open(sys.argv[1]))["OPTIM"]["MAX_EPOCH"]))' \
        "${config}" 2>/dev/null || {
        echo "No checkpoint pointer in $1/*/checkpoint and no OPTIM.MAX_EPOCH in ${config}: set LOADEP" >&2
        return 1
    }
}

# sweep [sweep.py options] < jobs: run the job lines through sweep.py (one per GPU, or $JOBS on CPU).
sweep() { $PYTHON sweep.py "$@"; }

# sweep_transfer TARGETS [sweep.py options]: train on ImageNet (xd_train.sh, every seed), then test each
# model on every target dataset (xd_test.sh). Cross-dataset transfer and domain generalisation.
sweep_transfer() {
    local targets=$1 dataset seed
    shift
    export TRAINER=${TRAINER:-CoCoOp} CFG=${CFG:-vit_b16_c4_ep10_batch1_ctxv1}
    for seed in ${SEEDS}; do echo "bash scripts/cocoop/xd_train.sh ${seed}"; done | sweep "$@"
    for dataset in ${targets}; do
        for seed in ${SEEDS}; do echo "bash scripts/cocoop/xd_test.sh ${dataset} ${seed}"; done
    done | sweep "$@"
}

summarise_hint() { echo "Summarise with: python results.py ${OUTPUT}"; }
