#!/usr/bin/env bash
# What `make test` runs after `make bootstrap`. First the checks that need no test host: the unit
# tests (in three parts), the provider tests, sanity, lint, docs-lint and the podman scenario's images,
# as jobs that two workers take longest first, one job per core, each into its own log under
# .cache/logs, the unit tests' with their slowest tests; then the molecule scenarios, which need both
# cores. The two phases never overlap: the checks' timing tests and the secrets role's tests, which read
# the machine's own addresses, must not share it with the test hosts' networks coming and going. A
# failed job's log is printed, and each phase ends with how busy the cores were (what trimming the run
# needs to know). The older ansible-core releases are `make core-matrix` (about 20 more minutes of both
# cores).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"

logs="$QA_CACHE/logs"
mkdir -p "$logs"

# NAME COMMAND, roughly longest first (the roles' unit tests in two halves, so the two workers end
# together). Seconds in a fresh-clone run on the CI machine kind: unit-secrets 406, provider 344,
# unit-other 142, unit-roles 141, lint 68, images 22-48, sanity 47, docs-lint 12.
jobs=(
  "provider make --no-print-directory provider"
  "unit-secrets make --no-print-directory unit TESTS='--durations=10 tests/unit/roles/test_secrets_role.py'"
  "unit-roles make --no-print-directory unit TESTS='--durations=10 tests/unit/roles --ignore=tests/unit/roles/test_secrets_role.py'"
  "unit-other make --no-print-directory unit TESTS='--durations=10 tests/unit --ignore=tests/unit/roles'"
  "sanity make --no-print-directory sanity"
  "images $QA_ROOT/hack/build-stack-images.sh"
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

# "busy total" jiffies of all cores, from /proc/stat.
cpu_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
cpu_busy_since() {
  local b0 t0 b1 t1
  read -r b0 t0 <<<"$1"
  read -r b1 t1 < <(cpu_jiffies)
  echo "cores $(( 100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1) )) % busy"
}

t0=$SECONDS
c0=$(cpu_jiffies)
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
qa_log "checks: done after $(( (SECONDS - t0) / 60 )) min, $(cpu_busy_since "$c0") ($(grep -hE '^[0-9]+ passed' "$logs"/unit-*.log | tr '\n' ' '))"
if [ ${#failed[@]} -gt 0 ]; then
  qa_log "failed: ${failed[*]}"
  exit 1
fi
c1=$(cpu_jiffies)
make --no-print-directory molecule
rc=$?
qa_log "molecule: $(cpu_busy_since "$c1"); all done after $(( (SECONDS - t0) / 60 )) min"
exit $rc
