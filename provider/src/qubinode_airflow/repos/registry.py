# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Read the registry of DAG repositories and ask Airflow's dag-processors to refresh a bundle.

The registry is the Airflow variable `qubinode_dag_repos` that the collection's airflow_dag_repo
module writes (JSON: {bundle name: {url, ref, pin, commit, subdir, dag_ids, ...}}, no credentials).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

REGISTRY_KEY = "qubinode_dag_repos"
# The git connection airflow_dag_repo keeps a repository's credentials in, and the variable the promote and
# review DAGs hand them to the dag_repos playbook in (the manifest entry's `credentials` names it).
GIT_CONN_PREFIX = "qubinode_git_"
CREDENTIALS_VAR = "qubinode_dag_repo_credentials"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# The head of a merge request: GitHub's refs/pull/<n>/head, GitLab's refs/merge-requests/<iid>/head.
REVIEW_REF_RE = re.compile(r"^refs/(?:pull/[1-9][0-9]{0,9}/head|merge-requests/[1-9][0-9]{0,9}/head)$")
# user:password@ in any URL, or any user in an http(s) one (a token as the user name).
CREDENTIALS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*:[^/@]*@|(?<=https://)[^/@]+@|(?<=http://)[^/@]+@)",
                            re.IGNORECASE)
# What the register DAG's form and the page's "Add" accept (the dag_repos playbook's lookup and the module check
# every field again, as root, before git runs): remote git URLs, refs and relative directories that cannot be
# read as options or climb out of the repository.
URL_PATTERN = (r"^(?:(?:https?|git)://|ssh://(?:[A-Za-z0-9._-]+@)?)[^\s:@/]+(?::[0-9]+)?/\S+$"
               r"|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s/]\S*$")
REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}$"
SUBDIR_PATTERN = r"^(?!.*(?:^|/)\.{1,2}(?:/|$))[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$"
# Field types of an entry (the collection's airflow_dag_repo writes them; Op users can edit the variable).
FIELD_TYPES = {"url": str, "ref": str, "commit": str, "pin": bool, "subdir": (str, type(None)),
               "refresh_interval": int, "git_conn_id": (str, type(None)), "dag_ids": list, "history": list,
               "previous": (str, type(None)), "validated_at": (str, type(None)), "import_paths": list,
               "requirements_file": str, "test_dir": str, "requirements": list, "packages": list}
# A full commit SHA, the only form of commit the registry, the webhook and the page pass on.
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class RegistryError(Exception):
    pass


def check_registry(value: Any) -> dict[str, dict[str, Any]]:
    """The registry's shape, checked before anything is done with it; the error names the entry and field."""
    where = "the Airflow variable %s" % REGISTRY_KEY
    if not isinstance(value, dict):
        raise RegistryError("%s must hold a JSON object of repositories" % where)
    for name, entry in value.items():
        if not NAME_RE.fullmatch(name):
            raise RegistryError("%s: entry name %r is not a bundle name (letters, digits, '_', '-')" % (where, name))
        if not isinstance(entry, dict):
            raise RegistryError("%s, entry %r: is not a mapping" % (where, name))
        for field in ("url", "ref", "commit"):
            if field not in entry:
                raise RegistryError("%s, entry %r: field %r is missing; register the repository again"
                                    % (where, name, field))
        for field, kind in FIELD_TYPES.items():
            if field in entry and (not isinstance(entry[field], kind) or
                                   (kind is int and isinstance(entry[field], bool))):
                raise RegistryError("%s, entry %r: field %r has the wrong type" % (where, name, field))
        if CREDENTIALS_RE.match(entry["url"]):
            raise RegistryError("%s, entry %r: field 'url' holds credentials; register the repository again "
                                "with a token instead" % (where, name))
    return value


def read_registry(session) -> dict[str, dict[str, Any]]:
    from airflow.models.variable import Variable

    row = session.scalar(select(Variable).where(Variable.key == REGISTRY_KEY))
    if row is None or not row.val:
        return {}
    try:
        value = json.loads(row.val)
    except ValueError as e:
        raise RegistryError("the Airflow variable %s does not hold JSON" % REGISTRY_KEY) from e
    return check_registry(value)


def normalize_url(url: str) -> str:
    """One spelling for the URLs of a repository: host/path without scheme, user, port and .git
    (https://h/o/r.git, git@h:o/r, ssh://git@h:22/o/r and h/o/r are the same); local paths stay paths."""
    url = (url or "").strip()
    if not url:
        return ""
    scp = re.match(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$", url)
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme == "file":
            host, path = "", parts.path
        else:
            host, path = (parts.hostname or "").lower(), parts.path
    elif scp and not url.startswith("/"):
        host, path = scp.group(1).lower(), scp.group(2)
    else:
        host, path = "", url
    path = re.sub(r"/+", "/", path).rstrip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return "%s/%s" % (host, path.lstrip("/")) if host else path


def push_urls(event: dict[str, Any]) -> list[str]:
    """Every URL by which a GitHub or GitLab push event names its repository."""
    urls = []
    for section in ("repository", "project"):
        part = event.get(section) or {}
        for key in ("clone_url", "ssh_url", "git_url", "html_url", "url", "git_http_url", "git_ssh_url",
                    "web_url", "homepage"):
            if isinstance(part.get(key), str):
                urls.append(part[key])
    return urls


def matching_bundles(registry: dict[str, dict[str, Any]], urls: list[str]) -> list[str]:
    wanted = {normalize_url(u) for u in urls if u}
    wanted.discard("")
    return sorted(name for name, entry in registry.items() if normalize_url(entry.get("url", "")) in wanted)


def pushed_ref(event: dict[str, Any]) -> str | None:
    ref = event.get("ref") or ""
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref or None


def request_refresh(session, bundle: str) -> str:
    """Queue a priority parse of one of the bundle's files, which makes the dag-processors that serve the
    bundle refresh it (git fetch and checkout of its tracking ref) at their next loop. Returns the file."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbag import DagPriorityParsingRequest

    rel = session.scalar(select(DagModel.relative_fileloc).where(DagModel.bundle_name == bundle,
                                                                 DagModel.relative_fileloc.is_not(None))
                         .order_by(DagModel.is_stale, DagModel.dag_id).limit(1))
    rel = rel or ".airflowignore"  # no DAG parsed yet: any path makes the processor refresh the bundle
    pending = session.scalar(select(func.count()).select_from(DagPriorityParsingRequest).where(
        DagPriorityParsingRequest.bundle_name == bundle, DagPriorityParsingRequest.relative_fileloc == rel))
    if not pending:
        session.add(DagPriorityParsingRequest(bundle_name=bundle, relative_fileloc=rel))
    return rel


def repo_dag_args() -> dict[str, Any]:
    """What the DAGs that drive the dag_repos playbook (the examples register and promote) share: run on
    demand, one at a time, with the bundle name as the form's first field (the playbook's lookup checks it
    again)."""
    import pendulum
    from airflow.sdk import Param

    return {"schedule": None, "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"), "catchup": False,
            "max_active_runs": 1, "tags": ["qubinode", "ansible", "dag-repos"],
            "params": {"name": Param("example", type="string", pattern=NAME_RE.pattern)}}


# What the promote DAG hands on of a registered entry (the playbook's manifest lookup checks each again).
PROMOTE_FIELDS = ("url", "ref", "subdir", "import_paths", "refresh_interval")


def promote_entry(value: Any, name: str, commit: str | None, review_ref: str | None = None,
                  rollback: bool = False) -> dict[str, Any]:
    """The dag_repos manifest entry that validates and pins `commit` (None: the head of the ref) of the
    registered, pinned repository `name`; with `review_ref`, the one that validates the head of that merge
    request only (any registered repository); with `rollback`, the one that pins `commit`, one of the
    repository's last validated commits, again. ValueError says why there is none."""
    entry = value.get(name) if isinstance(value, dict) else None
    if not isinstance(entry, dict):
        raise ValueError("%s is not a registered DAG repository (the Airflow variable %s)" % (name, REGISTRY_KEY))
    if not entry.get("pin", True) and not review_ref:
        raise ValueError("%s is not pinned: Airflow follows its ref by itself" % name)
    item = {"name": name, "pin": bool(entry.get("pin", True))}
    item.update({key: entry[key] for key in PROMOTE_FIELDS if entry.get(key) not in (None, [], "")})
    # Files of the repository, kept when they differ from the defaults ("" reads none).
    item.update({key: entry[key] for key in ("requirements_file", "test_dir") if isinstance(entry.get(key), str)})
    if promote_credentials(value, name):
        item["credentials"] = CREDENTIALS_VAR
    if commit or review_ref:
        if not isinstance(commit, str) or not SHA_RE.fullmatch(commit):
            raise ValueError("commit %r is not a full 40-character SHA" % (commit,))
        item["commit"] = commit
        if review_ref:
            if not isinstance(review_ref, str) or not REVIEW_REF_RE.fullmatch(review_ref):
                raise ValueError("review_ref %r is not the head of a merge request" % (review_ref,))
            item["review_ref"] = review_ref
        elif rollback:
            check_rollback(entry, name, commit)
        else:
            item["forward_only"] = True
    elif rollback:
        raise ValueError("a rollback needs the commit to go back to")
    return item


def check_rollback(entry: dict[str, Any], name: str, commit: Any) -> None:
    """A rollback goes back to one of the repository's last validated commits (its history), never elsewhere."""
    history = [c for c in entry.get("history") or [] if isinstance(c, str) and c != entry.get("commit")]
    if not isinstance(commit, str) or not SHA_RE.fullmatch(commit) or commit not in history:
        raise ValueError("%s cannot roll back to %r: give one of its last validated commits (%s)"
                         % (name, commit, ", ".join(c[:12] for c in history) or "there is none yet"))


# What the page's "Add" may also give, as the dag_repos manifest takes them (left out: the defaults).
ADD_OPTIONAL = ("import_paths", "requirements_file", "test_dir")
MAX_IMPORT_PATHS = 10


def add_request(body: Any) -> dict[str, Any]:
    """The register DAG's conf for the page's "Add" (name, url, ref, subdir, pin, and when given import_paths,
    requirements_file, test_dir), checked field by field; ValueError names the field and what it takes. The
    credentials (token, username) are not in it."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object with name, url, ref, subdir, pin and token")
    fields = ("name", "url", "ref", "subdir", "pin", "token", "username") + ADD_OPTIONAL
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ValueError("unknown field(s) %s: give %s only" % (", ".join(unknown), ", ".join(fields)))
    conf: dict[str, Any] = {"name": body.get("name"), "url": body.get("url"), "ref": body.get("ref") or "main",
                            "subdir": body.get("subdir") or None, "pin": body.get("pin", True)}
    checks = (("name", NAME_RE.pattern, "letters, digits, '_' and '-'"),
              ("url", URL_PATTERN, "a remote git URL (https://, ssh://, git:// or user@host:path), without a "
                                   "user or password in it (give the token)"),
              ("ref", REF_PATTERN, "a branch, tag or commit"),
              ("subdir", SUBDIR_PATTERN, "a relative directory of the repository, without '..'"))
    for field, pattern, what in checks:
        value = conf[field]
        if field == "subdir" and value is None:
            continue
        if not isinstance(value, str) or not re.fullmatch(pattern, value) or (
                field == "url" and CREDENTIALS_RE.match(value)):
            raise ValueError("%s: %r is not %s" % (field, value, what))
    if not isinstance(conf["pin"], bool):
        raise ValueError("pin: must be true (serve validated commits only) or false (follow the ref)")
    for field in ("token", "username"):
        if body.get(field) is not None and (not isinstance(body[field], str) or "\n" in body[field]
                                            or len(body[field]) > 4096):
            raise ValueError("%s: must be one line of text" % field)
    if body.get("token") and not conf["url"].lower().startswith("https://"):
        raise ValueError("token: a token is sent over https:// only, and %r is not such a URL: give the "
                         "repository's https:// URL, or no token" % conf["url"])
    paths = body.get("import_paths")
    if paths not in (None, []):
        if not isinstance(paths, list) or len(paths) > MAX_IMPORT_PATHS or len(set(map(str, paths))) != len(paths) \
                or any(not isinstance(p, str) or not re.fullmatch(SUBDIR_PATTERN, p) for p in paths):
            raise ValueError("import_paths: %r is not a list of at most %d different relative directories of the "
                             "repository, without '..' (for example [\"plugins\"])" % (paths, MAX_IMPORT_PATHS))
        conf["import_paths"] = paths
    for field, default in (("requirements_file", "requirements.txt"), ("test_dir", "tests")):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or (value and not re.fullmatch(SUBDIR_PATTERN, value)):
            raise ValueError("%s: %r is not a relative path of the repository without '..', or \"\" for none "
                             "(default %s)" % (field, value, default))
        conf[field] = value
    return conf


def credentials_var(name: str) -> dict[str, str]:
    """The playbook operator's git_credentials of a repository registered with credentials: the credentials
    variable of the manifest entry, read from the repository's own git connection."""
    return {CREDENTIALS_VAR: GIT_CONN_PREFIX + name}


def promote_credentials(value: Any, name: str) -> dict[str, str]:
    """{CREDENTIALS_VAR: connection id} for a repository registered with credentials (the connection the
    playbook operator reads them from when its task runs), else {}. Only the repository's own connection is
    ever named: a registry entry that names another is refused (ValueError)."""
    entry = value.get(name) if isinstance(value, dict) else None
    conn_id = entry.get("git_conn_id") if isinstance(entry, dict) else None
    if not conn_id:
        return {}
    if conn_id != GIT_CONN_PREFIX + name:
        raise ValueError("%s: the registry names the connection %r for its credentials, not %s%s, which "
                         "airflow_dag_repo writes: register the repository again with the dag_repos playbook"
                         % (name, conn_id, GIT_CONN_PREFIX, name))
    return credentials_var(name)


# The DAGs whose runs add, validate and pin, check, or remove a repository (the conf names it): the one that
# validates and pins the commit of a push to a pinned repository, the one that validates the head of a merge
# request and reports a commit status (deploys nothing), and those behind the page's "Add" and "Remove".
PROMOTE_DAG = "qubinode_dag_repo_promote"
REVIEW_DAG = "qubinode_dag_repo_review"
REGISTER_DAG = "qubinode_dag_repo_register"
REMOVE_DAG = "qubinode_dag_repo_remove"
REPO_DAGS = (PROMOTE_DAG, REGISTER_DAG, REVIEW_DAG, REMOVE_DAG)
# What the webhook and the page start runs for: the first part of the run ids they give.
RUN_REASONS = ("push", "sync", "rollback", "add", "remove", "review")


def recent_runs(session, per_repo: int = 10, scan: int = 500) -> dict[str, list[dict[str, Any]]]:
    """Per repository name, its last runs of the repository DAGs, newest first: which DAG, why (push, sync,
    rollback, add, remove, review, or manual when triggered otherwise), the commit, the result and who
    started it."""
    from airflow.models.dagrun import DagRun

    runs: dict[str, list[dict[str, Any]]] = {}
    query = select(DagRun).where(DagRun.dag_id.in_(REPO_DAGS)).order_by(DagRun.id.desc()).limit(scan)
    for run in session.scalars(query):
        conf = run.conf if isinstance(run.conf, dict) else {}
        name, commit = conf.get("name"), conf.get("commit")
        if not isinstance(name, str) or len(runs.get(name, [])) >= per_repo:
            continue
        why = run.run_id.split("__", 1)[0]
        when = run.start_date or run.run_after
        runs.setdefault(name, []).append({
            "dag_id": run.dag_id, "run_id": run.run_id, "why": why if why in RUN_REASONS else "manual",
            "commit": commit if isinstance(commit, str) and SHA_RE.fullmatch(commit) else None,
            "state": str(run.state), "by": run.triggering_user_name, "at": when.isoformat() if when else None})
    return runs


def status(session) -> list[dict[str, Any]]:
    """Per registered repository: what is pinned, what Airflow serves, when it last refreshed, its DAGs and
    import errors, the packages it needs, and its last runs of the repository DAGs (what validated, pinned or refused which commit,
    and who asked)."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.errors import ParseImportError

    out = []
    runs = recent_runs(session)
    for name, entry in sorted(read_registry(session).items()):
        bundle = session.get(DagBundleModel, name)
        dags = session.scalars(select(DagModel.dag_id).where(DagModel.bundle_name == name,
                                                             DagModel.is_stale.is_(False))).all()
        errors = session.scalars(select(ParseImportError).where(ParseImportError.bundle_name == name)).all()
        out.append({
            "name": name,
            "url": entry.get("url"),
            "ref": entry.get("ref"),
            "pinned": bool(entry.get("pin", True)),
            "pinned_commit": entry.get("commit") if entry.get("pin", True) else None,
            # The last validated commits, newest first: what a rollback may pin again.
            "history": list(entry.get("history") or []) if entry.get("pin", True) else [],
            "served_version": bundle.version if bundle else None,
            "last_refresh": bundle.last_refreshed.isoformat() if bundle and bundle.last_refreshed else None,
            "dag_count": len(dags),
            "dag_ids": sorted(dags),
            "import_errors": [{"file": e.filename,
                               "message": ((e.stacktrace or "").strip().splitlines() or [""])[-1]}
                              for e in errors],
            "runs": runs.get(name, []),
            # The requirement lines of the pinned commit, and the versions installed for them on every host.
            "requirements": [x for x in entry.get("requirements") or [] if isinstance(x, str)],
            "packages": [x for x in entry.get("packages") or [] if isinstance(x, str)],
        })
    return out
