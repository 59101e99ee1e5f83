# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: dag_repo_manifest
short_description: Read and check a manifest of git DAG repositories
version_added: 0.1.0
description:
  - Reads manifest files (YAML) of git repositories of DAGs, or a list given in O(repositories), checks
    every entry and returns them in priority order, ready to loop over M(qubinode.airflow.airflow_dag_repo).
  - "A manifest is a mapping with the key C(repositories): a list of entries with C(name) and C(url)
    (required), C(branch) or C(ref) (default C(main)), C(subdir), C(import_paths) (directories the DAGs import
    from), C(priority) (lower first, default 100),
    C(namespace) (the bundle name in Airflow, default C(name)), C(credentials) (the NAME of a variable, kept
    in Ansible Vault or AWX credentials, that holds C(token) (and C(username)) or C(ssh_private_key)),
    C(refresh_interval), C(pin), C(validation_network) (let the DAG validation reach the network), C(commit)
    (pin this commit instead of the head of C(ref), for example to roll back) and C(forward_only) (with C(commit),
    the commit of a push - see the module's O(qubinode.airflow.airflow_dag_repo#module:forward_only)) and
    C(review_ref) (with C(commit), the head of a merge request to validate without deploying it - see
    O(qubinode.airflow.airflow_dag_repo#module:review_ref)), C(requirements_file) and C(test_dir) (paths in the
    repository, the module's O(qubinode.airflow.airflow_dag_repo#module:requirements_file) and
    O(qubinode.airflow.airflow_dag_repo#module:test_dir); an empty string reads none)."
  - Unknown keys, missing fields, wrong types, duplicate names or namespaces and a C(credentials) variable
    that is not defined fail with the file, the entry and the field.
  - Credentials are not resolved into the result; only the variable name is returned.
author: qubinode.airflow contributors (@qubinode)
options:
  _terms:
    description: Paths of manifest files (searched like other lookup files).
    type: list
    elements: path
    required: false
  repositories:
    description: Entries given directly (for example as AWX extra vars), checked like a manifest's.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Register every repository of the manifest
  qubinode.airflow.airflow_dag_repo:
    api_password: "{{ vault_airflow_admin_password }}"
    name: "{{ item.namespace }}"
    url: "{{ item.url }}"
    ref: "{{ item.ref }}"
    subdir: "{{ item.subdir | default(omit) }}"
    token: "{{ lookup('ansible.builtin.vars', item.credentials).token if item.credentials else omit }}"
  loop: "{{ lookup('qubinode.airflow.dag_repo_manifest', 'dag-repos.yml', wantlist=True) }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
_raw:
  description: One dictionary per repository, in priority order.
  type: list
  elements: dict
  contains:
    name:
      description: The entry's name.
      type: str
    namespace:
      description: Bundle name in Airflow.
      type: str
    url:
      description: Git URL.
      type: str
    ref:
      description: Branch, tag or commit.
      type: str
    subdir:
      description: Directory of the DAGs, or null.
      type: str
    import_paths:
      description: Directories of the repository the DAGs import from (empty when none).
      type: list
      elements: str
    priority:
      description: The entry's priority.
      type: int
    credentials:
      description: Name of the variable holding the credentials, or null.
      type: str
    refresh_interval:
      description: Seconds between Airflow's checks, or null for the module's default.
      type: int
    pin:
      description: Whether the bundle is pinned to the validated commit.
      type: bool
    validation_network:
      description: Whether the DAG validation sandbox may reach the network.
      type: bool
    commit:
      description: The commit to pin, or null for the head of RV(_raw[].ref).
      type: str
    forward_only:
      description: Whether RV(_raw[].commit) is pinned only when it is newer than the pinned commit.
      type: bool
    review_ref:
      description: The merge request whose head RV(_raw[].commit) is validated only, or null.
      type: str
    requirements_file:
      description: The repository's requirements file as given, or null for the module's default.
      type: str
      version_added: 1.0.0
    test_dir:
      description: The repository's test directory as given, or null for the module's default.
      type: str
      version_added: 1.0.0
"""

from ansible.errors import AnsibleError
from ansible.module_utils.six import string_types
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.qubinode.airflow.plugins.module_utils._repo_input import (
    InputError,
    check_commit,
    check_name,
    check_review_ref,
    check_import_paths,
    check_ref,
    check_subdir,
    check_url,
)

display = Display()

FIELDS = {
    "name": string_types, "url": string_types, "branch": string_types, "ref": string_types,
    "subdir": string_types, "priority": int, "namespace": string_types, "credentials": string_types,
    "refresh_interval": int, "pin": bool, "validation_network": bool, "import_paths": list,
    "commit": string_types, "forward_only": bool, "review_ref": string_types, "requirements_file": string_types,
    "test_dir": string_types,
}
CREDENTIAL_KEYS = ("token", "username", "ssh_private_key")


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        sources = []
        for term in terms or []:
            path = self.find_file_in_search_path(variables, "files", term)
            if not path:
                raise AnsibleError("dag_repo_manifest: manifest %s not found" % term)
            data, _shown = self._loader._get_file_contents(path)
            try:
                doc = self._loader.load(data, file_name=path)
            except Exception as e:
                raise AnsibleError("dag_repo_manifest: %s is not valid YAML: %s" % (path, e))
            if not isinstance(doc, dict) or not isinstance(doc.get("repositories"), list):
                raise AnsibleError("dag_repo_manifest: %s must be a mapping with a list under 'repositories'" % path)
            unknown = sorted(set(doc) - {"repositories"})
            if unknown:
                raise AnsibleError("dag_repo_manifest: %s: unknown top-level key(s) %s; only 'repositories' is read"
                                   % (path, ", ".join(unknown)))
            sources.append((path, doc["repositories"]))
        if self.get_option("repositories") is not None:
            sources.append(("repositories", self.get_option("repositories")))
        if not sources:
            raise AnsibleError("dag_repo_manifest: give a manifest file or repositories=[...]")
        return self.entries(sources, variables or {})

    def entries(self, sources, variables):
        out, names, namespaces = [], {}, {}
        for source, items in sources:
            for index, raw in enumerate(items):
                where = "%s: entry %d" % (source, index + 1)
                if not isinstance(raw, dict):
                    raise AnsibleError("dag_repo_manifest: %s is not a mapping" % where)
                if raw.get("name"):
                    where += " (%s)" % raw["name"]
                out.append(self.entry(raw, where, variables))
                for key, seen in (("name", names), ("namespace", namespaces)):
                    value = out[-1][key]
                    if value in seen:
                        raise AnsibleError("dag_repo_manifest: %s: %s %r is already used by %s"
                                           % (where, key, value, seen[value]))
                    seen[value] = where
        return sorted(out, key=lambda e: (e["priority"], e["name"]))

    @staticmethod
    def entry(raw, where, variables):
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise AnsibleError("dag_repo_manifest: %s: unknown field(s) %s; allowed: %s"
                               % (where, ", ".join(unknown), ", ".join(sorted(FIELDS))))
        for field in ("name", "url"):
            if not raw.get(field):
                raise AnsibleError("dag_repo_manifest: %s: field '%s' is required" % (where, field))
        for field, kind in FIELDS.items():
            value = raw.get(field)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                raise AnsibleError("dag_repo_manifest: %s: field '%s' must be %s"
                                   % (where, field, {int: "an integer", bool: "true or false", list: "a list"}.get(kind, "a string")))
        if raw.get("branch") and raw.get("ref"):
            raise AnsibleError("dag_repo_manifest: %s: give 'branch' or 'ref', not both" % where)
        namespace = raw.get("namespace") or raw["name"]
        ref = raw.get("ref") or raw.get("branch") or "main"
        try:
            check_name(namespace, "", "field 'namespace'" if raw.get("namespace") else "field 'name'")
            check_url(raw["url"], "", "field 'url'")
            check_ref(ref, "", "field '%s'" % ("branch" if raw.get("branch") else "ref"))
            subdir = check_subdir(raw.get("subdir"), "", "field 'subdir'")
            import_paths = check_import_paths(raw.get("import_paths"), "", "field 'import_paths'")
            if raw.get("commit") is not None:
                check_commit(raw["commit"], "", "field 'commit'")
            elif raw.get("forward_only") or raw.get("review_ref"):
                raise InputError("field '%s' needs field 'commit', the commit to %s" % (
                    ("forward_only", "pin") if raw.get("forward_only") else ("review_ref", "validate")))
            if raw.get("review_ref") is not None:
                check_review_ref(raw["review_ref"], "", "field 'review_ref'")
            for field in ("requirements_file", "test_dir"):
                check_subdir(raw.get(field), "", "field '%s'" % field)
        except InputError as e:
            raise AnsibleError("dag_repo_manifest: %s: %s" % (where, e))
        cred = raw.get("credentials")
        if cred:
            if cred not in variables:
                raise AnsibleError("dag_repo_manifest: %s: field 'credentials' names variable %r, which is not "
                                   "defined; define it (in Ansible Vault or as an AWX credential)" % (where, cred))
            value = variables[cred]
            if isinstance(value, dict) and not (set(value) & {"token", "ssh_private_key"}):
                raise AnsibleError("dag_repo_manifest: %s: variable %r must hold 'token' (and 'username') or "
                                   "'ssh_private_key'" % (where, cred))
        return dict(
            name=raw["name"], namespace=namespace, url=raw["url"], ref=ref, subdir=subdir, import_paths=import_paths,
            priority=raw.get("priority", 100), credentials=cred, refresh_interval=raw.get("refresh_interval"),
            pin=raw.get("pin", True), validation_network=raw.get("validation_network", False),
            commit=raw.get("commit"), forward_only=raw.get("forward_only", False), review_ref=raw.get("review_ref"),
            requirements_file=raw.get("requirements_file"), test_dir=raw.get("test_dir"),
        )
