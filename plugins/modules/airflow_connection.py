#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_connection
short_description: Declare Airflow connections, one or a whole set in one bulk call
version_added: 0.1.0
description:
  - Creates, updates or removes Airflow connections through the REST API v2.
  - A list in O(connections) is compared with what Airflow holds and every difference is sent in
    one C(PATCH /api/v2/connections) bulk call; per-item errors of that call fail the task.
  - A declared connection is complete, except for O(password) - fields left out are empty in Airflow.
  - Airflow never shows passwords and sensitive C(extra) values back (it answers C(***)); O(update_secrets)
    says what to do with values it cannot compare.
author: qubinode.airflow contributors (@qubinode)
extends_documentation_fragment:
  - qubinode.airflow.airflow_api
attributes:
  check_mode:
    description: Reports what would be created, updated or removed, and changes nothing.
    support: full
  diff_mode:
    description: Shows each changed object before and after.
    support: full
    details: Passwords and values under sensitive keys are masked in the diff.
options:
  connection_id:
    description: Id of one connection. Mutually exclusive with O(connections).
    type: str
    aliases: [conn_id]
  conn_type:
    description: Connection type (C(postgres), C(http), C(git), ...). Required for O(state=present).
    type: str
  description:
    description: Free text shown in the UI.
    type: str
  host:
    description: Host name or URL.
    type: str
  login:
    description: Login name.
    type: str
  password:
    description:
      - Password. Left as it is in Airflow when not given.
    type: str
  schema:
    description: Schema or database.
    type: str
  port:
    description: Port number.
    type: int
  extra:
    description: Extra fields, as a mapping or a JSON object string.
    type: raw
  secret_extra:
    description:
      - Extra fields that are secrets (tokens, keys). Merged over O(extra); never logged, masked in the diff,
        and handled like O(password) by O(update_secrets).
    type: dict
  connections:
    description:
      - A whole set of connections, applied in one bulk call. Each element takes the options of a
        single connection (O(connection_id) required) and an optional O(connections[].state).
    type: list
    elements: dict
    suboptions:
      connection_id:
        description: Id of the connection.
        type: str
        required: true
        aliases: [conn_id]
      conn_type:
        description: Connection type.
        type: str
      description:
        description: Free text shown in the UI.
        type: str
      host:
        description: Host name or URL.
        type: str
      login:
        description: Login name.
        type: str
      password:
        description: Password. Left as it is in Airflow when not given.
        type: str
      schema:
        description: Schema or database.
        type: str
      port:
        description: Port number.
        type: int
      extra:
        description: Extra fields, as a mapping or a JSON object string.
        type: raw
      secret_extra:
        description: Extra fields that are secrets; merged over O(connections[].extra), never logged.
        type: dict
      state:
        description: State of this element; defaults to O(state).
        type: str
        choices: [present, absent]
  state:
    description: Whether the connection(s) should exist.
    type: str
    default: present
    choices: [present, absent]
  exclusive:
    description:
      - Remove every connection that is not declared in O(connections), so the declared set is the whole truth.
      - Connections whose id matches a pattern in O(exclusive_keep) are left alone, and so are the
        C(qubinode_git_*) connections that M(qubinode.airflow.airflow_dag_repo) manages.
    type: bool
    default: false
  exclusive_keep:
    description:
      - Shell-style patterns of connection ids that O(exclusive=true) never removes.
    type: list
    elements: str
    default: []
  update_secrets:
    description:
      - V(on_create) - a password or sensitive extra that Airflow hides is set when the connection is
        created and left as stored afterwards; re-runs report no change.
      - V(always) - hidden values are sent on every run (the task then always reports changed); use it
        once to roll out a new password.
    type: str
    default: on_create
    choices: [always, on_create]
"""

EXAMPLES = r"""
- name: One connection
  qubinode.airflow.airflow_connection:
    api_url: http://airflow.example.com:8080
    api_password: "{{ vault_airflow_admin_password }}"
    connection_id: warehouse
    conn_type: postgres
    host: db.example.com
    port: 5432
    login: etl
    password: "{{ vault_warehouse_password }}"
    schema: warehouse

- name: The whole set, in one call; anything else is removed
  qubinode.airflow.airflow_connection:
    api_password: "{{ vault_airflow_admin_password }}"
    connections:
      - conn_id: warehouse
        conn_type: postgres
        host: db.example.com
      - conn_id: slack
        conn_type: http
        host: https://hooks.slack.com
        secret_extra: {token: "{{ vault_slack_token }}"}
    exclusive: true
    exclusive_keep: ["team_b_*"]   # connections another team declares

- name: Remove one
  qubinode.airflow.airflow_connection:
    api_password: "{{ vault_airflow_admin_password }}"
    connection_id: old_db
    state: absent
"""

RETURN = r"""
created:
  description: Ids of the connections created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [warehouse]
updated:
  description: Ids of the connections updated.
  returned: always
  type: list
  elements: str
deleted:
  description: Ids of the connections removed.
  returned: always
  type: list
  elements: str
unverifiable:
  description:
    - Ids of connections that match in every field Airflow shows, but hold a password or sensitive extra
      that Airflow hides and that O(update_secrets=on_create) left as stored.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qubinode.airflow.plugins.module_utils._registry import (
    ConnectionKind,
    module_argument_spec,
    run_module,
)

FIELDS = dict(
    connection_id=dict(type="str", aliases=["conn_id"]),
    conn_type=dict(type="str"),
    description=dict(type="str"),
    host=dict(type="str"),
    login=dict(type="str"),
    password=dict(type="str", no_log=True),
    schema=dict(type="str"),
    port=dict(type="int"),
    extra=dict(type="raw"),
    secret_extra=dict(type="dict", no_log=True),
)


def main():
    module = AnsibleModule(
        argument_spec=module_argument_spec(FIELDS, "connections", "connection_id"),
        mutually_exclusive=[("connection_id", "connections")],
        required_one_of=[("connection_id", "connections")],
        supports_check_mode=True,
    )
    run_module(module, ConnectionKind(), "connections", list(FIELDS))


if __name__ == "__main__":
    main()
