#!/usr/bin/env bash
# Renders the release notes of the next version from the changelog fragments, without releasing:
# antsibull-changelog runs on a copy, so the fragments stay for the changes still to come.
#   hack/release-notes.sh [VERSION]      (default: the version in galaxy.yml)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
version=${1:-$(sed -n 's/^version: *//p' "$QA_ROOT/galaxy.yml")}
work=$(mktemp -d "${TMPDIR:-/tmp}/qa-release.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/qubinode/airflow"
qa_copy_tree . "$dest"
sed -i "s/^version: .*/version: $version/" "$dest/galaxy.yml"
(cd "$dest" && antsibull-changelog release --version "$version" --date "$(date +%F)" >/dev/null)
mkdir -p "$QA_CACHE/docs"
cp "$dest/CHANGELOG.rst" "$QA_CACHE/docs/release-notes-$version.rst"
echo "release notes: $QA_CACHE/docs/release-notes-$version.rst"
