"""Periodic pair sums ``E(r) = sum_j e_j(|r - r_j|)`` over a grid or a set of points, as torch array code.

The BVSE landscape is such a sum over ~10^5-10^6 grid points and the framework ions within a cutoff
(:mod:`screening.transport.landscape`). Here it is computed on any torch device, in float64, without a
neighbour list of pairs:

1. The points are cut into **groups** that are close in space: for a grid, blocks of ``block^3``
   neighbouring grid points; for arbitrary points, each point alone. Each group has a centre and a
   radius (the largest distance of one of its points from the centre).
2. Every periodic image of an atom that can lie within the cutoff of some point is listed once, and each
   group gets the images within ``cutoff + radius`` of its centre (a superset of the pairs it needs),
   padded to a common length with a far-away dummy image.
3. A chunk of groups is one dense tensor of shape ``(groups, points per group, candidates)``: distances,
   pairs beyond the cutoff (by more than :data:`CUTOFF_TOLERANCE_A`) set to infinity (so every pair energy
   must vanish there, as the Morse and screened-Coulomb terms do), distances clipped below at
   ``min_distance_A`` (a point on a nucleus stays finite), the pair energy, and the sum over candidates.

The result equals the sum over a neighbour list of the same cutoff to rounding (3e-10 eV on every grid point
of the bundled set, ``tests/test_pair_sums.py``). Memory is bounded by ``pairs_per_chunk`` (about ten float64
temporaries of that many elements). Several structures can share the chunks (:func:`grid_pair_sums`; a
group then only sees its own structure's images), which fills a GPU with small cells.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from screening.errors import InputError
from screening.graphs import perpendicular_widths_A

#: Pair energy: distances ``(groups, points, candidates)`` and the candidates' parameters
#: ``(groups, 1, candidates, n_params)`` -> energies of the same shape as the distances (eV), which must be
#: 0 at infinite distance.
PairEnergy = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Grid points per block edge (a block is ``GRID_BLOCK^3`` points); measured fastest of 4, 6, 8 on CPU.
GRID_BLOCK = 6

#: Default number of (point, candidate) pairs per dense chunk, per device type: 2^20 float64 pairs keep the
#: CPU temporaries in cache-sized pieces; a GPU wants large launches (2^26 pairs is ~5 GB of temporaries).
PAIRS_PER_CHUNK = {"cpu": 1 << 20, "cuda": 1 << 26}

_DUMMY_DISTANCE_A = 1e6

#: Pairs up to this far beyond the cutoff still count, as in pymatgen's neighbour list: on a cell whose
#: grid points sit at exactly the cutoff from an ion (rock-salt LiI, a = 6.0 A, 0.2 A grid: 3-4-5 triangles)
#: rounding would otherwise decide, and the Li-I Morse tail there is 4e-5 eV per pair.
CUTOFF_TOLERANCE_A = 1e-8


@dataclass(frozen=True)
class PairTerms:
    """The atoms a pair sum runs over: Cartesian positions ``(n, 3)`` in one cell and their pair
    parameters ``(n, k)`` (whatever ``energy`` reads; row ``i`` belongs to atom ``i``)."""

    coords_A: np.ndarray
    params: np.ndarray
    energy: PairEnergy
    #: parameters of the padding candidate (any values for which ``energy`` at infinite distance is 0)
    dummy_params: tuple[float, ...]


def default_pairs_per_chunk(device: torch.device) -> int:
    """The chunk size of dense pair tensors on a device type."""
    return PAIRS_PER_CHUNK.get(device.type, PAIRS_PER_CHUNK["cpu"])


def _periodic_images(
    coords_A: np.ndarray, lattice: np.ndarray, frac_low: np.ndarray, frac_high: np.ndarray, reach_A: float
) -> np.ndarray:
    """Cartesian images ``(m, 4)`` (x, y, z, atom index) of the atoms whose fractional coordinates fall
    within ``reach_A`` (as a fraction of each perpendicular width) of the box ``[frac_low, frac_high]``."""
    margin = reach_A / perpendicular_widths_A(lattice)
    frac = coords_A @ np.linalg.inv(lattice)
    frac -= np.floor(frac)
    low = np.floor(frac_low - margin - 1).astype(int)
    high = np.ceil(frac_high + margin).astype(int)
    shifts = np.stack(
        np.meshgrid(*[np.arange(lo, hi + 1) for lo, hi in zip(low, high, strict=True)], indexing="ij"), -1
    ).reshape(-1, 3)
    images = frac[None, :, :] + shifts[:, None, :]
    index = np.broadcast_to(np.arange(len(coords_A)), images.shape[:2])
    keep = np.all((images > frac_low - margin) & (images < frac_high + margin), axis=-1)
    return np.column_stack([images[keep] @ lattice, index[keep]])


def _sum_over_groups(
    points: torch.Tensor,
    centers: torch.Tensor,
    radius_A: float | torch.Tensor,
    images: torch.Tensor,
    params: torch.Tensor,
    energy: PairEnergy,
    cutoff_A: float,
    min_distance_A: float,
    pairs_per_chunk: int,
    owners: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``(groups, points per group)`` sums over the images within the cutoff of each point.

    Args:
        points: ``(groups, p, 3)`` Cartesian points.
        centers: ``(groups, 3)`` group centres.
        radius_A: every point is within this distance of its group's centre (one value, or one per group).
        images: ``(m + 1, 3)`` candidate positions, the last one the far-away dummy.
        params: ``(m + 1, k)`` their parameters.
        owners: for several structures in one call, the structure index of each group ``(groups,)`` and of
            each image ``(m,)``: a group only sees its own structure's images.
    """
    n_groups, per_group = points.shape[:2]
    dummy = len(images) - 1
    total = torch.zeros(n_groups, per_group, dtype=points.dtype, device=points.device)
    reach = cutoff_A + torch.as_tensor(radius_A, dtype=points.dtype, device=points.device).expand(n_groups)
    # candidate lists for a slice of groups at a time, so the (groups x images) test stays small
    slice_size = max(1, (1 << 24) // max(1, dummy))
    for start in range(0, n_groups, slice_size):
        stop = min(n_groups, start + slice_size)
        near = torch.cdist(centers[start:stop], images[:dummy]) < reach[start:stop, None]
        if owners is not None:
            near &= owners[0][start:stop, None] == owners[1][None, :]
        counts = near.sum(dim=1)
        width = max(1, int(counts.max()))
        group, image = near.nonzero(as_tuple=True)
        offsets = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(group), device=points.device) - offsets[group]
        candidates = torch.full((stop - start, width), dummy, dtype=torch.long, device=points.device)
        candidates[group, slot] = image
        chunk = max(1, pairs_per_chunk // (per_group * width))
        for first in range(0, stop - start, chunk):
            rows = candidates[first : first + chunk]
            groups = slice(start + first, start + first + len(rows))
            distance = torch.cdist(points[groups], images[rows])
            distance.masked_fill_(distance > cutoff_A + CUTOFF_TOLERANCE_A, math.inf).clamp_(
                min=min_distance_A
            )
            total[groups] += energy(distance, params[rows][:, None]).sum(dim=-1)
    return total


def _image_tables(
    terms: PairTerms, images: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(m, 3)`` and parameters ``(m, k)`` of the images from :func:`_periodic_images`."""
    coords = torch.tensor(images[:, :3], dtype=torch.float64, device=device).reshape(-1, 3)
    params = torch.tensor(terms.params[images[:, 3].astype(int)], dtype=torch.float64, device=device)
    return coords, params.reshape(-1, len(terms.dummy_params))


def _with_dummy(
    coords: torch.Tensor, params: torch.Tensor, dummy_params: tuple[float, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tables with the far-away padding candidate appended last (what :func:`_sum_over_groups` reads)."""
    far = torch.full((1, 3), _DUMMY_DISTANCE_A, dtype=torch.float64, device=coords.device)
    dummy = torch.tensor([dummy_params], dtype=torch.float64, device=coords.device)
    return torch.cat([coords, far]), torch.cat([params, dummy])


@dataclass(frozen=True)
class GridJob:
    """One structure's grid: its pair terms (the same kinds, in the same order, as every other job of a
    batch), lattice rows (angstrom) and grid shape (point ``(i, j, k)`` at fractional ``(i/nx, j/ny, k/nz)``)."""

    terms: Sequence[PairTerms]
    lattice_matrix_A: np.ndarray
    shape: tuple[int, int, int]


class _GridLayout(NamedTuple):
    """A job's grid cut into blocks (:func:`_grid_blocks`)."""

    points: torch.Tensor  # (blocks, GRID_BLOCK^3, 3) Cartesian
    centers: torch.Tensor  # (blocks, 3)
    radius_A: float  # of every block around its centre
    frac_high: np.ndarray  # (3,) fractional extent the blocks cover (>= 1: the last blocks overhang)


def _grid_blocks(job: GridJob, device: torch.device) -> _GridLayout:
    lattice = np.asarray(job.lattice_matrix_A, dtype=float)
    blocks = [math.ceil(n / GRID_BLOCK) for n in job.shape]
    step = torch.tensor(lattice / np.array(job.shape)[:, None], dtype=torch.float64, device=device)
    axis = torch.arange(GRID_BLOCK, dtype=torch.float64, device=device)
    local = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3) @ step
    index = torch.stack(
        torch.meshgrid(*[torch.arange(n, device=device) for n in blocks], indexing="ij"), -1
    ).reshape(-1, 3)
    origins = (index.to(torch.float64) * GRID_BLOCK) @ step
    middle = local.mean(dim=0)
    return _GridLayout(
        points=origins[:, None, :] + local[None, :, :],
        centers=origins + middle,
        radius_A=float((local - middle).norm(dim=1).max()),
        frac_high=np.array(blocks) * GRID_BLOCK / np.array(job.shape),
    )


def _unblocked(total: torch.Tensor, shape: tuple[int, int, int]) -> np.ndarray:
    blocks = [math.ceil(n / GRID_BLOCK) for n in shape]
    padded = total.reshape(*blocks, GRID_BLOCK, GRID_BLOCK, GRID_BLOCK).permute(0, 3, 1, 4, 2, 5)
    grid = padded.reshape(*(n * GRID_BLOCK for n in blocks))[: shape[0], : shape[1], : shape[2]]
    return grid.cpu().numpy()


def grid_pair_sums(
    jobs: Sequence[GridJob],
    *,
    cutoff_A: float,
    min_distance_A: float,
    device: torch.device,
    pairs_per_chunk: int | None = None,
) -> list[np.ndarray]:
    """Sum of every term's pair energies on the periodic grid of each job, all jobs in the same dense
    chunks (many small cells fill one launch on a GPU).

    Args:
        jobs: the structures; term ``k`` of every job must use the same pair energy.
        cutoff_A: pairs farther apart do not count.
        min_distance_A: shorter distances are clipped to it.
        device: where the dense chunks are computed.
        pairs_per_chunk: elements of each dense chunk (None: :func:`default_pairs_per_chunk`).

    Returns:
        One float64 array of each job's ``shape`` (eV).
    """
    if not jobs:
        return []
    n_terms = len(jobs[0].terms)
    if any(len(job.terms) != n_terms for job in jobs):
        raise InputError("every job of a batch needs the same kinds of pair terms")
    layouts = [_grid_blocks(job, device) for job in jobs]
    points = torch.cat([layout.points for layout in layouts])
    centers = torch.cat([layout.centers for layout in layouts])

    def per_group(values: list, dtype: torch.dtype) -> torch.Tensor:
        """One value per job, repeated over the job's blocks."""
        sizes = torch.tensor([len(layout.centers) for layout in layouts], device=device)
        return torch.tensor(values, dtype=dtype, device=device).repeat_interleave(sizes)

    radius = per_group([layout.radius_A for layout in layouts], torch.float64)
    group_owner = per_group(list(range(len(jobs))), torch.long)
    chunk = pairs_per_chunk or default_pairs_per_chunk(device)
    total = torch.zeros(points.shape[:2], dtype=torch.float64, device=device)
    for k in range(n_terms):
        coords, params, owners = [], [], []
        for j, (job, layout) in enumerate(zip(jobs, layouts, strict=True)):
            term = job.terms[k]
            if len(term.coords_A) == 0:
                continue
            lattice = np.asarray(job.lattice_matrix_A, dtype=float)
            reach = cutoff_A + 2 * layout.radius_A
            images = _periodic_images(term.coords_A, lattice, np.zeros(3), layout.frac_high, reach)
            table, values = _image_tables(term, images, device)
            coords.append(table)
            params.append(values)
            owners.append(torch.full((len(images),), j, dtype=torch.long, device=device))
        if not coords:
            continue
        total += _sum_over_groups(
            points,
            centers,
            radius,
            *_with_dummy(torch.cat(coords), torch.cat(params), jobs[0].terms[k].dummy_params),
            jobs[0].terms[k].energy,
            cutoff_A,
            min_distance_A,
            chunk,
            owners=(group_owner, torch.cat(owners)),
        )
    sizes = [len(layout.centers) for layout in layouts]
    return [_unblocked(part, job.shape) for part, job in zip(total.split(sizes), jobs, strict=True)]


class PointPairSum:
    """The pair sums of fixed atoms at arbitrary points, for many calls: the candidate image tables are built
    once for the unit cell and every point is wrapped into it first (the sums are periodic).

    Args: as :func:`grid_pair_sums`, for one structure and without the grid.
    """

    def __init__(
        self,
        terms: Sequence[PairTerms],
        lattice_matrix_A: np.ndarray,
        *,
        cutoff_A: float,
        min_distance_A: float,
        device: torch.device,
        pairs_per_chunk: int | None = None,
    ) -> None:
        self._lattice = np.asarray(lattice_matrix_A, dtype=float)
        self._inverse = np.linalg.inv(self._lattice)
        self._cutoff_A = cutoff_A
        self._min_distance_A = min_distance_A
        self._device = device
        self._chunk = pairs_per_chunk or default_pairs_per_chunk(device)
        self._tables = [
            (
                term.energy,
                *_with_dummy(
                    *_image_tables(
                        term,
                        _periodic_images(term.coords_A, self._lattice, np.zeros(3), np.ones(3), cutoff_A),
                        device,
                    ),
                    term.dummy_params,
                ),
            )
            for term in terms
            if len(term.coords_A)
        ]

    def __call__(self, points_A: np.ndarray) -> np.ndarray:
        """Sum of every term's pair energies at Cartesian points ``(n, 3)``; float64 ``(n,)`` (eV)."""
        frac = np.asarray(points_A, dtype=float).reshape(-1, 3) @ self._inverse
        frac -= np.floor(frac)
        points = torch.tensor(frac @ self._lattice, dtype=torch.float64, device=self._device)
        total = torch.zeros(len(points), dtype=torch.float64, device=self._device)
        if len(points) == 0:
            return total.cpu().numpy()
        for energy, coords, params in self._tables:
            total += _sum_over_groups(
                points[:, None, :],
                points,
                0.0,
                coords,
                params,
                energy,
                self._cutoff_A,
                self._min_distance_A,
                self._chunk,
            )[:, 0]
        return total.cpu().numpy()
