"""Physics-only conductivity against experiment: the product's transport stage on the OBELiX training split
and on the labelled bundled structures, scored against the measured room-temperature conductivities.

What runs is the product's own path: ``iter_file_rows`` reads the 254 OBELiX CIFs (``data/obelix-train``,
CC BY 4.0, Therrien et al., arXiv:2502.14234), ``row_to_structure`` rebuilds each ok row and
``compute_transport(structure, mobile_ion="Li", temperature_K=298.15)`` (what the pipeline's transport stage
calls) predicts Ea and sigma. Next to it, bvlain 0.25.1 on the same structures, each disordered site
replaced by its majority species (``--no-bvlain`` to skip; cached in ``benchmarks/results/bvlain-obelix.csv``),
and the ceiling of any barrier-only ranking: the measured Ea against the measured sigma.

Every structure runs in its own forked process, at most ``--workers`` at a time, one BLAS/OpenMP thread
each, killed after ``--timeout-s``: a ``ProcessPoolExecutor`` cannot stop a running task and a
``multiprocessing.Pool`` worker keeps computing after ``AsyncResult.get(timeout)`` gives up (and its clock
starts when the caller begins waiting), so a process per structure is the simple way to a real
per-structure wall-clock limit (what ``pebble`` does; it is not installed).

Scores (pure functions below, tested in ``tests/test_bench_conductivity.py``): coverage, Spearman rho of
predicted vs measured log10 sigma, ROC-AUC for measured sigma >= 1e-4 S/cm, MAE of Ea, seconds per structure.
Censored (upper-bound) measurements are scored as described in :data:`CENSORING_NOTE`.

Run from the repository root::

    nice .venv/bin/python benchmarks/bench_conductivity.py --label before --write

Add ``--code-rev HEAD`` (or any revision) to measure the ``screening`` package as committed there, extracted
to a temporary folder, instead of the working tree that others may be editing; either way every module the
workers need is imported once before they are forked, so one run never mixes two versions of a file.
Per-structure predictions go to ``benchmarks/results/conductivity-<label slug>.csv``; ``--write`` puts one
table row per label into the section ``## Conductivity against experiment (physics only)`` of BENCHMARKS.md.
While a run goes on, each finished structure is added to ``conductivity-<label slug>.journal.jsonl`` there;
rerun the same command with ``--resume`` to continue a run that was cut short. The time limit is not part
of a run's identity: resumed with a larger ``--timeout-s``, a run computes again only the structures that
timed out under a smaller one (the journal is removed when the CSV is written, except where something timed
out, so that retry stays possible after the run).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import importlib.util
import io
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

_REPO = Path(__file__).resolve().parents[1]


def _metrics_module() -> Any:
    """``screening/metrics.py`` loaded by its path, without importing the ``screening`` package (which
    :func:`use_code` may still have to take from another revision)."""
    spec = importlib.util.spec_from_file_location("_screening_metrics", _REPO / "screening" / "metrics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_metrics = _metrics_module()
SUPERIONIC_S_PER_CM = _metrics.SUPERIONIC_S_PER_CM
spearman = _metrics.spearman
censored_spearman = _metrics.censored_spearman
superionic_labels = _metrics.superionic_labels
auc = _metrics.auc
missing_as_lowest = _metrics.missing_as_lowest
mae = _metrics.mae
DATA_DIR = _REPO / "data" / "obelix-train"
RESULTS_DIR = _REPO / "benchmarks" / "results"
BVLAIN_CACHE = RESULTS_DIR / "bvlain-obelix.csv"
BENCHMARKS_MD = _REPO / "BENCHMARKS.md"
SECTION_TITLE = "## Conductivity against experiment (physics only)"

TEMPERATURE_K = 298.15
MOBILE_ION = "Li"
BVLAIN_RESOLUTION_A = 0.2
BVLAIN_R_CUT_A = 10.0
BVLAIN_ENCUT_eV = 5.0

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_TIMED_OUT = "timed out"
STATUS_INGEST_FAILED = "ingest failed"

CENSORING_NOTE = (
    "Censored values: 28 OBELiX conductivities are upper bounds (`sigma_is_upper_bound == 1`, e.g. "
    '"< 1e-10 S/cm"). In the AUC a bound below 1e-4 S/cm is a negative (it is certainly not superionic; a '
    "bound at or above 1e-4 would be left out, none is). Spearman is given twice: on the uncensored entries "
    "only, and on all entries with each censored entry taking its bound as its value. Structures without a "
    "prediction (ingest failed, transport failed or timed out, no Li, sigma = 0) count against coverage and "
    "are left out of Spearman and AUC; *AUC (missing as low)* scores them instead below every prediction "
    "(missing = predicted non-superionic), over every entry of the set."
)


# --- scoring: small pure functions ------------------------------------------------------------------


def fraction(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, NaN when the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def failure_reason(error: str, max_chars: int = 110) -> str:
    """The kind of an error message, for counting: numbers become ``#``, a formula of two or more elements
    ``<formula>``, detail after ``;`` and beyond ``max_chars`` is cut
    (``"TransportError: cannot assign oxidation states to <formula>: no charge-neutral combination"``)."""
    reason = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "#", error.split(";", 1)[0].strip())
    reason = re.sub(r"\b[A-Z][a-z]?#?(?:\s+[A-Z][a-z]?#?)*\s+[A-Z][a-z]?#(?=\W|$)", "<formula>", reason)
    return reason if len(reason) <= max_chars else reason[: max_chars - 3] + "..."


def top_failures(errors: Iterable[str], top: int = 10) -> list[tuple[str, int]]:
    """The ``top`` most common failure reasons (see :func:`failure_reason`) with their counts."""
    return Counter(failure_reason(e) for e in errors if e).most_common(top)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of the finite values, NaN if none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if len(v) else math.nan


def slugify(label: str) -> str:
    """File-name form of a run label (``"after oxidation states"`` -> ``"after-oxidation-states"``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    if not slug:
        raise ValueError(f"label {label!r} has no letters or digits")
    return slug


# --- running structures, one forked process each ----------------------------------------------------


def _limit_worker(memory_limit_GiB: float) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if memory_limit_GiB > 0:
        limit = int(memory_limit_GiB * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _child(fn: Callable[[Any], dict], item: Any, conn: Any, memory_limit_GiB: float) -> None:
    _limit_worker(memory_limit_GiB)
    start = time.perf_counter()
    try:
        out = fn(item)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a recorded reason
        out = {"status": STATUS_FAILED, "error": f"{type(exc).__name__}: {exc}"}
    out["seconds"] = time.perf_counter() - start
    conn.send(out)
    conn.close()


def run_isolated(
    fn: Callable[[Any], dict],
    items: Sequence[Any],
    *,
    workers: int,
    timeout_s: float,
    memory_limit_GiB: float,
    names: Sequence[str],
    desc: str,
    on_result: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """``fn(item)`` for every item, each in its own forked process, ``workers`` at a time.

    A call that raises gives ``{"status": "failed", "error": "Type: message"}``; one running longer than
    ``timeout_s`` of wall-clock time is killed and gives status ``timed out``; a process that dies
    (out of memory, a crash) gives status ``failed`` with its exit code. Every result has ``seconds``.
    ``on_result(index, result)`` is called as each one finishes.
    """
    ctx = mp.get_context("fork")
    results: list[dict | None] = [None] * len(items)
    pending = list(range(len(items)))
    running: dict[Any, tuple[int, Any, float]] = {}
    done = 0
    started = time.monotonic()

    def finish(index: int, result: dict) -> None:
        nonlocal done
        results[index] = result
        done += 1
        elapsed = time.monotonic() - started
        print(
            f"  {desc} [{done}/{len(items)}, {elapsed:.0f} s] {names[index]}: {result['status']}"
            f" {result['seconds']:.1f} s {(result.get('error') or '')[:100]}",
            file=sys.stderr,
            flush=True,
        )
        if on_result is not None:
            on_result(index, result)

    try:
        while pending or running:
            while pending and len(running) < workers:
                index = pending.pop(0)
                receiver, sender = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_child, args=(fn, items[index], sender, memory_limit_GiB), daemon=True
                )
                process.start()
                sender.close()
                running[receiver] = (index, process, time.monotonic())
            deadline = min(start + timeout_s for _, _, start in running.values())
            for conn in wait(list(running), timeout=max(0.0, deadline - time.monotonic())):
                index, process, start = running.pop(conn)
                try:
                    result = conn.recv()
                except EOFError:
                    process.join()
                    result = {
                        "status": STATUS_FAILED,
                        "error": f"WorkerDied: exit code {process.exitcode}",
                        "seconds": time.monotonic() - start,
                    }
                conn.close()
                process.join()
                finish(index, result)
            now = time.monotonic()
            for conn, (index, process, start) in list(running.items()):
                if now - start >= timeout_s:
                    process.kill()
                    process.join()
                    conn.close()
                    del running[conn]
                    finish(
                        index,
                        {
                            "status": STATUS_TIMED_OUT,
                            "error": f"TimedOut: more than {timeout_s:g} s",
                            "seconds": now - start,
                        },
                    )
    finally:
        for conn, (_, process, _) in running.items():
            process.kill()
            process.join()
            conn.close()
    return [r for r in results if r is not None]


#: Set by ``--cleanup-steps``, ``--frenkel-method`` and ``--include-disordered``: what every forked worker
#: passes to ``compute_transport`` besides the structure (SevenNet-0 loaded once in the parent), or ``None``
#: for the call without a potential (bond-valence Frenkel energy, coordinates as given).
TRANSPORT_KEYWORDS: dict[str, Any] | None = None


def transport_keywords(
    cleanup_steps: int = 0,
    frenkel_method: str = "bvse",
    include_disordered: bool = False,
    defect_cache_dir: str | None = None,
    frenkel_configurations: int | None = None,
) -> dict[str, Any] | None:
    """``compute_transport`` keywords with SevenNet-0: a framework relaxation of at most
    ``cleanup_steps`` steps before the barrier (0: none), and the Frenkel energy of a fully occupied
    sublattice from ``frenkel_method`` (``bvse``, or ``potential``: the relaxed defect supercell), for
    ordered structures only or, with ``include_disordered``, for disordered ones too (on one ordered
    configuration each of ``frenkel_configurations``, their Frenkel fractions averaged; None: the
    measured code's default, which was one draw before it became a setting;
    ``DefectOptions.include_disordered``: a bvse run's default), kept in and reused from
    ``defect_cache_dir`` where given (:mod:`screening.transport.defect_cache`). Passed explicitly, so a
    row does not change its meaning with the product's default. ``None`` when nothing needs the
    potential."""
    if cleanup_steps <= 0 and frenkel_method == "bvse":
        return None
    import torch

    from screening.models import load_model
    from screening.transport.cleanup import CleanupOptions
    from screening.transport.defects import DefectOptions

    torch.set_num_threads(1)
    keywords: dict[str, Any] = {
        "energy_model": load_model("sevennet-0", device="cpu"),
        "frenkel_method": frenkel_method,
    }
    if frenkel_method == "potential":
        keywords["defect_options"] = DefectOptions(include_disordered=include_disordered)
        keywords["defect_cache_dir"] = defect_cache_dir
        if frenkel_configurations is not None:
            keywords["frenkel_configurations"] = frenkel_configurations
    if cleanup_steps > 0:
        keywords |= {
            "coordinate_cleanup": "relax",
            "cleanup_options": CleanupOptions(max_steps=cleanup_steps),
        }
    return keywords


def _transport_job(row: Mapping[str, Any]) -> dict[str, Any]:
    from screening.structures import row_to_structure
    from screening.transport import compute_transport

    structure = row_to_structure(row)
    result = compute_transport(
        structure, mobile_ion=MOBILE_ION, temperature_K=TEMPERATURE_K, **(TRANSPORT_KEYWORDS or {})
    )
    return {str(k): v for k, v in result.items()}


def majority_ordered(structure: Any) -> tuple[Any, int]:
    """Each disordered site replaced by its majority species at full occupancy; sites whose total
    occupancy is below 0.5 (majority vacancy) dropped. Returns the ordered structure and the number dropped.
    Oxidation states, where the species carry them, are kept."""
    from pymatgen.core import Structure

    species, coords, dropped = [], [], 0
    for site in structure:
        if sum(site.species.values()) < 0.5:
            dropped += 1
            continue
        species.append(max(site.species.items(), key=lambda item: item[1])[0])
        coords.append(site.frac_coords)
    return Structure(structure.lattice, species, coords), dropped


def bvlain_li_barriers(structure: Any, *, oxi_check: bool = False) -> dict[str, float]:
    """bvlain's Li+ percolation barriers E_1D/E_2D/E_3D (eV, inf = none below 5 eV) of an ordered structure,
    called as in ``benchmarks/bench_transport.py``: softBV covalent radii, r_cut 10 A, 0.2 A grid."""
    from bvlain import Lain

    lain = Lain(verbose=False)
    lain.read_structure(structure, oxi_check=oxi_check)
    said = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(said):
        warnings.simplefilter("ignore")
        try:
            lain.bvse_distribution(
                mobile_ion="Li1+",
                resolution=BVLAIN_RESOLUTION_A,
                r_cut=BVLAIN_R_CUT_A,
                use_softbv_covalent_radii=True,
            )
        except KeyError as exc:  # its parameter lookups (it may print "Oops. No BVSE data ..." first)
            raise LookupError(f"bvlain has no BVSE parameters for a Li+ pair (KeyError {exc})") from exc
        barriers = lain.percolation_barriers(encut=BVLAIN_ENCUT_eV)
    return {f"E_{d}D": float(barriers[f"E_{d}D"]) for d in (1, 2, 3)}


def _bvlain_job(row: Mapping[str, Any]) -> dict[str, Any]:
    """Oxidation states from the product on the disordered structure (as the existing cross-check does),
    then majority ordering, then bvlain; bvlain's own BVAnalyzer on the ordered cell if ours fail."""
    from screening.structures import row_to_structure
    from screening.transport.oxidation import assign_oxidation_states

    structure = row_to_structure(row)
    try:
        decorated, oxi_source = assign_oxidation_states(structure)[0], "screening"
    except Exception:  # noqa: BLE001 - fall back to bvlain's own assignment
        decorated, oxi_source = structure, "bvlain BVAnalyzer"
    ordered, dropped = majority_ordered(decorated)
    out: dict[str, Any] = {"oxi_source": oxi_source, "ordered_nsites": len(ordered), "sites_dropped": dropped}
    if MOBILE_ION not in {el.symbol for el in ordered.composition.elements}:
        return {**out, "status": "not applicable", "error": "no Li left after majority ordering"}
    barriers = bvlain_li_barriers(ordered, oxi_check=oxi_source != "screening")
    return {**out, **barriers, "status": STATUS_OK, "error": None}


# --- which code runs ---------------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=_REPO, check=True, capture_output=True).stdout.decode().strip()


def use_code(rev: str | None, *, with_bvlain: bool) -> tuple[str, Path | None]:
    """Import, before any worker is forked, every module the workers need, so that all of them run one
    version of the code even while files in the checkout are being edited.

    Args:
        rev: a git revision: its ``screening`` package is extracted to a temporary folder that goes first on
            ``sys.path`` (the working tree's package is not imported at all). None: the working tree.
        with_bvlain: import bvlain too.

    Returns:
        A description of the code (``"b99ac67"``, ``"b99ac67 + working-tree changes"``) and the temporary
        folder to remove afterwards (None for the working tree).
    """
    folder = None
    if rev is not None:
        sha = _git("rev-parse", "--short", f"{rev}^{{commit}}")
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "screening"], cwd=_REPO, check=True, capture_output=True
        ).stdout
        folder = Path(tempfile.mkdtemp(prefix=f"screening-{sha}-"))
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        sys.path.insert(0, str(folder))
        code = sha
    else:
        dirty = _git("status", "--porcelain", "--", "screening")
        code = _git("rev-parse", "--short", "HEAD") + (" + working-tree changes" if dirty else "")
    import screening
    import screening.sources.bundled
    import screening.sources.files
    import screening.structures
    import screening.transport.compute
    import screening.transport.oxidation

    if folder is not None and not Path(screening.__file__).is_relative_to(folder):
        raise RuntimeError(f"screening was imported from {screening.__file__}, not from the extracted {rev}")
    if with_bvlain:
        import bvlain  # noqa: F401
    return code, folder


# --- data ----------------------------------------------------------------------------------------------


def obelix_id(row: Mapping[str, Any]) -> str:
    """OBELiX entry id of a files-source row: its file stem (row ids are file names, ``jqc.cif``)."""
    return Path(str(row["id"]).split("#", 1)[0]).stem


def _float(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except (TypeError, ValueError):
        return math.nan


def load_obelix(data_dir: Path, workers: int) -> tuple[list[dict], dict[str, dict]]:
    """Ingested rows of the OBELiX CIFs (through the product's files source) and the label table by id."""
    from screening.sources.files import iter_file_rows

    with (data_dir / "conductivity_train.csv").open(newline="") as handle:
        labels = {row["id"]: row for row in csv.DictReader(handle)}
    rows = list(iter_file_rows([data_dir / "cifs"], workers=workers))
    return rows, labels


def base_record(row: Mapping[str, Any], dataset: str, entry_id: str, family: str) -> dict[str, Any]:
    return {
        "set": dataset,
        "id": entry_id,
        "family": family,
        "nsites": row.get("nsites"),
        "is_ordered": row.get("is_ordered"),
        "status": row.get("status"),
        "error": row.get("error"),
    }


# --- metrics -------------------------------------------------------------------------------------------


def predicted(record: Mapping[str, Any], key: str = "log10_sigma_S_per_cm") -> float:
    """The record's predicted value if its status is ok and the value finite, else NaN."""
    value = _float(record.get(key))
    return value if record.get("status") == STATUS_OK and math.isfinite(value) else math.nan


def score_set(
    records: Sequence[Mapping[str, Any]],
    scores: Sequence[float],
    predicted_ea: Sequence[float],
    *,
    n_total: int,
) -> dict[str, Any]:
    """All metrics of one set. ``records`` carry ``measured_log10_sigma``, ``sigma_is_upper_bound``,
    ``measured_ea_eV``, ``status`` (``ingest failed`` for rows that never got a structure) and ``seconds``;
    ``scores`` rank the predictions (higher = more conductive, NaN = none)."""
    measured = np.array([_float(r["measured_log10_sigma"]) for r in records])
    bound = np.array([bool(r["sigma_is_upper_bound"]) for r in records])
    s = np.asarray(scores, dtype=float)
    labels = superionic_labels(measured, bound)
    n_ok = sum(1 for r in records if r["status"] != STATUS_INGEST_FAILED)
    n_pred = int(np.isfinite(s).sum())
    rho = censored_spearman(s, measured, bound)
    ea_mae = mae(predicted_ea, [_float(r["measured_ea_eV"]) for r in records])
    seconds = [_float(r.get("seconds")) for r in records if r["status"] != STATUS_INGEST_FAILED]
    errors = [
        f"{r['status']}: {r['error']}" if r["status"] == STATUS_INGEST_FAILED else _reason(r)
        for r, score in zip(records, s, strict=True)
        if not math.isfinite(score)
    ]
    return {
        "n_total": n_total,
        "n_ok": n_ok,
        "n_pred": n_pred,
        "coverage_ingest": fraction(n_ok, n_total),
        "coverage_pred": fraction(n_pred, n_ok),
        "spearman_uncensored": rho["uncensored"],
        "spearman_bounds": rho["bounds"],
        "auc": auc(s, labels),
        "auc_missing_low": auc(missing_as_lowest(s), labels),
        "n_superionic": int(np.nansum(labels)),
        "ea_mae": ea_mae,
        "median_s": percentile(seconds, 50),
        "p90_s": percentile(seconds, 90),
        "failures": top_failures(errors),
        "n_failed": len(errors),
    }


def _reason(record: Mapping[str, Any]) -> str:
    if record["status"] == STATUS_OK:
        return "no finite prediction (sigma = 0 or barrier above the cap)"
    if record["status"] == "not applicable":
        return f"not applicable: {record['error']}"
    return str(record["error"])


def _f(value: float, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _rho(pair: tuple[float, int]) -> str:
    return f"{_f(pair[0])} (n={pair[1]})"


def table_row(
    label: str, obelix: Mapping[str, Any], bundled: Mapping[str, Any] | None, code: str = ""
) -> str:
    """One Markdown table row of the section (see :data:`TABLE_HEADER`)."""
    cells = [
        label.replace("|", "/"),
        datetime.date.today().isoformat() + (f", {code}" if code else ""),
        f"{obelix['n_ok']}/{obelix['n_total']}",
        f"{obelix['n_pred']}/{obelix['n_ok']}",
        _rho(obelix["spearman_uncensored"]),
        _rho(obelix["spearman_bounds"]),
        _rho(obelix["auc"]),
        _rho(obelix["auc_missing_low"]),
        f"{_f(obelix['ea_mae'][0])} ({obelix['ea_mae'][1]})",
        _rho(bundled["spearman_uncensored"]) if bundled else "-",
        _rho(bundled["auc"]) if bundled else "-",
        f"{_f(obelix['median_s'], 1)} / {_f(obelix['p90_s'], 1)}",
    ]
    return "| " + " | ".join(cells) + " |"


TABLE_HEADER = (
    "| label | date, code | OBELiX ok/254 | with sigma | Spearman (uncensored) | Spearman (bounds) | AUC | "
    "AUC (missing as low) | Ea MAE eV (n) | bundled Spearman | bundled AUC | s/structure (median / p90) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)
BVLAIN_LABEL = "bvlain 0.25.1, majority-species ordering (reference)"
CEILING_LABEL = "ceiling: -Ea measured (reference)"


def ceiling_row(records: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Spearman and AUC of -Ea_measured against the measured sigma over the entries with a measured Ea."""
    with_ea = [r for r in records if math.isfinite(_float(r["measured_ea_eV"]))]
    score = [-_float(r["measured_ea_eV"]) for r in with_ea]
    measured = [_float(r["measured_log10_sigma"]) for r in with_ea]
    bound = [bool(r["sigma_is_upper_bound"]) for r in with_ea]
    rho = censored_spearman(score, measured, bound)
    roc = auc(score, superionic_labels(measured, bound))
    cells = [CEILING_LABEL, datetime.date.today().isoformat(), f"{len(with_ea)} with Ea", "-"]
    cells += [
        _rho(rho["uncensored"]),
        _rho(rho["bounds"]),
        _rho(roc),
        "-",
        "0 (by definition)",
        "-",
        "-",
        "-",
    ]
    return "| " + " | ".join(cells) + " |", {"rho": rho, "auc": roc, "n": len(with_ea)}


def existing_rows(text: str) -> list[str]:
    """Label rows already in the section of BENCHMARKS.md (``text`` is the whole file), in order."""
    section = _section_span(text)
    if section is None:
        return []
    rows = []
    for line in text[section[0] : section[1]].splitlines():
        if line.startswith("| ") and not line.startswith(("| label ", "|---")):
            rows.append(line)
    return rows


def _section_span(text: str) -> tuple[int, int] | None:
    start = text.find("\n" + SECTION_TITLE + "\n")
    if start < 0:
        return None
    start += 1
    following = text.find("\n## ", start + len(SECTION_TITLE))
    return start, (following + 1 if following >= 0 else len(text))


def _row_label(row: str) -> str:
    return row.split("|")[1].strip()


def merge_rows(old: Sequence[str], new: Mapping[str, str]) -> list[str]:
    """``old`` rows with those whose label is in ``new`` replaced in place, other new rows appended;
    reference rows (bvlain, ceiling) always last."""
    merged, seen = [], set()
    for row in old:
        label = _row_label(row)
        merged.append(new.get(label, row))
        seen.add(label)
    merged += [row for label, row in new.items() if label not in seen]
    reference = (BVLAIN_LABEL, CEILING_LABEL)
    return [r for r in merged if _row_label(r) not in reference] + [
        r for label in reference for r in merged if _row_label(r) == label
    ]


def render_section(
    rows: Sequence[str],
    label: str,
    failures: Sequence[tuple[str, int]],
    notes: str,
    *,
    workers: int = 2,
    timeout_s: float = 300.0,
) -> str:
    lines = [
        SECTION_TITLE,
        "",
        "`nice .venv/bin/python benchmarks/bench_conductivity.py --label LABEL --write` (one row per label; "
        "rerunning a label replaces its row; add `--code-rev HEAD` to measure the committed package rather "
        "than the working tree, which others may be editing; the code column says which ran). The product's transport stage as the pipeline calls it, "
        f'`compute_transport(structure, mobile_ion="Li", temperature_K={TEMPERATURE_K})` (bvse, default '
        "options), on the 254 CIFs of the OBELiX training split (`data/obelix-train`, CC BY 4.0, Therrien "
        "et al., arXiv:2502.14234, Digital Discovery 2026) read by `iter_file_rows`, and on the bundled "
        "structures with a published sigma (`_exp_sigma_rt_S_per_cm`). Superionic: measured sigma >= 1e-4 "
        "S/cm (AUC scored by predicted log10 sigma). Ea MAE over the entries with a measured Ea "
        "(`activation_energy_eV`, 101 in OBELiX) and a predicted one. Per-structure predictions: "
        "`benchmarks/results/conductivity-<label>.csv`. Machine: 2 shared CPU cores, one process per "
        f"structure, {workers} at a time, one thread each, {timeout_s:g} s limit per structure in the latest run "
        "(earlier rows kept their own; a timed-out structure counts as missing).",
        "",
        TABLE_HEADER,
        *rows,
        "",
        CENSORING_NOTE,
        "",
        f"bvlain row: bvlain 0.25.1 on the same ingested structures, each disordered site replaced by its "
        f"majority species at full occupancy (sites with total occupancy < 0.5 dropped), oxidation states "
        f"from the product's `assign_oxidation_states` on the disordered cell (bvlain's BVAnalyzer where "
        f"that fails), softBV covalent radii, r_cut {BVLAIN_R_CUT_A:g} A, {BVLAIN_RESOLUTION_A} A grid; "
        "scored by -E_1D (a fixed prefactor makes log10 sigma decrease with Ea); its Ea MAE is E_1D against "
        "the measured Ea. Majority ordering leaves no Li at all where every Li site is below half occupancy "
        "(63 of 252 when first measured, 45 of them superionic: 38 argyrodites, 10 perovskites, 6 NASICONs, "
        "4 garnets), so its coverage and its AUC with missing as low say more about that rule than about "
        "bvlain. Cached per structure in `benchmarks/results/bvlain-obelix.csv` (`--refresh-bvlain`; the "
        "cache keeps the oxidation states of the code that filled it). "
        "Ceiling row: the measured Ea itself as the score, over the entries that have one: what a perfect "
        "barrier would reach if sigma depended on Ea alone; no barrier-only "
        "ranking with one prefactor for all materials can beat it by much.",
        "",
        f"Top failure reasons of the latest label ({label}), OBELiX, structures without a prediction:",
        "",
        *[f"- {count} x {reason}" for reason, count in failures],
    ]
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def write_section(text: str, section: str) -> str:
    """``text`` (BENCHMARKS.md) with the section replaced, or appended when absent."""
    span = _section_span(text)
    if span is None:
        return text.rstrip("\n") + "\n\n" + section
    tail = text[span[1] :]
    return text[: span[0]] + section + ("\n" + tail if tail else "")


# --- CSV -----------------------------------------------------------------------------------------------

LEADING = (
    "set",
    "id",
    "family",
    "nsites",
    "is_ordered",
    "status",
    "error",
    "seconds",
    "measured_log10_sigma",
    "sigma_is_upper_bound",
    "measured_ea_eV",
    "ea_eV",
    "log10_sigma_S_per_cm",
    "carrier_density_cm3",
    "code",
)


def write_csv(path: Path, records: Sequence[Mapping[str, Any]], leading: Sequence[str] = LEADING) -> None:
    columns = list(leading)
    for record in records:
        columns += [k for k in record if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _cell(record.get(k)) for k in columns})
    tmp.replace(path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- main ----------------------------------------------------------------------------------------------


def _obelix_records(rows: Sequence[Mapping[str, Any]], labels: Mapping[str, Mapping[str, str]]) -> list[dict]:
    records = []
    by_id = {obelix_id(r): r for r in rows}
    missing = sorted(set(labels) - set(by_id))
    if missing:
        raise SystemExit(f"no ingested row for OBELiX ids {missing[:10]} (ids are file stems?)")
    for entry_id, label in labels.items():
        row = by_id[entry_id]
        record = base_record(row, "obelix", entry_id, label["family"])
        if row["status"] != STATUS_OK:
            record["status"] = STATUS_INGEST_FAILED
        record.update(
            measured_log10_sigma=_float(label["log10_sigma"]),
            sigma_is_upper_bound=label["sigma_is_upper_bound"] == "1",
            measured_ea_eV=_float(label["activation_energy_eV"]),
        )
        records.append(record)
    return records


def _bundled(
    workers: int, timeout_s: float, memory_limit_GiB: float, journal: Journal | None = None
) -> list[dict]:
    from screening.sources.bundled import iter_bundled_rows

    rows = [
        r
        for r in iter_bundled_rows()
        if r.get("_exp_sigma_rt_S_per_cm") is not None or r.get("_exp_ea_eV") is not None
    ]
    records = []
    for row in rows:
        sigma = _float(row.get("_exp_sigma_rt_S_per_cm"))
        record = base_record(row, "bundled", row["id"], "")
        record.update(
            name=row.get("_name"),
            measured_log10_sigma=math.log10(sigma) if sigma > 0 else math.nan,
            sigma_is_upper_bound=False,
            measured_ea_eV=_float(row.get("_exp_ea_eV")),
        )
        if row["status"] != STATUS_OK:
            record["status"] = STATUS_INGEST_FAILED
        records.append(record)
    _predict(records, rows, workers, timeout_s, memory_limit_GiB, "bundled", journal)
    return records


def journal_entries(path: Path) -> Iterator[dict]:
    """The entries of a run's journal, leaving out a line cut short when the run was killed."""
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            continue


class Journal:
    """Each structure's result as it finishes, one JSON line per structure, so that a run cut short (a
    session's end, a killed job) continues with ``--resume`` instead of starting again: hours on 2 CPU
    cores for the potential's Frenkel energies. A line counts only for the same ``run_key`` (code revision
    and the settings that change a result), and a structure that timed out only if it did so under at
    least ``timeout_s`` (a resumed run with a larger limit tries it again). The file is removed once the
    run's CSV is written, unless structures timed out: then it stays, for that retry."""

    def __init__(self, path: Path, run_key: str, *, resume: bool, timeout_s: float) -> None:
        self.path, self.run_key, self.timeout_s = path, run_key, timeout_s
        self.done: dict[tuple[str, str], dict] = {}  # (set, id) -> result, resumed or recorded
        if resume and path.exists():
            for entry in journal_entries(path):
                timed_out_sooner = (
                    entry["result"].get("status") == STATUS_TIMED_OUT
                    and entry.get("timeout_s", 0.0) < timeout_s
                )
                if entry["run"] == run_key and not timed_out_sooner:
                    self.done[(entry["set"], entry["id"])] = entry["result"]
            print(f"resume: {len(self.done)} structures from {path.name}", file=sys.stderr)
        elif path.exists():
            path.unlink()  # a new run of this label: the old journal is no part of it

    def record(self, dataset: str, entry_id: str, result: Mapping[str, Any]) -> None:
        entry = {
            "run": self.run_key,
            "timeout_s": self.timeout_s,
            "set": dataset,
            "id": entry_id,
            "result": result,
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry, default=_json_value) + "\n")
        self.done[(dataset, entry_id)] = result

    @property
    def timed_out(self) -> set[tuple[str, str]]:
        """(set, id) of the structures whose result in this run is a timeout."""
        return {key for key, result in self.done.items() if result.get("status") == STATUS_TIMED_OUT}

    def close(self) -> None:
        """The run's CSV is written: remove the journal, or keep it where structures timed out."""
        timed_out = sorted(self.timed_out)
        if not timed_out:
            self.path.unlink(missing_ok=True)
            return
        print(
            f"journal kept ({self.path.name}): {len(timed_out)} structure(s) timed out "
            f"({', '.join(entry_id for _, entry_id in timed_out)}); the same command with "
            f"--resume and a --timeout-s above {self.timeout_s:g} retries only those",
            file=sys.stderr,
        )


def _json_value(value: Any) -> Any:
    """numpy scalars and arrays (what the transport rows hold besides Python values) for ``json``."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _predict(
    records: list[dict],
    rows: Sequence[Mapping[str, Any]],
    workers: int,
    timeout_s: float,
    memory_GiB: float,
    desc: str,
    journal: Journal | None = None,
) -> None:
    """The transport row of every ingested record, merged into it; results already in ``journal`` are
    reused and new ones are added to it."""
    done = journal.done if journal is not None else {}
    todo = []
    for i, record in enumerate(records):
        if (record["set"], record["id"]) in done:
            record.update(done[(record["set"], record["id"])])
        elif record["status"] != STATUS_INGEST_FAILED:
            todo.append(i)

    def keep(index: int, result: dict) -> None:
        if journal is not None:
            journal.record(records[todo[index]]["set"], records[todo[index]]["id"], result)

    results = run_isolated(
        _transport_job,
        [rows[i] for i in todo],
        workers=workers,
        timeout_s=timeout_s,
        memory_limit_GiB=memory_GiB,
        names=[records[i]["id"] for i in todo],
        desc=desc,
        on_result=keep,
    )
    for i, result in zip(todo, results, strict=True):
        records[i].update(result)


def _bvlain(
    records: Sequence[dict], rows: Sequence[Mapping[str, Any]], args: argparse.Namespace, code: str
) -> list[dict]:
    cached = (
        {}
        if args.refresh_bvlain or not BVLAIN_CACHE.exists()
        else {r["id"]: r for r in read_csv(BVLAIN_CACHE)}
    )
    todo = [i for i, r in enumerate(records) if r["status"] != STATUS_INGEST_FAILED and r["id"] not in cached]
    if todo:
        results = run_isolated(
            _bvlain_job,
            [rows[i] for i in todo],
            workers=args.workers,
            timeout_s=args.timeout_s,
            memory_limit_GiB=args.memory_limit_gib,
            names=[records[i]["id"] for i in todo],
            desc="bvlain",
        )
        for i, result in zip(todo, results, strict=True):
            r = records[i]
            cached[r["id"]] = {
                "id": r["id"],
                "family": r["family"],
                "nsites": r["nsites"],
                "code": code,
                **result,
            }
        if args.limit is None:
            write_csv(
                BVLAIN_CACHE,
                [cached[r["id"]] for r in records if r["id"] in cached],
                leading=(
                    "id",
                    "family",
                    "nsites",
                    "status",
                    "error",
                    "seconds",
                    "E_1D",
                    "E_2D",
                    "E_3D",
                    "code",
                ),
            )
    out = []
    for r in records:
        entry = {k: r[k] for k in ("measured_log10_sigma", "sigma_is_upper_bound", "measured_ea_eV")}
        entry.update(cached.get(r["id"], {"status": STATUS_INGEST_FAILED, "error": r["error"]}))
        out.append(entry)
    return out


def _markdown(label: str, obelix: dict, bundled: dict, bvlain: dict | None, ceiling: dict) -> str:
    def block(name: str, m: dict) -> list[str]:
        lines = [
            f"**{name}**: ingested ok {m['n_ok']}/{m['n_total']} ({_f(100 * m['coverage_ingest'], 0)}%), "
            f"finite predicted sigma {m['n_pred']}/{m['n_ok']} ({_f(100 * m['coverage_pred'], 0)}%); "
            f"superionic (>= 1e-4 S/cm) {m['n_superionic']}",
            f"- Spearman rho, uncensored: {_rho(m['spearman_uncensored'])}; with bounds as values: "
            f"{_rho(m['spearman_bounds'])}",
            f"- ROC-AUC superionic: {_rho(m['auc'])}; missing as low: {_rho(m['auc_missing_low'])}",
            f"- Ea MAE: {_f(m['ea_mae'][0])} eV (n={m['ea_mae'][1]})",
            f"- seconds per structure: median {_f(m['median_s'], 1)}, p90 {_f(m['p90_s'], 1)}",
            f"- no prediction: {m['n_failed']}; top reasons:",
            *[f"  - {count} x {reason}" for reason, count in m["failures"]],
            "",
        ]
        return lines

    lines = [f"### Conductivity against experiment: {label}", ""]
    lines += block("OBELiX train (compute_transport)", obelix)
    lines += block("bundled, labelled (compute_transport)", bundled)
    if bvlain is not None:
        lines += block("OBELiX train (bvlain 0.25.1, majority-species ordering, score -E_1D)", bvlain)
    lines += [
        f"**ceiling** (-Ea measured vs measured sigma, n={ceiling['n']}): Spearman uncensored "
        f"{_rho(ceiling['rho']['uncensored'])}, with bounds {_rho(ceiling['rho']['bounds'])}; "
        f"AUC {_rho(ceiling['auc'])}",
        "",
        CENSORING_NOTE,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help='name of this run, e.g. "before"')
    parser.add_argument("--write", action="store_true", help="update the section of BENCHMARKS.md")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="wall-clock limit per structure")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit-gib", type=float, default=8.0, help="address-space limit per worker")
    parser.add_argument("--no-bvlain", action="store_true", help="skip the bvlain reference")
    parser.add_argument("--refresh-bvlain", action="store_true", help="recompute the bvlain cache")
    parser.add_argument("--limit", type=int, default=None, help="first N OBELiX entries only (a trial run)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="the obelix-train folder")
    parser.add_argument(
        "--code-rev",
        default=None,
        help="measure the screening package as committed at this git revision (e.g. HEAD) instead of the "
        "working tree",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of this label: structures in its journal (same code and settings) "
        "are not computed again, except those that timed out under a smaller --timeout-s",
    )
    parser.add_argument("--notes", default="", help="a sentence about this run, printed under the section")
    parser.add_argument(
        "--cleanup-steps",
        type=int,
        default=0,
        help="relax the framework with SevenNet-0 for at most this many steps before each barrier (0: no "
        "clean-up, the product's default)",
    )
    parser.add_argument(
        "--frenkel-method",
        choices=("bvse", "potential"),
        default="bvse",
        help="Frenkel energy of fully occupied sublattices: bond valence or SevenNet-0 on a relaxed defect "
        "supercell (a run's default with transport_method: bvse), of ordered structures only unless "
        "--include-disordered",
    )
    parser.add_argument(
        "--include-disordered",
        action="store_true",
        help="with --frenkel-method potential: disordered structures with a full Li sublattice too, on one "
        "ordered configuration (defects: {include_disordered: true}, the product's default)",
    )
    parser.add_argument(
        "--frenkel-configurations",
        type=int,
        default=None,
        metavar="N",
        help="with --include-disordered: ordered configurations per disordered structure whose Frenkel "
        "energies are averaged (a run's frenkel_configurations; default: the measured code's default, "
        "3 since 2026-12-07, one draw before)",
    )
    parser.add_argument(
        "--defect-cache",
        metavar="DIR",
        help="with --frenkel-method potential: keep the potential's Frenkel energies in DIR and reuse those "
        "whose inputs and code are unchanged (a run's defect_cache_dir; results are the same with or "
        "without it, so it is no part of the run's identity)",
    )
    args = parser.parse_args(argv)
    slug = slugify(args.label)
    if args.limit is not None and args.write:
        parser.error("--limit is a trial run; it does not --write")
    if args.include_disordered and args.frenkel_method != "potential":
        parser.error("--include-disordered needs --frenkel-method potential")
    if args.frenkel_configurations is not None and not args.include_disordered:
        parser.error("--frenkel-configurations needs --include-disordered")
    if args.defect_cache and args.frenkel_method != "potential":
        parser.error("--defect-cache needs --frenkel-method potential")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the workers are killed on the way out
    code, folder = use_code(args.code_rev, with_bvlain=not args.no_bvlain)
    print(f"code: {code}", file=sys.stderr)
    global TRANSPORT_KEYWORDS
    TRANSPORT_KEYWORDS = transport_keywords(
        args.cleanup_steps,
        args.frenkel_method,
        args.include_disordered,
        args.defect_cache,
        args.frenkel_configurations,
    )
    try:
        return _run(args, slug, code)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, slug: str, code: str) -> int:
    start = time.perf_counter()
    rows, labels = load_obelix(args.data, args.workers)
    if args.limit is not None:
        labels = dict(list(labels.items())[: args.limit])
    records = _obelix_records(rows, labels)
    by_id = {obelix_id(r): r for r in rows}
    obelix_rows = [by_id[r["id"]] for r in records]
    print(
        f"ingest: {sum(r['status'] != STATUS_INGEST_FAILED for r in records)}/{len(records)} ok",
        file=sys.stderr,
    )
    suffix = "" if args.limit is None else f"-limit{args.limit}"
    settings = (args.cleanup_steps, args.frenkel_method, args.include_disordered)
    if args.frenkel_configurations is not None:  # journals of earlier runs stay resumable
        settings += (args.frenkel_configurations,)
    journal = Journal(
        RESULTS_DIR / f"conductivity-{slug}{suffix}.journal.jsonl",
        f"{code} {settings}",
        resume=args.resume,
        timeout_s=args.timeout_s,
    )
    _predict(records, obelix_rows, args.workers, args.timeout_s, args.memory_limit_gib, "transport", journal)
    bundled_records = _bundled(args.workers, args.timeout_s, args.memory_limit_gib, journal)
    for record in records + bundled_records:
        record["code"] = code
    write_csv(RESULTS_DIR / f"conductivity-{slug}{suffix}.csv", records + bundled_records)
    journal.close()

    def scored(recs: Sequence[dict], key: str = "log10_sigma_S_per_cm", sign: float = 1.0) -> dict:
        scores = [sign * predicted(r, key) for r in recs]
        ea = [predicted(r, "ea_eV" if key == "log10_sigma_S_per_cm" else key) for r in recs]
        return score_set(recs, scores, ea, n_total=len(recs))

    obelix = scored(records)
    bundled_labelled = [r for r in bundled_records if math.isfinite(r["measured_log10_sigma"])]
    bundled = scored(bundled_labelled)
    # Ea MAE of the bundled set over every entry with a published Ea (some have no published sigma)
    bundled["ea_mae"] = mae(
        [predicted(r, "ea_eV") for r in bundled_records], [r["measured_ea_eV"] for r in bundled_records]
    )
    bvlain = None
    if not args.no_bvlain:
        bvlain_records = _bvlain(records, obelix_rows, args, code)
        bvlain = scored(bvlain_records, key="E_1D", sign=-1.0)
    ceiling_line, ceiling = ceiling_row(records)
    print(_markdown(args.label, obelix, bundled, bvlain, ceiling))
    print(f"\n(total {time.perf_counter() - start:.0f} s)", file=sys.stderr)

    if args.write:
        text = BENCHMARKS_MD.read_text()
        new = {
            args.label.replace("|", "/"): table_row(args.label, obelix, bundled, code),
            CEILING_LABEL: ceiling_line,
        }
        if bvlain is not None:
            bvlain_code = ", ".join(sorted({r.get("code") or "?" for r in bvlain_records if r.get("code")}))
            new[BVLAIN_LABEL] = table_row(BVLAIN_LABEL, bvlain, None, bvlain_code)
        rows_md = merge_rows(existing_rows(text), new)
        section = render_section(
            rows_md,
            args.label,
            obelix["failures"],
            args.notes,
            workers=args.workers,
            timeout_s=args.timeout_s,
        )
        BENCHMARKS_MD.write_text(write_section(text, section))
        print(f"updated {BENCHMARKS_MD.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
