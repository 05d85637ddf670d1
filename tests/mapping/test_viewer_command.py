"""The `soilnet serve` command line that the map job logs and the demo prints."""

from __future__ import annotations

from soilnet.mapping.viewer_command import serve_command


def test_serve_command_is_quoted_and_masks_credentials() -> None:
    assert serve_command("s3://maps/eu", "s3://b/points.parquet") == (
        "soilnet serve --map s3://maps/eu --points s3://b/points.parquet"
    )
    assert serve_command("/data/my maps/eu") == "soilnet serve --map '/data/my maps/eu'"
    assert "secret" not in serve_command("https://user:secret@host/map")
