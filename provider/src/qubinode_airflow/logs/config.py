# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow's default logging configuration with the HTTPS task log handler: ``[logging] logging_config_class =
qubinode_airflow.logs.config.LOGGING_CONFIG``. Remote logging, when configured, is Airflow's own, unchanged."""

from __future__ import annotations

import copy

from airflow.config_templates import airflow_local_settings

# Airflow reads these two from the module of [logging] logging_config_class, for remote logging.
REMOTE_TASK_LOG = airflow_local_settings.REMOTE_TASK_LOG
DEFAULT_REMOTE_CONN_ID = airflow_local_settings.DEFAULT_REMOTE_CONN_ID

FILE_TASK_HANDLER = "airflow.utils.log.file_task_handler.FileTaskHandler"

LOGGING_CONFIG = copy.deepcopy(airflow_local_settings.DEFAULT_LOGGING_CONFIG)
if LOGGING_CONFIG["handlers"]["task"]["class"] == FILE_TASK_HANDLER:
    LOGGING_CONFIG["handlers"]["task"]["class"] = "qubinode_airflow.logs.handler.HTTPSFileTaskHandler"
