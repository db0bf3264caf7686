"""What a user sees when something is wrong: one line saying what to do, exit status 2 for bad input or
settings (through the real command line, in process)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app, one_line


def _invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output.strip()


def test_yaml_syntax_error_is_one_line_with_its_place(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("structures: [s\nout: o\n")
    code, output = _invoke("run", str(config))
    assert code == 2 and "not valid YAML at line" in output and len(output.splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--mobile-ion", "Zz", "'Li', 'Na', 'K', 'Mg', 'Ag' or 'Cu'"),
        ("--model", "megnet", "'sevennet-0'"),
        ("--transport-method", "bvs", "'bvse', 'md' or 'learned'"),
        ("--disorder", "average", "'sample', 'meanfield', 'native' or 'auto'"),
    ],
)
def test_unregistered_names_are_refused_before_any_work_with_the_allowed_values(
    tmp_path, option, value, expected
):
    code, output = _invoke(
        "run", "--structures", str(tmp_path / "s"), "--out", str(tmp_path / "r"), option, value
    )
    assert code == 2 and expected in output and len(output.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_missing_structures_and_missing_ingest_paths_are_one_line(tmp_path):
    code, output = _invoke("run", "--structures", str(tmp_path / "none"), "--out", str(tmp_path / "r"))
    assert code == 2 and "screening ingest" in output and len(output.splitlines()) == 1
    code, output = _invoke(
        "ingest", "--source", "files", str(tmp_path / "nothing.cif"), "--out", str(tmp_path / "s")
    )
    assert code == 2 and "nothing.cif" in output and "Traceback" not in output
    assert not (tmp_path / "s").exists()


def test_rank_of_a_folder_that_is_no_run(tmp_path):
    code, output = _invoke("rank", str(tmp_path))
    assert code == 2 and "screening run" in output


def test_validation_errors_fold_into_one_line():
    import pydantic

    from pipelines.settings import RunSettings

    with pytest.raises(pydantic.ValidationError) as caught:
        RunSettings(structures="s", out="o", workers=0, mobile_ion="Zz")
    line = one_line(caught.value)
    assert "\n" not in line and "workers" in line and "science.mobile_ion" in line
