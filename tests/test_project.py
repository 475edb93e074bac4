"""Project-level checks: environment.yml and pyproject.toml name the same packages."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for r in dep.get("pip", []):
                out[_name(r)] = r.replace(" ", "")
        elif _name(dep) not in ("python", "pip"):
            out[_name(dep)] = dep.replace(" ", "")
    return out


def test_environment_and_pyproject_name_the_same_packages():
    py, env = _pyproject_packages(), _environment_packages()
    assert set(py) == set(env), (
        f"only in pyproject.toml: {sorted(set(py) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(py))}"
    )
    # and with the same version constraints
    assert py == env


def test_environment_pins_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert env["name"] == "adcourse"


def test_bibliography_parses_and_holds_every_cited_key():
    """A merge that drops one closing brace breaks the whole book build: catch it in seconds."""
    pybtex = pytest.importorskip("pybtex.database")

    bib_text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"(?m)^@\w+\{([^,\s]+),", bib_text)
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"book/references.bib: keys defined twice: {repeated}"
    entries = pybtex.parse_string(bib_text, "bibtex").entries
    assert len(entries) == len(keys), "book/references.bib: an entry is not closed or not parsed"
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    pages = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    cited = set()
    for page in (ROOT / "book" / f"{name}.md" for name in pages):
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text(encoding="utf-8")):
            cited.update(k.strip() for k in group.split(","))
    missing = sorted(cited - set(entries))
    assert not missing, f"cited in book/*.md but not in book/references.bib: {missing}"
