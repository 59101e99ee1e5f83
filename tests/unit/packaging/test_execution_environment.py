"""The AWX/AAP execution environment definition, checked by ansible-builder itself: it must pass
ansible-builder's v3 schema and produce a build context. Building the image needs a container
registry for the base image, which the test machines do not reach."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from conftest import ROOT

BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")


def test_definition_makes_a_build_context(tmp_path):
    ctx = tmp_path / "context"
    run = subprocess.run([BUILDER, "create", "-f", str(ROOT / "execution-environment.yml"), "-c", str(ctx),
                          "--output-filename", "Containerfile"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    containerfile = (ctx / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert "ansible-galaxy collection install" in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core>=2.17,<2.20 ansible-runner>=2.4"' in containerfile
    requirements = yaml.safe_load((ctx / "_build" / "requirements.yml").read_text())
    names = [c["name"] for c in requirements["collections"]]
    assert names[0] == "qubinode.airflow" and "community.postgresql" in names
    # The system and Python requirements are the files the collection ships.
    assert (ctx / "_build" / "bindep.txt").read_text() == (ROOT / "bindep.txt").read_text()
    assert (ctx / "_build" / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    ee_meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert ee_meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}


def test_a_definition_error_names_the_field(tmp_path):
    bad = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    bad["dependencies"]["ansible_core"] = {"package": "ansible-core"}
    path = tmp_path / "ee.yml"
    path.write_text(yaml.safe_dump(bad))
    run = subprocess.run([BUILDER, "create", "-f", str(path), "-c", str(tmp_path / "ctx")], capture_output=True,
                         text=True, check=False)
    assert run.returncode != 0
    assert "ansible_core" in run.stdout + run.stderr
