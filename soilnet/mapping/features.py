"""Feature-space maps (Tresson et al.): K-means clusters and a PCA-to-RGB image of encoder embeddings.

Each output pixel's window is embedded by the first fold model's image encoder; the
embeddings of the pixels inside the region are reduced to three principal components
(scaled to [0, 1] per component, 2-98 % stretch) and clustered with K-means (seeded).
Meant for regions that fit in memory (the embeddings of every pixel are held at once).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from soilnet import storage
from soilnet.data.raster_cube import decode
from soilnet.mapping.config import MapConfig
from soilnet.mapping.job import prepare_map
from soilnet.mapping.preview import save_png
from soilnet.mapping.stages import ReadStage, missing_masks, tile_row


@dataclass
class FeatureMaps:
    """Cluster labels (h, w; -1 = nodata) and RGB (h, w, 3; NaN = nodata) on the output grid."""

    clusters: np.ndarray
    rgb: np.ndarray


def embed_region(cfg: MapConfig) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (h, w, D) of every output pixel, and the mask (h, w) of pixels with a prediction."""
    prepared = prepare_map(cfg, create=False)
    spec, grid = prepared.spec, prepared.spec.grid
    out = grid.output
    reader = ReadStage(spec)
    embeddings: np.ndarray | None = None
    valid = np.zeros((out.height, out.width), dtype=bool)
    for tile in prepared.plan.tiles:
        for row in reader(tile_row(tile)):
            raw = row["image"]
            features = prepared.model.embed_tile(
                decode(raw, spec.scale, spec.offset, spec.nodata), grid.stride, cfg.mode, cfg.batch_size
            )
            if embeddings is None:
                embeddings = np.full((out.height, out.width, features.shape[1]), np.nan, dtype=np.float32)
            rows, cols = slice(tile.row0, tile.row0 + tile.height), slice(tile.col0, tile.col0 + tile.width)
            embeddings[rows, cols] = features.reshape(tile.height, tile.width, -1)
            _, all_missing = missing_masks((raw != spec.nodata).all(axis=0), grid, tile.height, tile.width)
            valid[rows, cols] = row["inside"] & ~all_missing
    if embeddings is None:
        raise ValueError(f"no tile of {cfg.raster} lies in the region {cfg.region}")
    return embeddings, valid


def feature_maps(embeddings: np.ndarray, valid: np.ndarray, k: int = 8, seed: int = 0) -> FeatureMaps:
    """K-means labels and PCA-RGB of the valid pixels' embeddings."""
    if valid.sum() < max(k, 3):
        raise ValueError(f"feature maps need at least {max(k, 3)} valid pixels, the region has {int(valid.sum())}")
    x = embeddings[valid].astype(np.float64)
    components = PCA(n_components=3, random_state=seed).fit_transform(x)
    low, high = np.percentile(components, 2, axis=0), np.percentile(components, 98, axis=0)
    colours = np.clip((components - low) / np.where(high > low, high - low, 1.0), 0, 1)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    clusters = np.full(valid.shape, -1, dtype=np.int16)
    clusters[valid] = labels
    rgb = np.full((*valid.shape, 3), np.nan, dtype=np.float32)
    rgb[valid] = colours
    return FeatureMaps(clusters, rgb)


def write_feature_maps(maps: FeatureMaps, folder: str | os.PathLike[str]) -> list[str]:
    """``clusters.png`` and ``pca_rgb.png`` under ``folder``."""
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_less(maps.clusters, 0), cmap="tab10", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="K-means cluster of encoder embeddings")
    clusters = save_png(fig, storage.join(os.fspath(folder), "clusters.png"))
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    ax.imshow(np.nan_to_num(maps.rgb, nan=1.0))
    ax.set_title("encoder embeddings: first three principal components as RGB")
    return [clusters, save_png(fig, storage.join(os.fspath(folder), "pca_rgb.png"))]
