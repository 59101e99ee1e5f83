# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""The git DAG repositories registered by the collection's airflow_dag_repo module, seen from inside
Airflow: the push webhook, the status API and the status page."""
