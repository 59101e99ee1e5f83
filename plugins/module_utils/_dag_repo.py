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
import errno
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import tempfile
import time

from ansible_collections.qubinode.airflow.plugins.module_utils._api import AirflowAPIError
from ansible_collections.qubinode.airflow.plugins.module_utils._host import (
    AIRFLOW_UNITS, deferred, installed_units, read_runtime, restart_with_cleanup, run)
from ansible_collections.qubinode.airflow.plugins.module_utils._repo_input import (
    SHA_RE, InputError, check_registry)
from ansible_collections.qubinode.airflow.plugins.module_utils._requirements import (
    RequirementsError, allowed_names, registry_requirements)

REGISTRY_KEY = "qubinode_dag_repos"
ENV_NAME = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
GIT_BUNDLE = "airflow.providers.git.bundles.git.GitDagBundle"
# The same bundle, which also puts the repository's import_paths on sys.path (the provider package).
IMPORT_PATHS_BUNDLE = "qubinode_airflow.repos.bundle.GitDagBundleWithImportPaths"
# A pinned repository: the bundle serves the commit of its pin file (PIN_DIR of the config directory), which
# it reads at each refresh, so a new pin needs no restart.
PINNED_BUNDLE = "qubinode_airflow.repos.bundle.PinnedGitDagBundle"
GIT_BUNDLES = (GIT_BUNDLE, IMPORT_PATHS_BUNDLE, PINNED_BUNDLE)
PIN_DIR = "bundle-pins"
# The requirement lines of the registered repositories, which the airflow role installs into a new virtualenv.
REQUIREMENTS_FILE = "dag-repo-requirements.txt"
HISTORY = 10
WORK_DIR = "/var/lib/qubinode-airflow/dag-repos"
ALLOW_FILE = ".qubinode-secrets-allow"

# What a repository must not carry. Findings name the file, line, kind and a fingerprint, never the value.
# Each pattern's group "v" (or the whole match) is the secret the fingerprint is made of.
SECRET_PATTERNS = (
    ("AWS access key id", re.compile(r"(?<![A-Z0-9])(?P<v>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])")),
    ("AWS secret access key",
     re.compile(r"(?i)aws_secret_access_key[\"']?\s*[:=]\s*[\"']?(?P<v>[A-Za-z0-9/+=]{40})")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("password in a URI", re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<u>[^\s:@/'\"{}<>]*):(?P<v>[^\s@'\"{}<>]+)@[\w.-]+")),
    ("GitHub token", re.compile(r"\b(?P<v>gh[pousr]_[A-Za-z0-9]{36,})\b")),
    ("GitHub fine-grained token", re.compile(r"\b(?P<v>github_pat_[A-Za-z0-9_]{22,})")),
    ("GitLab token", re.compile(r"\b(?P<v>gl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_-]{20,})")),
    ("Slack token", re.compile(r"\b(?P<v>xox[abposr]-[A-Za-z0-9-]{10,})")),
    ("Google service account key", re.compile(r"\"private_key_id\"\s*:\s*\"(?P<v>[0-9a-f]{40})\"")),
)
# Placeholders people write in examples are not secrets (checked on each match, not on the line).
PLACEHOLDER_RE = re.compile(r"^(?:\*+|x+|password|pass|secret|changeme|<[^>]*>|\$\{?\w+\}?|%\(\w+\)s|\{\{.*\}\})$",
                            re.IGNORECASE)
PORT_RE = re.compile(r"^[0-9]{1,5}(?:/|$)")  # host:port/path@... is not user:password@
SCAN_LINE_BYTES = 64 * 1024  # a read's bound: a file of any size is scanned in pieces of this size


class RepoError(Exception):
    """A refusal with a per-file report."""

    def __init__(self, msg, report=None):
        super(RepoError, self).__init__(msg)
        self.msg = msg
        self.report = report or []


# -- the root-only work directory -----------------------------------------------------------------

def ensure_root_dir(path, mode=0o700, what="work_dir"):
    """Create `path` (`mode`, root) if needed and refuse it unless every component, from /, is a real
    directory owned by root that no other user can write: root runs git and tar in it."""
    if not os.path.isabs(path):
        raise RepoError("%s %r must be an absolute path" % (what, path))
    parts = [p for p in os.path.normpath(path).split("/") if p]
    current = "/"
    for index, part in enumerate([""] + parts):
        current = os.path.join(current, part) if part else "/"
        try:
            st = os.lstat(current)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise RepoError("%s: cannot inspect %s: %s" % (what, current, e.strerror))
            os.mkdir(current, mode if index == len(parts) else 0o755)
            st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise RepoError("%s: %s is %s, not a directory: root does not work through links; give a "
                            "%s whose every component is a real directory owned by root"
                            % (what, current, "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory",
                               what))
        if st.st_uid != 0 or (st.st_mode & 0o022 and not (st.st_mode & stat.S_ISVTX and index < len(parts))):
            raise RepoError("%s: %s is owned by uid %d with mode %o: every component of %s must be "
                            "owned by root and writable by root only (the default is %s)"
                            % (what, current, st.st_uid, stat.S_IMODE(st.st_mode), what, WORK_DIR))
    st = os.lstat(path)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)
    return path


class WorkDirLock:
    """An exclusive lock of the work directory: registrations on this host read, merge and write the
    registry one at a time, so two at once keep both."""

    def __init__(self, work_dir):
        self.path = os.path.join(work_dir, ".lock")
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# -- git -------------------------------------------------------------------------------------------

# Settings on every git call: no hook, no fsmonitor and no other code named by a repository's config
# runs, the system and global config are not read, and only network transports are allowed (a local
# path would let a registration read any repository root can read).
GIT_SAFE_CONFIG = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.sshCommand", "ssh"),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.ssh.allow", "always"),
    ("protocol.git.allow", "always"),
    ("submodule.recurse", "false"),
    ("transfer.fsckObjects", "false"),
)


class Git:
    """git with credentials passed through the environment, never on a command line."""

    def __init__(self, url, token=None, username=None, ssh_private_key=None, workdir=None):
        self.url = url
        self._tmp = tempfile.mkdtemp(prefix="qubinode-git-", dir=workdir)
        os.chmod(self._tmp, 0o700)
        config = list(GIT_SAFE_CONFIG)
        if token:
            basic = base64.b64encode(("%s:%s" % (username or "x-access-token", token)).encode()).decode()
            config.append(("http.extraHeader", "Authorization: Basic %s" % basic))
        self.env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "SSH_ASKPASS": "/bin/true",
                    "LC_ALL": "C", "HOME": self._tmp, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
                    "GIT_ATTR_NOSYSTEM": "1", "GIT_NO_REPLACE_OBJECTS": "1", "GIT_PROTOCOL_FROM_USER": "0",
                    "GIT_CONFIG_COUNT": str(len(config))}
        for index, (key, value) in enumerate(config):
            self.env["GIT_CONFIG_KEY_%d" % index] = key
            self.env["GIT_CONFIG_VALUE_%d" % index] = value
        if ssh_private_key:
            key = os.path.join(self._tmp, "key")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(ssh_private_key.strip() + "\n")
            # Host keys are remembered in the root-only work directory across runs.
            self.env["GIT_SSH_COMMAND"] = ("ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes "
                                           "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s"
                                           % (key, os.path.join(workdir or self._tmp, "known_hosts")))

    def close(self):
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _git(self, args, cwd=None):
        """(rc, stdout, stderr) of git with `args`, with the credentials' environment."""
        return run(["git"] + args, cwd=cwd or self._tmp, environ_update=self.env)

    def run(self, args, cwd=None, what="git", check=True):
        rc, out, err = self._git(args, cwd)
        if rc != 0 and check:
            raise RepoError("%s failed for %s: %s" % (what, self.url, (err or out).strip()[-800:]))
        return out if check else rc

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

    def fetch(self, mirror, extra_refs=()):
        """Branches and tags into the bare repository `mirror`, and `extra_refs` (already checked: the head
        of a merge request) under their own names."""
        if not os.path.isdir(os.path.join(mirror, "objects")):
            os.makedirs(mirror, 0o700)
            self.run(["init", "--bare", "--quiet", "--", mirror], what="git init")
        self.run(["--git-dir", mirror, "fetch", "--quiet", "--prune", "--no-recurse-submodules", "--", self.url,
                  "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
                 + ["+%s:%s" % (ref, ref) for ref in extra_refs], what="git fetch")

    def has_tree(self, mirror, commit, path):
        """Whether `path` (already checked) is a directory of the repository at `commit`."""
        if not path or not SHA_RE.match(commit):
            return False
        rc, out, _err = self._git(["--git-dir", mirror, "cat-file", "-t", "--end-of-options", "%s:%s" % (commit, path)])
        return rc == 0 and out.strip() == "tree"

    def read_file(self, mirror, commit, path, limit):
        """The text of the regular file `path` (already checked) of the repository at `commit`, or None when
        there is none. A symbolic link or a directory is not read; a file larger than `limit` bytes is refused."""
        if not path or not SHA_RE.match(commit):
            return None
        rc, out, _err = self._git(["--git-dir", mirror, "ls-tree", "-z", "--end-of-options", commit,
                                   "--", ":(literal)%s" % path])
        entry = out.split("\0", 1)[0] if rc == 0 else ""
        meta, _tab, name = entry.partition("\t")
        fields = meta.split(" ")
        if name != path or len(fields) != 3 or fields[0] not in ("100644", "100755") or fields[1] != "blob":
            return None
        rc, out, err = self._git(["--git-dir", mirror, "cat-file", "-s", fields[2]])
        if rc != 0 or int(out.strip() or 0) > limit:
            raise RepoError("%s of %s at %s is larger than %d bytes: it is not read" % (path, self.url, commit[:12], limit))
        rc, out, err = self._git(["--git-dir", mirror, "cat-file", "blob", fields[2]])
        if rc != 0:
            raise RepoError("cannot read %s of %s at %s: %s" % (path, self.url, commit[:12], err.strip()))
        return out

    def is_ancestor(self, mirror, commit, descendant):
        """Whether `commit` is `descendant` or one of its ancestors (both full SHAs, already checked)."""
        if not (SHA_RE.match(commit) and SHA_RE.match(descendant)):
            return False
        return self.run(["--git-dir", mirror, "merge-base", "--is-ancestor", "--end-of-options", commit, descendant],
                        check=False) == 0

    def export(self, mirror, commit, subdir, dest, extra=()):
        """The tree of `commit` (only `subdir` and the directories `extra`, already checked) as plain files in
        dest."""
        if not SHA_RE.match(commit) or self.run(["--git-dir", mirror, "cat-file", "-e", "--end-of-options",
                                                 commit + "^{commit}"], check=False) != 0:
            raise RepoError("commit %s is not in %s" % (commit, self.url))
        archive = os.path.join(self._tmp, "tree.tar")
        args = ["--git-dir", mirror, "archive", "--format=tar", "-o", archive, "--end-of-options", commit]
        if subdir:
            args += [":(literal)%s" % path for path in (subdir,) + tuple(extra)]
        self.run(args, what="git archive (is subdir %r a directory of the repository at %s?)" % (subdir, commit[:12]))
        os.makedirs(dest, 0o700)
        rc, _out, err = run(["tar", "--no-same-owner", "--no-same-permissions", "-xf", archive, "-C", dest])
        if rc != 0:
            raise RepoError("cannot unpack %s at %s: %s" % (self.url, commit, err))
        if not subdir:
            return dest
        tree = dest
        for part in subdir.split("/"):
            tree = os.path.join(tree, part)
            if not os.path.lexists(tree) or os.path.islink(tree) or not os.path.isdir(tree):
                raise RepoError("subdir %r is not a directory of %s at %s (a symbolic link is not followed)"
                                % (subdir, self.url, commit[:12]))
        return tree


# -- secret scan -----------------------------------------------------------------------------------

def fingerprint(kind, rel, value):
    """What a repository's allow file lists to accept a finding: never the value itself."""
    return hashlib.sha256(("%s\0%s\0%s" % (kind, rel, value)).encode("utf-8", "replace")).hexdigest()[:16]


def _allowed(root):
    """Fingerprints listed in the repository's allow file (read without following a link)."""
    path = os.path.join(root, ALLOW_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return set()
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return set()
        text = f.read(1024 * 1024).decode("utf-8", "replace")
    return set(line.split("#", 1)[0].strip() for line in text.splitlines()) - {""}


def _line_findings(line):
    for kind, pattern in SECRET_PATTERNS:
        for match in pattern.finditer(line):
            value = match.groupdict().get("v") or match.group(0)
            if kind == "password in a URI" and (PLACEHOLDER_RE.match(value) or PORT_RE.match(value)):
                continue
            yield kind, value


def _link_escapes(root, path):
    target = os.readlink(path)
    if os.path.isabs(target):
        return True
    resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return not (resolved == root or resolved.startswith(root.rstrip("/") + "/"))


def scan_secrets(root):
    """Every file of the tree, whatever its size or content, read in bounded pieces; no link is
    followed (a link that points out of the tree is itself a finding)."""
    root = os.path.normpath(root)
    allowed = _allowed(root)
    findings = []
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(base, d))):
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                if _link_escapes(root, path):
                    fp = fingerprint("link", rel, os.readlink(path))
                    if fp not in allowed:
                        findings.append(dict(file=rel, line=0, kind="link", fingerprint=fp,
                                             message="symbolic link out of the repository: Airflow would read "
                                                     "a file of the host; commit the file itself"))
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    continue
                lineno = 0
                for piece in iter(lambda: f.readline(SCAN_LINE_BYTES), b""):
                    lineno += 1
                    for kind, value in _line_findings(piece.decode("utf-8", "replace")):
                        fp = fingerprint(kind, rel, value)
                        if fp in allowed:
                            continue
                        findings.append(dict(file=rel, line=lineno, kind="secret", fingerprint=fp,
                                             message="%s found: keep secrets in Airflow connections or "
                                                     "variables, not in the repository (a false positive: "
                                                     "add the fingerprint to %s)" % (kind, ALLOW_FILE)))
    return findings


# -- validation ------------------------------------------------------------------------------------

# Runs with the Airflow virtualenv's python, in the sandbox: compiles every .py file Airflow's walk keeps, then
# imports the DAG files as the stack's dag-processor finds them with Airflow's own DagBag, which also reports cycles,
# and prints {"dags": {dag_id: file}, "errors": {file: [kind, message]}} as JSON.
VALIDATOR = r'''
import ast, json, os, sys
root = sys.argv[1]
# The repository's tests and the root they run from (empty: none).
tests, tests_root = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else ("", "")
# Before any of the repository's code runs: the sandbox must really hide what it promises to.
if os.getuid() == 0 or os.geteuid() == 0:
    print("QUBINODE-SANDBOX-BREACH uid 0", flush=True)
    sys.exit(3)
for path in [p for p in os.environ.pop("QUBINODE_SECRET_PATHS", "").split(":") if p]:
    if os.path.exists(path) and os.access(path, os.R_OK):
        print("QUBINODE-SANDBOX-BREACH " + path, flush=True)
        sys.exit(3)
# A merge request's review: the packages its requirements file adds, where pip would install them (before the
# virtualenv's own packages, after the standard library). The repository's tests run with the same code.
SITE_FIRST = ("if site_dir: sys.path.insert(next((i for i, p in enumerate(sys.path) if p.endswith('site-packages')), "
              "len(sys.path)), site_dir)\n")
site_dir = os.environ.pop("QUBINODE_SITE_PACKAGES", "")
exec(SITE_FIRST)
errors, dags = {}, {}
# Airflow first, the repository after it on sys.path, as Airflow's own parse of a bundle: a module of
# the repository named like one of the standard library or Airflow (copy.py) never shadows it.
from airflow.configuration import conf
from airflow._shared.module_loading import find_path_from_directory
from airflow.dag_processing.dagbag import DagBag
# Every .py file Airflow's walk keeps (.airflowignore, with the stack's syntax) compiles.
for path in find_path_from_directory(root, ".airflowignore", conf.get("core", "dag_ignore_file_syntax", fallback="glob")):
    if path.endswith(".py"):
        try:
            with open(path, "rb") as f:
                ast.parse(f.read(), filename=path)
        except SyntaxError as e:
            errors[os.path.relpath(path, root)] = ["syntax", "SyntaxError: %s (line %s)" % (e.msg, e.lineno)]
sys.path.append(root)
# The repository's import paths (airflow_dag_repo's import_paths), after it, as its bundle puts them.
imports = [p for p in os.environ.pop("QUBINODE_IMPORT_PATHS", "").split(":") if p]
sys.path.extend(imports)
try:
    # The files the stack's DAG discovery parses (safe mode, as configured: by default those that name both
    # "airflow" and "dag"); a module of a package is imported by them, never alone.
    bag = DagBag(dag_folder=root, safe_mode=conf.getboolean("core", "dag_discovery_safe_mode", fallback=True),
                 bundle_path=root, bundle_name="validation")
    for path, msg in bag.import_errors.items():
        rel = os.path.relpath(path, root) if os.path.isabs(path) else path
        kind = "cycle" if "Cycle" in msg else "import"
        errors.setdefault(rel, [kind, msg.strip().splitlines()[-1] if msg.strip() else msg])
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = os.path.relpath(dag.fileloc, root)
except (Exception, SystemExit) as e:
    # What Airflow's parse does not catch (a DAG file that exits the interpreter): a finding, not a traceback.
    errors["."] = ["crash", "the parse of the repository stopped: %s: %s" % (type(e).__name__, e)]
    dags, bag = {}, None
# What Airflow 3 removed (AIR301, AIR302) or deprecated (AIR311, AIR312) in the files Airflow parsed, with
# ruff's suggested replacement; ruff reads the files, it runs none of them.
lint = []
try:
    from ruff.__main__ import find_ruff_bin
    ruff = find_ruff_bin()
except Exception:
    ruff = None
if ruff and bag is not None:
    import subprocess
    parsed = set(bag.file_last_changed) | set(p if os.path.isabs(p) else os.path.join(root, p) for p in bag.import_errors)
    if parsed:
        out = subprocess.run([ruff, "check", "--isolated", "--no-cache", "--exit-zero", "--output-format", "json",
                              "--select", "AIR301,AIR302,AIR311,AIR312", "--"] + sorted(parsed),
                             capture_output=True, text=True, timeout=120).stdout
        for f in json.loads(out or "[]"):
            if not (f.get("code") or "").startswith("AIR"):
                continue  # what ruff cannot parse is the parse's finding already
            lint.append([os.path.relpath(f["filename"], root), f["location"]["row"], f["code"], f["message"],
                         (f.get("fix") or {}).get("message") or ""])
# The repository's requirements file, read as text (never installed nor run): each package requirement the
# stack's Airflow does not satisfy, with the version it has (none: not installed). Options, files and URLs are
# listed as not read.
requirements = []
if os.environ.get("QUBINODE_REQUIREMENTS"):
    from importlib.metadata import PackageNotFoundError, version
    from packaging.requirements import Requirement
    with open(os.environ.pop("QUBINODE_REQUIREMENTS"), encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, 1):
            text = "".join(c if c.isprintable() else "?" for c in text.split(" #", 1)[0].strip())
            if not text or text.startswith("#"):
                continue
            if len(requirements) >= 100:
                requirements.append([number, "...", None, "not read: the first 100 findings are listed"])
                break
            try:
                req = Requirement(text)
                if req.url:
                    raise ValueError(req.url)
                if req.marker is not None and not req.marker.evaluate():
                    continue
            except Exception:
                requirements.append([number, text[:200], None, "not read: only package requirements are (no option, "
                                                                "file or URL)"])
                continue
            try:
                have = version(req.name)
            except PackageNotFoundError:
                have = None
            if have is None or not req.specifier.contains(have, prereleases=True):
                requirements.append([number, str(req)[:200], have, ""])
# The repository's own tests (pytest), once the parse found nothing: from the repository's root, against the
# read-only copy, with no cache written; a failure refuses the commit with pytest's summary.
if tests and not errors:
    import subprocess
    where = os.path.relpath(tests, tests_root)
    try:
        import pytest  # noqa: F401 - only whether it is there
    except ImportError:
        errors[where] = ["tests", "pytest is not installed in the Airflow virtualenv, so the repository's tests "
                                  "cannot run: converge the airflow role (it installs it), or set test_dir to ''"]
    else:
        # pytest with the import paths after Airflow on sys.path, as the DAGs have them (and a review's packages
        # where the parse had them).
        code = ("import sys\nsite_dir = sys.argv[1]\n" + SITE_FIRST + "sys.path.extend(sys.argv[2].split(':') "
                "if sys.argv[2] else [])\nimport pytest\nsys.exit(pytest.main(sys.argv[3:]))\n")
        proc = subprocess.run([sys.executable, "-c", code, site_dir, ":".join(imports),
                               "-q", "-p", "no:cacheprovider", "--color=no", "--", tests],
                              cwd=tests_root, capture_output=True, text=True)
        if proc.returncode not in (0, 5):  # 5: no test collected
            lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
            errors[where] = ["tests", "the repository's tests failed (pytest exit %d): %s"
                             % (proc.returncode, " | ".join(lines[-12:]) or proc.stderr.strip()[-800:])]
print("QUBINODE-VALIDATION " + json.dumps({"dags": dags, "errors": errors, "lint": lint,
                                         "requirements": requirements}), flush=True)
'''
# Where the sandbox sees the staging copy, read-only.
SANDBOX_STAGE = "/run/qubinode-validate"
KILL_GRACE = 5


class Sandbox:
    """Limits of the validation sandbox (module options)."""

    def __init__(self, user, timeout, memory_max="2G", tasks_max=512, network=False, secret_paths=(), hidden=()):
        """`secret_paths` hold the stack's secrets: hidden too, and the validator checks that it cannot
        read them before any of the repository's code runs. `hidden`: further paths made inaccessible."""
        self.user, self.timeout, self.memory_max, self.tasks_max = user, int(timeout), memory_max, int(tasks_max)
        self.network, self.secret_paths = network, tuple(secret_paths)
        self.hidden = self.secret_paths + tuple(hidden)

    def account(self, airflow_user):
        """The sandbox user's (uid, gid): a dedicated local user, never root and never the Airflow user."""
        try:
            pw = pwd.getpwnam(self.user)
        except KeyError:
            raise RepoError("validation_user %r is not a user of this host: the airflow role creates it "
                            "(airflow_validation_user); the repository's code never runs as root" % self.user)
        if pw.pw_uid == 0:
            raise RepoError("validation_user %r is root: give an unprivileged user of its own" % self.user)
        try:
            if pwd.getpwnam(airflow_user).pw_uid == pw.pw_uid:
                raise RepoError("validation_user %r is the Airflow user, which can read the stack's secrets: "
                                "give a user of its own" % self.user)
        except KeyError:
            pass
        if self.timeout < 1:
            raise RepoError("validation_timeout must be at least 1 second")
        return pw.pw_uid, pw.pw_gid


# How the stack's dag-processor finds DAG files, which the validation follows: the values Airflow accepts only
# (airflow.cfg is root's, and the value lands on a command line).
DISCOVERY_OPTIONS = (("dag_discovery_safe_mode", ("True", "False", "true", "false")),
                     ("dag_ignore_file_syntax", ("glob", "regexp")))


def discovery_env(config_file):
    env = {}
    for option, allowed in DISCOVERY_OPTIONS:
        value = (_config(config_file, option, section="core") or "").strip()
        if value in allowed:
            env["AIRFLOW__CORE__%s" % option.upper()] = value
    return env


def sandbox_command(sandbox, python, stage, tree, config_dir, uid, gid, name, tests=None, tests_root=None,
                    import_paths=(), requirements=None, site_packages=None):
    """argv that runs the validator over the staging copy: a transient systemd unit (native) or a
    throw-away container (podman runtime), as the sandbox user, with no secret reachable. `tests` (a
    directory of the copy, run from `tests_root`) holds the repository's tests; `site_packages` (a directory
    of the copy) the packages a merge request's requirements add."""
    inner_tree = SANDBOX_STAGE + "/" + os.path.relpath(tree, stage)
    inner_script = SANDBOX_STAGE + "/qubinode_validate.py"
    args = [inner_tree]
    if tests:
        args += [SANDBOX_STAGE + "/" + os.path.relpath(tests, stage), SANDBOX_STAGE + "/" + os.path.relpath(tests_root, stage)]
    env = dict(HOME="/tmp", AIRFLOW_HOME="/tmp/airflow", PYTHONDONTWRITEBYTECODE="1",
               AIRFLOW__CORE__LOAD_EXAMPLES="False", LC_ALL="C.UTF-8",
               QUBINODE_SECRET_PATHS=":".join(p for p in sandbox.secret_paths if ":" not in p))
    if import_paths:
        # Checked directories (no ':'), as the sandbox sees the copy.
        env["QUBINODE_IMPORT_PATHS"] = ":".join(SANDBOX_STAGE + "/" + os.path.relpath(p, stage) for p in import_paths)
    if requirements:
        env["QUBINODE_REQUIREMENTS"] = SANDBOX_STAGE + "/" + os.path.relpath(requirements, stage)
    if site_packages:
        env["QUBINODE_SITE_PACKAGES"] = SANDBOX_STAGE + "/" + os.path.relpath(site_packages, stage)
    env.update(discovery_env(os.path.join(config_dir, "airflow.cfg")))
    runtime = read_runtime(config_dir)
    if runtime["runtime"] == "podman":
        env.pop("QUBINODE_SECRET_PATHS")  # nothing of the host but the staging copy is mounted
        argv = ["podman", "run", "--rm", "--pull=never", "--user", "%d:%d" % (uid, gid), "--read-only",
                "--read-only-tmpfs", "--network", "host" if sandbox.network else "none",
                "--pids-limit", str(sandbox.tasks_max), "--memory", sandbox.memory_max,
                "--security-opt", "no-new-privileges", "--cap-drop", "all",
                "--timeout", str(sandbox.timeout), "--name", name,
                "--volume", "/etc/passwd:/etc/passwd:ro", "--volume", "/etc/group:/etc/group:ro",
                "--volume", "%s:%s:ro" % (stage, SANDBOX_STAGE), "--workdir", "/tmp"]
        for key in sorted(env):
            argv += ["--env", "%s=%s" % (key, env[key])]
        return argv + ["--entrypoint", "python", runtime["image"], inner_script] + args
    props = ["User=%d" % uid, "Group=%d" % gid, "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
             "PrivateDevices=yes", "NoNewPrivileges=yes", "ProtectKernelTunables=yes", "ProtectControlGroups=yes",
             "ProtectKernelModules=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes", "UMask=0077",
             "MemoryMax=%s" % sandbox.memory_max, "TasksMax=%d" % sandbox.tasks_max,
             "RuntimeMaxSec=%d" % sandbox.timeout, "TimeoutStopSec=%d" % KILL_GRACE, "KillMode=control-group",
             "BindReadOnlyPaths=%s:%s" % (stage, SANDBOX_STAGE), "WorkingDirectory=/tmp"]
    if not sandbox.network:
        props.append("PrivateNetwork=yes")
    for path in sandbox.hidden:
        props.append("InaccessiblePaths=-%s" % path)
    for key in sorted(env):
        props.append("Environment=%s=%s" % (key, env[key]))
    argv = ["systemd-run", "--unit", name, "--description", "qubinode.airflow: DAG validation sandbox",
            "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
    for prop in props:
        argv += ["-p", prop]
    return argv + ["--", python, inner_script] + args


def validate_tree(python, sandbox, airflow_user, stage, tree, config_dir, tests=None, tests_root=None,
                  import_paths=(), requirements=None, site_packages=None):
    """Parse `tree` (inside the root-only `stage`) with Airflow in the sandbox, the directories `import_paths`
    (inside `stage`) after it on sys.path and `site_packages` (inside `stage`) before the virtualenv's own
    packages, then run the tests in `tests` (from `tests_root`) if given;
    returns (dags {id: file}, report [..], deprecations [..], unmet requirements [..] of the file
    `requirements` inside `stage`). The repository's code never runs as root or as the Airflow user, and its
    processes do not outlive the validation."""
    uid, gid = sandbox.account(airflow_user)
    script = os.path.join(stage, "qubinode_validate.py")
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(VALIDATOR)
    # The sandbox user reads the copy through a read-only bind mount: make its files readable.
    os.chmod(stage, 0o755)
    for base, dirs, files in os.walk(stage):
        for entry in [os.path.join(base, d) for d in dirs] + [os.path.join(base, f) for f in files]:
            st = os.lstat(entry)
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(entry, stat.S_IMODE(st.st_mode) | (0o755 if stat.S_ISDIR(st.st_mode) else 0o644))
    name = "qubinode-validate-%d-%s" % (os.getpid(), os.path.basename(stage).replace("staging-", "")[-8:])
    name = re.sub(r"[^A-Za-z0-9_-]", "x", name)
    argv = sandbox_command(sandbox, python, stage, tree, config_dir, uid, gid, name, tests, tests_root,
                           import_paths, requirements, site_packages)
    started = time.monotonic()
    rc, out, err = run(argv, cwd="/")
    took = time.monotonic() - started
    breach = [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("QUBINODE-SANDBOX-BREACH ")]
    if breach:
        raise RepoError("the validation sandbox could not hide %s from the repository's code, so none of it ran: "
                        "this host's systemd cannot set up the sandbox (in a container it needs CAP_SYS_ADMIN); "
                        "see journalctl -u %s" % (breach[0], name))
    line = [ln for ln in out.splitlines() if ln.startswith("QUBINODE-VALIDATION ")]
    if not line:
        if took >= sandbox.timeout:
            raise RepoError("the DAG validation did not finish within validation_timeout (%ss): the sandbox was "
                            "stopped and its processes killed; a DAG file that hangs at import would hang "
                            "Airflow's parse too" % sandbox.timeout)
        raise RepoError("the DAG validation did not finish (rc %s): %s" % (rc, (err or out).strip()[-1500:]))
    result = json.loads(line[-1].split(" ", 1)[1])
    report, deprecations = validation_findings(result)
    return result["dags"], report, deprecations, result.get("requirements", [])


# Airflow 3 removed these (the code fails there) / only deprecated these (it still works).
AIRFLOW3_REMOVED = ("AIR301", "AIR302")


def validation_findings(result):
    """The validator's result as (report, deprecations): import errors, cycles and what Airflow 3 removed
    refuse the commit; what it only deprecated is reported beside it. Each entry names the file, and the
    line and the replacement where the migration rules know them."""
    report = [dict(file=k, kind=v[0], message=v[1]) for k, v in sorted(result["errors"].items())]
    deprecations = []
    for rel, line, code, message, fix in result.get("lint", []):
        if not str(code).startswith("AIR"):
            continue
        entry = dict(file=rel, line=line, kind="airflow3", code=code,
                     message="%s%s" % (message.rstrip("; "), " - %s" % fix if fix else ""))
        (report if code in AIRFLOW3_REMOVED else deprecations).append(entry)
    return report, deprecations


# -- registry (the Airflow variable) ---------------------------------------------------------------

def read_registry(api):
    """The registry, schema-checked: it is an Airflow variable that Airflow's Op users can edit."""
    obj = api.get_or_none("variables/%s" % REGISTRY_KEY)
    if not obj or not obj.get("value"):
        return {}
    try:
        registry = json.loads(obj["value"])
    except ValueError:
        raise RepoError("the Airflow variable %s does not hold JSON; it is managed by airflow_dag_repo: "
                        "delete it to start over" % REGISTRY_KEY)
    try:
        return check_registry(registry)
    except InputError as e:
        raise RepoError(str(e))


def write_registry(api, registry):
    check_registry(registry)
    value = json.dumps(registry, sort_keys=True)
    api.bulk("variables", [dict(action="create", action_on_existence="overwrite", entities=[dict(
        key=REGISTRY_KEY, value=value,
        description="DAG repositories registered by qubinode.airflow.airflow_dag_repo (do not edit by hand)")])])


def conn_id_for(name):
    return "qubinode_git_%s" % name


def bundle_entry(name, repo, config_dir):
    pinned = repo.get("pin", True)
    # A pinned bundle takes its commit from the pin file: tracking_ref names the branch it was validated from.
    kwargs = dict(repo_url=repo["url"], tracking_ref=repo["ref"],
                  refresh_interval=int(repo.get("refresh_interval", 300)))
    if repo.get("subdir"):
        kwargs["subdir"] = repo["subdir"]
    if repo.get("git_conn_id"):
        kwargs["git_conn_id"] = repo["git_conn_id"]
    if repo.get("import_paths"):
        kwargs["import_paths"] = list(repo["import_paths"])
    if pinned:
        kwargs["pin_file"] = os.path.join(config_dir, PIN_DIR, name)
        return dict(name=name, classpath=PINNED_BUNDLE, kwargs=kwargs)
    if repo.get("import_paths"):
        return dict(name=name, classpath=IMPORT_PATHS_BUNDLE, kwargs=kwargs)
    return dict(name=name, classpath=GIT_BUNDLE, kwargs=kwargs)


def write_pins(config_dir, registry, check_mode):
    """The pin file of each pinned repository (root 0644, in a root 0755 directory; the dag-processor reads
    it), and none of the others. Returns the names whose pin is new or changed."""
    pin_dir = os.path.join(config_dir, PIN_DIR)
    want = dict((name, e["commit"]) for name, e in registry.items() if e.get("pin", True))
    if not want and not os.path.lexists(pin_dir):
        return []
    if not check_mode:
        ensure_root_dir(pin_dir, 0o755, what="the pin directory")
    current = {}
    if os.path.isdir(pin_dir) and not os.path.islink(pin_dir):
        for name in os.listdir(pin_dir):
            path = os.path.join(pin_dir, name)
            if os.path.islink(path) or not os.path.isfile(path):
                current[name] = None  # replaced below (a link is never followed, only removed)
                continue
            with open(path) as f:
                current[name] = f.read(128).strip()
    changed = sorted(name for name, commit in want.items() if current.get(name) != commit)
    if check_mode:
        return changed
    for name in changed:
        if not SHA_RE.match(want[name]):
            raise RepoError("the registry holds no full commit SHA for %s; register the repository again" % name)
        fd, tmp = tempfile.mkstemp(prefix=".pin-", dir=pin_dir)
        with os.fdopen(fd, "w") as f:
            f.write(want[name] + "\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, os.path.join(pin_dir, name))
    for name in set(current) - set(want):
        os.unlink(os.path.join(pin_dir, name))
    return changed


def host_requirements(registry, config_dir):
    """(requirement lines, package pins, entries with a line dropped) of the registry that this host may install:
    the constraints and the allowlist are read only when an entry has requirements, and a missing constraints file
    is a RepoError that names it."""
    if not any(isinstance(e, dict) and (e.get("requirements") or e.get("packages")) for e in (registry or {}).values()):
        return [], [], []
    try:
        return registry_requirements(registry, allowed_names(read_runtime(config_dir)))
    except RequirementsError as e:
        raise RepoError(e.msg)


def write_requirements(config_dir, registry, check_mode):
    """The requirement lines of every registered repository, one per line (root 0644; none: no file), for the
    airflow role to install into a new virtualenv of an upgrade. Returns whether the file changed."""
    lines, _pins, _dropped = host_requirements(registry, config_dir)
    path = os.path.join(config_dir, REQUIREMENTS_FILE)
    text = ("# Managed by qubinode.airflow: the requirements of the registered DAG repositories (the Airflow "
            "variable %s).\n%s" % (REGISTRY_KEY, "".join(line + "\n" for line in lines))) if lines else None
    current = None
    if os.path.lexists(path):
        current = False  # a link or anything but a regular file is replaced, never followed
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path) as f:
                current = f.read()
    if current == text or (text is None and current is None):
        return False
    if not check_mode:
        if text is None:
            os.unlink(path)
        else:
            fd, tmp = tempfile.mkstemp(prefix=".requirements-", dir=config_dir)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
    return True


def request_bundle_refresh(api, name):
    """Ask the dag-processors to refresh the bundle now and parse each of its DAG files again (a priority parse
    of every file that holds a DAG: after a refresh Airflow queues only new files, and the others would keep
    their old version until min_file_process_interval). False when it has no DAG to ask with."""
    tokens = []
    for dag in api.list_all("dags", "dags", query=dict(bundle_name=name)):
        if dag.get("file_token") and dag["file_token"] not in tokens:
            tokens.append(dag["file_token"])
    for token in tokens:
        api.request("PUT", "parseDagFile/%s" % token)
    return bool(tokens)


# -- one host ---------------------------------------------------------------------------------------

def _config(config_file, option, fallback=None, section="dag_processor"):
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(config_file)
        return parser.get(section, option)
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
        if b.get("classpath") not in GIT_BUNDLES:
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


def apply_to_host(module, registry, config_dir, airflow_user, check_mode, api=None):
    """Write the pins and bundles.env from the registry and restart what must re-read them; a new pin alone
    needs no restart: the dag-processor is asked to refresh the bundle (through `api`). Returns (changed,
    restarted, bundles)."""
    env_file = os.path.join(config_dir, "bundles.env")
    base = base_bundles(os.path.join(config_dir, "airflow.cfg"))
    bundles = [b for b in base if b.get("name") not in registry]
    bundles += [bundle_entry(name, registry[name], config_dir) for name in sorted(registry)]
    current = read_env_file(env_file)
    effective_old = current if current is not None else base
    # The pins first: a bundle the new list adds reads its pin when the services start.
    repinned = write_pins(config_dir, registry, check_mode)
    requirements_changed = write_requirements(config_dir, registry, check_mode)
    if not registry:
        # Nothing registered: the file is not needed; airflow.cfg's own list applies.
        if current is None:
            return bool(repinned) or requirements_changed, [], base
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
        restart = () if same else restarts_needed(effective_old, bundles)
        if not same and not check_mode:
            tmp = env_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.rename(tmp, env_file)
        if same and not repinned:
            return requirements_changed, [], bundles
    if repinned and "airflow-dag-processor" not in restart and not check_mode \
            and installed_units(("airflow-dag-processor",), config_dir):
        # A bundle already served: its dag-processor serves the new pin at its next refresh of the bundle,
        # at once when asked. Without a DAG to ask with, a restart makes it read the pin.
        asked = [request_bundle_refresh(api, name) for name in repinned] if api is not None else [False]
        if not all(asked):
            restart = tuple(restart) + ("airflow-dag-processor",)
    units = installed_units(restart, config_dir)
    if not check_mode:
        storage = _config(os.path.join(config_dir, "airflow.cfg"), "dag_bundle_storage_path",
                          os.path.join(tempfile.gettempdir(), "airflow", "dag_bundles"))
        stale = [os.path.join(storage, name, part) for name, part in stale_clones(effective_old, bundles)]
        restart_with_cleanup(module, units, stale, RepoError, config_dir, owner=airflow_user)
    return True, units, bundles


def wait_healthy(api, timeout):
    """After an api-server restart: wait until the API answers and reports healthy. A scheduler whose
    restart was left to run on its own (it drains the tasks it runs, the caller perhaps among them) is
    not waited for."""
    deadline = time.time() + timeout
    last = None
    skip = set(["scheduler"]) if "airflow-scheduler" in deferred else set()
    while time.time() < deadline:
        try:
            health = api.request("GET", "monitor/health")
            if all((v or {}).get("status") in ("healthy", None) for k, v in health.items()
                   if isinstance(v, dict) and k not in skip):
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
        # Two small API reads a round: the DAGs go live within half a second of their parse.
        time.sleep(0.5)
