"""Reading inputs and writing outputs. No torch here."""

from spatialvlm_cli.io.atomic import check_output_location, check_overwrite, write_bytes_atomic, write_text_atomic
from spatialvlm_cli.io.pointcloud import PointCloud, find_point_clouds, read_point_cloud

__all__ = [
    "PointCloud",
    "check_output_location",
    "check_overwrite",
    "find_point_clouds",
    "read_point_cloud",
    "write_bytes_atomic",
    "write_text_atomic",
]
