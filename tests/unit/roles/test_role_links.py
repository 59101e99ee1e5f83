"""Root never follows a link a service user could plant: every directory task of a role whose owner is
not root (the tree is then writable by that user) says follow: false, and the play stops at a planted
link instead of having root chown its target."""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import ROOT


def file_tasks():
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            for inner in [task] + task.get("block", []) + task.get("rescue", []) + task.get("always", []):
                args = inner.get("ansible.builtin.file")
                if isinstance(args, dict) and args.get("state") == "directory":
                    yield "%s: %s" % (path.relative_to(ROOT), inner.get("name")), args


@pytest.mark.parametrize("where, args", list(file_tasks()), ids=lambda v: v if isinstance(v, str) else "")
def test_directories_a_service_user_owns_are_made_without_following_links(where, args):
    if str(args.get("owner", "root")) == "root":
        return
    assert args.get("follow") is False, "%s creates a directory owned by %s without follow: false" % (
        where, args.get("owner"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_planted_link_stops_the_play_and_its_target_keeps_its_owner(run_playbook, tmp_path):
    target = tmp_path / "root-only"
    target.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir()
    os.symlink(target, home / "logs")  # what the service user would plant in its own home
    result = run_playbook(f"""
    - hosts: localhost
      gather_facts: false
      tasks:
        - ansible.builtin.file:
            path: {home}/logs
            state: directory
            owner: nobody
            mode: "0750"
            follow: false
    """)
    assert result.rc != 0
    assert os.stat(target).st_uid == 0 and oct(os.stat(target).st_mode & 0o777) == "0o700"
