# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Commit statuses of merge-request checks, posted to GitHub's statuses API or GitLab's commit status API.

The API URL and the token of a repository are the host and the password of the connection
``qubinode_status_<bundle>`` (for example host ``https://api.github.com`` or
``https://gitlab.example.com/api/v4``); without that connection no status is posted and the check's
result stays in its DAG run. Only HTTPS URLs are used (http only to a loopback address), so the token is
never sent in clear.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CONN_PREFIX = "qubinode_status_"
CONTEXT = "qubinode/dag-validation"
GITHUB_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
# GitLab takes a project's numeric id or its URL-encoded path.
GITLAB_PROJECT_RE = re.compile(r"^(?:[1-9][0-9]{0,12}|[A-Za-z0-9_.-]{1,255}(?:/[A-Za-z0-9_.-]{1,255}){1,20})$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# Our states, as each API names them.
STATES = {"github": {"pending": "pending", "success": "success", "failure": "failure"},
          "gitlab": {"pending": "running", "success": "success", "failure": "failed"}}
TIMEOUT = 30


class StatusError(Exception):
    pass


def checked_target(status: Any) -> dict[str, Any]:
    """The `status` part of a review run's conf ({"kind", "repository"}), checked: it names where to post."""
    if not isinstance(status, dict) or status.get("kind") not in STATES:
        raise StatusError("status.kind must be github or gitlab")
    repository = status.get("repository")
    pattern = GITHUB_REPO_RE if status["kind"] == "github" else GITLAB_PROJECT_RE
    if not isinstance(repository, (str, int)) or isinstance(repository, bool) or not pattern.fullmatch(str(repository)) \
            or ".." in str(repository):
        raise StatusError("status.repository %r is not a %s repository" % (repository, status["kind"]))
    return {"kind": status["kind"], "repository": str(repository)}


def api_base(url: str) -> str:
    """The API URL of the connection: https, or http to a loopback address only (a token never goes in clear)."""
    parts = urllib.parse.urlsplit((url or "").strip())
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise StatusError("the status API URL %r must be https:// (http:// only to a loopback address)" % url)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise StatusError("the status API URL must not carry a user, a query or a fragment; put the token in "
                          "the connection's password")
    return url.strip().rstrip("/")


def request(target: dict[str, Any], base: str, token: str, sha: str, state: str, description: str,
            target_url: str | None) -> urllib.request.Request:
    """The HTTP request of one status, as each API documents it."""
    if not SHA_RE.fullmatch(sha or ""):
        raise StatusError("the commit %r is not a full SHA" % (sha,))
    description = (description or "")[:140]
    if target["kind"] == "github":
        body = {"state": STATES["github"][state], "context": CONTEXT, "description": description}
        if target_url:
            body["target_url"] = target_url
        owner, repo = target["repository"].split("/")
        url = "%s/repos/%s/%s/statuses/%s" % (base, urllib.parse.quote(owner), urllib.parse.quote(repo), sha)
        headers = {"Authorization": "Bearer %s" % token, "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"}
        return urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    query = {"state": STATES["gitlab"][state], "name": CONTEXT, "description": description}
    if target_url:
        query["target_url"] = target_url
    url = "%s/projects/%s/statuses/%s" % (base, urllib.parse.quote(target["repository"], safe=""), sha)
    return urllib.request.Request(url, data=urllib.parse.urlencode(query).encode(),
                                  headers={"PRIVATE-TOKEN": token,
                                           "Content-Type": "application/x-www-form-urlencoded"}, method="POST")


def post_status(conn: Any, status: Any, sha: str, state: str, description: str, target_url: str | None = None,
                cafile: str | None = None) -> int:
    """Post one status with the connection `conn` (host: API URL, password: token); the HTTP status. The
    server is checked against `cafile`, by default the CA bundle of the process (REQUESTS_CA_BUNDLE: the
    airflow role sets the system's CAs and the stack's, so a git server with a site certificate works)."""
    if state not in STATES["github"]:
        raise StatusError("state must be one of %s" % ", ".join(STATES["github"]))
    target = checked_target(status)
    if not conn.password:
        raise StatusError("the connection %s has no token (its password)" % conn.conn_id)
    req = request(target, api_base(conn.host or ""), conn.password, sha, state, description, target_url)
    context = ssl.create_default_context(cafile=cafile or os.environ.get("REQUESTS_CA_BUNDLE") or None)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=context) as resp:  # noqa: S310 (https checked)
            return resp.status
    except urllib.error.HTTPError as e:
        raise StatusError("the %s API answered HTTP %s for the status of %s: %s" % (
            target["kind"], e.code, sha[:12], e.read(300).decode("utf-8", "replace"))) from None
    except (urllib.error.URLError, OSError) as e:
        raise StatusError("cannot reach the %s API at %s: %s" % (target["kind"], conn.host, e)) from None
