"""Feature-space maps: K-means clusters and PCA-RGB of encoder embeddings over a region."""

from __future__ import annotations

import numpy as np
import pytest

from soilnet.mapping.features import embed_region, feature_maps, write_feature_maps


def test_feature_maps_of_the_tiny_region(map_config, tmp_path) -> None:
    embeddings, valid = embed_region(map_config())
    assert embeddings.shape == (25, 25, 16) and valid.mean() > 0.9
    maps = feature_maps(embeddings, valid, k=4)
    assert set(np.unique(maps.clusters[valid])) == {0, 1, 2, 3}
    assert np.all(maps.clusters[~valid] == -1)
    assert np.nanmin(maps.rgb) >= 0 and np.nanmax(maps.rgb) <= 1 and np.isnan(maps.rgb[~valid]).all()
    written = write_feature_maps(maps, tmp_path)
    assert [p.rsplit("/", 1)[-1] for p in written] == ["clusters.png", "pca_rgb.png"]


def test_too_few_pixels_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 8 valid pixels"):
        feature_maps(np.zeros((2, 2, 4), np.float32), np.ones((2, 2), bool), k=8)
