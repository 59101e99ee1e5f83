#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_variable
short_description: Declare Airflow variables, one or a whole set in one bulk call
version_added: 0.1.0
description:
  - Creates, updates or removes Airflow variables through the REST API v2.
  - A list in O(variables) is compared with what Airflow holds and every difference is sent in one
    C(PATCH /api/v2/variables) bulk call; per-item errors of that call fail the task.
  - Airflow hides the value of a variable whose key looks secret (C(password), C(token), C(api_key), ...);
    O(update_secrets) says what to do with a value it cannot compare.
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
    details: Values given as O(secret_value), and values under sensitive keys, are masked in the diff.
options:
  key:
    description: Key of one variable. Mutually exclusive with O(variables).
    type: str
  value:
    description:
      - The value. A string is stored as it is; a list, mapping, number or boolean is stored as JSON
        (read it in a DAG with C(Variable.get(key, deserialize_json=True))).
    type: raw
  secret_value:
    description: A value that is a secret - never logged, masked in the diff. Mutually exclusive with O(value).
    type: raw
  description:
    description: Free text shown in the UI.
    type: str
  variables:
    description:
      - A whole set of variables, applied in one bulk call. Each element takes the options of a single
        variable (O(key) required) and an optional O(variables[].state).
    type: list
    elements: dict
    suboptions:
      key:
        description: Key of the variable.
        type: str
        required: true
      value:
        description: The value (a string, or any structure stored as JSON).
        type: raw
      secret_value:
        description: A value that is a secret - never logged, masked in the diff.
        type: raw
      description:
        description: Free text shown in the UI.
        type: str
      state:
        description: State of this element; defaults to O(state).
        type: str
        choices: [present, absent]
  state:
    description: Whether the variable(s) should exist.
    type: str
    default: present
    choices: [present, absent]
  exclusive:
    description:
      - Remove every variable that is not declared in O(variables), so the declared set is the whole truth.
      - Variables whose key matches a pattern in O(exclusive_keep) are left alone, and so is the variable
        C(qubinode_dag_repos), the list of repositories that M(qubinode.airflow.airflow_dag_repo) manages.
    type: bool
    default: false
  exclusive_keep:
    description: Shell-style patterns of keys that O(exclusive=true) never removes.
    type: list
    elements: str
    default: []
  update_secrets:
    description:
      - V(on_create) - a value Airflow hides is set when the variable is created and left as stored afterwards.
      - V(always) - hidden values are sent on every run (the task then always reports changed).
    type: str
    default: on_create
    choices: [always, on_create]
"""

EXAMPLES = r"""
- name: A set of variables in one call
  qubinode.airflow.airflow_variable:
    api_password: "{{ vault_airflow_admin_password }}"
    variables:
      - key: environment
        value: production
      - key: qubinode_hosts
        value: [kvm01, kvm02]
      - key: slack_api_key
        secret_value: "{{ vault_slack_api_key }}"

- name: Remove one
  qubinode.airflow.airflow_variable:
    api_password: "{{ vault_airflow_admin_password }}"
    key: old_setting
    state: absent
"""

RETURN = r"""
created:
  description: Keys of the variables created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: Keys of the variables updated.
  returned: always
  type: list
  elements: str
deleted:
  description: Keys of the variables removed.
  returned: always
  type: list
  elements: str
unverifiable:
  description: Keys whose value Airflow hides and that O(update_secrets=on_create) left as stored.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qubinode.airflow.plugins.module_utils._registry import (
    VariableKind,
    module_argument_spec,
    run_module,
)

FIELDS = dict(
    key=dict(type="str", no_log=False),
    value=dict(type="raw"),
    secret_value=dict(type="raw", no_log=True),
    description=dict(type="str"),
)


def main():
    spec = module_argument_spec(FIELDS, "variables", "key")
    spec["variables"]["mutually_exclusive"] = [("value", "secret_value")]
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[("key", "variables"), ("value", "secret_value")],
        required_one_of=[("key", "variables")],
        supports_check_mode=True,
    )
    run_module(module, VariableKind(), "variables", list(FIELDS))


if __name__ == "__main__":
    main()
