"""Landed Earth Engine tiles -> raster and climate cubes: exact pixels, resume, and bad tiles.

The tiles are written as Earth Engine writes them: one GeoTIFF per tile of the cube grids (the
tile's crsTransform and dimensions), float32 with nodata -32768 (Landsat, climate) or uint8 with
nodata 255 (land cover), bands named as exported; they land in a mirror of the bucket (a local
folder or a bucket on the moto S3 endpoint) and a manifest marks them completed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.io import MemoryFile

from soilnet import storage
from soilnet.data.bands import BAND_NAMES, BANDS
from soilnet.data.climate_cube import ClimateLayout, open_climate_cube
from soilnet.data.earth_engine import terraclimate, worldcover
from soilnet.data.earth_engine.acquire import destination_of, period_of
from soilnet.data.earth_engine.config import AcquireConfig
from soilnet.data.earth_engine.exports import FLOAT_NODATA, tile_key, tile_pixel_grid
from soilnet.data.earth_engine.landed_files import LandedTileError, source_url
from soilnet.data.earth_engine.landing import ingest_landed
from soilnet.data.earth_engine.manifest import Manifest
from soilnet.data.earth_engine.products import Product
from soilnet.data.grid import Grid
from soilnet.data.raster_cube import RasterLayout, encode, open_raster_cube
from soilnet.data.region import Tile

TILE_PX = 256
#: 2 x 2 Landsat / land-cover tiles (the last row and column ragged), 128 px shards.
RASTER_GRID = Grid.from_origin(3035, 4_320_000.0, 2_970_000.0, 30.0, 384, 320)
#: 2 climate tiles on TerraClimate's 1/24 degree lon/lat grid.
CLIMATE_GRID = Grid.from_origin(4326, 8.0, 50.0, 1.0 / 24.0, 280, 24)
LAYOUT = RasterLayout(inner_chunk=32, shard=128)
CLIMATE_LAYOUT = ClimateLayout(spatial_chunk=32)
MONTHS = terraclimate.climate_months(dt.date(2018, 6, 15), 3)


def make_config(
    root: str, mirror: str, products: tuple[Product, ...] = ("landsat", "climate", "landcover")
) -> AcquireConfig:
    return AcquireConfig(
        region=storage.join(root, "region.geojson"),
        year=2018,
        sampling_end_date=dt.date(2018, 6, 15),
        climate_months=len(MONTHS),
        tile_size_px=TILE_PX,
        climate_tile_size_px=TILE_PX,
        bucket="ee-landing",
        bucket_prefix="exports/eu",
        manifest_url=storage.join(root, "manifest.json"),
        landing_mirror=mirror,
        products=list(products),
    )


def write_tif(url: str, data: np.ndarray, grid: Grid, tile: Tile, nodata: float, names: list[str]) -> None:
    """A tiled GeoTIFF of ``data`` on the tile's export pixel grid, with band descriptions."""
    pixel_grid = tile_pixel_grid(grid, tile)
    profile = {
        "driver": "GTiff", "count": data.shape[0], "height": tile.height, "width": tile.width,
        "dtype": data.dtype.name, "crs": pixel_grid["crs"], "transform": Affine(*pixel_grid["crsTransform"]),
        "nodata": nodata, "tiled": True, "blockxsize": 128, "blockysize": 128,
    }  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
            dst.descriptions = tuple(names)
        payload = mem.read()
    with storage.open_file(url, "wb") as f:
        f.write(payload)


def tiles_of(grid: Grid) -> list[Tile]:
    return [Tile(r0 // TILE_PX, c0 // TILE_PX, r0, c0, h, w) for r0, c0, h, w in grid.tiles(TILE_PX)]


def landsat_values(tile: Tile, seed: int) -> np.ndarray:
    """Float32 bands in each band's storable range, with nodata holes and exact zeros."""
    rng = np.random.default_rng(seed)
    shape = (tile.height, tile.width)
    bands = [rng.uniform(-0.2, 1.6, shape) for _ in range(12)]
    bands += [rng.uniform(0, 3000, shape), rng.uniform(0, 150, shape)]
    values = np.stack(bands).astype(np.float32)
    values[:, rng.random(shape) < 0.05] = FLOAT_NODATA
    values[4, :3, :3] = 0.0
    return values


def climate_values(tile: Tile, seed: int) -> dict[str, np.ndarray]:
    """Band name -> float32 pixels; swe / ro / def hold true zeros, some pixels are nodata."""
    rng = np.random.default_rng(seed)
    shape = (tile.height, tile.width)
    out = {}
    for month in MONTHS:
        for var in terraclimate.VARIABLES:
            v = rng.normal(50, 20, shape).astype(np.float32)
            if var in ("swe", "ro", "def"):
                v[rng.random(shape) < 0.5] = 0.0
            v[rng.random(shape) < 0.03] = FLOAT_NODATA
            out[f"{var}_{month}"] = v
    return out


class Landing:
    """Fake landed tiles of all three products, their manifest, and the expected cube contents."""

    def __init__(self, root: str, mirror: str, products: tuple[Product, ...] = ("landsat", "climate", "landcover")):
        self.cfg = make_config(root, mirror, products)
        self.manifest = Manifest(self.cfg.manifest_url)
        destination = destination_of(self.cfg)
        self.bands = np.full((len(BAND_NAMES), RASTER_GRID.height, RASTER_GRID.width), np.nan, np.float32)
        self.landcover = np.zeros((RASTER_GRID.height, RASTER_GRID.width), np.uint8)
        self.climate = np.full((14, len(MONTHS), CLIMATE_GRID.height, CLIMATE_GRID.width), np.nan, np.float32)
        self.mirror_urls: dict[str, str] = {}
        for product in products:
            grid = CLIMATE_GRID if product == "climate" else RASTER_GRID
            for i, tile in enumerate(tiles_of(grid)):
                key = tile_key(product, period_of(self.cfg, product), tile)
                url = destination.url(key)
                self.mirror_urls[key] = source_url(url, self.cfg)
                self.write(product, grid, tile, self.mirror_urls[key], seed=100 * len(self.mirror_urls) + i)
                self.manifest.record(key, product, tile.row, tile.col, url).state = "completed"
        self.manifest.save()

    def write(self, product: Product, grid: Grid, tile: Tile, url: str, seed: int) -> None:
        rows, cols = slice(tile.row0, tile.row0 + tile.height), slice(tile.col0, tile.col0 + tile.width)
        if product == "landsat":
            values = landsat_values(tile, seed)
            write_tif(url, values, grid, tile, FLOAT_NODATA, list(BAND_NAMES))
            self.bands[:, rows, cols] = np.where(values == FLOAT_NODATA, np.nan, values)
        elif product == "landcover":
            rng = np.random.default_rng(seed)
            classes = rng.choice(np.array([10, 20, 30, 40, 50, 80, 255], np.uint8), (2, tile.height, tile.width))
            write_tif(url, classes, grid, tile, worldcover.NODATA, list(worldcover.BANDS))
            self.landcover[rows, cols] = np.where(classes[0] == 255, 0, classes[0])
        else:
            named = climate_values(tile, seed)
            names = list(named)[::-1]  # the file order must not matter, only the band names
            write_tif(url, np.stack([named[n] for n in names]), grid, tile, FLOAT_NODATA, names)
            for vi, var in enumerate(terraclimate.VARIABLES):
                for ti, month in enumerate(MONTHS):
                    v = named[f"{var}_{month}"]
                    self.climate[vi, ti, rows, cols] = np.where(v == FLOAT_NODATA, np.nan, v)

    def ingest(self, raster: str, climate: str, **kwargs):
        return ingest_landed(
            self.cfg, raster, climate, RASTER_GRID, CLIMATE_GRID,
            raster_layout=LAYOUT, climate_layout=CLIMATE_LAYOUT, **kwargs,
        )  # fmt: skip


def store_bytes(url: str) -> dict[str, bytes]:
    """Every object of a store, by relative path."""
    loc = storage.resolve(url)
    return {p[len(loc.path) :]: loc.fs.cat_file(p) for p in loc.fs.find(loc.path)}


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Mirror, manifest and cubes in a local folder, then in a bucket of the moto S3 endpoint."""
    return str(tmp_path) if request.param == "local" else request.getfixturevalue("s3_bucket")


def test_landed_tiles_land_in_the_cubes_bit_exactly(root: str) -> None:
    landing = Landing(root, storage.join(root, "mirror"))
    report = landing.ingest(storage.join(root, "raster.zarr"), storage.join(root, "climate.zarr"))
    assert report.landed == {"landsat": 4, "climate": 2, "landcover": 4}
    assert report.ingested == report.landed and report.skipped == {"landsat": 0, "climate": 0, "landcover": 0}
    assert report.complete and report.waiting == 0

    cube = open_raster_cube(storage.join(root, "raster.zarr"))
    assert cube.grid == RASTER_GRID and cube.band_names == BAND_NAMES
    raw = cube.read_raw(0, 0, RASTER_GRID.height, RASTER_GRID.width)
    expected = encode(landing.bands, cube.scale, cube.offset)
    assert raw.dtype == np.int16 and np.array_equal(raw, expected)
    assert (raw == cube.nodata).sum() == np.isnan(landing.bands).sum() > 0
    assert np.all(raw[4, :3, :3] == 0)
    landcover = cube.read_raw(0, 0, RASTER_GRID.height, RASTER_GRID.width, variable="landcover")
    assert np.array_equal(landcover, landing.landcover) and (landcover == 0).any() and not (landcover == 255).any()

    climate = open_climate_cube(storage.join(root, "climate.zarr"))
    assert climate.grid == CLIMATE_GRID and climate.variables == terraclimate.VARIABLES
    assert [str(t.astype("datetime64[M]")) for t in climate.times] == MONTHS
    values = climate.data[:]
    assert np.array_equal(values, landing.climate, equal_nan=True)
    swe = terraclimate.VARIABLES.index("swe")
    assert (values[swe] == 0).sum() == (landing.climate[swe] == 0).sum() > 0
    assert np.isnan(values).sum() == np.isnan(landing.climate).sum() > 0


def test_interrupted_ingest_resumes_to_the_same_bytes_without_rereading(tmp_path: Path) -> None:
    landing = Landing(str(tmp_path), str(tmp_path / "mirror"))
    once = landing.ingest(str(tmp_path / "once" / "raster.zarr"), str(tmp_path / "once" / "climate.zarr"))
    assert once.complete

    seen: list[str] = []

    def stop_after_three(key: str, ingested: bool) -> None:
        seen.append(key)
        if len(seen) == 3:
            raise KeyboardInterrupt

    raster, climate = str(tmp_path / "twice" / "raster.zarr"), str(tmp_path / "twice" / "climate.zarr")
    with pytest.raises(KeyboardInterrupt):
        landing.ingest(raster, climate, on_tile=stop_after_three)
    for key in seen:  # tiles already in the cube must not be read again
        storage.remove(landing.mirror_urls[key])
    calls: list[tuple[str, bool]] = []
    report = landing.ingest(raster, climate, on_tile=lambda key, ingested: calls.append((key, ingested)))
    assert [k for k, ingested in calls if not ingested] == seen
    assert sum(report.skipped.values()) == 3 and sum(report.ingested.values()) == 7 and report.complete
    for name in ("raster.zarr", "climate.zarr"):
        assert store_bytes(str(tmp_path / "twice" / name)) == store_bytes(str(tmp_path / "once" / name))


def test_tiles_landing_later_are_added_and_completion_waits_for_them(tmp_path: Path) -> None:
    landing = Landing(str(tmp_path), str(tmp_path / "mirror"), ("landsat", "landcover"))
    late = landing.manifest.landed("landsat")[-1]
    late.state = "running"
    landing.manifest.save()
    raster, climate = str(tmp_path / "raster.zarr"), str(tmp_path / "climate.zarr")
    first = landing.ingest(raster, climate)
    assert first.waiting == 1 and not first.complete and first.ingested["landsat"] == 3
    late.state = "completed"
    landing.manifest.save()
    second = landing.ingest(raster, climate)
    assert second.ingested == {"landsat": 1, "landcover": 0} and second.complete
    raw = open_raster_cube(raster).read_raw(0, 0, RASTER_GRID.height, RASTER_GRID.width)
    cube = open_raster_cube(raster)
    assert np.array_equal(raw, encode(landing.bands, cube.scale, cube.offset))


def _wrong_band_count(landing: Landing, tile: Tile, url: str) -> None:
    write_tif(url, landsat_values(tile, 1)[:13], RASTER_GRID, tile, FLOAT_NODATA, list(BAND_NAMES[:13]))


def _misaligned(landing: Landing, tile: Tile, url: str) -> None:
    shifted = Grid.from_origin(3035, RASTER_GRID.bounds[0] + 10.0, RASTER_GRID.bounds[3], 30.0, 384, 320)
    write_tif(url, landsat_values(tile, 1), shifted, tile, FLOAT_NODATA, list(BAND_NAMES))


def _swapped_bands(landing: Landing, tile: Tile, url: str) -> None:
    names = list(BAND_NAMES)
    names[0], names[1] = names[1], names[0]
    write_tif(url, landsat_values(tile, 1), RASTER_GRID, tile, FLOAT_NODATA, names)


def _other_crs(landing: Landing, tile: Tile, url: str) -> None:
    utm = Grid(32632, RASTER_GRID.transform, RASTER_GRID.width, RASTER_GRID.height)
    write_tif(url, landsat_values(tile, 1), utm, tile, FLOAT_NODATA, list(BAND_NAMES))


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_wrong_band_count, "has 13 bands, expected 14"),
        (_misaligned, "misaligned transform"),
        (_swapped_bands, "band 1 is named 'SR_B2', expected 'SR_B1'"),
        (_other_crs, "tile CRS is EPSG:32632, the cube grid is EPSG:3035"),
    ],
)
def test_bad_landsat_tile_is_named(tmp_path: Path, corrupt, message: str) -> None:
    landing = Landing(str(tmp_path), str(tmp_path / "mirror"), ("landsat",))
    record = landing.manifest.landed("landsat")[1]
    url = landing.mirror_urls[record.key]
    corrupt(landing, tiles_of(RASTER_GRID)[1], url)
    with pytest.raises(LandedTileError) as err:
        landing.ingest(str(tmp_path / "raster.zarr"), str(tmp_path / "climate.zarr"))
    assert url in str(err.value) and message in str(err.value)


def test_climate_tile_missing_a_month_is_named(tmp_path: Path) -> None:
    landing = Landing(str(tmp_path), str(tmp_path / "mirror"), ("climate",))
    record = landing.manifest.landed("climate")[0]
    tile = tiles_of(CLIMATE_GRID)[0]
    named = climate_values(tile, 5)
    del named[f"pr_{MONTHS[1]}"]
    url = landing.mirror_urls[record.key]
    write_tif(url, np.stack(list(named.values())), CLIMATE_GRID, tile, FLOAT_NODATA, list(named))
    with pytest.raises(LandedTileError) as err:
        landing.ingest(str(tmp_path / "raster.zarr"), str(tmp_path / "climate.zarr"))
    assert url in str(err.value) and f"month {MONTHS[1]} of variable 'pr' is missing" in str(err.value)


def test_mirror_rewrites_the_landing_root_and_drive_needs_one(tmp_path: Path) -> None:
    cfg = make_config(str(tmp_path), "s3://mirror-bucket/copy")
    assert source_url("gs://ee-landing/exports/eu/landsat/2018/r0000_c0001.tif", cfg) == (
        "s3://mirror-bucket/copy/landsat/2018/r0000_c0001.tif"
    )
    with pytest.raises(LandedTileError, match=r"gs://other/x\.tif: not under gs://ee-landing/exports/eu"):
        source_url("gs://other/x.tif", cfg)
    unmirrored = cfg.model_copy(update={"landing_mirror": None})
    assert source_url("gs://ee-landing/exports/eu/a.tif", unmirrored) == "gs://ee-landing/exports/eu/a.tif"
    drive = unmirrored.model_copy(update={"destination": "drive", "drive_folder": "soil"})
    with pytest.raises(LandedTileError, match=r"set acquire\.landing_mirror"):
        source_url("gdrive://soil/landsat_2018_r0000_c0000.tif", drive)
    drive_mirror = drive.model_copy(update={"landing_mirror": str(tmp_path)})
    assert source_url("gdrive://soil/landsat_2018_r0000_c0000.tif", drive_mirror) == str(
        tmp_path / "landsat_2018_r0000_c0000.tif"
    )


def test_band_specs_hold_the_generated_ranges() -> None:
    """The generated Landsat values are storable, so the int16 comparison above is exact, not clipped."""
    for name, high in zip(BAND_NAMES, [1.6] * 12 + [3000, 150], strict=True):
        spec = BANDS[name]
        assert spec.offset + 32767 * spec.scale >= high


def test_cli_ingest_reports_counts_and_names_bad_tiles(tmp_path: Path) -> None:
    """``soilnet acquire ingest`` on a 1 km grid over a small region: one tile per product."""
    import json

    import yaml
    from typer.testing import CliRunner

    from soilnet.cli.acquire import app
    from soilnet.data.earth_engine.acquire import plan_products
    from soilnet.data.region import load_region

    ring = [[10.0, 50.0], [10.3, 50.0], [10.3, 50.2], [10.0, 50.2], [10.0, 50.0]]
    (tmp_path / "region.geojson").write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    cfg = make_config(str(tmp_path), str(tmp_path / "mirror")).model_copy(
        update={"region": str(tmp_path / "region.geojson"), "resolution_m": 1000.0}
    )
    manifest = Manifest(cfg.manifest_url)
    for plan in plan_products(cfg, load_region(cfg.region)):
        (tile,) = plan.tiles
        key = tile_key(plan.product, plan.period, tile)
        url = destination_of(cfg).url(key)
        names = {"landsat": list(BAND_NAMES), "landcover": list(worldcover.BANDS)}.get(plan.product)
        names = names or terraclimate.band_names(MONTHS)
        dtype, nodata = (np.uint8, worldcover.NODATA) if plan.product == "landcover" else (np.float32, FLOAT_NODATA)
        data = np.ones((len(names), tile.height, tile.width), dtype)
        write_tif(source_url(url, cfg), data, plan.grid, tile, nodata, names)
        manifest.record(key, plan.product, tile.row, tile.col, url).state = "completed"
    manifest.save()
    config = tmp_path / "config.yaml"
    acquire = cfg.model_dump(mode="json", exclude_defaults=True)
    config.write_text(yaml.safe_dump({"acquire": acquire, "data": {"root": str(tmp_path / "ws")}}))

    first = CliRunner().invoke(app, ["ingest", "-c", str(config)])
    assert first.exit_code == 0, first.output
    assert "landsat" in first.stdout and "complete" in first.output
    assert open_raster_cube(tmp_path / "ws" / "raster.zarr").read_window(0, 0, 1, 1)[0, 0, 0] == 1.0
    again = CliRunner().invoke(app, ["ingest", "-c", str(config)])
    rows = {cells[0]: cells[1:] for line in again.stdout.splitlines() if (cells := line.split()[1::2])}
    assert again.exit_code == 0 and rows["landsat"] == rows["climate"] == ["1", "0", "1"]

    bad = CliRunner().invoke(app, ["ingest", "-c", str(config), "--raster-cube", str(tmp_path / "other.zarr"),
                                   "--set", "landing_mirror=" + str(tmp_path / "nowhere")])  # fmt: skip
    assert bad.exit_code == 2 and str(tmp_path / "nowhere" / "landsat") in bad.output
