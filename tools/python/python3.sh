#!/usr/bin/env bash
# Python interpreter launcher used by Bazel's native py_binary / py_test
# (registered as the Python toolchain in //tools/python:BUILD).
#
# It execs the project virtualenv's interpreter, <repo root>/.venv/bin/python3,
# without hard-coding where the repository is checked out. The repo root is
# found by:
#   1. $TFPAINT_PYTHON, if set, is used as the interpreter directly;
#   2. the real path of this script: Bazel's runfiles/execroot entries for
#      source files are symlinks back into the source tree, so resolving them
#      yields <repo root>/tools/python/python3.sh (works for run and test);
#   3. $BUILD_WORKSPACE_DIRECTORY (set by `bazel run`) as a fallback.
set -euo pipefail

if [[ -n "${TFPAINT_PYTHON:-}" ]]; then
  exec "${TFPAINT_PYTHON}" "$@"
fi

candidates=()
self="$(readlink -f -- "${BASH_SOURCE[0]}" 2>/dev/null || true)"
if [[ -n "${self}" ]]; then
  candidates+=("$(cd -- "$(dirname -- "${self}")/../.." 2>/dev/null && pwd -P || true)")
fi
if [[ -n "${BUILD_WORKSPACE_DIRECTORY:-}" ]]; then
  candidates+=("${BUILD_WORKSPACE_DIRECTORY}")
fi

for root in "${candidates[@]}"; do
  if [[ -n "${root}" && -x "${root}/.venv/bin/python3" ]]; then
    # Do not resolve symlinks here: python3 must be started through the venv
    # path so that it picks up .venv/pyvenv.cfg and the venv's site-packages.
    exec "${root}/.venv/bin/python3" "$@"
  fi
done

echo "tools/python/python3.sh: no virtualenv interpreter found (looked in:" \
  "${candidates[*]:-<none>}). Run tools/setup.sh first." >&2
exit 127
