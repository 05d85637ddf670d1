"""Continental maps: tile grid, Ray Data batch inference, map cube, COG, STAC, previews, feature maps."""
