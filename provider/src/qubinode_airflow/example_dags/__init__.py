# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Example DAGs. The airflow role serves them only when airflow_example_dags is true."""
