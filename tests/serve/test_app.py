"""The viewer's HTTP API (FastAPI test client): layers, tiles, values at a point, points; the same map on S3."""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
from fastapi.testclient import TestClient

from soilnet.serve.app import Viewer, create_app
from soilnet.serve.config import ServeConfig
from tests.fixtures.map_outputs import cog_value, write_map_outputs

LAYERS = ["soc_g_kg", "soc_g_kg_std", "input_missing"]


@pytest.fixture(scope="module")
def client(published_map) -> TestClient:
    cfg = ServeConfig(map=published_map.out, points=published_map.points_url)
    return TestClient(create_app(Viewer.load(cfg)))


def some_points(bounds: list[float], n: int, seed: int = 1) -> list[tuple[float, float]]:
    west, south, east, north = bounds
    rng = np.random.default_rng(seed)
    return list(zip(rng.uniform(west, east, n), rng.uniform(south, north, n), strict=True))


def test_page_and_leaflet_are_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/vendor/leaflet/leaflet.js" in page.text
    assert "://" not in page.text.replace("http://www.w3.org", ""), "the page must not load anything from outside"
    leaflet = client.get("/vendor/leaflet/leaflet.js")
    assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:500]
    assert client.get("/static/viewer.js").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}


def test_layers_carry_units_and_legends(client: TestClient, published_map) -> None:
    summary = client.get("/api/layers").json()
    layers = {layer["name"]: layer for layer in summary["layers"]}
    assert [layer["name"] for layer in summary["layers"]] == LAYERS
    assert layers["soc_g_kg"]["unit"] == "g/kg" and layers["soc_g_kg_std"]["unit"] == "g/kg"
    assert layers["soc_g_kg"]["colormap"] == "viridis" and layers["soc_g_kg_std"]["colormap"] == "magma"
    assert len(layers["soc_g_kg"]["stops"]) == 11 and layers["soc_g_kg"]["vmin"] < layers["soc_g_kg"]["vmax"]
    assert [c["value"] for c in layers["input_missing"]["classes"]] == [0, 1]
    assert summary["points"] is True
    west, south, east, north = summary["bounds"]
    assert 8 < west < east < 9 and 50.5 < south < north < 51.5


def test_tile_endpoint(client: TestClient) -> None:
    summary = client.get("/api/layers").json()
    z = summary["layers"][0]["maxzoom"]
    tile = next(iter(morecantile.tms.get("WebMercatorQuad").tiles(*summary["bounds"], zooms=[z])))
    reply = client.get(f"/tiles/soc_g_kg/{z}/{tile.x}/{tile.y}.png")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    assert reply.content[:4] == b"\x89PNG"
    assert client.get(f"/tiles/soc_g_kg/{z}/0/0.png").status_code == 204
    missing = client.get(f"/tiles/nope/{z}/{tile.x}/{tile.y}.png")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_value_endpoint_returns_every_layer_at_full_resolution(client: TestClient, published_map) -> None:
    bounds = client.get("/api/layers").json()["bounds"]
    for lon, lat in some_points(bounds, 12):
        reply = client.get("/api/value", params={"lon": lon, "lat": lat}).json()
        assert [v["layer"] for v in reply["values"]] == LAYERS
        for v in reply["values"]:
            want = cog_value(published_map.cog(v["layer"]), lon, lat)
            assert v["value"] == (None if want is None else pytest.approx(want, abs=1e-4))
    assert client.get("/api/value", params={"lon": 200, "lat": 0}).status_code == 422


def test_points_are_clustered_past_the_limit(client: TestClient, published_map) -> None:
    bounds = client.get("/api/layers").json()["bounds"]
    whole = ",".join(str(v) for v in bounds)
    clustered = client.get("/api/points", params={"bbox": whole, "zoom": 11}).json()
    assert clustered["clustered"] and clustered["total"] == len(published_map.points)
    assert sum(f["properties"]["count"] for f in clustered["features"]) == len(published_map.points)
    assert len(clustered["features"]) <= 2000
    west, south, east, north = bounds
    corner = f"{west},{south},{west + (east - west) / 4},{south + (north - south) / 4}"
    single = client.get("/api/points", params={"bbox": corner, "zoom": 14}).json()
    assert not single["clustered"] and 0 < single["total"] == len(single["features"]) <= 2000
    table = published_map.points.set_index("id")
    for feature in single["features"]:
        props = feature["properties"]
        row = table.loc[props["id"]]
        assert feature["geometry"]["coordinates"] == pytest.approx([row.lon, row.lat])
        assert props["values"]["soc_g_kg"] == pytest.approx(row.soc_g_kg)
    bad = client.get("/api/points", params={"bbox": "1,2,3", "zoom": 3})
    assert bad.status_code == 422 and "west,south,east,north" in bad.json()["detail"]


def test_no_points_table_is_a_404(published_map) -> None:
    client = TestClient(create_app(Viewer.load(ServeConfig(map=published_map.out))))
    reply = client.get("/api/points", params={"bbox": "0,0,1,1", "zoom": 3})
    assert reply.status_code == 404 and "--points" in reply.json()["detail"]


def test_a_map_on_s3_serves_the_same_tiles_and_values(s3_bucket: str, client: TestClient) -> None:
    out = f"{s3_bucket}/maps/nightly"
    write_map_outputs(out, 48, 40)
    remote = TestClient(create_app(Viewer.load(ServeConfig(map=out))))
    local_summary, remote_summary = client.get("/api/layers").json(), remote.get("/api/layers").json()
    assert remote_summary["source"] == out
    assert [x["vmin"] for x in remote_summary["layers"][:2]] == [x["vmin"] for x in local_summary["layers"][:2]]
    z = local_summary["layers"][0]["maxzoom"] + 1
    for tile in morecantile.tms.get("WebMercatorQuad").tiles(*local_summary["bounds"], zooms=[z]):
        path = f"/tiles/soc_g_kg/{z}/{tile.x}/{tile.y}.png"
        assert remote.get(path).content == client.get(path).content, path
    for lon, lat in some_points(local_summary["bounds"], 5, seed=2):
        params = {"lon": lon, "lat": lat}
        assert remote.get("/api/value", params=params).json() == client.get("/api/value", params=params).json()
