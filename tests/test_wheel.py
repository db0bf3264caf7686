"""The package as a user installs it: a wheel (not editable) in a fresh virtual environment, used from a
folder outside the checkout, finds its data (bundled set, hull binaries, notebook) and screens."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

ROOT = Path(__file__).parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("screening-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; its dependencies are borrowed from the test environment
    through a ``.pth`` line (which adds that folder but runs none of its ``.pth`` files, so the editable
    install of the checkout stays invisible)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
    )
    return venv


def test_wheel_carries_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "screening/data/bundled/structures.yaml",
        "screening/data/hull_binaries.yaml",
        "screening/data/notebooks/rank_candidates.py",
        "screening/data/models/conductivity-obelix/weights.pt",
        "screening/data/models/native-sevennet-0/model.json",
        "screening/data/models/native-sevennet-0/weights.pt",
        "pipelines/cli.py",
    ):
        assert needed in names, needed


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "screening"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_installed_wheel_ingests_the_bundled_set_and_screens_a_structure(installed, tmp_path):
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import screening, pipelines.notebook as n; "
            "print(screening.__file__); print(n.notebook_source())",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(str(installed) in line for line in where), where  # not the checkout

    bundled = _run(installed, "ingest", "--source", "bundled", "--out", "bundled", cwd=tmp_path)
    assert bundled.returncode == 0, bundled.stderr
    assert "rows: 51" in bundled.stdout

    Structure(Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(tmp_path / "LiF.cif")
    )
    one = _run(
        installed, "ingest", "--source", "files", "LiF.cif", "--out", "one", "--workers", "1", cwd=tmp_path
    )
    assert one.returncode == 0, one.stderr
    run = _run(
        installed,
        "run",
        "--structures", "one",
        "--out", "run",
        "--workers", "1",
        "--cluster", "local",
        "--device", "cpu",
        "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "ok: 1" in run.stdout
    assert (tmp_path / "run" / "results" / "part-00000.parquet").is_file()


def test_the_readme_python_example_runs_as_written(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    results = namespace["results"]
    assert results["status"].tolist() == ["ok"] and results["log10_sigma_S_per_cm"].notna().all()
