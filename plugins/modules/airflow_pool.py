#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_pool
short_description: Declare Airflow pools, one or a whole set in one bulk call
version_added: 0.1.0
description:
  - Creates, updates or removes Airflow pools through the REST API v2.
  - A list in O(pools) is compared with what Airflow holds and every difference is sent in one
    C(PATCH /api/v2/pools) bulk call; per-item errors of that call fail the task.
  - C(default_pool) is built into Airflow - it can be resized but is never removed.
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
options:
  name:
    description: Name of one pool. Mutually exclusive with O(pools).
    type: str
  slots:
    description: Number of slots, V(-1) for unlimited. Required for O(state=present).
    type: int
  description:
    description: Free text shown in the UI.
    type: str
  include_deferred:
    description: Whether deferred tasks take a slot of the pool.
    type: bool
    default: false
  pools:
    description:
      - A whole set of pools, applied in one bulk call. Each element takes the options of a single pool
        (O(name) required) and an optional O(pools[].state).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the pool.
        type: str
        required: true
      slots:
        description: Number of slots, V(-1) for unlimited.
        type: int
      description:
        description: Free text shown in the UI.
        type: str
      include_deferred:
        description: Whether deferred tasks take a slot of the pool.
        type: bool
        default: false
      state:
        description: State of this element; defaults to O(state).
        type: str
        choices: [present, absent]
  state:
    description: Whether the pool(s) should exist.
    type: str
    default: present
    choices: [present, absent]
  exclusive:
    description:
      - Remove every pool not declared in O(pools) (never C(default_pool)), so the declared set is the whole truth.
    type: bool
    default: false
  exclusive_keep:
    description: Shell-style patterns of pool names that O(exclusive=true) never removes.
    type: list
    elements: str
    default: []
  update_secrets:
    description: Pools hold no secrets; accepted for symmetry with the other modules and ignored.
    type: str
    default: on_create
    choices: [always, on_create]
"""

EXAMPLES = r"""
- name: Pools for the VM builds and the database jobs
  qubinode.airflow.airflow_pool:
    api_password: "{{ vault_airflow_admin_password }}"
    pools:
      - name: kvm_builds
        slots: 2
        description: VM builds on the Qubinode host, two at a time
      - name: warehouse
        slots: 8
        include_deferred: true
"""

RETURN = r"""
created:
  description: Names of the pools created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: Names of the pools updated.
  returned: always
  type: list
  elements: str
deleted:
  description: Names of the pools removed.
  returned: always
  type: list
  elements: str
unverifiable:
  description: Always empty for pools.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qubinode.airflow.plugins.module_utils._registry import (
    PoolKind,
    module_argument_spec,
    run_module,
)

FIELDS = dict(
    name=dict(type="str"),
    slots=dict(type="int"),
    description=dict(type="str"),
    include_deferred=dict(type="bool", default=False),
)


def main():
    module = AnsibleModule(
        argument_spec=module_argument_spec(FIELDS, "pools", "name"),
        mutually_exclusive=[("name", "pools")],
        required_one_of=[("name", "pools")],
        supports_check_mode=True,
    )
    run_module(module, PoolKind(), "pools", list(FIELDS))


if __name__ == "__main__":
    main()
