"""Reading inputs and writing outputs. No torch here."""

from spatialvlm_cli.io.atomic import check_writable_dir, write_text_atomic
from spatialvlm_cli.io.pointcloud import PointCloud, find_point_clouds, read_point_cloud

__all__ = ["PointCloud", "check_writable_dir", "find_point_clouds", "read_point_cloud", "write_text_atomic"]
