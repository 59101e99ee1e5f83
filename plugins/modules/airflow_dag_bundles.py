#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: airflow_dag_bundles
short_description: Make this Airflow host serve the DAG bundles registered with airflow_dag_repo
version_added: 0.1.0
description:
  - Reads the repositories registered with M(qubinode.airflow.airflow_dag_repo) (the Airflow variable
    C(qubinode_dag_repos)) and writes this host's C(bundles.env), which sets Airflow's
    C([dag_processor] dag_bundle_config_list) for its services and CLI.
  - Restarts only what must re-read the list - the dag-processor when only a pinned commit moved, every
    Airflow service of the host when repositories were added or removed.
  - Writes C(dag-repo-requirements.txt) beside it, the requirement lines of the registered repositories, which
    the C(airflow) role installs into the virtualenv of an upgrade.
  - The C(airflow) role runs it on every Airflow host at the end of a converge, and the playbook
    C(qubinode.airflow.dag_repos) after registering, so each host serves the same bundles.
author: qubinode.airflow contributors (@qubinode)
extends_documentation_fragment:
  - qubinode.airflow.airflow_api
attributes:
  check_mode:
    description: Reports whether the host's bundle list would change and which services would restart.
    support: full
  diff_mode:
    description: Not supported; the returned RV(bundles) shows the list.
    support: none
options:
  airflow_config_dir:
    description: Directory of airflow.cfg and bundles.env.
    type: path
    default: /etc/airflow
  airflow_user:
    description: User that runs Airflow.
    type: str
    default: airflow
  wait_timeout:
    description: Seconds to wait for the api-server after restarting it.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Serve the registered DAG repositories on every Airflow host
  qubinode.airflow.airflow_dag_bundles:
    api_password: "{{ vault_airflow_admin_password }}"
"""

RETURN = r"""
bundles:
  description: The bundle list this host serves (name, classpath, kwargs).
  returned: always
  type: list
  elements: dict
requirements:
  description:
    - The requirement lines of the registered repositories that this host's airflow role installs (the playbook
      C(qubinode.airflow.dag_repos) and the role's C(bundles) tasks install them before the bundles are applied).
    - A line that is not a package requirement, or whose package neither the stack's constraints nor
      C(airflow_dag_repo_packages) name, is left out with a warning (the registry is an Airflow variable).
  returned: always
  type: list
  elements: str
  version_added: 1.0.0
packages:
  description: The package versions (C(name==version)) resolved for them when they were registered, installed as constraints.
  returned: always
  type: list
  elements: str
  version_added: 1.0.0
restarted:
  description: Services restarted on this host.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.qubinode.airflow.plugins.module_utils._api import (
    AirflowAPI,
    AirflowAPIError,
    airflow_api_argument_spec,
)
from ansible_collections.qubinode.airflow.plugins.module_utils._dag_repo import (
    RepoError,
    apply_to_host,
    host_requirements,
    read_registry,
    wait_healthy,
)


def main():
    spec = airflow_api_argument_spec()
    spec.update(
        airflow_config_dir=dict(type="path", default="/etc/airflow"),
        airflow_user=dict(type="str", default="airflow"),
        wait_timeout=dict(type="int", default=300),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        api = AirflowAPI(p)
        registry = read_registry(api)
        requirements, packages, dropped = host_requirements(registry, p["airflow_config_dir"])
        if dropped:
            module.warn("the registry entries of %s hold requirements that are not allowed on this host, which were left "
                        "out; register those repositories again" % ", ".join(dropped))
        changed, restarted, bundles = apply_to_host(module, registry, p["airflow_config_dir"],
                                                    p["airflow_user"], module.check_mode, api=api)
        if "airflow-api-server" in restarted and not module.check_mode:
            wait_healthy(api, p["wait_timeout"])
    except RepoError as e:
        module.fail_json(msg=to_text(e.msg))
    except AirflowAPIError as e:
        module.fail_json(msg=e.msg, status=e.status)
    module.exit_json(changed=changed, restarted=restarted, bundles=bundles, requirements=requirements, packages=packages)


if __name__ == "__main__":
    main()
