"""The two ways to install the course (pip and conda) must name the same packages."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """'numpy>=1.24' -> 'numpy' (PEP 503 normalised)."""
    name = re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_names() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return {_name(r) for r in reqs}


def _environment_names() -> set[str]:
    names = set()
    in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_deps = True
            continue
        if in_deps and re.match(r"^  - [^ ]", line):
            item = line[4:].strip()
            if item in ("pip", "pip:") or item.startswith("python"):
                continue
            names.add(_name(item))
    return names


def test_environment_yml_and_pyproject_name_the_same_packages():
    pip_names, conda_names = _pyproject_names(), _environment_names()
    assert pip_names == conda_names, (
        f"only in pyproject.toml: {sorted(pip_names - conda_names)}; "
        f"only in environment.yml: {sorted(conda_names - pip_names)}"
    )


def test_environment_yml_installs_the_project_itself():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^      - -e \.$", text, re.M), "environment.yml's pip section must install the project (-e .)"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_every_subpackage_is_packaged():
    """A non-editable install must carry cnnlib.grading and cnnlib.grading.autograde too."""
    import fnmatch

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    found = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cnnlib").rglob("__init__.py"))
    assert {"cnnlib", "cnnlib.grading", "cnnlib.grading.autograde"} <= set(found)
    missing = [pkg for pkg in found if not any(fnmatch.fnmatchcase(pkg, pat) for pat in patterns)]
    assert not missing, f"pyproject.toml does not package {missing}"


def test_license_is_an_spdx_expression_with_its_files_shipped():
    """PEP 639 metadata: setuptools deprecates the ``{text = ...}`` table (an error from 2027-02-18),
    a string license needs setuptools >= 77, and each license file named must exist."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    meta, requires = data["project"], data["build-system"]["requires"]
    assert isinstance(meta["license"], str), "project.license must be an SPDX expression string, not a table"
    minimum = [re.search(r">=\s*(\d+)", r) for r in requires if _name(r) == "setuptools"]
    assert minimum and minimum[0] and int(minimum[0].group(1)) >= 77, requires
    for path in meta["license-files"]:
        assert (ROOT / path).is_file(), f"license file {path} is missing"
    # the shipped MNIST sample is CC BY-SA 3.0: the expression and the files must say so
    assert "CC-BY-SA-3.0" in meta["license"] and "cnnlib/data/README.md" in meta["license-files"]
