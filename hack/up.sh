#!/usr/bin/env bash
# Deploys the whole stack onto one local test host with the site playbook,
# exactly as it would run against a real inventory, and prints where to go.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=${QA_UP_NAME:-qubinode-airflow-dev}
port=${QA_UI_PORT:-18080}
inventory="$QA_CACHE/up/inventory.yml"

qa_sudo podman network exists "$QA_NETWORK" || qa_sudo podman network create "$QA_NETWORK" >/dev/null
if ! qa_sudo podman container exists "$name"; then
  qa_log "starting test host $name"
  # CAP_SYS_ADMIN lets the host's systemd build the DAG validation sandbox (mount namespaces),
  # as it can on a real server.
  qa_sudo podman run -d --name "$name" --hostname "$name" --systemd=always --cap-add SYS_ADMIN \
    --network "$QA_NETWORK" -p "127.0.0.1:$port:8080" \
    -v "$QA_PIP_CACHE:/root/.cache/pip" -v "$QA_APT_CACHE:/var/cache/apt/archives" \
    -v "$QA_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" \
    "$QA_IMAGE" /sbin/init >/dev/null
fi
qa_sudo podman start "$name" >/dev/null

mkdir -p "$(dirname "$inventory")"
cat >"$inventory" <<INV
all:
  vars:
    ansible_connection: containers.podman.podman
    airflow_base_url: https://127.0.0.1:$port
  children:
    airflow_db:
      hosts:
        $name:
    airflow_core:
      hosts:
        $name:
INV

qa_log "deploying with qubinode.airflow.site"
ANSIBLE_PIPELINING=true ansible-playbook -i "$inventory" "$QA_ROOT/playbooks/site.yml" "$@"

# The stack's CA signed the api-server's certificate (it names 127.0.0.1): a browser or curl trusts it from here.
qa_sudo podman cp "$name:/etc/airflow/ca.crt" "$QA_CACHE/up/ca.crt"

cat <<MSG

Airflow is up: https://127.0.0.1:$port  (user: admin)
Its certificate is signed by the stack's own CA, copied to $QA_CACHE/up/ca.crt: import it into the
browser's authorities (or: curl --cacert $QA_CACHE/up/ca.crt https://127.0.0.1:$port/api/v2/monitor/health).
The admin password is in the root-only secrets file on the test host:
  sudo podman exec $name grep airflow_admin_password /etc/qubinode-airflow/secrets.yml
Inventory used: $inventory    Remove everything with: make down
MSG
