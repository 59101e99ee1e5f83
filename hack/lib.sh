# shellcheck shell=bash
# Shared settings for the helper scripts: sourced, never run.
QA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QA_CACHE=${QA_CACHE:-$QA_ROOT/.cache}
QA_VENV=${QA_VENV:-$QA_ROOT/.venv}
QA_IMAGE=${QA_IMAGE:-localhost/qubinode-airflow-testhost:debian12}
QA_NETWORK=${QA_NETWORK:-qubinode-airflow}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$QA_ROOT/hack/containers.conf}
export PATH="$QA_VENV/bin:$PATH"

qa_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

qa_log() { printf '==> %s\n' "$*" >&2; }

# The host's CA bundle, mounted into test hosts so HTTPS to package
# registries works behind a TLS-inspecting proxy as it does on the host.
qa_ca_bundle() {
  local f
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    [ -r "$f" ] && { echo "$f"; return; }
  done
}

# Ansible finds the collection under test and the collections bundled with the
# ansible package; test hosts share pip and apt caches and trust the host's CAs.
export ANSIBLE_COLLECTIONS_PATH="$QA_CACHE/collections"
export QA_PIP_CACHE="$QA_CACHE/pip" QA_APT_CACHE="$QA_CACHE/apt" QA_IMAGE QA_NETWORK
# Images of the podman runtime, built for the tests by hack/build-stack-images.sh.
export QA_STACK_IMAGES="$QA_CACHE/images"
QA_CA_BUNDLE=$(qa_ca_bundle)
export QA_CA_BUNDLE

# qa_copy_tree DIR DEST: the files of DIR (relative to the checkout) that git tracks or would track,
# copied into DEST: no caches, virtualenvs or build output.
qa_copy_tree() {
  mkdir -p "$2"
  (cd "$QA_ROOT/$1" && git ls-files -co --exclude-standard -z . | tar --null -T - -c) | tar -x -C "$2"
}
