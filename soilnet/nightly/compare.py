"""A night's map against the last release: per-tile and whole-region change statistics, and the gate.

Only tiles recomputed since the release are read (the new values from the map cube, the old ones
from the release's tile COG of the first target); every other tile is unchanged by construction
and keeps the statistics the release recorded. Memory is one tile.

Per tile: ``valid`` pixels with a value in both maps, ``changed`` of them whose mean moved by more
than the gate's threshold, ``inside`` pixels inside the region and ``missing`` of them with missing
input. The region's figures are the sums.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
from rasterio.io import MemoryFile

from soilnet import storage
from soilnet.mapping.cog import layer_tiles
from soilnet.mapping.map_cube import MISSING_LAYER, MISSING_NODATA, MapCube
from soilnet.nightly.config import GateConfig
from soilnet.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileStats:
    """Change and input-missing counts of one tile."""

    valid: int = 0
    changed: int = 0
    inside: int = 0
    missing: int = 0


def read_tile_cog(url: str) -> np.ndarray | None:
    """A published tile COG as float values (scale applied, nodata -> NaN), or None if it does not exist."""
    try:
        with storage.open_file(url, "rb") as f:
            data = f.read()  # one tile COG: a few MB
    except FileNotFoundError:
        return None
    with MemoryFile(data) as mem, mem.open() as src:
        raw = src.read(1)
        values = raw.astype(np.float32) * np.float32(src.scales[0])
        values[raw == src.nodata] = np.nan
        return values


def tile_stats(
    cube: MapCube, target: str, window: tuple[int, int, int, int], old: np.ndarray | None, threshold: float
) -> TileStats:
    """Counts of one tile of the map cube against its previous values (``old``, None: no previous map)."""
    new = cube.read(target, *window)
    missing = cube.read(MISSING_LAYER, *window)
    inside = missing != MISSING_NODATA
    if old is None or old.shape != new.shape:
        valid, changed = 0, 0
    else:
        both = ~np.isnan(new) & ~np.isnan(old)
        valid = int(both.sum())
        changed = int((np.abs(new - old)[both] > threshold).sum())
    return TileStats(valid, changed, int(inside.sum()), int((missing == 1).sum()))


@dataclass
class Comparison:
    """Statistics of every tile of tonight's map (compared or carried) and which tiles were compared."""

    tiles: dict[str, TileStats] = field(default_factory=dict)
    compared: list[str] = field(default_factory=list)

    def total(self) -> TileStats:
        """The whole region's counts."""
        sums = np.sum([[s.valid, s.changed, s.inside, s.missing] for s in self.tiles.values()] or [[0] * 4], axis=0)
        return TileStats(*(int(v) for v in sums))

    @property
    def changed_pct(self) -> float:
        """Percent of the compared pixels that changed by more than the threshold (over the whole region)."""
        t = self.total()
        return 100.0 * t.changed / t.valid if t.valid else 0.0

    @property
    def missing_pct(self) -> float:
        """Percent of the region's pixels with missing input."""
        t = self.total()
        return 100.0 * t.missing / t.inside if t.inside else 0.0

    def top_tiles(self, n: int = 10) -> dict[str, float]:
        """The ``n`` tiles with the largest changed share, in percent."""
        shares = {k: 100.0 * s.changed / s.valid for k, s in self.tiles.items() if s.valid and s.changed}
        return dict(sorted(shares.items(), key=lambda kv: -kv[1])[:n])

    def to_record(self) -> dict[str, list[int]]:
        """Per-tile counts for the release record (carried to the next night)."""
        return {k: list(asdict(s).values()) for k, s in sorted(self.tiles.items())}


def compare_with_release(
    cube: MapCube,
    tile_px: int,
    compare: set[str] | None,
    release_folder: str | None,
    recorded: dict[str, list[int]],
    threshold: float,
) -> Comparison:
    """Compare the tiles in ``compare`` (None: all) with the release in ``release_folder``; carry the others.

    ``recorded`` are the release's per-tile counts; without a release (first night) nothing changed.
    """
    target = cube.targets[0]
    result = Comparison()
    todo = []
    for name, *window in layer_tiles(cube, tile_px):
        if compare is None or name in compare or name not in recorded:
            todo.append((name, tuple(window)))
        else:
            result.tiles[name] = TileStats(*recorded[name])
    for name, window in progress(todo, "compare tiles"):
        old = None
        if release_folder is not None:
            old = read_tile_cog(storage.join(release_folder, "cog", target, f"{name}.tif"))
        result.tiles[name] = tile_stats(cube, target, window, old, threshold)
        result.compared.append(name)
    log.info("compared %d tiles with %s, %d carried", len(todo), release_folder, len(result.tiles) - len(todo))
    return result


def gate_reason(
    comparison: Comparison, previous_missing_pct: float | None, same_model: bool, gate: GateConfig
) -> str | None:
    """Why tonight's map must not be published, or None when it passes the gate."""
    if same_model and comparison.changed_pct > gate.max_changed_pct:
        return (
            f"{comparison.changed_pct:.1f} % of the pixels changed by more than {gate.change_threshold:g} "
            f"with the same model (limit {gate.max_changed_pct:g} %)"
        )
    if previous_missing_pct is not None:
        jump = comparison.missing_pct - previous_missing_pct
        if jump > gate.max_missing_jump_pct:
            return (
                f"input-missing share rose from {previous_missing_pct:.1f} % to {comparison.missing_pct:.1f} % "
                f"(limit +{gate.max_missing_jump_pct:g} points)"
            )
    return None
