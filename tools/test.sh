#!/usr/bin/env bash
# Runs the test suite with Bazel and prints "N passed, N failed".
#
#   tools/test.sh                      # bazel test //tests/...
#   tools/test.sh --test_output=all    # extra flags are passed to bazel test
#   tools/test.sh //tests:foo_test     # explicit target patterns replace //tests/...
#
# Exits non-zero if bazel fails, any test target does not pass, or no test
# target ran at all. Run tools/setup.sh first (creates .venv).
set -euo pipefail

repo_root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${repo_root}"

have_target=0
for arg in "$@"; do
  [[ "${arg}" == -* ]] || have_target=1
done
args=("$@")
if [[ "${have_target}" -eq 0 ]]; then
  args+=("//tests/...")
fi

log="$(mktemp "${TMPDIR:-/tmp}/tfpaint-test.XXXXXX")"
trap 'rm -f "${log}"' EXIT

set +e
# --keep_going: one broken target must not hide the results of the others.
bazel test --color=no --curses=no --keep_going "${args[@]}" 2>&1 | tee "${log}"
bazel_rc="${PIPESTATUS[0]}"

# Bazel's per-target summary lines look like:
#   //tests:foo_test     PASSED in 3.1s
#   //tests:bar_test     (cached) PASSED in 2.0s
#   //tests:baz_test     FAILED in 4.2s | TIMEOUT in 300.0s | NO STATUS | FLAKY, ...
#   //tests:qux_test     FAILED TO BUILD
# Targets that fail analysis (bad deps, visibility, BUILD errors) get no summary
# line, only "errors encountered while analyzing target '//x:y'"; count those
# as failed too.
status_re='^//[^ ]+ +(\(cached\) +)?'
passed="$(grep -oE "${status_re}PASSED( in |$)" "${log}" | awk '{print $1}' | sort -u | wc -l)"
failed="$( { grep -oE "${status_re}(FAILED|TIMEOUT|NO STATUS|INCOMPLETE|REMOTE FAILURE|FLAKY)" "${log}" | awk '{print $1}';
             grep -oE "errors encountered while analyzing target '//[^']+'" "${log}" | grep -oE "//[^']+"; } \
           | sort -u | wc -l)"
set -e

echo
echo "${passed} passed, ${failed} failed"

if [[ "${bazel_rc}" -ne 0 ]]; then
  echo "tools/test.sh: bazel test exited with status ${bazel_rc}" >&2
  [[ "${bazel_rc}" -eq 4 ]] && echo "tools/test.sh: no test targets found under: ${args[*]}" >&2
  exit "${bazel_rc}"
fi
if [[ "${failed}" -ne 0 ]]; then
  exit 3
fi
if [[ "${passed}" -eq 0 ]]; then
  echo "tools/test.sh: no tests ran (no test targets found?)" >&2
  exit 4
fi
