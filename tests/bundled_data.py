"""The bundled Nanjing sample as the tests read it: the raw CSV (every column, declared
labels included) converted from GCJ-02, and the study area."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from incubloc.coords import gcj02_to_wgs84
from incubloc.datasets import nanjing_incubators_path, nanjing_study_area_path
from incubloc.studyarea import StudyArea, load_study_area


def bundled(layers: list[str] | None = None) -> tuple[gpd.GeoDataFrame, StudyArea]:
    """Incubators (EPSG:4326) and the study area (only ``layers`` when given)."""
    area, csv = nanjing_study_area_path(), nanjing_incubators_path()
    if not (area.exists() and csv.exists()):
        pytest.skip("bundled Nanjing data not built")
    df = pd.read_csv(csv)
    lon, lat = gcj02_to_wgs84(df["lon"].to_numpy(), df["lat"].to_numpy())
    inc = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    return inc, load_study_area(area, layers=layers)
