# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The one message format of the executor and the worker.

A task attempt travels as `TaskAttempt` (the Airflow workload as JSON plus how Temporal should run
it) and comes back as `AttemptResult`. This module imports neither Airflow nor anything that is
not deterministic, so Temporal's workflow sandbox can load it.
"""

from __future__ import annotations

from dataclasses import dataclass

WORKFLOW_NAME = "airflow-task-attempt"
ACTIVITY_NAME = "run-airflow-task"
WORKFLOW_ID_PREFIX = "airflow-ti-"
SECTION = "qubinode_temporal"
# [qubinode_temporal]: option -> (default, type, description). The provider info publishes it.
OPTIONS = {
    "address": ("127.0.0.1:7233", "string", "host:port of the Temporal frontend."),
    "namespace": ("airflow", "string", "Temporal namespace of the task attempts."),
    "task_queue": ("airflow-tasks", "string", "Task queue the workers poll."),
    "heartbeat_timeout": ("30", "integer", "Seconds without a worker heartbeat after which Temporal gives the "
                                           "attempt to another worker."),
    "task_timeout": ("604800", "integer", "Seconds one attempt may run on a worker."),
    "max_attempts": ("3", "integer", "How many workers may try one task attempt (worker loss), Airflow's own "
                                     "retries aside."),
    "worker_concurrency": ("4", "integer", "Task attempts one worker process runs at once."),
    "sealing_keys": ("", "string", "Keyring (a JSON Web Key Set of oct keys) whose first key seals task attempts "
                                   "and whose every key opens them; empty: [api_auth] jwt_secret alone."),
    "tls_ca": ("", "string", "CA certificate (PEM file) the frontend's certificate is checked against; empty: "
                             "plain gRPC (a frontend on loopback)."),
    "tls_cert": ("", "string", "Client certificate (PEM file) this host presents to a frontend that requires one."),
    "tls_key": ("", "string", "Key of tls_cert (PEM file)."),
}
DEFAULTS = {name: option[0] for name, option in OPTIONS.items()}
# Appended to a worker's identity: how many attempts it runs at once.
CONCURRENCY_MARK = " concurrency=%d"
# The child process exits with this code when Airflow refuses to start the attempt (it already
# ran or finished elsewhere): nothing for another worker to try.
EXIT_REFUSED = 75


@dataclass
class TaskAttempt:
    workload: str
    """The Airflow ExecuteTask workload, as its own JSON."""
    summary: str
    heartbeat_timeout: int
    task_timeout: int
    max_attempts: int
    refused: str = ""
    """Set by the worker's codec, never by the scheduler: why this attempt's payload did not open."""


@dataclass
class AttemptResult:
    exit_code: int
    worker: str
    attempt: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class Settings:
    address: str
    namespace: str
    task_queue: str
    heartbeat_timeout: int
    task_timeout: int
    max_attempts: int
    worker_concurrency: int
    sealing_keys: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""

    @classmethod
    def from_getter(cls, get) -> Settings:
        """`get(option, fallback)` reads one option of [qubinode_temporal]."""
        values = {name: get(name, default) for name, default in DEFAULTS.items()}
        errors = []
        for name, least in (("heartbeat_timeout", 1), ("task_timeout", 1), ("max_attempts", 1),
                            ("worker_concurrency", 1)):
            try:
                values[name] = int(values[name])
                if values[name] < least:
                    raise ValueError
            except (TypeError, ValueError):
                errors.append("[%s] %s = %r is not a whole number of at least %d" % (SECTION, name, values[name], least))
        if ":" not in str(values["address"]):
            errors.append("[%s] address = %r: give host:port of the Temporal frontend, for example "
                          "temporal.example.com:7233" % (SECTION, values["address"]))
        if bool(values["tls_cert"]) != bool(values["tls_key"]):
            errors.append("[%s] tls_cert and tls_key go together: set both or neither" % SECTION)
        elif values["tls_cert"] and not values["tls_ca"]:
            errors.append("[%s] tls_cert is set without tls_ca: set the CA the frontend's certificate is checked "
                          "against" % SECTION)
        if errors:
            raise ValueError("; ".join(errors))
        return cls(**values)

    @classmethod
    def from_airflow(cls) -> Settings:
        from airflow.configuration import conf

        return cls.from_getter(lambda name, default: conf.get(SECTION, name, fallback=default))


def workflow_id(external_executor_id: str) -> str:
    """One workflow per task attempt: the scheduler gives each queued attempt a fresh UUID."""
    return WORKFLOW_ID_PREFIX + external_executor_id
