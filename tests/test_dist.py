"""The distribution: its name, its wheel, its metadata, its floors, its docs and its completion."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from prep.ui.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = "evolink-prep"


def test_the_distribution_is_not_called_prep() -> None:
    """`prep` on PyPI is an unrelated 2012 package; the command and the import stay `prep`."""
    project = PYPROJECT["project"]
    assert project["name"] == DIST
    assert project["scripts"] == {"prep": "prep.ui.cli:main"}
    assert all(DIST + "[" in dep for dep in project["optional-dependencies"]["dev"])


def test_every_install_hint_names_the_distribution() -> None:
    wrong = re.compile(r"pipx? install[^\n`\"]*?['\s]prep(\[|['\s`\"]|$)", re.M)
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "README.md",
                                                        *sorted((ROOT / "prep").rglob("*.py"))]}
    bad = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p, t in texts.items() for m in wrong.finditer(t)]
    assert not bad, bad
    from prep.errors import install_hint

    assert install_hint("pick", prefix="/home/ana/.venv") == f"pip install '{DIST}[pick]'"


def test_metadata_in_pyproject() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["requires-python"] == ">=3.11"
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "prep" / "py.typed").is_file()


def _floor(requirement: str) -> tuple[int, ...]:
    match = re.search(r">=\s*([0-9.]+)", requirement)
    assert match, requirement
    return tuple(int(x) for x in match.group(1).split("."))


# What prep uses that an older release lacks: the floor must be at least this.
NEEDED = {
    "pillow": ((10, 1), "ImageFont.load_default(size=)"),
    "click": ((8, 2), "shell_complete on parameter types, CliRunner's separate stderr"),
    "setuptools": ((77,), "license = 'MIT' (PEP 639) in pyproject"),
    "tomlkit": ((0, 12), "style-preserving edits of the config file"),
}


@pytest.mark.parametrize("name", sorted(NEEDED))
def test_dependency_floors(name: str) -> None:
    project = PYPROJECT["project"]
    every = [*project["dependencies"], *PYPROJECT["build-system"]["requires"],
             *(d for deps in project["optional-dependencies"].values() for d in deps)]
    found = [d for d in every if re.match(rf"{name}\b", d, re.I)]
    assert found, f"{name} is not declared"
    needed, why = NEEDED[name]
    for requirement in found:
        assert _floor(requirement) >= needed, f"{requirement}: needs {needed} for {why}"


def test_installed_versions_meet_the_floors() -> None:
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.split(r"[<>=\[; ]", requirement)[0]
        version = tuple(int(x) for x in re.findall(r"\d+", metadata.version(name))[:3])
        assert version >= _floor(requirement), requirement


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a copy of the tree (setuptools from the test extra)."""
    pytest.importorskip("setuptools")
    import setuptools

    if tuple(int(x) for x in setuptools.__version__.split(".")[:1]) < (77,):
        pytest.skip("needs setuptools>=77 (the test extra installs it)")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "prep", src / "prep",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(src)], check=True,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    assert wheel.name == "evolink_prep-0.1.0-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    info = "evolink_prep-0.1.0.dist-info/"
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "prep").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert {n for n in names if not n.startswith(info)} == expected
    assert {"prep/py.typed", "prep/schemas/probe.json", "prep/schemas/manifest.json"} <= names
    assert {n.removeprefix(info) for n in names if n.startswith(info)} == {
        "METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt", "licenses/LICENSE"}


def test_the_sdist_leaves_the_tests_out(tmp_path: Path) -> None:
    """It carried tests/test_*.py without conftest, helpers or fixtures: 34 collection errors."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("prep", "tests", "fixtures", "scripts"):
        shutil.copytree(ROOT / folder, src / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".cache"))
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_sdist(sys.argv[1])", str(out)], cwd=src, check=True,
                   capture_output=True)
    import tarfile

    (built,) = out.glob("*.tar.gz")
    with tarfile.open(built) as archive:
        names = [n.split("/", 1)[1] for n in archive.getnames() if "/" in n]
    assert "prep/ui/cli.py" in names and "prep/schemas/probe.json" in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "fixtures", "scripts", "docs")]


def test_readme_images_are_absolute_links() -> None:
    """Relative image links break on a package index's page (the README is the long description)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", readme)
    assert images and all(link.startswith("https://") for link in images), images


def test_the_wheel_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        meta = Parser().parsestr(zf.read("evolink_prep-0.1.0.dist-info/METADATA").decode())
        entry_points = zf.read("evolink_prep-0.1.0.dist-info/entry_points.txt").decode()
    assert meta["Name"] == DIST and meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert any(r.startswith("pillow>=10.1") for r in meta.get_all("Requires-Dist"))
    assert "prep = prep.ui.cli:main" in entry_points


def test_version_names_the_distribution() -> None:
    try:
        version = metadata.version(DIST)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{DIST} is not installed here (scripts/_bootstrap.sh installs it)")
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and version in result.stdout


def test_the_readme_cli_reference_matches_help() -> None:
    """The reference between the cog markers is `--help` as it is now (scripts/docs rewrites it)."""
    from cogapp import Cog

    cog = Cog()
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        code = cog.main(["cog", "--check", "README.md"])
    finally:
        os.chdir(cwd)
    assert code == 0, "README.md's CLI reference lags --help: run scripts/docs (or cog -r README.md)"


# -- POSIX-only names ----------------------------------------------------------------------------

def test_posix_only_names_are_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where SIGXFSZ, SIGKILL or killpg do not exist (Windows), prep still says what happened."""
    from prep.media import ffmpeg

    for name in ("SIGXFSZ", "SIGKILL"):
        monkeypatch.delattr(signal, name, raising=False)
    monkeypatch.delattr(os, "killpg", raising=False)
    full = ffmpeg._failure("out.mp4", 1, ["x"], "No space left on device")
    assert "disk is full" in str(full)
    killed = ffmpeg._failure("out.mp4", -9, ["x"], "")
    assert "signal 9" in str(killed)

    class Proc:
        pid, killed, waited = 1, False, False

        def kill(self) -> None:
            self.killed = True

        def wait(self) -> int:
            self.waited = True
            return -9

    proc: Any = Proc()
    ffmpeg.kill_group(proc)
    assert proc.killed and proc.waited


# -- shell completion ----------------------------------------------------------------------------

def _complete(words: str, shell: str = "bash") -> list[str]:
    env = {**os.environ, "_PREP_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    if shell == "fish":
        env["COMP_CWORD"] = words.split(" ")[-1]
    run = subprocess.run([sys.executable, "-c", "from prep.ui.cli import main; main()"], env=env,
                         capture_output=True, text=True, check=False)
    return [line for line in run.stdout.splitlines() if line]


@pytest.mark.parametrize("command", ["probe", "estimate", "prepare", "generate", "pick"])
def test_clip_arguments_complete_file_and_folder_names(command: str) -> None:
    """`file` tells bash, zsh and fish to list files and folders themselves."""
    assert _complete(f"prep {command} foot") == ["file,foot"]


def test_a_clip_window_completes_nothing(tmp_path: Path) -> None:
    clip = tmp_path / "a.mov"
    clip.write_bytes(b"")
    assert _complete(f"prep probe {clip}@1") == []


def test_fish_and_zsh_get_the_same_answer() -> None:
    assert _complete("prep probe foot", "fish") == ["file,foot"]
    assert _complete("prep probe foot", "zsh")[:2] == ["file", "foot"]


def test_commands_and_schema_names_complete() -> None:
    assert "plain,schema" in _complete("prep sch")
    assert _complete("prep schema batch-s") == ["plain,batch-status"]
    assert "plain,prices.min_charge" in _complete("prep config set prices.m")
