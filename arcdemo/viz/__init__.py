"""What the lab draws: sphere geometry of a head's decision rule (``geometry``, numpy only) and the Plotly
figures built on it (``figures``)."""

from arcdemo.viz.figures import (
    CLASS_COLOURS,
    angle_histogram_figure,
    circle_figure,
    comparison_figure,
    confusion_figure,
    curves_figure,
    sphere_figure,
)
from arcdemo.viz.geometry import (
    boundary_arcs,
    circle_boundaries,
    circle_margin_zones,
    circle_regions,
    great_circle_arc,
    margin_bands,
    painted_mesh,
    project_to_3d,
    projection_axes,
    unit_rows,
)

__all__ = [
    "CLASS_COLOURS", "angle_histogram_figure", "boundary_arcs", "circle_boundaries", "circle_figure",
    "circle_margin_zones", "circle_regions", "comparison_figure", "confusion_figure", "curves_figure",
    "great_circle_arc", "margin_bands", "painted_mesh", "project_to_3d", "projection_axes", "sphere_figure",
    "unit_rows",
]
