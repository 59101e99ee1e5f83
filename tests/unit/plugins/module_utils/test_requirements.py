"""A DAG repository's requirements file is hostile: only package requirements are read, a package must be
allowed, and the resolution is pip's own (a real dry run against wheels built here, no index)."""

from __future__ import annotations

import json
import subprocess
import sys
import pytest
from wheels import make_wheel

from ansible_collections.qubinode.airflow.plugins.module_utils import _requirements as rq


class Runner:
    def run_command(self, args, cwd=None, environ_update=None):
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    where = tmp_path_factory.mktemp("wheels")
    make_wheel(where, "qa-base", "1.0")
    make_wheel(where, "qa-base", "2.0")
    make_wheel(where, "qa-tool", "1.0", ["qa-base>=1"])
    make_wheel(where, "qa-other", "1.0")
    return where


def resolve(tmp_path, wheels, requirements, constraints="qa-base==1.0\n", pins=()):
    (tmp_path / "constraints.txt").write_text(constraints)
    return rq.resolve(Runner(), sys.executable, requirements, str(tmp_path / "constraints.txt"),
                      "--no-index --find-links %s" % wheels, str(tmp_path), pins=pins)


@pytest.mark.parametrize("line", [
    "--index-url https://evil.example/simple", "-i https://evil.example/simple", "-r other.txt", "-c c.txt",
    "-e .", "./local-dir", "/abs/path", "git+https://evil.example/x.git", "qa-tool @ https://evil.example/x.whl",
    "https://evil.example/x.whl", "qa-tool --install-option=--prefix=/", "qa-tool \\", "file:///etc/passwd",
    "qa-tool==1.0 --hash=sha256:00", "qa tool", "qa-tool==1.0\x1b[2J",
])
def test_anything_but_a_package_requirement_is_not_read(line):
    accepted, unread = rq.parse_requirements("qa-base\n" + line + "\n")
    assert accepted == [(1, "qa-base")]
    assert [n for n, _t, _w in unread] == [2]
    assert "\x1b" not in unread[0][1]


def test_package_requirements_are_read_with_their_line_numbers():
    text = ("# a comment\n\nqa-tool>=1.0,<2  # trailing comment\nQA_Base[extra1, extra2] ~= 1.0\n"
            "qa-other; python_version >= \"3.8\"\n")
    accepted, unread = rq.parse_requirements(text)
    assert accepted == [(3, "qa-tool>=1.0,<2"), (4, "QA_Base[extra1, extra2] ~= 1.0"),
                        (5, 'qa-other; python_version >= "3.8"')]
    assert unread == []


def test_too_many_requirements_are_refused():
    with pytest.raises(rq.RequirementsError, match="at most 100"):
        rq.parse_requirements("".join("qa-%d\n" % i for i in range(101)))


def test_a_package_neither_constrained_nor_allowed_is_named_with_the_fix(tmp_path):
    (tmp_path / "c.txt").write_text("# header\nQA_Base==1.0\nqa.tool===1.0\n")
    allowed = rq.allowed_names(dict(constraints=str(tmp_path / "c.txt"), dag_repo_packages=["QA-Other"]))
    assert allowed == {"qa-base", "qa-tool", "qa-other"}
    found = rq.disallowed([(1, "qa-base"), (2, "qa_other>=1"), (3, "qa-evil")], allowed, "requirements.txt")
    assert [(f["line"], f["kind"]) for f in found] == [(3, "requirement")]
    assert "qa-evil: qa-evil is neither pinned by the stack's constraints nor listed in the airflow role's " \
           "airflow_dag_repo_packages" in found[0]["message"]
    # A constraints URL names nothing here: only the allowlist applies.
    assert rq.allowed_names(dict(constraints="https://example.com/c.txt")) == set()


def test_a_tampered_registry_entry_is_left_out():
    registry = {"good": dict(requirements=["qa-tool>=1"], packages=["qa-base==1.0", "qa-tool==1.0"]),
                "bad": dict(requirements=["qa-evil", "--index-url=https://evil.example"], packages=["qa-x @ http://e"]),
                "none": dict(commit="c")}
    lines, pins, dropped = rq.registry_requirements(registry, {"qa-tool", "qa-base"})
    assert (lines, pins, dropped) == (["qa-tool>=1"], ["qa-base==1.0", "qa-tool==1.0"], ["bad"])
    assert rq.registry_requirements(registry, {"qa-tool"}, skip="bad")[2] == []


@pytest.mark.parametrize("values, pins", [(["-r x"], False), (["qa @ http://e"], False), (["qa>=1"], True),
                                          ("qa", False)])
def test_requirements_handed_back_are_checked(values, pins):
    with pytest.raises(rq.RequirementsError, match="packages" if pins else "requirements"):
        rq.check_requirement_list(values, "packages" if pins else "requirements", pins=pins)


def test_pip_resolves_the_requirements_with_the_constraints(tmp_path, wheels):
    assert resolve(tmp_path, wheels, ["qa-tool"]) == ["qa-base==1.0", "qa-tool==1.0"]
    # Nothing was installed: a dry run.
    assert subprocess.run([sys.executable, "-m", "pip", "show", "qa-tool"], capture_output=True, check=False).returncode == 1


def test_a_conflict_with_a_constraint_names_the_package_and_the_constraint(tmp_path, wheels):
    with pytest.raises(rq.RequirementsError) as e:
        resolve(tmp_path, wheels, ["qa-tool", "qa-base>=2"])
    assert "The user requested qa-base>=2" in e.value.msg
    assert "The user requested (constraint) qa-base==1.0" in e.value.msg


def test_another_repositorys_pins_hold(tmp_path, wheels):
    # Without the stack constraining qa-base, the versions installed for another repository still do.
    assert resolve(tmp_path, wheels, ["qa-base"], constraints="") == ["qa-base==2.0"]
    with pytest.raises(rq.RequirementsError, match=r"qa-base==1\.0"):
        resolve(tmp_path, wheels, ["qa-base>=2"], constraints="", pins=["qa-base==1.0"])


def test_a_package_the_index_lacks_is_named(tmp_path, wheels):
    with pytest.raises(rq.RequirementsError, match="qa-missing"):
        resolve(tmp_path, wheels, ["qa-missing"])


def test_pips_report_is_what_is_read(tmp_path, wheels):
    resolve(tmp_path, wheels, ["qa-other"])
    report = json.loads((tmp_path / "pip-report.json").read_text())
    assert [i["metadata"]["name"] for i in report["install"]] == ["qa-other"]
