#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_dag_repo
short_description: Serve a git repository of DAGs, validated and pinned, as an Airflow DAG bundle
version_added: 0.1.0
description:
  - Registers a git repository as an Airflow 3 DAG bundle (C(GitDagBundle) of apache-airflow-providers-git).
  - Before a commit goes live it is exported on this host into a staging directory that only root can
    reach, scanned for committed secrets (cloud keys, private keys, passwords in URIs, tokens, links out
    of the repository) and parsed with the Airflow virtualenv in a sandbox - syntax errors, import errors
    (missing modules or providers), DAG cycles and DAG ids that another bundle already serves. Any
    finding fails the task with a per-file report and the repository keeps serving its previous commit;
    nothing is half-applied.
  - The files Airflow parsed are also checked with ruff's Airflow 3 migration rules - an API that Airflow 3
    removed (AIR301, AIR302; for example C(schedule_interval), C(days_ago)) is a finding with its line and its
    replacement, and one it only deprecated (AIR311, AIR312) is returned in RV(deprecated_apis) with a warning. An
    Airflow 2 repository thus gets a list of what to change to run on Airflow 3.
  - The sandbox is a transient systemd unit (a throw-away container with the podman runtime) that runs as
    O(validation_user), never root nor the Airflow user, cannot read the stack's configuration or
    secrets, sees the staging copy read-only, has no network unless O(validation_network), and is
    stopped with all its processes after O(validation_timeout). Validation is a gate against mistakes,
    not a defence against a repository author, since the DAGs it passes later run as Airflow.
  - git runs as root in O(work_dir) only, with hooks, fsmonitor and local transports disabled. Every value
    of O(name), O(url), O(ref), O(subdir) and O(commit) is checked before any git call.
  - The bundle is pinned to the validated commit, which root's pin file C(<airflow_config_dir>/bundle-pins/<name>)
    names (bundle class C(qubinode_airflow.repos.bundle.PinnedGitDagBundle) of the provider package; it never
    falls back to the branch when the pin cannot be read or could have been written by another user). The
    module returns the previous and the current commit and the last validated ones; O(commit) pins an earlier
    one (a rollback that stays put on re-runs).
  - The list of repositories lives in the Airflow variable C(qubinode_dag_repos) (no credentials in it),
    so every host reads the same list; this host's C(bundles.env) is rewritten from it and only the
    services that must re-read it are restarted. A new pin restarts nothing - the dag-processor is asked to
    refresh the bundle through the API (a priority parse of each of its DAG files), and reads the pin. Other hosts
    follow with M(qubinode.airflow.airflow_dag_bundles), which the playbook C(qubinode.airflow.dag_repos)
    and the C(airflow) role run on each of them.
  - Credentials (an HTTPS token or an SSH private key) are kept in the git-type Airflow connection
    C(qubinode_git_<name>), never in airflow.cfg, the variable or the output.
  - Must run on an Airflow host (it needs the Airflow virtualenv, git and root), normally the first
    C(airflow_core) host.
author: qubinode.airflow contributors (@qubinode)
extends_documentation_fragment:
  - qubinode.airflow.airflow_api
attributes:
  check_mode:
    description: Resolves the ref with C(git ls-remote) and reports what would change; fetches, validates and writes nothing.
    support: full
  diff_mode:
    description: Shows the repository's registry entry before and after (it holds no credentials).
    support: full
options:
  name:
    description: Bundle name, the namespace of the repository's DAGs in Airflow (letters, digits, C(_), C(-)).
    type: str
    required: true
  url:
    description:
      - Git URL (C(https://...), C(git@host:path), C(ssh://...) or C(git://...)). Required for O(state=present).
      - A path on this host or C(file://) is refused (root would read it), and so is a URL with a user or
        password in it (give O(token)).
    type: str
  ref:
    description: Branch, tag or full commit SHA to serve.
    type: str
    default: main
  commit:
    description: Pin exactly this commit (40 hex characters) instead of resolving O(ref); used to roll back.
    type: str
  forward_only:
    description:
      - With O(commit), the commit of a push to O(ref) - pin it only when it is on O(ref) (its head or an
        ancestor of the head) and does not go back from the pinned commit. An older commit than the pinned one
        changes nothing and returns RV(superseded=true), so pushes promoted one after the other end with the
        newest valid commit served, whatever order they finish in; a commit that is not on O(ref) is refused.
      - A repository registered with credentials (its connection C(qubinode_git_<name>)) needs them given again in
        O(token) or O(ssh_private_key); the example DAG C(qubinode_dag_repo_promote) reads them from that
        connection and gives them.
      - Requires O(commit); check mode only compares the commit with the pinned one.
    type: bool
    default: false
    version_added: 1.0.0
  review_ref:
    description:
      - The head of a merge request whose commit is O(commit) - C(refs/pull/<number>/head) (GitHub) or
        C(refs/merge-requests/<iid>/head) (GitLab). The commit is fetched from it and validated like a
        commit to pin, and nothing else happens - nothing is pinned, registered, written to a connection or
        restarted. A refused commit fails with the report; one that passes returns RV(reviewed=true).
      - The packages the head's O(requirements_file) adds are resolved as for a commit to pin (a package nobody
        allowed or a conflict refuses the head) and installed, for its validation only, into the root-only staging
        directory that is removed after it - never into the stack's virtualenv (native runtime; RV(requirements),
        RV(packages)).
      - Requires O(commit). Check mode does nothing.
    type: str
    version_added: 1.0.0
  subdir:
    description: Directory of the repository that holds the DAGs, relative, without C(..); a symbolic link is not followed.
    type: str
  import_paths:
    description:
      - Directories of the repository, relative to its root, that its DAGs import from (shared modules beside
        O(subdir), for example V(plugins)). They are staged and validated with the DAGs, after Airflow and the DAG
        directory on C(sys.path), and every Airflow process that parses the bundle (dag-processors, task runners
        on core hosts and Temporal workers) puts them there too, in this order.
      - The repositories of a stack share one module namespace in a dag-processor, so give each repository's
        modules a package name of its own.
      - Each is checked like O(subdir); at most 10.
    type: list
    elements: str
    default: []
    version_added: 1.0.0
  test_dir:
    description:
      - Directory of the repository, relative to its root, that holds its tests. When a commit has it, the tests
        run with pytest in the validation sandbox, from the repository's root, against the staged copy (read-only,
        no metadata database, no network unless O(validation_network)), once Airflow's parse found nothing; a
        failure refuses the commit with pytest's summary.
      - An empty string runs no tests.
    type: str
    default: tests
  requirements_file:
    description:
      - File of the repository, relative to its root, that lists the Python packages its DAGs need (pip's
        requirements format). When a validated commit has it as a regular file (a symbolic link is not read; at
        most 64 KiB), each package requirement the stack's Airflow virtualenv does not satisfy is returned in
        RV(unmet_requirements) with a warning that names it; this module alone installs nothing.
      - The playbook C(qubinode.airflow.dag_repos) installs them before the commit goes live - O(requirements_only)
        resolves them on this host, the airflow role installs them on every Airflow host and Temporal worker, and
        this module then pins the commit and records them (O(requirements), O(packages)). Only a package requirement
        is read (a name, extras, version specifiers, a marker; never an option, a file or a URL), and its package must
        be one the stack's constraints pin or the airflow role's C(airflow_dag_repo_packages) names.
      - An empty string reads no file.
    type: str
    default: requirements.txt
    version_added: 1.0.0
  requirements_only:
    description:
      - Only resolve the requirements of the commit O(state=present) would pin (O(commit), or the head of O(ref))
        and return them - RV(requirements) and RV(packages); nothing is validated, pinned nor written, and the task
        never reports a change.
      - The requirements of every other registered repository are resolved with them, with the stack's constraints,
        wheels only, in a dry run of pip in the Airflow virtualenv. A package that neither the constraints nor
        C(airflow_dag_repo_packages) name, or a requirement that conflicts with a constraint or another repository's
        requirement, fails the task with a report that names the package and the constraint.
      - With the podman runtime the image holds the packages - nothing is resolved; add them to
        C(airflow_extra_pip_packages). Check mode resolves nothing.
    type: bool
    default: false
    version_added: 1.0.0
  requirements:
    description:
      - The requirement lines of the commit that the playbook C(qubinode.airflow.dag_repos) installed on every host
        (RV(requirements) of a O(requirements_only) run), recorded in the registry entry with the pinned commit, so
        that a new host and an upgrade of the Airflow virtualenv install them too.
    type: list
    elements: str
    default: []
    version_added: 1.0.0
  packages:
    description:
      - The packages (C(name==version)) that were resolved and installed for them (RV(packages) of that run),
        recorded with them.
    type: list
    elements: str
    default: []
    version_added: 1.0.0
  refresh_interval:
    description: Seconds between Airflow's own checks of the bundle (C(refresh_interval) of the bundle).
    type: int
    default: 300
  pin:
    description:
      - V(true) serves the validated commit only. V(false) lets Airflow follow O(ref) on its own (every
        O(refresh_interval)); later commits then go live without validation.
    type: bool
    default: true
  username:
    description: User for HTTPS token authentication.
    type: str
    default: x-access-token
  token:
    description: HTTPS access token. Kept in the connection C(qubinode_git_<name>).
    type: str
  ssh_private_key:
    description: SSH private key (the key itself, not a path). Kept in the connection C(qubinode_git_<name>).
    type: str
  update_secrets:
    description:
      - When to write O(username), O(token) or O(ssh_private_key) into the connection C(qubinode_git_<name>).
        Airflow never shows a stored secret back, so the module cannot compare it with the one given.
      - V(on_change) writes it when it differs from the one this module last wrote on this host, known by a
        salted fingerprint (never the value) in C(<work_dir>/<name>/credentials.fingerprint), root 0600. A
        token or key rotated in the manifest, the vault or an AWX credential so reaches Airflow on the next
        run, and a run with the same credential changes nothing. A host without the fingerprint (the first
        run after an upgrade, or another first core host) writes the connection once.
      - V(on_create) writes it only when the connection is new; V(always) on every run (always changed).
    type: str
    default: on_change
    choices: [always, on_change, on_create]
    version_added: 1.0.0
  validate:
    description: Parse the DAGs before going live. Turn off only to register a repository you trust as it is.
    type: bool
    default: true
  secret_scan:
    description: Refuse a commit that carries secrets.
    type: bool
    default: true
  state:
    description: V(absent) removes the bundle, its connection and its entry.
    type: str
    default: present
    choices: [present, absent]
  wait:
    description: Wait until the repository's DAGs are parsed at the pinned commit, and return them.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the parse.
    type: int
    default: 300
  validation_timeout:
    description: Seconds the DAG validation may take; then the sandbox and every process in it are stopped.
    type: int
    default: 300
  validation_user:
    description: The unprivileged user the validation runs as (the C(airflow) role creates it); never root nor O(airflow_user).
    type: str
    default: airflow-validate
  validation_network:
    description: Let the validation reach the network (DAG files that call out at import time).
    type: bool
    default: false
  validation_memory_max:
    description: Memory limit of the validation sandbox (systemd C(MemoryMax) / podman C(--memory)).
    type: str
    default: 2G
  validation_tasks_max:
    description: Most processes and threads the validation may run.
    type: int
    default: 512
  airflow_venv:
    description: The Airflow virtualenv on this host.
    type: path
    default: /opt/qubinode-airflow/venv
  airflow_config_dir:
    description: Directory of airflow.cfg and bundles.env.
    type: path
    default: /etc/airflow
  airflow_user:
    description: User that runs Airflow (the validation refuses to run as this user).
    type: str
    default: airflow
  work_dir:
    description:
      - Where git mirrors and staging trees are kept on this host. Created 0700 for root; refused if any
        component of the path is a symbolic link, is not owned by root or can be written by another user.
    type: path
    default: /var/lib/qubinode-airflow/dag-repos
notes:
  - Check mode does not run the validation; the apply may still refuse the commit.
"""

EXAMPLES = r"""
- name: Serve the team's DAGs from the main branch
  qubinode.airflow.airflow_dag_repo:
    api_password: "{{ vault_airflow_admin_password }}"
    name: platform
    url: https://git.example.com/platform/dags.git
    ref: main
    subdir: dags
    token: "{{ vault_git_token }}"
  register: repo

- name: Show what went live
  ansible.builtin.debug:
    msg: "{{ repo.commit }} (was {{ repo.previous_commit }}): {{ repo.dag_ids }}"

- name: Roll back to the commit that was live before
  qubinode.airflow.airflow_dag_repo:
    api_password: "{{ vault_airflow_admin_password }}"
    name: platform
    url: https://git.example.com/platform/dags.git
    subdir: dags
    token: "{{ vault_git_token }}"
    commit: "{{ repo.previous_commit }}"
"""

RETURN = r"""
commit:
  description: The commit the bundle is pinned to now.
  returned: when state=present
  type: str
reviewed:
  description: With O(review_ref), whether the commit passed the validation (a refused one fails instead).
  returned: always
  type: bool
  sample: true
superseded:
  description: With O(forward_only), whether O(commit) was older than the pinned commit, which stays pinned.
  returned: always
  type: bool
  sample: false
previous_commit:
  description: The commit that was pinned before this run (null for a new repository).
  returned: when state=present
  type: str
dag_ids:
  description: DAG ids the validation found in the commit (and, with O(wait), that Airflow parsed).
  returned: when state=present
  type: list
  elements: str
import_errors:
  description: Import errors Airflow reports for the bundle after the parse.
  returned: when state=present and wait
  type: list
  elements: dict
report:
  description:
    - On failure, one entry per finding - file, line (secrets, Airflow 3), kind (syntax, import, cycle, crash, duplicate,
      secret, link, airflow3), message.
    - Kind C(airflow3) is an API that Airflow 3 removed (ruff's rules AIR301 and AIR302, in C(code)); its message
      names the replacement where the rule knows it.
  returned: on validation failure
  type: list
  elements: dict
deprecated_apis:
  description:
    - APIs the validated commit uses that Airflow 3 only deprecated (ruff's rules AIR311 and AIR312) - file, line,
      kind C(airflow3), code, and the message with the replacement. They do not refuse the commit.
  returned: when the commit was validated
  type: list
  elements: dict
unmet_requirements:
  description:
    - The lines of the validated commit's O(requirements_file) that the stack's Airflow virtualenv does not satisfy -
      file, line, requirement, installed (the version it has, or null when the package is not installed) and message.
      A line that is not a package requirement (an option, a file or a URL) is listed as not read. They do not
      refuse the commit; a DAG that imports a missing package is refused by the parse.
  returned: when the commit was validated, on success and on failure
  type: list
  elements: dict
requirements:
  description: The package requirements of the commit's O(requirements_file) that were read, as written.
  returned: with O(requirements_only) or O(review_ref)
  type: list
  elements: str
packages:
  description: The packages (C(name==version)) pip resolved to add for them and for the other repositories' requirements.
  returned: with O(requirements_only) or O(review_ref)
  type: list
  elements: str
history:
  description: The last validated commits of the repository, newest first (candidates for O(commit)).
  returned: when state=present
  type: list
  elements: str
restarted:
  description: Services restarted on this host.
  returned: always
  type: list
  elements: str
bundle:
  description: The bundle entry served (name, classpath, kwargs).
  returned: when state=present
  type: dict
"""

import binascii
import hashlib
import os
import shlex
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.qubinode.airflow.plugins.module_utils._api import (
    AirflowAPI,
    AirflowAPIError,
    airflow_api_argument_spec,
)
from ansible_collections.qubinode.airflow.plugins.module_utils._dag_repo import (
    HISTORY,
    Git,
    RepoError,
    Sandbox,
    WorkDirLock,
    apply_to_host,
    bundle_entry,
    conn_id_for,
    ensure_root_dir,
    read_registry,
    scan_secrets,
    validate_tree,
    wait_healthy,
    wait_parsed,
    write_registry,
)
from ansible_collections.qubinode.airflow.plugins.module_utils._host import read_runtime
from ansible_collections.qubinode.airflow.plugins.module_utils._registry import ConnectionKind, Reconciler
from ansible_collections.qubinode.airflow.plugins.module_utils._repo_input import (
    InputError,
    check_commit,
    check_import_paths,
    check_name,
    check_ref,
    check_review_ref,
    check_subdir,
    check_url,
)
from ansible_collections.qubinode.airflow.plugins.module_utils._requirements import (
    RequirementsError,
    allowed_names,
    check_requirement_list,
    disallowed,
    parse_requirements,
    registry_requirements,
    resolve,
)

KEYS = ("url", "ref", "subdir", "pin", "refresh_interval", "git_conn_id", "commit", "import_paths", "requirements_file",
        "test_dir")
# The defaults of the options kept in an entry only when they differ (an entry registered before keeps comparing equal).
ENTRY_DEFAULTS = dict(requirements_file="requirements.txt", test_dir="tests")
FINGERPRINT_FILE = "credentials.fingerprint"
# The largest requirements file read (bytes).
REQUIREMENTS_LIMIT = 65536


def credential_fingerprint(salt, username, token, ssh_private_key):
    """A salted digest of the credential: tells a rotated one apart, and gives nothing to guess from."""
    digest = hashlib.sha256()
    for part in ("qubinode.airflow git credential", salt, username or "", token or "", ssh_private_key or ""):
        digest.update(to_bytes(part) + b"\0")
    return digest.hexdigest()


class DagRepo:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.api = AirflowAPI(self.p)
        self.name = self.p["name"]
        self.subdir = None
        self.test_dir = None
        self.requirements_file = None
        self.import_paths = []
        self.result = dict(changed=False, restarted=[], superseded=False, reviewed=False)

    def fingerprint_path(self):
        return os.path.join(self.p["work_dir"], self.name, FINGERPRINT_FILE)

    def credential_is_new(self):
        """Whether the credential given differs from the one this module last wrote here."""
        p = self.p
        try:
            # The work directory is root's alone (ensure_root_dir): nothing in it is planted.
            with open(self.fingerprint_path()) as f:
                salt, digest = f.read().strip().split(":", 1)
        except (IOError, OSError, ValueError):
            return True
        return credential_fingerprint(salt, p["username"], p["token"], p["ssh_private_key"]) != digest

    def record_credential(self, present):
        p = self.p
        path = self.fingerprint_path()
        if not present:
            if os.path.lexists(path):
                os.unlink(path)
            return
        salt = binascii.hexlify(os.urandom(16)).decode("ascii")
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprint-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as f:
            f.write("%s:%s\n" % (salt, credential_fingerprint(salt, p["username"], p["token"], p["ssh_private_key"])))
        os.rename(tmp, path)

    def credentials_connection(self, state):
        p = self.p
        update = p["update_secrets"]
        if update == "on_change":
            update = "always" if state == "present" and self.credential_is_new() else "on_create"
        item = dict(connection_id=conn_id_for(self.name), conn_type="git", host=p["url"], state=state,
                    login=p["username"] if p["token"] else None, password=p["token"],
                    secret_extra={"private_key": p["ssh_private_key"]} if p["ssh_private_key"] else None)
        params = dict(connections=[item], state=state, exclusive=False, update_secrets=update)
        changed = Reconciler(ConnectionKind(), self.api, self.module.check_mode).run(
            params, "connections", [], False)["changed"]
        if not self.module.check_mode and p["state"] == "present":
            if state != "present":
                self.record_credential(False)
            elif update == "always":
                # Only then does the connection hold exactly this credential (on_create may keep an older one).
                self.record_credential(True)
        return changed

    def validate(self, git, commit, registry, mirror="mirror.git", extra_refs=(), review=False):
        p = self.p
        mirror = os.path.join(p["work_dir"], self.name, mirror)
        git.fetch(mirror, extra_refs)
        stage = tempfile.mkdtemp(prefix="staging-", dir=p["work_dir"])
        try:
            tests = self.test_dir if p["validate"] and git.has_tree(mirror, commit, self.test_dir) else None
            for path in self.import_paths:
                # A directory: a symbolic link (a blob to git) is refused, never exported nor followed.
                if not git.has_tree(mirror, commit, path):
                    raise RepoError("import_paths: %r is not a directory of %s at %s (a symbolic link is not "
                                    "followed); add it to the commit or remove it from import_paths"
                                    % (path, p["url"], commit[:12]))
            tree = git.export(mirror, commit, self.subdir, os.path.join(stage, "tree"),
                              extra=((tests,) if tests else ()) + tuple(self.import_paths))
            report = scan_secrets(tree) if p["secret_scan"] else []
            if p["secret_scan"] and self.subdir:
                # The import paths beside the DAG directory are served too: scanned the same way.
                for path in [x for x in self.import_paths if not (x + "/").startswith(self.subdir + "/")]:
                    report += [dict(f, file="%s/%s" % (path, f["file"]))
                               for f in scan_secrets(os.path.join(stage, "tree", path))]
            staged = self.stage_requirements(git, mirror, commit, stage) if p["validate"] else None
            requirements = staged[0] if staged else None
            site = self.review_packages(staged[1], commit, registry, stage) if review and staged else None
            dags = {}
            # A link out of the tree would be read by Airflow's parse (a device, a host file): not parsed.
            if p["validate"] and not any(f["kind"] == "link" for f in report):
                sandbox = Sandbox(p["validation_user"], p["validation_timeout"], p["validation_memory_max"],
                                  p["validation_tasks_max"], p["validation_network"],
                                  secret_paths=(p["airflow_config_dir"], "/etc/qubinode-airflow", "/etc/temporal"),
                                  hidden=("/var/lib/postgresql", "/var/lib/temporal", "/var/lib/airflow",
                                          "/root", "/home"))
                dags, import_report, deprecations, unmet = validate_tree(
                    os.path.join(p["airflow_venv"], "bin", "python"), sandbox, p["airflow_user"], stage,
                    tree, p["airflow_config_dir"], tests=os.path.join(stage, "tree", tests) if tests else None,
                    tests_root=os.path.join(stage, "tree"),
                    import_paths=[os.path.join(stage, "tree", path) for path in self.import_paths],
                    requirements=requirements, site_packages=site)
                self.unmet_requirements(unmet, commit)
                report += import_report
                report += self.duplicates(dags)
                self.result["deprecated_apis"] = deprecations
                if deprecations:
                    self.module.warn("%s at %s uses %d API(s) that Airflow 3 deprecated (see deprecated_apis: each "
                                     "with its replacement)" % (self.name, commit[:12], len(deprecations)))
            if report:
                raise self.refused(commit, registry, report)
            return dags
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def refused(self, commit, registry, report):
        return RepoError("%s at %s refused: %d finding(s); %s" % (
            self.name, commit[:12], len(report),
            "still serving %s" % registry[self.name]["commit"][:12] if self.name in registry
            else "not registered"), report)

    def resolve_requirements(self, registry):
        """requirements_only: the requirements of the commit to pin, resolved with every other registered
        repository's, in a dry run of pip that changes nothing."""
        p = self.p
        self.result.update(requirements=[], packages=[])
        if self.module.check_mode:
            return
        git = Git(p["url"], p["token"], p["username"], p["ssh_private_key"], workdir=p["work_dir"])
        try:
            commit = self.target_commit(git, registry.get(self.name))
            mirror = os.path.join(p["work_dir"], self.name, "mirror.git")
            git.fetch(mirror)
            text = (git.read_file(mirror, commit, self.requirements_file, REQUIREMENTS_LIMIT)
                    if self.requirements_file else None)
        finally:
            git.close()
        self.result["commit"] = commit
        if text is None:
            return
        stage = tempfile.mkdtemp(prefix="requirements-", dir=p["work_dir"])
        try:
            lines, packages = self.resolve_text(text, read_runtime(p["airflow_config_dir"]), commit, registry, stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        self.result.update(requirements=lines, packages=packages)

    def resolve_text(self, text, runtime, commit, registry, stage):
        """(requirement lines, packages pip would add) of the requirements file `text` of `commit`, resolved with
        every other registered repository's and the stack's constraints (`runtime`, the host's runtime.json) in a
        dry run; a line that cannot be read, a package nobody allowed or a conflict refuses the commit. Nothing with
        the podman runtime."""
        p = self.p
        try:
            accepted, unread = parse_requirements(text)
        except RequirementsError as e:
            raise self.refused(commit, registry, [dict(file=self.requirements_file, kind="requirement", message=e.msg)])
        if unread:
            self.module.warn("%s at %s: line(s) %s of its %s are not package requirements and were not read (no option, "
                             "file or URL)" % (self.name, commit[:12], ", ".join(str(n) for n, _t, _w in unread),
                                               self.requirements_file))
        if not accepted:
            return [], []
        if runtime["runtime"] != "native":
            self.module.warn("%s: with the podman runtime the image holds the packages and its %s is not installed; add "
                             "what it needs to the airflow role's airflow_extra_pip_packages" % (self.name,
                                                                                                 self.requirements_file))
            return [], []
        allowed = allowed_names(runtime)
        findings = disallowed(accepted, allowed, self.requirements_file)
        if findings:
            raise self.refused(commit, registry, findings)
        lines = [line for _n, line in accepted]
        others, pins, dropped = registry_requirements(registry, allowed, skip=self.name)
        if dropped:
            self.module.warn("the registry entries of %s hold requirements that are not allowed here, which were left "
                             "out; register those repositories again" % ", ".join(dropped))
        try:
            packages = resolve(self.module, os.path.join(p["airflow_venv"], "bin", "python"),
                               sorted(set(lines) | set(others)), runtime.get("constraints"),
                               runtime.get("pip_extra_args"), stage, pins=pins)
        except RequirementsError as e:
            raise self.refused(commit, registry, [dict(file=self.requirements_file, kind="requirement", message=e.msg)])
        return lines, packages

    def review_packages(self, text, commit, registry, stage):
        """A merge request's review: the packages its requirements file (`text`) adds, resolved as
        a registration resolves them, and installed into the stage alone (wheels, so no code of theirs runs here)
        for the validator to import where the virtualenv's own packages are; the stack's virtualenv and hosts are
        left as they are. Returns that directory, or None when nothing is to add."""
        p = self.p
        runtime = read_runtime(p["airflow_config_dir"])
        lines, packages = self.resolve_text(text, runtime, commit, registry, stage)
        self.result.update(requirements=lines, packages=packages)
        if not packages:
            return None
        site = os.path.join(stage, "site-packages")
        argv = [os.path.join(p["airflow_venv"], "bin", "python"), "-m", "pip", "install", "--disable-pip-version-check",
                "--no-input", "--no-deps", "--no-compile", "--only-binary", ":all:", "--target", site]
        argv += shlex.split(runtime.get("pip_extra_args") or "") + packages
        rc, out, err = self.module.run_command(argv, cwd=stage)
        if rc != 0:
            raise RepoError("%s at %s: the packages its %s adds (%s) could not be fetched for the review: %s"
                            % (self.name, commit[:12], self.requirements_file, ", ".join(packages),
                               (err or out).strip()[-1000:]))
        return site

    def target_commit(self, git, old):
        """The commit a registration pins: O(commit) (checked for a push), else the head of O(ref)."""
        p = self.p
        if p["commit"] and p["forward_only"]:
            return self.forward_commit(git, old)
        return p["commit"] or git.resolve(p["ref"])

    def stage_requirements(self, git, mirror, commit, stage):
        """The commit's requirements file copied into the root-only stage for the validator to read: (its path, its
        text), or None when the commit has none."""
        text = git.read_file(mirror, commit, self.requirements_file, REQUIREMENTS_LIMIT)
        if text is None:
            return None
        path = os.path.join(stage, "requirements.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path, text

    def unmet_requirements(self, unmet, commit):
        """The validator's unmet requirements as RV(unmet_requirements), with a warning that names them."""
        entries, wanted, unread = [], [], 0
        for line, requirement, installed, note in unmet:
            if note:
                unread += 1
            else:
                wanted.append(requirement)
                note = "%s: %s" % (requirement, "not installed" if installed is None else "installed at %s" % installed)
            entries.append(dict(file=self.requirements_file, line=line, requirement=requirement, installed=installed,
                                message=note))
        self.result["unmet_requirements"] = entries
        if wanted:
            them = "it" if len(wanted) == 1 else "them"
            self.module.warn("%s at %s: its %s asks for %s, which the stack's Airflow does not have; the playbook "
                             "qubinode.airflow.dag_repos installs %s on every host before the commit goes live (with the "
                             "podman runtime, add %s to the airflow role's airflow_extra_pip_packages; see "
                             "unmet_requirements)" % (self.name, commit[:12], self.requirements_file, ", ".join(wanted),
                                                      them, them))
        if unread:
            self.module.warn("%s at %s: %d line(s) of its %s are not package requirements and were not read (see "
                             "unmet_requirements)" % (self.name, commit[:12], unread, self.requirements_file))

    def duplicates(self, dags):
        found = []
        for d in self.api.list_all("dags", "dags"):
            if d["dag_id"] in dags and d.get("bundle_name") not in (None, self.name):
                found.append(dict(file=dags[d["dag_id"]], kind="duplicate",
                                  message="dag_id %r is already served by bundle %r" % (d["dag_id"], d["bundle_name"])))
        return found

    def review(self, registry):
        """Validate the head of a merge request, and change nothing: a mirror of its own, so that a review
        never touches what the registrations fetch."""
        p = self.p
        self.result.update(commit=p["commit"], previous_commit=(registry.get(self.name) or {}).get("commit"))
        if self.module.check_mode:
            return
        git = Git(p["url"], p["token"], p["username"], p["ssh_private_key"], workdir=p["work_dir"])
        try:
            dags = self.validate(git, p["commit"], registry, mirror="review.git", extra_refs=(p["review_ref"],),
                                 review=True)
        finally:
            git.close()
        self.result.update(reviewed=True, dag_ids=sorted(dags))

    def present(self, registry):
        p = self.p
        old = registry.get(self.name)
        # Check mode only reads the remote (ls-remote): its scratch space need not be the work directory.
        git = Git(p["url"], p["token"], p["username"], p["ssh_private_key"],
                  workdir=None if self.module.check_mode else p["work_dir"])
        try:
            commit = self.target_commit(git, old)
            want = dict(url=p["url"], ref=p["ref"], subdir=self.subdir, pin=p["pin"],
                        refresh_interval=p["refresh_interval"], commit=commit,
                        git_conn_id=conn_id_for(self.name) if (p["token"] or p["ssh_private_key"]) else None)
            if self.import_paths:
                # Only when given: an entry registered without them compares as it was.
                want["import_paths"] = self.import_paths
            # The same for these, which a push or a sync from the page must read as the registration did.
            want.update((k, p[k]) for k, default in ENTRY_DEFAULTS.items() if p[k] != default)
            same = old is not None and all(old.get(k) == want.get(k) for k in KEYS)
            self.result.update(commit=commit, previous_commit=old.get("commit") if old else None)
            if same:
                entry = dict(old)
            else:
                if self.module.check_mode:
                    entry = dict(old or {}, **want)
                    for key in ("import_paths",) + tuple(ENTRY_DEFAULTS):
                        if key not in want:
                            entry.pop(key, None)
                else:
                    dags = self.validate(git, commit, registry)
                    history = [commit] + ([old["commit"]] if old else []) + (old or {}).get("history", [])
                    seen, ordered = set(), []
                    for c in history:
                        if c not in seen:
                            seen.add(c)
                            ordered.append(c)
                    if p["requirements"] or p["packages"]:
                        want.update(requirements=p["requirements"], packages=p["packages"])
                    entry = dict(want, dag_ids=sorted(dags), history=ordered[:HISTORY],
                                 previous=old.get("commit") if old and old.get("commit") != commit else
                                 (old or {}).get("previous"),
                                 validated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                self.result["changed"] = True
                if self.module._diff:
                    self.result["diff"] = dict(before=old or {}, after=entry)
        finally:
            git.close()
        conn_state = "present" if want["git_conn_id"] else "absent"
        if self.credentials_connection(conn_state):
            self.result["changed"] = True
        new_registry = dict(registry)
        new_registry[self.name] = entry
        if self.result["changed"] and not same and not self.module.check_mode:
            new_registry = self.merge(entry)
        self.apply_here(new_registry)
        self.result.update(bundle=bundle_entry(self.name, entry, p["airflow_config_dir"]), dag_ids=entry.get("dag_ids", []),
                           history=entry.get("history", []))
        if p["wait"] and not self.module.check_mode:
            dag_ids, errors, done = wait_parsed(self.api, self.name, commit if p["pin"] else None,
                                                entry.get("dag_ids", []), p["wait_timeout"])
            self.result.update(dag_ids=dag_ids, import_errors=errors)
            if not done:
                raise RepoError("%s: Airflow did not parse %s at %s within %ss; look at the dag-processor's log"
                                % (self.name, entry.get("dag_ids"), commit[:12], p["wait_timeout"]))

    def forward_commit(self, git, old):
        """The commit to pin for a push: O(commit) when it is on the ref and newer than the pinned one, else
        the pinned one (superseded)."""
        p = self.p
        commit, pinned = p["commit"], (old or {}).get("commit")
        if old and old.get("git_conn_id") and not (p["token"] or p["ssh_private_key"]):
            raise RepoError("%s is registered with credentials (connection %s): give them again (token or "
                            "ssh_private_key) to pin a push" % (self.name, old["git_conn_id"]))
        if commit == pinned or self.module.check_mode:
            return commit
        head = git.resolve(p["ref"])
        mirror = os.path.join(p["work_dir"], self.name, "mirror.git")
        git.fetch(mirror)
        if not git.is_ancestor(mirror, commit, head):
            raise RepoError("%s: commit %s is not on %s (head %s); still serving %s" % (
                self.name, commit[:12], p["ref"], head[:12], (pinned or "nothing")[:12]))
        if pinned and git.is_ancestor(mirror, commit, pinned):
            self.result["superseded"] = True
            self.module.warn("%s: %s is older than the pinned %s, which stays" % (self.name, commit[:12], pinned[:12]))
            return pinned
        return commit

    def apply_here(self, registry):
        changed, restarted, _bundles = apply_to_host(
            self.module, registry, self.p["airflow_config_dir"], self.p["airflow_user"], self.module.check_mode,
            api=self.api)
        if changed:
            self.result["changed"] = True
            self.result["restarted"] = restarted
            if "airflow-api-server" in restarted and not self.module.check_mode:
                wait_healthy(self.api, self.p["wait_timeout"])

    def absent(self, registry):
        old = registry.get(self.name)
        if old is not None:
            self.result["changed"] = True
            if self.module._diff:
                self.result["diff"] = dict(before=old, after={})
            new_registry = dict((k, v) for k, v in registry.items() if k != self.name)
            if not self.module.check_mode:
                new_registry = self.merge(None)
                shutil.rmtree(os.path.join(self.p["work_dir"], self.name), ignore_errors=True)
            self.apply_here(new_registry)
        else:
            self.apply_here(registry)
        if self.credentials_connection("absent"):
            self.result["changed"] = True

    def merge(self, entry):
        """Write this repository's entry (None: remove it) into the registry as it is now, under the
        work directory's lock, so that registrations running at the same time keep each other's."""
        with WorkDirLock(self.p["work_dir"]):
            registry = read_registry(self.api)
            if entry is None:
                registry.pop(self.name, None)
            else:
                registry[self.name] = entry
            write_registry(self.api, registry)
        return registry

    def check_input(self):
        """Every value that reaches git or a path, before anything is called or written."""
        p = self.p
        try:
            check_name(self.name)
            if p["commit"]:
                check_commit(p["commit"])
            elif p["forward_only"] or p["review_ref"]:
                raise InputError("%s needs commit: the commit of the %s" % (
                    ("forward_only", "push to pin") if p["forward_only"] else ("review_ref", "merge request's head")))
            if p["review_ref"]:
                check_review_ref(p["review_ref"])
            check_ref(p["ref"])
            self.subdir = check_subdir(p["subdir"])
            self.test_dir = check_subdir(p["test_dir"], field="test_dir")
            self.requirements_file = check_subdir(p["requirements_file"], field="requirements_file")
            self.import_paths = check_import_paths(p["import_paths"])
            check_requirement_list(p["requirements"], "requirements")
            check_requirement_list(p["packages"], "packages", pins=True)
            if p["requirements_only"] and (p["state"] != "present" or p["review_ref"]):
                raise InputError("requirements_only resolves the requirements of a commit to pin: give state=present "
                                 "and no review_ref")
            if p["state"] == "present":
                if not p["url"]:
                    raise InputError("url is required with state=present, for example "
                                     "url: https://git.example.com/dags.git")
                check_url(p["url"], token=bool(p["token"]))
        except (InputError, RequirementsError) as e:
            raise RepoError(str(e))
        if p["state"] == "present" and not self.module.check_mode:
            ensure_root_dir(p["work_dir"])

    def run(self):
        self.check_input()
        registry = read_registry(self.api)
        if self.p["requirements_only"]:
            self.resolve_requirements(registry)
        elif self.p["state"] == "present" and self.p["review_ref"]:
            self.review(registry)
        elif self.p["state"] == "present":
            self.present(registry)
        else:
            self.absent(registry)
        return self.result


def main():
    spec = airflow_api_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        url=dict(type="str"),
        ref=dict(type="str", default="main"),
        commit=dict(type="str"),
        forward_only=dict(type="bool", default=False),
        review_ref=dict(type="str"),
        subdir=dict(type="str"),
        test_dir=dict(type="str", default="tests"),
        requirements_file=dict(type="str", default="requirements.txt"),
        requirements_only=dict(type="bool", default=False),
        requirements=dict(type="list", elements="str", default=[]),
        packages=dict(type="list", elements="str", default=[]),
        import_paths=dict(type="list", elements="str", default=[]),
        refresh_interval=dict(type="int", default=300),
        pin=dict(type="bool", default=True),
        username=dict(type="str", default="x-access-token"),
        token=dict(type="str", no_log=True),
        ssh_private_key=dict(type="str", no_log=True),
        update_secrets=dict(type="str", default="on_change", choices=["always", "on_change", "on_create"]),
        validate=dict(type="bool", default=True),
        secret_scan=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        validation_timeout=dict(type="int", default=300),
        validation_user=dict(type="str", default="airflow-validate"),
        validation_network=dict(type="bool", default=False),
        validation_memory_max=dict(type="str", default="2G"),
        validation_tasks_max=dict(type="int", default=512),
        airflow_venv=dict(type="path", default="/opt/qubinode-airflow/venv"),
        airflow_config_dir=dict(type="path", default="/etc/airflow"),
        airflow_user=dict(type="str", default="airflow"),
        work_dir=dict(type="path", default="/var/lib/qubinode-airflow/dag-repos"),
    )
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[("token", "ssh_private_key")],
        supports_check_mode=True,
    )
    repo = None
    try:
        repo = DagRepo(module)
        result = repo.run()
    except RepoError as e:
        module.fail_json(msg=to_text(e.msg), report=e.report, changed=bool(repo and repo.result["changed"]),
                         deprecated_apis=repo.result.get("deprecated_apis", []) if repo else [],
                         unmet_requirements=repo.result.get("unmet_requirements", []) if repo else [])
    except AirflowAPIError as e:
        module.fail_json(msg=e.msg, status=e.status, changed=bool(repo and repo.result["changed"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
