"""Location encoders: Space2Vec grid cells on projected x/y, and the sphere variant without a seam at +-180."""

import numpy as np
import torch

from soilnet.models.location import LocationEncoder, lonlat_to_unit, to_lonlat, wavelengths


def test_grid_cells_are_sin_cos_of_x_and_y_over_64_geometric_wavelengths() -> None:
    encoder = LocationEncoder("grid", n_scales=64, min_wavelength=1_000.0, max_wavelength=4_000_000.0)
    lambdas = wavelengths(64, 1_000.0, 4_000_000.0)
    assert encoder.in_dim == 256 and float(lambdas[0]) == 1_000.0 and abs(float(lambdas[-1]) - 4e6) < 1e-3
    assert np.allclose(np.diff(np.log(lambdas.numpy())), np.log(4000) / 63)
    xy = torch.tensor([[4_321_000.0, 3_210_000.0]], dtype=torch.float64)
    features = encoder.encode(xy).reshape(2, 2, 64)  # (x, y) x (sin, cos) x scales
    assert torch.allclose(features[0, 0, 5], torch.sin(xy[0, 0] / lambdas[5]).float())
    assert torch.allclose(features[1, 1, 63], torch.cos(xy[0, 1] / lambdas[63]).float())
    assert encoder(xy).shape == (1, 256)


def test_sphere_encoding_has_no_seam_at_the_antimeridian() -> None:
    encoder = LocationEncoder("sphere", n_scales=64, out_dim=256).eval()
    east, west = torch.tensor([[179.999, 52.0]]), torch.tensor([[-179.999, 52.0]])  # ~137 m apart (Aleutians)
    far = torch.tensor([[179.999, 52.5]])  # ~56 km north
    elsewhere = torch.tensor([[10.0, 52.0]]), torch.tensor([[10.002, 52.0]])  # the same ~137 m, far from the seam
    with torch.no_grad():
        seam = (encoder(east) - encoder(west)).norm()
        away = (encoder(east) - encoder(far)).norm()
        same_distance = (encoder(elsewhere[0]) - encoder(elsewhere[1])).norm()
        raw_seam = (encoder.encode(east) - encoder.encode(west)).abs().max()
    assert seam < 0.05 * away
    assert seam < 2 * same_distance  # crossing the antimeridian is like any other 137 m step
    assert raw_seam < 0.15  # the finest wavelength (1 km) shifts by at most 137 m / 1 km rad
    # A naive lon/lat grid encoding puts the same two points 360 degrees apart.
    naive = LocationEncoder("grid", n_scales=64, min_wavelength=0.001, max_wavelength=360.0)
    assert (naive.encode(east) - naive.encode(west)).abs().max() > 1.0


def test_unit_vectors_and_projection_to_lonlat() -> None:
    v = lonlat_to_unit(torch.tensor([[0.0, 0.0], [90.0, 0.0], [180.0, 0.0], [-180.0, 0.0], [10.0, 90.0]]))
    expected = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    assert torch.allclose(v, expected, atol=1e-12)
    lonlat = to_lonlat(np.array([4_321_000.0]), np.array([3_210_000.0]), 3035)  # LAEA Europe's false origin
    assert np.allclose(lonlat, [[10.0, 52.0]], atol=1e-9)
