# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""Checks of the fields that name a git DAG repository, shared by every place they enter: the
airflow_dag_repo module, the dag_repo_manifest lookup and the registry reader.

These values reach git and paths that root uses, so each check refuses rather than repairs, and
every message names the field, what is wrong and the fix. Pure Python: the lookup imports it on the
controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.qubinode.airflow.plugins.module_utils._requirements import (
    RequirementsError, check_requirement_list)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# The head of a merge request as the git server publishes it: GitHub's pull requests, GitLab's merge requests.
REVIEW_REF_RE = re.compile(r"^refs/(?:pull/[1-9][0-9]{0,9}/head|merge-requests/[1-9][0-9]{0,9}/head)$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# What git accepts as a branch or tag name, less what could be read as an option or a path trick.
REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}$")
# scp-like syntax: [user@]host:path (no scheme); git reads it as SSH.
SCP_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^/].*|/.+)$")
SCHEMES = ("https", "http", "ssh", "git")
HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$")
REGISTRY_FIELDS = {
    "url": str, "ref": str, "subdir": (str, type(None)), "pin": bool, "refresh_interval": int,
    "git_conn_id": (str, type(None)), "commit": str, "dag_ids": list, "history": list,
    "previous": (str, type(None)), "validated_at": (str, type(None)), "import_paths": list,
    "requirements_file": str, "test_dir": str, "requirements": list, "packages": list,
}
# Directories of a repository its DAGs import from, beside the DAG directory.
MAX_IMPORT_PATHS = 10
REGISTRY_REQUIRED = ("url", "ref", "commit")


class InputError(ValueError):
    """A field value refused; the message names the field and the fix."""


def _text(field, value, where):
    if not isinstance(value, str) or not value:
        raise InputError("%s%s must be a non-empty string" % (where, field))
    if CONTROL_RE.search(value):
        raise InputError("%s%s holds a control character (newline, tab, NUL...): remove it" % (where, field))
    return value


def _checked(value, where, field, is_valid, problem):
    """The value when it is non-empty text that is_valid accepts, else an error naming the field."""
    _text(field, value, where)
    if not is_valid(value):
        raise InputError("%s%s %r%s" % (where, field, value, problem))
    return value


def _is_ref(value):
    return bool(REF_RE.match(value)) and ".." not in value and "//" not in value \
        and not value.endswith(("/", ".", ".lock")) and "@{" not in value


def check_name(value, where="", field="name"):
    return _checked(value, where, field, NAME_RE.match, ": use letters, digits, '_' and '-' (at most 100)")


def check_ref(value, where="", field="ref"):
    return _checked(value, where, field, _is_ref,
                    " is not a branch or tag name: give a name such as main, release/1.2 or v1.0, "
                    "or a full commit SHA (it may not start with '-' or hold '..')")


def check_commit(value, where="", field="commit"):
    return _checked(value, where, field, SHA_RE.match, ": give the full 40-character SHA in lower case")


def check_review_ref(value, where="", field="review_ref"):
    return _checked(value, where, field, REVIEW_REF_RE.match,
                    ": give the head of a merge request, refs/pull/<number>/head (GitHub) or "
                    "refs/merge-requests/<iid>/head (GitLab)")


def check_subdir(value, where="", field="subdir"):
    """A relative, normalised directory of the repository: returned without trailing slashes."""
    if value is None or value == "":
        return None
    _text(field, value, where)
    clean = value.strip("/") if not value.startswith("/") else value
    parts = clean.split("/")
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InputError("%s%s %r must be a relative path inside the repository, without '.', '..' or empty "
                         "parts, for example dags or airflow/dags" % (where, field, value))
    if any(p.startswith("-") for p in parts):
        raise InputError("%s%s %r: no part of the path may start with '-'" % (where, field, value))
    if any(c in value for c in "*?[]\\:"):
        raise InputError("%s%s %r: wildcards, ':' and '\\' are not allowed in the directory" % (where, field, value))
    return clean


def check_import_paths(value, where="", field="import_paths"):
    """Relative, normalised directories of the repository (each checked as a subdir), without repeats."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError("%s%s must be a list of directories of the repository, for example [plugins]"
                         % (where, field))
    if len(value) > MAX_IMPORT_PATHS:
        raise InputError("%s%s lists %d directories: at most %d" % (where, field, len(value), MAX_IMPORT_PATHS))
    clean = []
    for item in value:
        path = check_subdir(item, where, field)
        if path is None:
            raise InputError("%s%s holds an empty directory: name each one, for example plugins" % (where, field))
        if path in clean:
            raise InputError("%s%s lists %r twice" % (where, field, path))
        clean.append(path)
    return clean


def url_kind(url):
    """'remote' for a URL git fetches over the network, 'local' for a path or file:// URL."""
    if "://" in url:
        return "local" if url.split("://", 1)[0].lower() == "file" else "remote"
    return "remote" if SCP_RE.match(url) and not url.startswith(("/", ".")) else "local"


def check_url(value, where="", field="url", token=False):
    """A remote git URL without credentials in it. Local paths are refused: root reads them, so a
    path would let whoever registers a repository read any repository on the host."""
    _text(field, value, where)
    if value.startswith("-") or any(c.isspace() for c in value):
        raise InputError("%s%s %r may not start with '-' or hold white space" % (where, field, value))
    if url_kind(value) == "local":
        raise InputError("%s%s %r is a path on this host: serve the repository over https://, ssh:// or git:// "
                         "(for example with git daemon); local paths are refused because the registration "
                         "reads them as root" % (where, field, value))
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if scheme.lower() not in SCHEMES:
            raise InputError("%s%s %r: the scheme %r is not allowed; use one of %s"
                             % (where, field, value, scheme, ", ".join(SCHEMES)))
        authority = rest.split("/", 1)[0]
        userinfo, _at, host = authority.rpartition("@")
        if ":" in userinfo or (userinfo and scheme.lower() in ("https", "http")):
            raise InputError("%s%s holds credentials (user:password@): remove them from the URL and give the "
                             "token in the token option (or the manifest's credentials variable)" % (where, field))
        if not HOST_RE.match(host) or "/" not in rest:
            raise InputError("%s%s %r: give a host and a repository path, for example "
                             "https://git.example.com/team/dags.git" % (where, field, value))
        if token and scheme.lower() == "http":
            raise InputError("%s%s %r: a token would cross the network in clear over http://; use https://"
                             % (where, field, value))
    else:
        match = SCP_RE.match(value)
        if match.group("host").startswith("-"):
            raise InputError("%s%s %r: the host may not start with '-'" % (where, field, value))
    return value


def check_registry_entry(name, entry, where="the Airflow variable qubinode_dag_repos"):
    """One entry of the registry: schema and field values. The registry is an Airflow variable that
    Airflow's Op users can edit, and the modules that read it run as root."""
    here = "%s, entry %r: " % (where, name)
    check_name(name, "%s: " % where, "entry name")
    if not isinstance(entry, dict):
        raise InputError("%sis not a mapping; register the repository again with airflow_dag_repo" % here)
    for field in REGISTRY_REQUIRED:
        if field not in entry:
            raise InputError("%sfield %r is missing; register the repository again with airflow_dag_repo"
                             % (here, field))
    unknown = sorted(set(entry) - set(REGISTRY_FIELDS))
    if unknown:
        raise InputError("%sunknown field(s) %s; the registry is written by airflow_dag_repo only"
                         % (here, ", ".join(unknown)))
    for field, kind in REGISTRY_FIELDS.items():
        if field in entry and (not isinstance(entry[field], kind) or
                               (kind is int and isinstance(entry[field], bool))):
            raise InputError("%sfield %r has the wrong type" % (here, field))
    check_url(entry["url"], here)
    check_ref(entry["ref"], here)
    check_commit(entry["commit"], here)
    check_subdir(entry.get("subdir"), here)
    check_import_paths(entry.get("import_paths"), here)
    for field in ("requirements_file", "test_dir"):
        check_subdir(entry.get(field), here, field)
    try:
        check_requirement_list(entry.get("requirements", []), "requirements")
        check_requirement_list(entry.get("packages", []), "packages", pins=True)
    except RequirementsError as e:
        raise InputError("%s%s" % (here, e.msg))
    if entry.get("git_conn_id") not in (None, "qubinode_git_%s" % name):
        raise InputError("%sfield 'git_conn_id' must be qubinode_git_%s or null" % (here, name))
    for field in ("history",):
        for commit in entry.get(field) or []:
            check_commit(commit, here, field)
    if entry.get("previous"):
        check_commit(entry["previous"], here, "previous")
    for dag_id in entry.get("dag_ids") or []:
        if not isinstance(dag_id, str) or CONTROL_RE.search(dag_id):
            raise InputError("%sfield 'dag_ids' holds a value that is not a DAG id" % here)
    if not 0 <= entry.get("refresh_interval", 300) <= 31536000:
        raise InputError("%sfield 'refresh_interval' must be between 0 and 31536000 seconds" % here)
    return entry


def check_registry(registry, where="the Airflow variable qubinode_dag_repos"):
    if not isinstance(registry, dict):
        raise InputError("%s must hold a JSON object of repositories; it is managed by airflow_dag_repo: "
                         "fix or delete it" % where)
    for name in sorted(registry):
        check_registry_entry(name, registry[name], where)
    return registry
