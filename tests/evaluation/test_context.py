"""Multi-scale context features: per band mean and std over centred windows, by hand."""

import numpy as np
import pytest

from soilnet.evaluation.context import check_windows, context_feature_names, context_features


def test_window_statistics_match_a_hand_computed_case():
    images = np.arange(2 * 7 * 7, dtype=np.float64).reshape(1, 2, 7, 7)  # band 1 = band 0 + 49
    features = context_features(images, [1, 3])
    # window 1: the centre pixel (row 3, col 3) = 24; window 3: rows/cols 2..4 around it
    block = images[0, 0, 2:5, 2:5]
    expected = [24, 73, 0, 0, block.mean(), block.mean() + 49, block.std(), block.std()]
    np.testing.assert_allclose(features[0], expected)
    assert context_feature_names(["a", "b"], [1, 3]) == [
        "a_mean1", "b_mean1", "a_std1", "b_std1", "a_mean3", "b_mean3", "a_std3", "b_std3",
    ]  # fmt: skip


def test_nodata_pixels_are_left_out_and_an_empty_window_is_nan():
    images = np.ones((1, 1, 5, 5))
    images[0, 0, 2, 2] = np.nan
    images[0, 0, 1, 1] = 3.0
    features = context_features(images, [1, 3])
    assert np.isnan(features[0, 0]) and np.isnan(features[0, 1])  # the centre alone: nodata
    np.testing.assert_allclose(features[0, 2], (3.0 + 7 * 1.0) / 8)  # 8 valid pixels around it


@pytest.mark.parametrize(("windows", "message"), [([4], "odd"), ([9], "does not fit"), ([], "at least one")])
def test_windows_are_checked(windows, message):
    with pytest.raises(ValueError, match=message):
        check_windows(windows, 7)
