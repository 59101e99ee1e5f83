# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Push webhook, status API and status page, mounted on Airflow's api-server at /qubinode.

Routes of plugin apps are not authenticated by Airflow, so each route here decides:
- POST /qubinode/webhook: GitHub (X-Hub-Signature-256, HMAC-SHA256 of the body) or GitLab (X-Gitlab-Token)
  push events, checked against the secret in the connection `qubinode_webhook` (password) or else the
  variable `qubinode_webhook_secret`. Unsigned or badly signed: 401; a repository that is not registered:
  404; in either case nothing else happens.
- GET /qubinode/repos, POST /qubinode/repos/{name}/sync, GET /qubinode/ui: Airflow users only (a bearer
  token or the UI's session cookie), read and edit rights on DAGs respectively.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from qubinode_airflow.repos import registry

log = logging.getLogger(__name__)
SECRET_CONN_ID = "qubinode_webhook"
SECRET_VARIABLE = "qubinode_webhook_secret"
MAX_BODY = 5 * 1024 * 1024
# A cookie-authenticated POST must carry this header, which a cross-site form cannot send.
CSRF_HEADER = "X-Qubinode-Request"


def webhook_secret() -> str | None:
    """The shared secret, read on every request so a rotation needs no restart."""
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable

    try:
        secret = Connection.get_connection_from_secrets(SECRET_CONN_ID).password
    except Exception:  # noqa: BLE001 - AirflowNotFoundException: fall back to the variable
        secret = None
    if not secret:
        secret = Variable.get(SECRET_VARIABLE, default_var=None)
    return secret or None


def signature_ok(secret: str | None, body: bytes, headers) -> tuple[bool, str]:
    """(valid, which scheme): GitHub's HMAC-SHA256 signature or GitLab's token, compared in constant time."""
    if not secret:
        return False, "none"
    github = headers.get("x-hub-signature-256")
    if github:
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(github.strip().encode(), want.encode()), "github"
    gitlab = headers.get("x-gitlab-token")
    if gitlab:
        return hmac.compare_digest(gitlab.encode(), secret.encode()), "gitlab"
    return False, "none"


def _session():
    from airflow.utils.session import create_session

    return create_session()


def refresh(name: str, entry: dict[str, Any], session) -> dict[str, Any]:
    if entry.get("pin", True):
        # A pinned bundle serves exactly its validated commit; moving it is airflow_dag_repo's job.
        return {"bundle": name, "action": "none", "pinned_commit": entry.get("commit"),
                "detail": "pinned: run airflow_dag_repo (or the dag_repos playbook) to validate and pin the push"}
    rel = registry.request_refresh(session, name)
    return {"bundle": name, "action": "refresh", "file": rel}


def _user_dependency(method: str):
    """Airflow's own check: a valid token (header or UI cookie) and the right on DAGs."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return Depends(requires_access_dag(method=method))


def create_app() -> FastAPI:
    app = FastAPI(title="qubinode.airflow DAG repositories", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhook")
    async def webhook(request: Request, x_github_event: str | None = Header(None),
                      x_gitlab_event: str | None = Header(None)):
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, "payload too large")
        ok, scheme = signature_ok(webhook_secret(), body, request.headers)
        if not ok:
            log.warning("webhook from %s refused: %s", request.client.host if request.client else "?",
                        "no signature or token" if scheme == "none" else "bad %s signature" % scheme)
            raise HTTPException(401, "missing or invalid signature")
        event = (x_github_event or x_gitlab_event or "").lower()
        if event == "ping":
            return {"status": "pong"}
        try:
            payload = json.loads(body or b"{}")
        except ValueError as e:
            raise HTTPException(400, "the body is not JSON") from e
        if event not in ("push", "push hook", "tag_push", "tag push hook"):
            return JSONResponse({"status": "ignored", "detail": "event %r is not a push" % event}, status_code=202)
        urls = registry.push_urls(payload)
        with _session() as session:
            repos = registry.read_registry(session)
            names = registry.matching_bundles(repos, urls)
            if not names:
                raise HTTPException(404, "no registered DAG repository has the URL %s" % (urls[:1] or ["(none)"])[0])
            ref = registry.pushed_ref(payload)
            results = []
            for name in names:
                if ref and repos[name].get("ref") not in (ref, None):
                    results.append({"bundle": name, "action": "none",
                                    "detail": "push to %s; the bundle serves %s" % (ref, repos[name].get("ref"))})
                else:
                    results.append(refresh(name, repos[name], session))
        log.info("webhook push %s@%s: %s", names, payload.get("after", "")[:12], results)
        return JSONResponse({"status": "accepted", "bundles": results}, status_code=202)

    @app.get("/repos", dependencies=[_user_dependency("GET")])
    def repos():
        with _session() as session:
            return {"repositories": registry.status(session)}

    @app.post("/repos/{name}/sync", dependencies=[_user_dependency("PUT")])
    def sync(name: str, request: Request):
        if not request.headers.get("authorization") and request.headers.get(CSRF_HEADER) != "1":
            raise HTTPException(403, "a browser request needs the %s: 1 header" % CSRF_HEADER)
        with _session() as session:
            repos = registry.read_registry(session)
            if name not in repos:
                raise HTTPException(404, "no registered DAG repository named %r" % name)
            return JSONResponse(refresh(name, repos[name], session), status_code=202)

    @app.get("/ui", response_class=HTMLResponse, dependencies=[_user_dependency("GET")])
    def page():
        from qubinode_airflow.repos.page import PAGE

        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    return app
