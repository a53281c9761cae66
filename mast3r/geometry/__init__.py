"""Geometry from MASt3R outputs: frames, focal estimation, poses (pycolmap), depth, triangulation,
export.

Conventions: pixels ``(x, y)`` with centres at integer coordinates (pycolmap's +0.5 is applied
only inside this package); poses 4x4 float64 named by direction (``cam_from_world``, ``T_0to1``);
quaternions ``(qw, qx, qy, qz)``.
"""

from mast3r.geometry.conventions import (
    angle_between_deg,
    default_principal_point,
    intrinsics_matrix,
    invert_pose,
    make_pose,
    matrix_to_quat_wxyz,
    project,
    quat_wxyz_to_matrix,
    relative_pose,
    rotation_error_deg,
    transform_points,
)
from mast3r.geometry.export import to_pycolmap_reconstruction, write_pair_ply
from mast3r.geometry.focal import estimate_focal, estimate_focals_torch
from mast3r.geometry.pose import (
    PoseEstimate,
    RansacConfig,
    pnp_ransac,
    pycolmap_camera,
    relative_pose_essential,
    relative_pose_pnp,
)
from mast3r.geometry.triangulate import (
    depth_from_pointmap,
    sample_map,
    scale_translation_from_depth,
    triangulate,
)

__all__ = [
    "PoseEstimate",
    "RansacConfig",
    "angle_between_deg",
    "default_principal_point",
    "depth_from_pointmap",
    "estimate_focal",
    "estimate_focals_torch",
    "intrinsics_matrix",
    "invert_pose",
    "make_pose",
    "matrix_to_quat_wxyz",
    "pnp_ransac",
    "project",
    "pycolmap_camera",
    "quat_wxyz_to_matrix",
    "relative_pose",
    "relative_pose_essential",
    "relative_pose_pnp",
    "rotation_error_deg",
    "sample_map",
    "scale_translation_from_depth",
    "to_pycolmap_reconstruction",
    "transform_points",
    "triangulate",
    "write_pair_ply",
]
