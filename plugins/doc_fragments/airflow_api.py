# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How every module of this collection reaches Airflow's REST API v2.
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Airflow api-server, without C(/api/v2).
      - If not set, the environment variable E(AIRFLOW_API_URL) is used.
      - Without either, the api-server of the host the module runs on - C(https://127.0.0.1:8080) checked against
        the stack's CA when the host has the airflow role's copy of it (C(/etc/airflow/ca.crt)), else
        C(http://127.0.0.1:8080).
    type: str
  api_username:
    description:
      - User that logs in at C(POST /auth/token). It needs the Admin or Op role.
      - If not set, the environment variable E(AIRFLOW_API_USERNAME) is used.
    type: str
    default: admin
  api_password:
    description:
      - Password of O(api_username). The role R(qubinode.airflow.secrets,ansible_collections.qubinode.airflow.secrets_role) keeps the admin password
        in the secrets file of the stack (C(airflow_admin_password)).
      - If not set, the environment variable E(AIRFLOW_API_PASSWORD) is used.
      - One of O(api_password) or O(api_token) is required.
    type: str
  api_token:
    description:
      - A JWT obtained earlier from C(POST /auth/token); used instead of logging in.
      - If not set, the environment variable E(AIRFLOW_API_TOKEN) is used.
    type: str
  validate_certs:
    description:
      - Verify the api-server's TLS certificate. Turn off only for a test host.
      - If not set, the environment variable E(AIRFLOW_API_VALIDATE_CERTS) is used.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of the CA that signed the api-server's certificate.
      - Defaults to C(/etc/airflow/ca.crt) when O(api_url) is not set and that file exists.
    type: path
  api_timeout:
    description:
      - Seconds to wait for one HTTP answer.
    type: float
    default: 30
  api_retries:
    description:
      - How many times a call is tried again, with backoff, after a connection error or a 5xx answer.
    type: int
    default: 3
notes:
  - The module runs where the task runs; delegate it to a host that reaches O(api_url).
"""
