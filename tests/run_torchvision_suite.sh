#!/usr/bin/env bash
# The second test environment: torchvision and what needs it (Zennit for LRP, ONNX
# cross-checks). PyPI's torchvision needs its matching torch build, which does not sit
# beside the CPU wheel of the main environment, so these tests live in tests/torchvision/,
# run in their own venv (.venv-tv), and the main suite never collects them.
#
# Usage: bash tests/run_torchvision_suite.sh [pytest args...]   (from anywhere)
# Reuses .venv-tv when it already has the pinned torch/torchvision; INTERP_TV_REBUILD=1 rebuilds it.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
VENV=.venv-tv

have_pins() {
  "$VENV/bin/python" - "$TORCH_PIN" "$TORCHVISION_PIN" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
wanted = dict(pin.split("==") for pin in sys.argv[1:])
sys.exit(0 if all(version(name).split("+")[0] == v for name, v in wanted.items()) else 1)
PY
}

if [ "${INTERP_TV_REBUILD:-0}" = 1 ] || [ ! -x "$VENV/bin/python" ] || ! have_pins; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "$TORCH_PIN" "$TORCHVISION_PIN"
fi
"$VENV/bin/pip" install -q -e ".[test,lrp,onnx]"

set +e
INTERP_TORCHVISION_SUITE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider -n 2 tests/torchvision "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "tests/torchvision: no tests collected (exit 5); treating as success"
  rc=0
fi
exit "$rc"
