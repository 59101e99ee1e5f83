"""`ansible-galaxy collection build` and install of the tarball, for real."""

from __future__ import annotations

import os
import subprocess
import tarfile

from conftest import ROOT


def galaxy(*args, cwd):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH="")
    return subprocess.run(
        ["ansible-galaxy", "collection", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_tarball_builds_installs_and_leaves_test_material_out(tmp_path):
    built = galaxy("build", "--output-path", str(tmp_path), str(ROOT), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (tarball,) = tmp_path.glob("qubinode-airflow-*.tar.gz")

    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "roles/airflow/tasks/main.yml" in names
    assert "playbooks/site.yml" in names
    assert any(n.startswith("roles/airflow/files/constraints-") for n in names)
    # What ansible-builder reads from an installed collection to build an execution environment.
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt"} <= set(names)
    for unwanted in (".cache", ".venv", ".ansible", "molecule", "hack", ".ci", "tests/output"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted

    dest = tmp_path / "collections"
    # --no-deps: dependencies come from Galaxy for users; here they are not reachable.
    installed = galaxy("install", "--no-deps", "-p", str(dest), str(tarball), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    root = dest / "ansible_collections" / "qubinode" / "airflow"
    assert (root / "MANIFEST.json").is_file()
    assert (root / "roles" / "postgresql" / "meta" / "argument_specs.yml").is_file()

    listed = galaxy("list", "-p", str(dest), "qubinode.airflow", cwd=tmp_path)
    assert "qubinode.airflow" in listed.stdout
