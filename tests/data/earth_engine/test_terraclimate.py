"""The TerraClimate series image: variables, scale factors, month window, band names, no fill values."""

from __future__ import annotations

import datetime as dt

from soilnet.data.bands import CLIMATE_VARIABLES
from soilnet.data.earth_engine import terraclimate


def test_months_end_at_the_sampling_month() -> None:
    months = terraclimate.climate_months(dt.date(2018, 6, 15), 61)
    assert len(months) == 61
    assert months[0] == "2013-06" and months[-1] == "2018-06"
    across_new_year = [f"2017-{m:02d}" for m in range(1, 13)] + ["2018-01"]
    assert terraclimate.climate_months(dt.date(2018, 1, 31), 13) == across_new_year
    assert terraclimate.climate_months(dt.date(2000, 12, 1), 1) == ["2000-12"]


def test_band_names_are_month_major() -> None:
    names = terraclimate.band_names(["2018-05", "2018-06"])
    assert names[:2] == ["aet_2018-05", "def_2018-05"]
    assert names[13] == "vs_2018-05" and names[14] == "aet_2018-06"
    assert len(names) == 28


def test_every_variable_has_its_catalogue_scale() -> None:
    assert tuple(terraclimate.SCALES) == tuple(CLIMATE_VARIABLES)
    assert terraclimate.SCALES["tmmx"] == 0.1 and terraclimate.SCALES["vap"] == 0.001
    assert terraclimate.SCALES["pdsi"] == 0.01 and terraclimate.SCALES["swe"] == 1.0


def test_climate_image_graph(ee_api, graph, constant) -> None:
    g = graph(terraclimate.climate_image(dt.date(2018, 6, 15), 61))
    assert [constant(a["id"]) for a in g.calls("ImageCollection.load")] == ["IDAHO_EPSCOR/TERRACLIMATE"]
    dates = {constant(a["value"]) for a in g.calls("Date") if "constantValue" in a["value"]}
    assert dates == {"2013-06-01", "2018-06-01"}
    assert [constant(a["delta"]) for a in g.calls("Date.advance")] == [1]
    renamed = [constant(a["names"]) for a in g.calls("Image.rename")]
    series_names = next(n for n in renamed if len(n) > 14)
    assert len(series_names) == 61 * 14
    assert series_names[0] == "aet_2013-06" and series_names[-1] == "vs_2018-06"
    assert list(CLIMATE_VARIABLES) in renamed
    scale_images = [constant(a["value"]) for a in g.calls("Image.constant")]
    assert [terraclimate.SCALES[v] for v in CLIMATE_VARIABLES] in scale_images
    assert {"ImageCollection.toBands", "Image.toFloat", "Collection.map"} <= g.functions()
    assert [constant(a["key"]) for a in g.calls("Collection.limit") if "key" in a] == ["system:time_start"]


def test_true_zeros_stay_and_masks_stay(ee_api, graph) -> None:
    g = graph(terraclimate.climate_image(dt.date(2018, 6, 15), 61))
    assert "Image.unmask" not in g.functions()
    assert not {"Image.where", "Image.updateMask", "Image.mask"} & g.functions()
    assert -999 not in g.constants() and -9999 not in g.constants()
