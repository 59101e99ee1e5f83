# Copyright (c) qubinode.airflow contributors
# SPDX-License-Identifier: Apache-2.0
"""Operators that run a playbook or a role (of this collection or any installed one) as a task."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from qubinode_airflow.ansible.hook import AnsibleHook, git_credentials

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class AnsiblePlaybookOperator(BaseOperator):
    """Run an Ansible playbook through ansible-runner; the output streams into the task log.

    :param playbook: a collection playbook (``qubinode.airflow.site``) or a path on the worker.
    :param inventory: inline inventory (mapping, YAML/INI text or ``"h1,h2"``); else the connection's.
    :param ansible_conn_id: connection of type ``qubinode_ansible`` (hosts, SSH user, key, become password).
    :param vault_conn_id: connection whose password is the Ansible Vault password.
    :param extra_vars: extra variables (templated).
    :param git_credentials: variable name to the id of a git connection (templated): each variable holds
        that connection's credentials as a dag_repos manifest's ``credentials`` names them (``token`` and
        ``username``, or ``ssh_private_key``), read when the task runs, masked in its log and never in what
        Airflow stores of the task.
    :param check: run in check mode (``--check``): nothing changes, the recap says what would.
    :return: the play recap, ``{host: {ok, changed, failed, unreachable, skipped, rescued, ignored}}``.
    """

    template_fields: Sequence[str] = ("playbook", "inventory", "extra_vars", "git_credentials", "limit", "tags",
                                      "skip_tags")
    template_fields_renderers = {"extra_vars": "json", "inventory": "yaml"}
    ui_color = "#ee0000"
    ui_fgcolor = "#fff"

    def __init__(self, *, playbook: str, inventory: Any = None, ansible_conn_id: str | None = None,
                 vault_conn_id: str | None = None, extra_vars: dict | None = None, limit: str | None = None,
                 tags: str | None = None, skip_tags: str | None = None, check: bool = False, diff: bool = False,
                 verbosity: int = 0, forks: int | None = None, ansible_timeout: int | None = None,
                 collections_path: str | None = None, envvars: dict | None = None,
                 git_credentials: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.playbook = playbook
        self.inventory = inventory
        self.ansible_conn_id = ansible_conn_id
        self.vault_conn_id = vault_conn_id
        self.extra_vars = extra_vars or {}
        self.git_credentials = git_credentials or {}
        self.limit = limit
        self.tags = tags
        self.skip_tags = skip_tags
        self.check = check
        self.diff = diff
        self.verbosity = verbosity
        self.forks = forks
        self.ansible_timeout = ansible_timeout
        self.collections_path = collections_path
        self.envvars = envvars
        self._hook: AnsibleHook | None = None

    def _playbook(self) -> tuple[str, dict[str, str], str]:
        """What ansible-playbook runs, any file to write for it, and its name in messages."""
        return self.playbook, {}, self.playbook

    def execute(self, context) -> dict[str, dict[str, int]]:
        if not isinstance(self.extra_vars, dict):  # an XComArg is resolved to its value by now
            raise TypeError("extra_vars must be a mapping, got %s" % type(self.extra_vars).__name__)
        if not isinstance(self.git_credentials, dict):
            raise TypeError("git_credentials must be a mapping, got %s" % type(self.git_credentials).__name__)
        for name in self.git_credentials:
            # A variable of the play's own, never one of Ansible's connection settings.
            if not isinstance(name, str) or not _VAR_NAME.fullmatch(name) or name.startswith("ansible_"):
                raise ValueError("git_credentials: %r is not a variable name a play may be given (letters, digits "
                                 "and _, not starting with a digit or ansible_)" % (name,))
        playbook, files, label = self._playbook()
        self._hook = AnsibleHook(ansible_conn_id=self.ansible_conn_id, vault_conn_id=self.vault_conn_id,
                                 collections_path=self.collections_path)
        secret_vars = {name: git_credentials(self._hook.get_connection(conn_id))
                       for name, conn_id in self.git_credentials.items()}
        recap = self._hook.run(playbook, self.inventory, self.extra_vars, limit=self.limit, tags=self.tags,
                               skip_tags=self.skip_tags, check=self.check, diff=self.diff,
                               verbosity=self.verbosity, forks=self.forks, timeout=self.ansible_timeout,
                               envvars=self.envvars, files=files, label=label, secret_vars=secret_vars)
        changed = sum(r["changed"] for r in recap.values())
        self.log.info("%s%s: %d host(s), %d change(s)%s", label, " (check mode)" if self.check else "",
                      len(recap), changed, " would be made" if self.check else "")
        return recap

    def on_kill(self) -> None:
        if self._hook:
            self._hook.on_kill()


class AnsibleRoleOperator(AnsiblePlaybookOperator):
    """Run one role (``qubinode.airflow.airflow``, or any installed role) on ``hosts``.

    :param role: role name, a collection role by FQCN.
    :param hosts: host pattern the role runs on (templated).
    :param role_vars: variables of the role (templated); extra_vars still win over them.
    :param become: run the role as root.
    :param gather_facts: gather facts before the role.
    """

    template_fields: Sequence[str] = (*AnsiblePlaybookOperator.template_fields, "role", "hosts", "role_vars")
    template_fields_renderers = {**AnsiblePlaybookOperator.template_fields_renderers, "role_vars": "json"}

    def __init__(self, *, role: str, hosts: str = "all", role_vars: dict | None = None, become: bool = False,
                 gather_facts: bool = True, **kwargs):
        super().__init__(playbook="qubinode_role.yml", **kwargs)
        self.role = role
        self.hosts = hosts
        self.role_vars = role_vars or {}
        self.become = become
        self.gather_facts = gather_facts

    def _playbook(self) -> tuple[str, dict[str, str], str]:
        if not isinstance(self.role_vars, dict):
            raise TypeError("role_vars must be a mapping, got %s" % type(self.role_vars).__name__)
        play = [{
            "name": "Run %s" % self.role,
            "hosts": self.hosts,
            "become": bool(self.become),
            "gather_facts": bool(self.gather_facts),
            "roles": [{"role": self.role, "vars": self.role_vars}],
        }]
        # JSON is YAML.
        return "qubinode_role.yml", {"qubinode_role.yml": json.dumps(play, indent=1)}, "role %s" % self.role
