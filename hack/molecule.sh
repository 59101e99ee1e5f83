#!/usr/bin/env bash
# Runs molecule scenarios at the same time, each into its own log under .cache/logs. The scenarios
# share no host, network or apt archive, so they do not interfere. The console shows each scenario's
# steps and play recaps as they happen, prefixed with its name; a failed scenario's whole log is
# printed at the end. Exits non-zero when any scenario fails.
#   hack/molecule.sh [SCENARIO...]     (default: every scenario under molecule/ except shared)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for d in molecule/*/molecule.yml; do
    scenarios+=("$(basename "$(dirname "$d")")")
  done
fi

# The podman scenario loads the stack's images from archives built here, once per run.
for s in "${scenarios[@]}"; do
  if [ "$s" = podman ]; then
    "$QA_ROOT/hack/build-stack-images.sh" >/dev/null
  fi
done

# The test site's backup key pair: scenarios encrypt the secrets store to its certificate and restore
# with its key, which never goes to a test host's disk (the site keeps it in a vault).
site="$QA_CACHE/backup-site"
if [ ! -s "$site/key.pem" ]; then
  mkdir -p -m 0700 "$site"
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj /CN=qubinode-airflow-test-backup \
    -keyout "$site/key.pem" -out "$site/cert.pem" 2>/dev/null
fi
export QA_BACKUP_CERT="$site/cert.pem" QA_BACKUP_KEY="$site/key.pem"

logs="$QA_CACHE/logs"
mkdir -p "$logs"
declare -A pids
readers=()
for s in "${scenarios[@]}"; do
  log="$logs/molecule-$s.log"
  qa_log "molecule $s: starting, log in $log"
  # The scenario's own wall time goes on the log's last line: the waits below run one after
  # the other, so the time of a wait's return is not when its scenario ended.
  (
    t0=$SECONDS
    NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 molecule test -s "$s" >"$log" 2>&1
    rc=$?
    echo "qubinode-molecule-exit $rc after $(( (SECONDS - t0) / 60 )) min" >>"$log"
    exit "$rc"
  ) &
  pids[$s]=$!
  # Live progress: molecule's step lines, recaps and failures, prefixed with the scenario.
  ( tail -n +1 -F --pid "${pids[$s]}" "$log" 2>/dev/null |
      sed -u 's/\x1b\[[0-9;]*m//g' |
      grep --line-buffered -E '^(INFO|ERROR|CRITICAL) |^PLAY RECAP|^[^ ]+ +: ok=[0-9]+ +changed=|^fatal: \[|^failed: \[' |
      sed -u "s/^/[$s] /" ) &
  readers+=($!)
done

failed=()
for s in "${scenarios[@]}"; do
  if wait "${pids[$s]}"; then
    result=passed
  else
    result=FAILED
    failed+=("$s")
  fi
  qa_log "molecule $s: $result after $(tail -n 1 "$logs/molecule-$s.log" | sed -n 's/^qubinode-molecule-exit [0-9]* after //p')"
done
wait "${readers[@]}"   # the progress readers end with their scenario; let them drain

for s in "${failed[@]}"; do
  printf '\n===== full log of molecule scenario %s =====\n' "$s"
  cat "$logs/molecule-$s.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  qa_log "failed scenarios: ${failed[*]}"
  exit 1
fi
qa_log "all molecule scenarios passed: ${scenarios[*]}"
