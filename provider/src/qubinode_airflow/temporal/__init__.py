# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Airflow task attempts as Temporal workflows: executor (scheduler side) and worker."""
