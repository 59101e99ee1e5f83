# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The task log handler of a stack whose log servers serve HTTPS (qubinode_airflow.logs.server)."""

from __future__ import annotations

from airflow.utils.log.file_task_handler import FileTaskHandler


class HTTPSFileTaskHandler(FileTaskHandler):
    """Airflow's FileTaskHandler, reading the log of a task that runs on another host from that host's log
    server over HTTPS (Airflow builds an http:// address). The server's certificate is checked against the
    CA bundle of the process (REQUESTS_CA_BUNDLE: the airflow role sets the system's CAs and the stack's)."""

    def _get_log_retrieval_url(self, ti, log_relative_path, log_type=None):
        url, rel_path = super()._get_log_retrieval_url(ti, log_relative_path, log_type=log_type)
        if url and url.startswith("http://"):
            url = "https://" + url[len("http://"):]
        return url, rel_path
