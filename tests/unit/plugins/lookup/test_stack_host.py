"""stack_host: the address defaults of every role come from one rule, checked here in a real play with
an inventory, where host variables are templated as the roles see them."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.qubinode.airflow.plugins.lookup.stack_host import stack_host

INVENTORY = """
all:
  children:
    airflow_db:
      hosts:
        db1: {ansible_host: "{{ db_net }}.7"}
        localhost: {}
    airflow_core:
      hosts:
        core1: {}
        localhost: {}
    airflow_temporal:
      hosts:
        localhost: {}
        t2: {ansible_host: 10.9.9.9}
  vars:
    db_net: 10.1.2
"""

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg:
          db: "{{ lookup('qubinode.airflow.stack_host', 'airflow_db') }}"
          core_first: "{{ lookup('qubinode.airflow.stack_host', 'airflow_core') }}"
          core_member: "{{ lookup('qubinode.airflow.stack_host', 'airflow_core', local_if_member=true) }}"
          temporal: "{{ lookup('qubinode.airflow.stack_host', 'airflow_temporal') }}"
          missing: "{{ lookup('qubinode.airflow.stack_host', 'airflow_workers') }}"
"""


def test_a_play_gets_each_groups_address_as_the_roles_defaults_read_it(run_playbook, tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    result = run_playbook(PLAY, "-i", str(inventory))
    assert result.rc == 0, result.output
    msg = json.loads(result.output[:result.output.rindex("}") + 1])["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert msg == {
        "db": "10.1.2.7",            # another host first: its ansible_host, templated
        "core_first": "core1",       # no ansible_host: the inventory name
        "core_member": "127.0.0.1",  # any member reaches its own service on loopback
        "temporal": "127.0.0.1",     # this host is the first
        "missing": "127.0.0.1",      # no such group: everything on this host
    }


@pytest.mark.parametrize("groups, me, kw, want", [
    ({"g": ["a", "b"]}, "a", {}, "127.0.0.1"),
    ({"g": ["a", "b"]}, "b", {}, "a"),
    ({"g": ["a", "b"]}, "b", {"local_if_member": True}, "127.0.0.1"),
    ({"g": ["a", "b"]}, "c", {"local_if_member": True}, "a"),
    ({"g": []}, "b", {}, "127.0.0.1"),
    ({}, "b", {"loopback": "::1"}, "::1"),
])
def test_the_rule(groups, me, kw, want):
    assert stack_host("g", me, groups, {"a": {}}, **kw) == want


def test_a_host_without_variables_is_named():
    assert stack_host("g", "me", {"g": ["other"]}, {}) == "other"


@pytest.mark.parametrize("bad", ["", None, ["g"]])
def test_a_group_that_is_not_a_name_is_refused(bad):
    with pytest.raises(AnsibleLookupError, match="inventory group names"):
        stack_host(bad, "me", {}, {})
