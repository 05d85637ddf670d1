"""On-device augmentations: exact dihedral transforms and resized crops."""

import pytest
import torch

from soilnet.ssl.augment import flip_rot90, random_resized_crops


def dihedral(image: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of one (C, H, W) image."""
    out = []
    for flipped in (image, image.flip(-1)):
        out += [torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4)]
    return out


def test_flip_rot90_applies_one_dihedral_transform_per_sample() -> None:
    images = torch.rand(64, 2, 5, 5)
    out = flip_rot90(images, generator=torch.Generator().manual_seed(0))
    chosen = set()
    for src, dst in zip(images, out, strict=True):
        matches = [i for i, t in enumerate(dihedral(src)) if torch.equal(t, dst)]
        assert len(matches) == 1
        chosen.add(matches[0])
    assert len(chosen) == 8  # every sample draws its own transform


def test_flip_rot90_needs_square_images() -> None:
    with pytest.raises(ValueError, match="square images"):
        flip_rot90(torch.rand(2, 3, 4, 5))


def test_full_crop_without_rotation_or_flip_is_the_identity() -> None:
    images = torch.rand(3, 2, 8, 8)
    out = random_resized_crops(images, 8, scale=(1.0, 1.0), flip=False)
    torch.testing.assert_close(out, images, atol=1e-5, rtol=1e-5)


def test_resized_crops_shapes_and_bad_scale() -> None:
    images = torch.rand(3, 4, 32, 32)
    out = random_resized_crops(images, 12, scale=(0.05, 0.4), max_rotation_degrees=90)
    assert out.shape == (3, 4, 12, 12)
    assert out.min() >= 0 and out.max() <= 1  # bilinear + reflection stays in range
    with pytest.raises(ValueError, match="crop scale"):
        random_resized_crops(images, 12, scale=(0.5, 0.2))
