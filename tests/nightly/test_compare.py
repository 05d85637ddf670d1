"""Tonight's map against the published release: per-tile counts, carried tiles, and the gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from soilnet.data.grid import Grid
from soilnet.mapping.cog import export_cog
from soilnet.mapping.map_cube import MISSING_NODATA, create_map_cube
from soilnet.nightly.compare import compare_with_release, gate_reason, read_tile_cog
from soilnet.nightly.config import GateConfig

TILE = 16


@pytest.fixture
def cube(tmp_path: Path):
    """A 32 x 32 px map (4 tiles of 16 px): SOC 20 + a gradient, the last row outside the region."""
    grid = Grid.from_origin(3035, 4_000_000.0, 3_000_000.0, 240.0, 32, 32)
    cube = create_map_cube(str(tmp_path / "map.zarr"), grid, ["soc_g_kg"], 8, {"tile_px": TILE})
    mean = (20.0 + np.arange(32 * 32, dtype=np.float32).reshape(32, 32) / 100)[None]
    missing = np.zeros((32, 32), np.uint8)
    missing[-1] = MISSING_NODATA
    mean[0, -1] = np.nan  # the last row (outside the region) has no value
    cube.write_tile(0, 0, mean, np.ones_like(mean), missing)
    return cube


def published(cube, folder: Path) -> str:
    export_cog(cube, "soc_g_kg", str(folder / "cog"), 0.1, 16)
    return str(folder)


def test_unchanged_map_compares_equal_and_the_first_night_has_nothing_to_compare(cube, tmp_path) -> None:
    first = compare_with_release(cube, TILE, None, None, {}, 1.0)
    assert sorted(first.compared) == ["r0000_c0000", "r0000_c0001", "r0001_c0000", "r0001_c0001"]
    assert first.changed_pct == 0.0 and first.total().valid == 0
    assert first.total().inside == 32 * 31
    release = published(cube, tmp_path / "v1")
    again = compare_with_release(cube, TILE, None, release, first.to_record(), 1.0)
    assert again.total().valid == 32 * 31 and again.changed_pct == 0.0
    values = read_tile_cog(str(tmp_path / "v1" / "cog" / "soc_g_kg" / "r0000_c0001.tif"))
    np.testing.assert_allclose(values[:5, :5], cube.read("soc_g_kg", 0, 16, 5, 5), atol=0.051)


def test_changed_tile_is_counted_and_the_others_are_carried(cube, tmp_path) -> None:
    release = published(cube, tmp_path / "v1")
    recorded = compare_with_release(cube, TILE, None, release, {}, 1.0).to_record()
    new = cube.read("soc_g_kg", 16, 16, 16, 16)
    new[:8] += 3.0  # 8 of 16 rows of one tile move by 3 g/kg
    missing = cube.read("input_missing", 16, 16, 16, 16)
    missing[:4] = np.where(missing[:4] == MISSING_NODATA, MISSING_NODATA, 1)
    cube.write_tile(16, 16, new[None], np.ones_like(new)[None], missing)
    tonight = compare_with_release(cube, TILE, {"r0001_c0001"}, release, recorded, 1.0)
    assert tonight.compared == ["r0001_c0001"]
    assert tonight.tiles["r0001_c0001"].changed == 8 * 16
    assert tonight.tiles["r0000_c0000"].changed == 0 and tonight.tiles["r0000_c0000"].valid == 16 * 16
    assert tonight.changed_pct == pytest.approx(100 * 128 / (32 * 31))
    assert tonight.top_tiles() == {"r0001_c0001": pytest.approx(100 * 128 / (15 * 16))}
    assert tonight.missing_pct == pytest.approx(100 * 64 / (32 * 31))
    gate = GateConfig(change_threshold=1.0, max_changed_pct=10.0, max_missing_jump_pct=5.0)
    assert "12.9 % of the pixels changed by more than 1 with the same model" in gate_reason(tonight, 0.0, True, gate)
    assert "input-missing share rose from 0.0 % to 6.5 %" in gate_reason(tonight, 0.0, False, gate)
    assert gate_reason(tonight, 5.0, False, gate) is None, "another model may change the map; missing rose 1.5"
    assert gate_reason(tonight, 5.0, True, gate.model_copy(update={"max_changed_pct": 20.0})) is None
