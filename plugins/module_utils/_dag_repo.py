# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""Git DAG repositories as Airflow DAG bundles: fetch, validate, pin, and apply to a host.

The registry of repositories (url, subdir, pinned commit, history, DAG ids; never credentials)
is the Airflow variable `qubinode_dag_repos` in the metadata database, so every host reads the
same truth. Each host turns it into /etc/airflow/bundles.env, which sets
AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST for its Airflow services and CLI.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import configparser
import json
import os
import re
import shutil
import tempfile
import time

from ansible_collections.qubinode.airflow.plugins.module_utils._api import AirflowAPIError
from ansible_collections.qubinode.airflow.plugins.module_utils._host import (
    AIRFLOW_UNITS, airflow_python, installed_units, restart_with_cleanup)

REGISTRY_KEY = "qubinode_dag_repos"
ENV_NAME = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
HISTORY = 10

# What a repository must not carry. Findings name the file, line and kind, never the value.
SECRET_PATTERNS = (
    ("AWS access key id", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("AWS secret access key", re.compile(r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    ("password in a URI", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"{}<>]+:[^\s/@'\"{}<>]+@[\w.-]+")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Google service account key", re.compile(r"\"private_key_id\"\s*:\s*\"[0-9a-f]{40}\"")),
)
# Placeholders people write in examples are not secrets.
PLACEHOLDER_RE = re.compile(r"://[^\s/:@]*:(?:\*+|x+|password|pass|secret|changeme|<[^>]*>|\$\{?\w+\}?|%\(\w+\)s)@",
                            re.IGNORECASE)
SCAN_MAX_BYTES = 2 * 1024 * 1024


class RepoError(Exception):
    """A refusal with a per-file report."""

    def __init__(self, msg, report=None):
        super(RepoError, self).__init__(msg)
        self.msg = msg
        self.report = report or []


# -- git -------------------------------------------------------------------------------------------

class Git:
    """git with credentials passed through the environment, never on a command line."""

    def __init__(self, module, url, token=None, username=None, ssh_private_key=None, workdir=None):
        self.module = module
        self.url = url
        self.env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "LC_ALL": "C"}
        self._tmp = tempfile.mkdtemp(prefix="qubinode-git-", dir=workdir)
        os.chmod(self._tmp, 0o700)
        if token:
            basic = base64.b64encode(("%s:%s" % (username or "x-access-token", token)).encode()).decode()
            self.env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                            GIT_CONFIG_VALUE_0="Authorization: Basic %s" % basic)
        if ssh_private_key:
            key = os.path.join(self._tmp, "key")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(ssh_private_key.strip() + "\n")
            self.env["GIT_SSH_COMMAND"] = ("ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes "
                                           "-o StrictHostKeyChecking=accept-new" % key)

    def close(self):
        shutil.rmtree(self._tmp, ignore_errors=True)

    def run(self, args, cwd=None, what="git"):
        rc, out, err = self.module.run_command(["git"] + args, cwd=cwd, environ_update=self.env)
        if rc != 0:
            raise RepoError("%s failed for %s: %s" % (what, self.url, (err or out).strip()[-800:]))
        return out

    def resolve(self, ref):
        """The commit a branch, tag or full SHA names, read with ls-remote (writes nothing)."""
        if SHA_RE.match(ref):
            return ref
        out = self.run(["ls-remote", "--", self.url], what="git ls-remote")
        refs = {}
        for line in out.splitlines():
            sha, _tab, name = line.partition("\t")
            refs[name] = sha
        for name in ("refs/heads/%s" % ref, "refs/tags/%s^{}" % ref, "refs/tags/%s" % ref, ref):
            if name in refs:
                return refs[name]
        raise RepoError("ref %r is not a branch or tag of %s: give a branch, a tag or a full 40-character "
                        "commit SHA" % (ref, self.url))

    def fetch(self, mirror):
        if not os.path.isdir(os.path.join(mirror, "objects")):
            os.makedirs(mirror, 0o700)
            self.run(["init", "--bare", "--quiet", mirror], what="git init")
        self.run(["--git-dir", mirror, "fetch", "--quiet", "--prune", "--", self.url,
                  "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], what="git fetch")

    def export(self, mirror, commit, subdir, dest):
        """The tree of `commit` (only `subdir`) as plain files in dest."""
        if self.module.run_command(["git", "--git-dir", mirror, "cat-file", "-e", commit + "^{commit}"])[0] != 0:
            raise RepoError("commit %s is not in %s" % (commit, self.url))
        archive = os.path.join(self._tmp, "tree.tar")
        args = ["--git-dir", mirror, "archive", "--format=tar", "-o", archive, commit]
        if subdir:
            args.append(subdir.strip("/"))
        self.run(args, what="git archive (is subdir %r in the repository?)" % subdir)
        os.makedirs(dest)
        rc, _out, err = self.module.run_command(["tar", "-xf", archive, "-C", dest])
        if rc != 0:
            raise RepoError("cannot unpack %s at %s: %s" % (self.url, commit, err))
        return os.path.join(dest, subdir.strip("/")) if subdir else dest


# -- validation ------------------------------------------------------------------------------------

def scan_secrets(root):
    findings = []
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            try:
                if os.path.getsize(path) > SCAN_MAX_BYTES:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue  # binary
            for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                for kind, pattern in SECRET_PATTERNS:
                    if pattern.search(line) and not (kind == "password in a URI" and PLACEHOLDER_RE.search(line)):
                        findings.append(dict(file=rel, line=lineno, kind="secret",
                                             message="%s found: keep secrets in Airflow connections or "
                                                     "variables, not in the repository" % kind))
    return findings


# Runs with the Airflow virtualenv's python, as the Airflow user: compiles every .py file, then
# imports every one (.airflowignore applies) with Airflow's own DagBag, which also reports cycles,
# and prints {"dags": {dag_id: file}, "errors": {file: [kind, message]}} as JSON.
VALIDATOR = r'''
import ast, json, os, sys
root = sys.argv[1]
errors, dags = {}, {}
for base, dirs, files in os.walk(root):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
    for name in files:
        if name.endswith(".py"):
            path = os.path.join(base, name)
            try:
                with open(path, "rb") as f:
                    ast.parse(f.read(), filename=path)
            except SyntaxError as e:
                errors[os.path.relpath(path, root)] = ["syntax", "SyntaxError: %s (line %s)" % (e.msg, e.lineno)]
sys.path.insert(0, root)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=root, safe_mode=False, bundle_path=root, bundle_name="validation")
for path, msg in bag.import_errors.items():
    rel = os.path.relpath(path, root) if os.path.isabs(path) else path
    kind = "cycle" if "Cycle" in msg else "import"
    errors.setdefault(rel, [kind, msg.strip().splitlines()[-1] if msg.strip() else msg])
for dag_id, dag in bag.dags.items():
    dags[dag_id] = os.path.relpath(dag.fileloc, root)
print("QUBINODE-VALIDATION " + json.dumps({"dags": dags, "errors": errors}))
'''


def validate_tree(module, python, run_as, tree, airflow_env, timeout):
    """Parse `tree` with Airflow; returns (dags {id: file}, report [..]). `python` is the virtualenv's
    interpreter; for the podman runtime (see runtime.json beside AIRFLOW_CONFIG) the services'
    image runs the check instead, with the staging directory mounted."""
    stage = os.path.dirname(tree.rstrip("/"))
    script = os.path.join(stage, "qubinode_validate.py")
    with open(script, "w") as f:
        f.write(VALIDATOR)
    os.chmod(script, 0o644)
    venv = os.path.dirname(os.path.dirname(python))
    config_dir = os.path.dirname(airflow_env.get("AIRFLOW_CONFIG", "")) or None
    argv, env = airflow_python(venv, run_as, config_dir, airflow_env, mounts=[stage])
    cmd = ["timeout", str(int(timeout))] + argv + [script, tree]
    if argv[0] == "runuser":
        cmd = argv[:4] + ["timeout", str(int(timeout))] + argv[4:] + [script, tree]
    rc, out, err = module.run_command(cmd, environ_update=env, cwd=tree)
    line = [ln for ln in out.splitlines() if ln.startswith("QUBINODE-VALIDATION ")]
    if not line:
        raise RepoError("the DAG validation did not finish (rc %s): %s" % (rc, (err or out).strip()[-1500:]))
    result = json.loads(line[-1].split(" ", 1)[1])
    report = [dict(file=k, kind=v[0], message=v[1]) for k, v in sorted(result["errors"].items())]
    return result["dags"], report


# -- registry (the Airflow variable) ---------------------------------------------------------------

def read_registry(api):
    obj = api.get_or_none("variables/%s" % REGISTRY_KEY)
    if not obj or not obj.get("value"):
        return {}
    try:
        return json.loads(obj["value"])
    except ValueError:
        raise RepoError("the Airflow variable %s does not hold JSON; it is managed by airflow_dag_repo: "
                        "delete it to start over" % REGISTRY_KEY)


def write_registry(api, registry):
    value = json.dumps(registry, sort_keys=True)
    api.bulk("variables", [dict(action="create", action_on_existence="overwrite", entities=[dict(
        key=REGISTRY_KEY, value=value,
        description="DAG repositories registered by qubinode.airflow.airflow_dag_repo (do not edit by hand)")])])


def conn_id_for(name):
    return "qubinode_git_%s" % name


def bundle_entry(name, repo):
    kwargs = dict(repo_url=repo["url"], tracking_ref=repo["commit"] if repo.get("pin", True) else repo["ref"],
                  refresh_interval=int(repo.get("refresh_interval", 300)))
    if repo.get("subdir"):
        kwargs["subdir"] = repo["subdir"]
    if repo.get("git_conn_id"):
        kwargs["git_conn_id"] = repo["git_conn_id"]
    return dict(name=name, classpath=GIT_BUNDLE, kwargs=kwargs)


# -- one host ---------------------------------------------------------------------------------------

def _config(config_file, option, fallback=None):
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(config_file)
        return parser.get("dag_processor", option)
    except (configparser.Error, OSError):
        return fallback


def base_bundles(config_file):
    """The bundle list airflow.cfg holds (the role's local dags-folder bundle)."""
    try:
        return json.loads(_config(config_file, "dag_bundle_config_list", "[]"))
    except ValueError:
        return []


def stale_clones(old, new):
    """Bundle storage to drop before the services start again: a GitDagBundle's working clone cannot
    check out a tracking_ref SHA it has not fetched (apache/airflow#71388), and its bare clone keeps
    the URL it was made from. Both are caches that Airflow rebuilds at start."""
    before = dict((b.get("name"), b.get("kwargs", {})) for b in old or [])
    drop = []
    for b in new:
        if b.get("classpath") != GIT_BUNDLE:
            continue
        was, now = before.get(b["name"]), b.get("kwargs", {})
        if was is None or was.get("repo_url") != now.get("repo_url"):
            drop += [(b["name"], "tracking_repo"), (b["name"], "bare")]
        elif was.get("tracking_ref") != now.get("tracking_ref"):
            drop.append((b["name"], "tracking_repo"))
    return drop


def read_env_file(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(ENV_NAME + "="):
                    value = line.split("=", 1)[1].strip()
                    if value.startswith("'") and value.endswith("'"):
                        value = value[1:-1]
                    return json.loads(value)
    except (OSError, ValueError):
        pass
    return None


def render_env_file(bundles):
    text = json.dumps(bundles, sort_keys=True, separators=(",", ":"))
    if "'" in text:
        raise RepoError("a repository URL or subdir holds a single quote, which the bundle list cannot carry")
    return ("# Managed by qubinode.airflow (airflow_dag_repo / airflow_dag_bundles): the DAG bundles this\n"
            "# host serves, from the Airflow variable %s. Do not edit.\n%s='%s'\n" % (REGISTRY_KEY, ENV_NAME, text))


def restarts_needed(old, new):
    """Only dag-processors care about tracking_ref; anything else is read by every service at start."""
    if old == new:
        return ()

    def strip(bundles):
        out = []
        for b in bundles or []:
            b = json.loads(json.dumps(b))
            b.get("kwargs", {}).pop("tracking_ref", None)
            out.append(b)
        return sorted(out, key=lambda b: b.get("name", ""))
    if strip(old) == strip(new):
        return ("airflow-dag-processor",)
    return AIRFLOW_UNITS  # every unit reads bundles.env; only those installed restart


def apply_to_host(module, registry, config_dir, group, check_mode):
    """Write bundles.env from the registry and restart what must re-read it. Returns (changed, restarted, bundles)."""
    env_file = os.path.join(config_dir, "bundles.env")
    base = base_bundles(os.path.join(config_dir, "airflow.cfg"))
    bundles = [b for b in base if b.get("name") not in registry]
    bundles += [bundle_entry(name, registry[name]) for name in sorted(registry)]
    current = read_env_file(env_file)
    effective_old = current if current is not None else base
    if not registry:
        # Nothing registered: the file is not needed; airflow.cfg's own list applies.
        if current is None:
            return False, [], base
        if not check_mode:
            os.remove(env_file)
        restart = restarts_needed(current, base)
    else:
        text = render_env_file(bundles)
        try:
            with open(env_file) as f:
                same = f.read() == text
        except OSError:
            same = False
        if same:
            return False, [], bundles
        restart = restarts_needed(effective_old, bundles)
        if not check_mode:
            tmp = env_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.rename(tmp, env_file)
    units = installed_units(restart, config_dir)
    if not check_mode:
        storage = _config(os.path.join(config_dir, "airflow.cfg"), "dag_bundle_storage_path",
                          os.path.join(tempfile.gettempdir(), "airflow", "dag_bundles"))
        stale = [os.path.join(storage, name, part) for name, part in stale_clones(effective_old, bundles)]
        restart_with_cleanup(module, units, stale, RepoError, config_dir)
    return True, units, bundles


def wait_healthy(api, timeout):
    """After an api-server restart: wait until the API answers and reports healthy."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            health = api.request("GET", "monitor/health")
            if all((v or {}).get("status") in ("healthy", None) for v in health.values() if isinstance(v, dict)):
                return
        except AirflowAPIError as e:
            last = e.msg
        time.sleep(2)
    raise RepoError("the Airflow API did not come back within %ss after the restart: %s" % (timeout, last))


def wait_parsed(api, name, commit, expected, timeout):
    """Until every expected DAG of the bundle is parsed at `commit` (or the timeout)."""
    deadline = time.time() + timeout
    dags, errors = {}, []
    while True:
        dags = dict((d["dag_id"], d) for d in api.list_all("dags", "dags", query=dict(bundle_name=name)))
        errors = [dict(file=e.get("filename"), message=(e.get("stack_trace") or "").strip().splitlines()[-1:])
                  for e in api.list_all("importErrors", "import_errors") if e.get("bundle_name") == name]
        ready = [d for d in expected if d in dags and (not commit or dags[d].get("bundle_version") == commit)]
        if len(ready) == len(expected):
            return sorted(dags), errors, True
        if time.time() >= deadline:
            return sorted(dags), errors, False
        time.sleep(2)
