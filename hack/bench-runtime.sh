#!/usr/bin/env bash
# Prints the figures of the podman runtime against the native one, measured in this run on this
# machine, on test hosts that can run podman (privileged, own cgroup namespace):
#   - fresh converge wall time of the single-host stack (PostgreSQL, Temporal, Airflow): native on
#     one fresh host, podman on another fresh host (images loaded from archives), and the ratio
#   - the switch of the native host to podman (converge time)
#   - idle RSS after QA_IDLE_SECONDS (120) on the same host, native and then switched to podman
# The podman side includes conmon (one per container); fuse-overlayfs, which only a nested test
# host needs, is shown apart and left out of the stack's figure.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$QA_ROOT"
idle=${QA_IDLE_SECONDS:-120}
name=qa-bench-runtime
net=qubinode-airflow-bench
log="$QA_CACHE/bench-runtime.log"
inventory="$QA_CACHE/bench-runtime/inventory.yml"
mkdir -p "$(dirname "$inventory")" "$QA_APT_CACHE/podman"; : >"$log"
images=$(hack/build-stack-images.sh 2>>"$log")

host_up() {
  qa_sudo podman rm -f "$name" >/dev/null 2>&1 || true
  qa_sudo podman network exists "$net" || qa_sudo podman network create "$net" >/dev/null
  qa_sudo podman run -d --name "$name" --hostname "$name" --systemd=always --privileged --cgroupns=private \
    --network "$net" -v "$QA_PIP_CACHE:/root/.cache/pip" -v "$QA_APT_CACHE/podman:/var/cache/apt/archives" \
    -v "$QA_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" -v "$images:/srv/qubinode-images:ro" \
    "$QA_IMAGE" /sbin/init >/dev/null
  sleep 3
}
cleanup() { qa_sudo podman rm -f "$name" >/dev/null 2>&1 || true; qa_sudo podman network rm "$net" >/dev/null 2>&1 || true; }
trap cleanup EXIT

cat >"$inventory" <<INV
all:
  vars:
    ansible_connection: containers.podman.podman
    airflow_image: localhost/qubinode-airflow-airflow:3.3.2
    airflow_image_archive: /srv/qubinode-images/airflow.tar
    postgresql_image: localhost/qubinode-airflow-postgres:15
    postgresql_image_archive: /srv/qubinode-images/postgres.tar
    temporal_image: localhost/qubinode-airflow-temporal:1.9.1
    temporal_image_archive: /srv/qubinode-images/temporal.tar
    airflow_pip_extra_args: --cert /etc/ssl/certs/ca-certificates.crt
    airflow_image_build_volumes: [/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro]
  children:
    airflow_db: {hosts: {$name: {}}}
    airflow_core: {hosts: {$name: {}}}
    airflow_temporal: {hosts: {$name: {}}}
INV

# converge RUNTIME: seconds of one site.yml run (each task timed in the log); fails unless it ends failed=0.
converge() {
  local t0=$SECONDS out
  out=$(ANSIBLE_PIPELINING=true ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$inventory" playbooks/site.yml -e "airflow_runtime=$1" 2>&1)
  echo "$out" >>"$log"
  echo "$out" | grep -A1 'PLAY RECAP' | tail -1 | grep -q ' failed=0 ' || { echo "converge ($1) failed; see $log" >&2; exit 1; }
  echo $((SECONDS - t0))
}
changed() { grep -A1 'PLAY RECAP' "$log" | tail -1 | sed -E 's/.*changed=([0-9]+).*/\1/'; }

# rss PATTERN: MiB of the host's processes whose user and command line match PATTERN.
rss() {
  qa_sudo podman exec "$name" ps -eo user:20=,rss=,args= |
    awk -v pat="$1" '$0 ~ pat {s += $2} END {printf "%.0f", s / 1024}'
}
stack='^(postgres|airflow|temporal) |conmon'

host_up
native=$(converge native)
converge native >/dev/null
native_second=$(changed)
sleep "$idle"
native_rss=$(rss "$stack")
native_host=$(rss '.')

switch=$(converge podman)
converge podman >/dev/null
switch_second=$(changed)
sleep "$idle"
podman_rss=$(rss "$stack")
podman_conmon=$(rss 'conmon')
podman_fuse=$(rss 'fuse-overlayfs')
podman_host=$(rss '.')

host_up
podman=$(converge podman)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
printf '%-58s %8s\n' "fresh converge, native (s)" "$native"
printf '%-58s %8s\n' "fresh converge, podman, images from archives (s)" "$podman"
printf '%-58s %8s\n' "  podman / native" "$(ratio "$podman" "$native")"
printf '%-58s %8s\n' "switch native -> podman, one converge (s)" "$switch"
printf '%-58s %8s\n' "second converge changed= (native, podman)" "$native_second, $switch_second"
printf '%-58s %8s\n' "idle RSS after ${idle}s, stack processes, native (MiB)" "$native_rss"
printf '%-58s %8s\n' "idle RSS after ${idle}s, stack processes, podman (MiB)" "$podman_rss"
printf '%-58s %8s\n' "  podman / native" "$(ratio "$podman_rss" "$native_rss")"
printf '%-58s %8s\n' "  of which conmon, podman (MiB)" "$podman_conmon"
printf '%-58s %8s\n' "fuse-overlayfs of the nested test host, podman (MiB)" "$podman_fuse"
printf '%-58s %8s\n' "whole test host, native / podman (MiB)" "$native_host / $podman_host"
