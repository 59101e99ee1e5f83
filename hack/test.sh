#!/usr/bin/env bash
# What `make test` runs after `make bootstrap`. First the checks that need no test host: the unit
# tests (in two parts), the provider tests, sanity, lint, docs-lint and the podman scenario's images,
# as jobs that two workers take longest first, one job per core, each into its own log under
# .cache/logs; then the molecule scenarios, which need both cores. A failed job's log is printed. The
# older ansible-core releases are `make core-matrix` (about 20 more minutes of both cores).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"

logs="$QA_CACHE/logs"
mkdir -p "$logs"

# NAME COMMAND, roughly longest first (the roles' unit tests in two halves, so the two workers end
# together). Seconds in a fresh-clone run on the CI machine kind: provider 303, the roles' tests 519
# (about half of it the secrets role's), images 17-90, unit-other 69-98, sanity 43-74, lint 57-60,
# docs-lint 10-16.
jobs=(
  "provider make --no-print-directory provider"
  "unit-secrets make --no-print-directory unit TESTS=tests/unit/roles/test_secrets_role.py"
  "unit-roles make --no-print-directory unit TESTS='tests/unit/roles --ignore=tests/unit/roles/test_secrets_role.py'"
  "images $QA_ROOT/hack/build-stack-images.sh"
  "unit-other make --no-print-directory unit TESTS='tests/unit --ignore=tests/unit/roles'"
  "sanity make --no-print-directory sanity"
  "lint make --no-print-directory lint"
  "docs-lint make --no-print-directory docs-lint"
)

run_job() {
  local name=${1%% *} cmd=${1#* } t0=$SECONDS rc
  bash -c "$cmd" >"$logs/$name.log" 2>&1
  rc=$?
  echo "$rc $(( SECONDS - t0 ))" >"$logs/$name.result"
  qa_log "$name: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) after $(( SECONDS - t0 )) s"
}
export -f run_job qa_log
export logs

t0=$SECONDS
rm -f "$logs"/*.result
printf '%s\n' "${jobs[@]}" | xargs -d '\n' -P 2 -I{} bash -c 'run_job "$1"' _ {}

failed=()
for job in "${jobs[@]}"; do
  name=${job%% *}
  read -r rc _ <"$logs/$name.result" 2>/dev/null || rc=missing
  if [ "$rc" != 0 ]; then
    failed+=("$name")
    printf '\n===== log of %s =====\n' "$name"
    cat "$logs/$name.log"
  fi
done
qa_log "checks: done after $(( (SECONDS - t0) / 60 )) min ($(grep -hE '^[0-9]+ passed' "$logs"/unit-*.log | tr '\n' ' '))"
if [ ${#failed[@]} -gt 0 ]; then
  qa_log "failed: ${failed[*]}"
  exit 1
fi
exec make --no-print-directory molecule
