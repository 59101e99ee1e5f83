"""The collection declares every collection its content uses, and installs from its tarball with only
those: what a user installing from Galaxy gets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

FQCN = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*$")
# Where Jinja names a plugin of another collection: lookups, filters, tests, action groups.
IN_TEXT = (
    re.compile(r"(?:lookup|query)\(\s*['\"]([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z0-9_]+"),
    re.compile(r"\|\s*([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z0-9_]+"),
    re.compile(r"\bis\s+(?:not\s+)?([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z0-9_]+"),
    re.compile(r"group/([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\."),
)
OWN = {"ansible.builtin", "ansible.legacy", "qubinode.airflow"}


def declared():
    return set(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])


def content_files():
    for pattern in ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "roles/*/vars/*.yml", "roles/*/defaults/*.yml",
                    "roles/*/templates/*.j2", "roles/*/meta/*.yml", "playbooks/*.yml"):
        yield from sorted(ROOT.glob(pattern))


def used_in(path):
    found = set()
    text = path.read_text()
    for pattern in IN_TEXT:
        found.update(pattern.findall(text))
    if path.suffix == ".yml":
        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    match = FQCN.match(str(key))
                    if match:
                        found.add("%s.%s" % match.groups())
                    if key in ("role", "name") and isinstance(value, str) and FQCN.match(value) \
                            and isinstance(node.get("tasks_from", node.get("role")), str):
                        found.add("%s.%s" % FQCN.match(value).groups())
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
        walk(yaml.safe_load(text))
    return found - OWN


def test_every_collection_the_content_uses_is_declared():
    missing = {}
    for path in content_files():
        for collection in used_in(path) - declared():
            missing.setdefault(collection, []).append(str(path.relative_to(ROOT)))
    assert not missing, "used but not in galaxy.yml dependencies: %s" % missing


def test_the_check_finds_an_undeclared_collection(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text("- hosts: all\n  tasks:\n    - kubernetes.core.k8s: {}\n"
                    "    - ansible.builtin.debug:\n        msg: \"{{ x | community.crypto.split_pem }}\"\n")
    assert used_in(play) == {"kubernetes.core", "community.crypto"}


def test_the_execution_environment_lists_the_same_collections():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    listed = {c["name"]: c.get("version") for c in ee["dependencies"]["galaxy"]["collections"]}
    deps = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    assert {k: v for k, v in listed.items() if k != "qubinode.airflow"} == deps


BUNDLED = os.path.join(os.path.dirname(os.path.dirname(yaml.__file__)), "ansible_collections")


def test_the_tarball_works_with_only_its_declared_dependencies(tmp_path):
    """Built, installed into an empty path, its dependencies beside it (copied from the ansible package,
    as Galaxy is not reachable here), and nothing else on the collection path: site.yml parses."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "cols"), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    galaxy = [os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"), "collection"]
    built = subprocess.run(galaxy + ["build", "--output-path", str(tmp_path), str(ROOT)], env=env,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    (tarball,) = tmp_path.glob("qubinode-airflow-*.tar.gz")
    installed = subprocess.run(galaxy + ["install", "--no-deps", "-p", str(tmp_path / "cols"), str(tarball)], env=env,
                               capture_output=True, text=True, check=False)
    assert installed.returncode == 0, installed.stderr
    for name in declared():
        namespace, collection = name.split(".")
        source = os.path.join(BUNDLED, namespace, collection)
        if not os.path.isdir(source):
            pytest.skip("the ansible package does not bundle %s" % name)
        shutil.copytree(source, tmp_path / "cols" / "ansible_collections" / namespace / collection, symlinks=True)
    manifest = json.loads((tmp_path / "cols" / "ansible_collections" / "qubinode" / "airflow" / "MANIFEST.json")
                          .read_text())
    assert set(manifest["collection_info"]["dependencies"]) == declared()
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    for play in ("site", "dag_repos", "health", "airflow_objects"):
        check = subprocess.run([playbook, "--syntax-check", "-i", "localhost,", "qubinode.airflow.%s" % play],
                               env=env, capture_output=True, text=True, check=False, cwd=str(tmp_path))
        assert check.returncode == 0, check.stdout + check.stderr
