# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""The one client of Airflow's REST API v2 used by every module of this collection."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket
import time

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode
from ansible.module_utils.urls import open_url

# Airflow answers list endpoints with at most [api] maximum_page_limit entries (100 by default).
PAGE_SIZE = 100
MASK = "***"
RETRY_STATUSES = (500, 502, 503, 504)


def airflow_api_argument_spec():
    """Connection options shared by every module; documented in doc_fragments/airflow_api.py."""
    return dict(
        api_url=dict(type="str", fallback=(env_fallback, ["AIRFLOW_API_URL"])),
        api_username=dict(type="str", default="admin", fallback=(env_fallback, ["AIRFLOW_API_USERNAME"])),
        api_password=dict(type="str", no_log=True, fallback=(env_fallback, ["AIRFLOW_API_PASSWORD"])),
        api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["AIRFLOW_API_TOKEN"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["AIRFLOW_API_VALIDATE_CERTS"])),
        ca_path=dict(type="path"),
        api_timeout=dict(type="float", default=30.0),
        api_retries=dict(type="int", default=3),
    )


# The airflow role's copy of the stack's CA on an Airflow host: there when its api-server serves HTTPS.
LOCAL_CA = "/etc/airflow/ca.crt"
LOCAL_PORT = 8080


def local_api(ca=None):
    """(api_url, ca_path) of this host's own api-server: HTTPS against the stack's CA when the host has it."""
    ca = ca or LOCAL_CA
    if os.path.isfile(ca):
        return "https://127.0.0.1:%d" % LOCAL_PORT, ca
    return "http://127.0.0.1:%d" % LOCAL_PORT, None


class AirflowAPIError(Exception):
    """A failed call, with a message that says what failed and what to do about it."""

    def __init__(self, msg, status=None, body=None):
        super(AirflowAPIError, self).__init__(msg)
        self.msg = msg
        self.status = status
        self.body = body


def _detail(body):
    """Airflow puts the reason in `detail`: a string, or pydantic's list of field errors."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return (body or "").strip()[:500]
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
                parts.append("%s: %s" % (loc, err.get("msg", err)) if loc else str(err.get("msg", err)))
            else:
                parts.append(str(err))
        return "; ".join(parts)
    return str(detail)


class AirflowAPI:
    """Token auth, retries with backoff on connection errors and 5xx, clear errors.

    `params` is a module's params dict (or any dict holding the shared options).
    `opener` exists for tests at the HTTP boundary; it defaults to ansible's open_url.
    """

    def __init__(self, params, opener=None, sleep=time.sleep):
        api_url, ca_path = params.get("api_url"), params.get("ca_path")
        if not api_url:
            api_url, local_ca = local_api()
            ca_path = ca_path or local_ca
        self.base = api_url.rstrip("/")
        if not self.base.startswith(("http://", "https://")):
            raise AirflowAPIError(
                "api_url %r is not an http(s) URL: set api_url (or AIRFLOW_API_URL) to the Airflow "
                "api-server, for example https://127.0.0.1:8080" % (params.get("api_url"),))
        self.username = params.get("api_username")
        self.password = params.get("api_password")
        self.token = params.get("api_token")
        self.validate_certs = params.get("validate_certs", True)
        self.ca_path = ca_path
        self.timeout = params.get("api_timeout") or 30.0
        self.retries = max(0, params.get("api_retries") if params.get("api_retries") is not None else 3)
        self._open = opener or open_url
        self._sleep = sleep

    # -- transport ---------------------------------------------------------
    def _raw(self, method, url, data=None, headers=None):
        """One HTTP exchange with retries; returns (status, body text)."""
        attempt = 0
        while True:
            try:
                resp = self._open(
                    url, data=data, headers=headers or {}, method=method, timeout=self.timeout,
                    validate_certs=self.validate_certs, ca_path=self.ca_path,
                    follow_redirects="safe", use_proxy=True,
                )
                return resp.getcode(), resp.read().decode("utf-8")
            except HTTPError as e:
                body = e.read().decode("utf-8", "replace") if e.fp is not None else ""
                if e.code in RETRY_STATUSES and attempt < self.retries:
                    attempt += 1
                    self._sleep(min(2 ** attempt, 10))
                    continue
                return e.code, body
            except (URLError, socket.timeout, ConnectionError, OSError) as e:
                if attempt < self.retries:
                    attempt += 1
                    self._sleep(min(2 ** attempt, 10))
                    continue
                reason = getattr(e, "reason", e)
                hint = "check api_url and that the Airflow api-server is running"
                if "CERTIFICATE" in str(reason).upper():
                    hint = "set ca_path to the CA that signed the server's certificate (or validate_certs: false for a test host)"
                raise AirflowAPIError("cannot reach the Airflow API at %s after %d attempt(s): %s; %s"
                                      % (self.base, attempt + 1, reason, hint))

    def login(self):
        """Exchange username/password for a JWT at POST /auth/token."""
        if not self.password:
            raise AirflowAPIError(
                "no credentials for the Airflow API at %s: set api_password (or AIRFLOW_API_PASSWORD), "
                "or api_token (AIRFLOW_API_TOKEN)" % self.base)
        body = json.dumps({"username": self.username, "password": self.password}).encode("utf-8")
        status, text = self._raw("POST", self.base + "/auth/token", body, {"Content-Type": "application/json"})
        if status in (200, 201):
            try:
                self.token = json.loads(text)["access_token"]
            except (ValueError, KeyError, TypeError):
                raise AirflowAPIError("POST %s/auth/token answered %d without an access_token: is api_url the "
                                      "Airflow 3 api-server?" % (self.base, status))
            return self.token
        if status in (400, 401, 403):
            raise AirflowAPIError("authentication to %s as %r failed (%d): check api_username/api_password"
                                  % (self.base, self.username, status), status)
        raise AirflowAPIError("POST %s/auth/token failed (%d): %s" % (self.base, status, _detail(text)), status)

    def request(self, method, path, body=None, query=None, ok=(200, 201, 204)):
        """Call /api/v2/<path>; returns decoded JSON (or None); raises AirflowAPIError otherwise."""
        if not self.token:
            self.login()
        url = "%s/api/v2/%s" % (self.base, path.lstrip("/"))
        if query:
            url += "?" + urlencode(query)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        for renewed in (False, True):
            headers = {"Authorization": "Bearer %s" % self.token, "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            status, text = self._raw(method, url, data, headers)
            if status == 401 and not renewed and self.password:
                self.login()  # an expired token: log in once more
                continue
            break
        if status in ok:
            return json.loads(text) if text.strip() else None
        what = "%s %s" % (method, url)
        if status == 401:
            raise AirflowAPIError("%s was refused (401): the token is missing or expired; check api_token or "
                                  "api_username/api_password" % what, status, text)
        if status == 403:
            raise AirflowAPIError("%s was refused (403): user %r lacks the permission; give it the Admin or Op "
                                  "role" % (what, self.username), status, text)
        raise AirflowAPIError("%s failed (%d): %s" % (what, status, _detail(text)), status, text)

    # -- helpers -------------------------------------------------------------
    def get_or_none(self, path):
        try:
            return self.request("GET", path)
        except AirflowAPIError as e:
            if e.status == 404:
                return None
            raise

    def list_all(self, path, items_key, query=None):
        """Every entry of a paginated collection endpoint."""
        out, offset = [], 0
        while True:
            q = dict(query or {}, limit=PAGE_SIZE, offset=offset)
            page = self.request("GET", path, query=q)
            items = page.get(items_key) or []
            out.extend(items)
            offset += len(items)
            if not items or offset >= page.get("total_entries", 0):
                return out

    def bulk(self, path, actions):
        """PATCH /api/v2/<path> with bulk actions. Airflow answers 200 even when items fail,
        so read every action's `errors`; returns {action: [keys that succeeded]} or raises."""
        if not actions:
            return {}
        result = self.request("PATCH", path, body={"actions": actions}) or {}
        done, errors = {}, []
        for action in ("create", "update", "delete"):
            part = result.get(action) or {}
            done[action] = list(part.get("success") or [])
            for err in part.get("errors") or []:
                errors.append("%s: %s" % (action, err.get("error", err) if isinstance(err, dict) else err))
        if errors:
            raise AirflowAPIError("PATCH %s/api/v2/%s: %d bulk item error(s): %s"
                                  % (self.base, path, len(errors), "; ".join(errors)), 200, done)
        return done


def quote_id(value):
    """An object id as one URL path segment."""
    return quote(str(value), safe="")
