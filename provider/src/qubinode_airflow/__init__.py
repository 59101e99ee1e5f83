# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow side of the qubinode.airflow collection (an Airflow provider package)."""

__version__ = "0.1.0"


def get_provider_info():
    """What Airflow lists for this provider (`airflow providers list`, `airflow config list`)."""
    return {
        "package-name": "qubinode-airflow",
        "name": "Qubinode Airflow",
        "description": "Temporal executor and worker for the qubinode.airflow collection.",
        "versions": [__version__],
        "executors": ["qubinode_airflow.temporal.executor.TemporalExecutor"],
        "cli": ["qubinode_airflow.cli.get_cli_commands"],
        "config": {
            "qubinode_temporal": {
                "description": "Where the Temporal executor sends task attempts and how they are retried.",
                "options": {
                    "address": {
                        "description": "host:port of the Temporal frontend.",
                        "version_added": "0.1.0", "type": "string", "example": None, "default": "127.0.0.1:7233",
                    },
                    "namespace": {
                        "description": "Temporal namespace of the task attempts.",
                        "version_added": "0.1.0", "type": "string", "example": None, "default": "airflow",
                    },
                    "task_queue": {
                        "description": "Task queue the workers poll.",
                        "version_added": "0.1.0", "type": "string", "example": None, "default": "airflow-tasks",
                    },
                    "heartbeat_timeout": {
                        "description": "Seconds without a worker heartbeat after which Temporal gives the "
                                       "attempt to another worker.",
                        "version_added": "0.1.0", "type": "integer", "example": None, "default": "30",
                    },
                    "task_timeout": {
                        "description": "Seconds one attempt may run on a worker.",
                        "version_added": "0.1.0", "type": "integer", "example": None, "default": "604800",
                    },
                    "max_attempts": {
                        "description": "How many workers may try one task attempt (worker loss), "
                                       "Airflow's own retries aside.",
                        "version_added": "0.1.0", "type": "integer", "example": None, "default": "3",
                    },
                    "worker_concurrency": {
                        "description": "Task attempts one worker process runs at once.",
                        "version_added": "0.1.0", "type": "integer", "example": None, "default": "4",
                    },
                },
            },
        },
    }
