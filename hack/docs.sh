#!/usr/bin/env bash
# Builds the collection's documentation site (antsibull-docs + Sphinx) into .cache/docs/build/html:
# the guides of docs/docsite and the reference generated from the modules, plugins and roles.
# Works offline: links into docs.ansible.com are left unresolved instead of fetched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

site="$QA_CACHE/docs"
rm -rf "$site"
mkdir -p "$site"
antsibull-docs sphinx-init --use-current --dest-dir "$site" qubinode.airflow >/dev/null
# No network for intersphinx: the inventories of docs.ansible.com are not fetched.
echo 'intersphinx_mapping = {}' >>"$site/conf.py"
mkdir -p "$site/rst"
chmod og-w "$site/rst"
antsibull-docs --config-file "$site/antsibull-docs.cfg" collection --cleanup everything --use-current \
  --dest-dir "$site/rst" qubinode.airflow >/dev/null
# Labels of docs.ansible.com stay unresolved offline; any other warning is shown.
sphinx-build -M html "$site/rst" "$site/build" -q -c "$site" 2>"$site/warnings.log"
grep -v -e "undefined label: 'common_return_values'" -e "undefined label: 'ansible_configuration_settings'" \
  "$site/warnings.log" >&2 || true
echo "docs: $site/build/html/index.html"
