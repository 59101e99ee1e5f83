#!/usr/bin/env bash
# What `make test` runs after `make bootstrap`: the unit tests and then the podman scenario's images
# on one core (log in .cache/logs/unit.log) while the provider, sanity, lint and docs checks run one after the other on
# the other; then the molecule scenarios, which need both cores. The older ansible-core releases are
# `make core-matrix` (about 20 more minutes of both cores).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"

logs="$QA_CACHE/logs"
mkdir -p "$logs"
qa_log "unit: starting, log in $logs/unit.log"
t0=$SECONDS
# Then, on the same core, the podman scenario's images (molecule.sh finds them built).
( make --no-print-directory unit && "$QA_ROOT/hack/build-stack-images.sh" ) >"$logs/unit.log" 2>&1 &
unit=$!

failed=()
for target in provider sanity lint docs-lint; do
  make --no-print-directory "$target" || failed+=("$target")
done

if wait "$unit"; then
  qa_log "unit and images: done after $(( (SECONDS - t0) / 60 )) min ($(grep -E '^[0-9]+ passed' "$logs/unit.log"))"
else
  failed+=(unit)
  printf '\n===== log of the unit tests and image builds =====\n'
  cat "$logs/unit.log"
fi
if [ ${#failed[@]} -gt 0 ]; then
  qa_log "failed: ${failed[*]}"
  exit 1
fi
exec make --no-print-directory molecule
