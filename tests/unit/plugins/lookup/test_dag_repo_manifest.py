"""The dag_repo_manifest lookup, run by ansible-playbook on manifests."""

from __future__ import annotations

import json
import textwrap

import pytest

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    vault_git_platform: {token: not-printed-123}
  tasks:
    - name: Read the manifest
      ansible.builtin.debug:
        msg: "REPOS {{ query('qubinode.airflow.dag_repo_manifest', '%s') | to_json }}"
"""


def run(run_playbook, tmp_path, manifest):
    path = tmp_path / "manifest.yml"
    path.write_text(textwrap.dedent(manifest))
    return run_playbook(PLAY % path, verbose=True)


def repos(result):
    line = next(ln for ln in result.output.splitlines() if "REPOS " in ln)
    return json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"].split("REPOS ", 1)[1])


def test_entries_come_back_checked_and_in_priority_order(run_playbook, tmp_path):
    result = run(run_playbook, tmp_path, """
        repositories:
          - name: team-b
            url: https://git.example.com/b.git
            ref: v2.0
          - name: platform
            url: https://git.example.com/platform.git
            branch: release
            subdir: dags
            import_paths: [plugins, lib/shared/]
            priority: 10
            namespace: core
            credentials: vault_git_platform
            requirements_file: deps/requirements.txt
            test_dir: ""
          - name: pushed
            url: https://git.example.com/p.git
            commit: "%s"
            forward_only: true
            priority: 200
    """ % ("ab" * 20))
    assert result.rc == 0, result.output
    got = repos(result)
    assert [r["name"] for r in got] == ["platform", "team-b", "pushed"]
    assert got[0] == dict(name="platform", namespace="core", url="https://git.example.com/platform.git",
                          ref="release", subdir="dags", import_paths=["plugins", "lib/shared"], priority=10,
                          credentials="vault_git_platform",
                          refresh_interval=None, pin=True, validation_network=False, commit=None,
                          forward_only=False, review_ref=None, requirements_file="deps/requirements.txt", test_dir="")
    assert got[1]["requirements_file"] is None and got[1]["test_dir"] is None
    assert got[2]["commit"] == "ab" * 20 and got[2]["forward_only"] is True
    assert got[1]["namespace"] == "team-b" and got[1]["ref"] == "v2.0" and got[1]["priority"] == 100
    assert "not-printed-123" not in result.output


@pytest.mark.parametrize("entries, message", [
    ("- {name: a, url: 'https://g.example.com/u.git', branchh: main}", "entry 1 (a): unknown field(s) branchh"),
    ("- {name: a}", "entry 1 (a): field 'url' is required"),
    ("- {url: 'https://g.example.com/u.git'}", "entry 1: field 'name' is required"),
    ("- {name: a, url: 'https://g.example.com/u.git', priority: high}", "entry 1 (a): field 'priority' must be an integer"),
    ("- {name: a, url: 'https://g.example.com/u.git', branch: x, ref: y}", "entry 1 (a): give 'branch' or 'ref', not both"),
    ("- {name: a, url: 'https://g.example.com/u.git'}\n  - {name: a, url: 'https://g.example.com/v.git'}", "entry 2 (a): name 'a' is already used by"),
    ("- {name: a, url: 'https://g.example.com/u.git', namespace: n}\n  - {name: b, url: 'https://g.example.com/v.git', namespace: n}",
     "entry 2 (b): namespace 'n' is already used by"),
    ("- {name: a, url: 'https://g.example.com/u.git', credentials: vault_missing}", "variable 'vault_missing', which is not defined"),
    ("- {name: 'a b', url: 'https://g.example.com/u.git'}", "field 'name' 'a b': use letters"),
    # hostile values are refused here, before any registration runs
    ("- {name: a, url: 'https://g.example.com/u.git', subdir: '--output=/root/x'}", "field 'subdir'"),
    ("- {name: a, url: 'https://g.example.com/u.git', subdir: '../../etc'}", "field 'subdir'"),
    ("- {name: a, url: 'https://g.example.com/u.git', requirements_file: '../../etc/shadow'}", "field 'requirements_file'"),
    ("- {name: a, url: 'https://g.example.com/u.git', test_dir: '--rootdir=/'}", "field 'test_dir'"),
    ("- {name: a, url: 'https://g.example.com/u.git', import_paths: ['../../etc']}", "field 'import_paths'"),
    ("- {name: a, url: 'https://g.example.com/u.git', import_paths: plugins}", "field 'import_paths' must be a list"),
    ("- {name: a, url: 'https://g.example.com/u.git', branch: '--upload-pack=id'}", "field 'branch'"),
    ("- {name: a, url: /etc}", "field 'url' '/etc' is a path on this host"),
    ("- {name: a, url: 'https://g.example.com/u.git', commit: '--all'}", "field 'commit' '--all': give the full 40-character"),
    ("- {name: a, url: 'https://g.example.com/u.git', forward_only: true}", "field 'forward_only' needs field 'commit'"),
    ("- {name: a, url: 'https://g.example.com/u.git', review_ref: refs/pull/1/head}", "field 'review_ref' needs field 'commit'"),
    ("- {name: a, url: 'https://g.example.com/u.git', commit: '%s', review_ref: refs/heads/main}" % ("a" * 40),
     "field 'review_ref' 'refs/heads/main': give the head of a merge request"),
    ("- {name: a, url: 'https://me:hunter2@g.example.com/u.git'}", "field 'url' holds credentials"),
])
def test_bad_entries_name_the_file_entry_and_field(run_playbook, tmp_path, entries, message):
    result = run(run_playbook, tmp_path, "repositories:\n  " + entries + "\n")
    assert result.rc != 0
    assert "manifest.yml: " + message in result.output.replace("\n", " ") or message in result.output


def test_unknown_top_level_key(run_playbook, tmp_path):
    result = run(run_playbook, tmp_path, "repos: []\n")
    assert result.rc != 0 and "must be a mapping with a list under 'repositories'" in result.output


def test_the_old_lookup_name_still_works_and_warns(run_playbook):
    run = run_playbook("""
        - hosts: localhost
          gather_facts: false
          tasks:
            - ansible.builtin.debug:
                msg: "NS={{ query('qubinode.airflow.airflow_dag_repos', repositories=repos) | map(attribute='namespace') | join(',') }}"
              vars:
                repos: [{name: ops, url: "https://git.example.com/ops.git"}]
        """)
    assert run.rc == 0, run.output
    assert "NS=ops" in run.output
    said = " ".join(run.output.split())  # ansible-core 2.17 and 2.18 wrap warnings
    assert "qubinode.airflow.airflow_dag_repos has been deprecated" in said
    assert "Use qubinode.airflow.dag_repo_manifest" in said
