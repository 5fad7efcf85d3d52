# Sourced by the protocol scripts: resolves DATA and OUTPUT, moves to the repository root, and
# defines `finished DIR` (true when DIR holds a finished run's metrics.json).
# Relative DATA / OUTPUT paths are taken from the folder the script was called from.
[[ -z ${DATA:-} || $DATA == /* ]] || DATA="$PWD/$DATA"
[[ -z ${OUTPUT:-} || $OUTPUT == /* ]] || OUTPUT="$PWD/$OUTPUT"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-data}
OUTPUT=${OUTPUT:-output}
PYTHON=${PYTHON:-python}
finished() { grep -qs "\"finished\": *true" "$1/metrics.json"; }
