#!/bin/bash
# Fetch, on a machine that reaches PyPI, the wheels that benchmarks/gpu_check.sh needs on a GPU machine
# that reaches no package index: the packages of pyproject.toml's dependencies that such an image
# (PyTorch, torchvision, NumPy, tqdm, tabulate, ... preinstalled) usually lacks.
#   bash benchmarks/gpu_wheels.sh [DEST]      # DEST defaults to .whl/ (git-ignored)
# Then carry DEST to the GPU machine beside the repository; gpu_check.sh installs the repository from it
# with `pip install --no-index --find-links DEST -e .` when its imports fail.
# The versions are the ones installed here (the ones the tests passed with); a package not installed
# here is fetched at its newest release. All of them are pure Python or abi3 wheels, so the Python
# version of the GPU machine does not matter.
set -eu
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=${1:-.whl}
PYTHON=${PYTHON:-python}
# open_clip_torch needs ftfy (which needs wcwidth) and timm >= 1.0.17 (fetched in case the image's timm
# is older: pip keeps an installed version that satisfies it); yacs is the config system. The rest of
# the dependencies come with the GPU machine's PyTorch image.
PACKAGES=(open_clip_torch ftfy wcwidth timm yacs)

mkdir -p "$DEST"
specs=()
for name in "${PACKAGES[@]}"; do
    version=$($PYTHON -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
    specs+=("${name}${version:+==$version}")
done
echo "== fetching ${specs[*]} into $DEST"
$PYTHON -m pip download -q --no-deps --only-binary=:all: -d "$DEST" "${specs[@]}"
ls -l "$DEST"
