#!/usr/bin/env bash
# ansible-test sanity on a clean copy of the collection: ansible-test scans the
# whole collection root, so caches and virtualenvs must not be inside it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$QA_ROOT/hack/ansible-test-offline-pip.sh"

# Outside the checkout: inside it, ansible-test would list files through git
# and skip the ignored copy.
work=$(mktemp -d "${TMPDIR:-/tmp}/qa-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/qubinode/airflow"
qa_copy_tree . "$dest"
cd "$dest"
pyver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ansible-test sanity --local --python "$pyver" --color no "$@"
