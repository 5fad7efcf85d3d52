#!/bin/bash
# The GPU check, in one run (under 8 minutes on one H200-class GPU):
#   1. the tests marked `cuda` (tests/test_cuda.py: every trainer under PREC fp16 / amp / bf16,
#      checkpoint + eval-only, torchrun with nccl);
#   2. benchmarks/speed.py's rows in fp16 at ViT-B/16 sizes, ours against the reference computation,
#      with the speed-up each row must reach (benchmarks/gpu_report.py: TARGETS);
#   3. the projected compute time of the base-to-new tables, ours and the reference's.
# Writes the Markdown table to $OUT_MD (default benchmarks/gpu_check_result.md) and prints it; the full
# logs go beside it (*_tests.log, *_report.log).
# Without CUDA it says so, runs the same steps on the CPU with a tiny CLIP (the cuda tests' CPU twins
# instead of the cuda tests) and exits 0 when they pass.
#   bash benchmarks/gpu_check.sh
# Needs only the repository: when a dependency is missing it runs `pip install -e ".[test]"`, or, on a
# machine with no package index, installs from the wheels that benchmarks/gpu_wheels.sh fetched into
# $WHEELS (default .whl/) beforehand.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
OUT_MD=${OUT_MD:-benchmarks/gpu_check_result.md}
TESTS_LOG=${OUT_MD%.md}_tests.log
REPORT_LOG=${OUT_MD%.md}_report.log
WHEELS=${WHEELS:-.whl}  # benchmarks/gpu_wheels.sh's folder, for a machine with no package index
export HF_HUB_OFFLINE=1

if ! $PYTHON -c "import coop_toolkit, open_clip, pytest, tabulate, yacs" 2>/dev/null; then
    if [ -d "$WHEELS" ]; then  # a machine without a package index: the wheels gpu_wheels.sh fetched
        echo "== installing the repository from the wheels in $WHEELS (no package index)"
        $PYTHON -m pip install -q --no-index --find-links "$WHEELS" --no-build-isolation -e . \
            || { echo "pip install --no-index --find-links $WHEELS -e . failed: a dependency the image lacks is" \
                "missing from $WHEELS; add it to benchmarks/gpu_wheels.sh" >&2; exit 2; }
        $PYTHON -c "import pytest" 2>/dev/null || { echo "pytest is missing and $WHEELS has none" >&2; exit 2; }
    else
        echo "== installing the repository and its test dependencies"
        $PYTHON -m pip install -q -e ".[test]" || { echo "pip install -e '.[test]' failed (no package index? \
fetch the wheels with benchmarks/gpu_wheels.sh where one is reachable and bring $WHEELS along)" >&2; exit 2; }
    fi
fi

if $PYTHON -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    $PYTHON -c "import torch; print('== CUDA:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
    TESTS=(-m cuda tests/test_cuda.py)
    REPORT=(--device cuda --prec fp16)
    LIMITS=(240 220)  # seconds for the tests and for the report: under 8 minutes in all
else
    echo "== no CUDA here (torch.cuda.is_available() is False): running the same steps on the CPU with a tiny CLIP;"
    echo "   the cuda tests are skipped and their CPU twins run instead. The figures are not the GPU's."
    TESTS=(tests/test_cuda.py)
    REPORT=(--device cpu --tiny --prec fp16 --repeats 1 --eval-batch 2)
    LIMITS=(900 900)
fi

start=$SECONDS
echo "== 1/2 tests: ${TESTS[*]}"
timeout ${LIMITS[0]} $PYTHON -m pytest -q -p no:cacheprovider -rs "${TESTS[@]}" 2>&1 | tee "$TESTS_LOG"
tests_rc=${PIPESTATUS[0]}
summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed|error)" "$TESTS_LOG" | tail -1 | tr -d '=' | xargs)
echo "== tests: exit ${tests_rc} (${summary}) after $((SECONDS - start)) s"

echo "== 2/2 speed rows and base-to-new projection"
timeout ${LIMITS[1]} $PYTHON benchmarks/gpu_report.py "${REPORT[@]}" \
    --tests "pytest ${TESTS[*]}: ${summary:-no summary line} (exit ${tests_rc})" \
    --out "$OUT_MD" > "$REPORT_LOG" 2>&1
report_rc=$?
if [ $report_rc -ne 0 ]; then
    tail -40 "$REPORT_LOG"
    [ -f "$OUT_MD" ] && { echo; cat "$OUT_MD"; echo "== what it measured before it stopped is in $OUT_MD"; }
    echo "== the report failed (exit ${report_rc}$([ $report_rc -eq 124 ] && echo ': out of time')); its log: $REPORT_LOG" >&2
else
    echo
    cat "$OUT_MD"
    echo "== written to $OUT_MD after $((SECONDS - start)) s"
fi
[ $tests_rc -eq 0 ] && [ $report_rc -eq 0 ]
