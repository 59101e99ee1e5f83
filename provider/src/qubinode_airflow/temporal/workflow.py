# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The workflow of one Airflow task attempt: one activity, retried on another worker when the
worker running it stops heartbeating. The worker runs it outside Temporal's sandbox: it must stay
deterministic by itself (only the workflow API, no Airflow, no clock, no I/O)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from qubinode_airflow.temporal.codec import ACTIVITY_NAME, WORKFLOW_NAME, AttemptResult, TaskAttempt


@workflow.defn(name=WORKFLOW_NAME)
class TaskAttemptWorkflow:
    @workflow.run
    async def run(self, attempt: TaskAttempt) -> AttemptResult:
        if attempt.refused:
            # The worker could not open this attempt (another key, another workflow's seal, or unsealed):
            # no worker can, so the workflow fails now and Airflow learns it from the executor.
            raise ApplicationError("task attempt refused: %s" % attempt.refused, type="AttemptRefused",
                                   non_retryable=True)
        return await workflow.execute_activity(
            ACTIVITY_NAME,
            attempt,
            result_type=AttemptResult,
            start_to_close_timeout=timedelta(seconds=attempt.task_timeout),
            heartbeat_timeout=timedelta(seconds=attempt.heartbeat_timeout),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=10),
                maximum_attempts=attempt.max_attempts,
            ),
            # Airflow killing the task cancels the workflow; wait until the worker has stopped it.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
