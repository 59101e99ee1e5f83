# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The Airflow plugin (entry point `airflow.plugins`): mounts the webhook/status app on the api-server
and adds "DAG repositories" to the UI's navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/qubinode"


class _LazyApp:
    """Builds the FastAPI app when the api-server mounts it, not when any Airflow process loads plugins."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            from qubinode_airflow.repos.webhook import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class QubinodePlugin(AirflowPlugin):
    name = "qubinode"
    fastapi_apps = [{"name": "qubinode-dag-repos", "app": _LazyApp(), "url_prefix": URL_PREFIX}]
    external_views = [{
        "name": "DAG repositories",
        "href": URL_PREFIX + "/ui",
        "destination": "nav",
        "category": "browse",
        "url_route": "qubinode-dag-repos",
    }]
