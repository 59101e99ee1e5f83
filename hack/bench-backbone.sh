#!/usr/bin/env bash
# Prints the backbone figures, all measured in this run on this machine:
#   - fresh `make up` wall time with the test-host image not cached and cached
#   - second converge wall time (must report changed=0)
#   - idle RSS of the whole single-host stack after QA_IDLE_SECONDS (300)
# It removes the `make up` test host and image as it goes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
idle=${QA_IDLE_SECONDS:-300}
name=${QA_UP_NAME:-qubinode-airflow-dev}
log="$QA_CACHE/bench-backbone.log"
mkdir -p "$QA_CACHE"; : >"$log"

secs() { local t0=$SECONDS; "$@" >>"$log" 2>&1; echo $((SECONDS - t0)); }

hack/down.sh >>"$log" 2>&1
qa_sudo podman rmi -f "$QA_IMAGE" >>"$log" 2>&1 || true
uncached=$(secs make up)
converge2=$(secs hack/up.sh)
grep -A1 'PLAY RECAP' "$log" | tail -1 | grep -q 'changed=0 ' || { echo "second converge was not changed=0; see $log" >&2; exit 1; }

sleep "$idle"
# RSS of every process on the test host (systemd, PostgreSQL, four Airflow
# services and their workers), in MiB; shared pages are counted per process.
rss() {
  qa_sudo podman exec "$name" ps -eo rss=,args= |
    awk -v pat="$1" '$0 ~ pat {s += $1} END {printf "%.0f", s / 1024}'
}
total=$(rss '.')
pg=$(rss 'postgres')
af=$(rss 'airflow')

hack/down.sh >>"$log" 2>&1
cached=$(secs make up)
hack/down.sh >>"$log" 2>&1

printf '%-46s %6s\n' "make up, image not cached (s)" "$uncached"
printf '%-46s %6s\n' "make up, image cached (s)" "$cached"
printf '%-46s %6s\n' "second converge, changed=0 (s)" "$converge2"
printf '%-46s %6s\n' "second converge / fresh cached make up" "$(awk -v a="$converge2" -v b="$cached" 'BEGIN{printf "%.2f", a/b}')"
printf '%-46s %6s\n' "idle RSS after ${idle}s, whole host (MiB)" "$total"
printf '%-46s %6s\n' "  of which Airflow processes (MiB)" "$af"
printf '%-46s %6s\n' "  of which PostgreSQL processes (MiB)" "$pg"
