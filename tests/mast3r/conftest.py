"""Fixtures for the model tests: the small official-container checkpoint loaded once, reference outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mast3r.model import Mast3r, PairOutput
from mast3r.weights import load_model

# refvec pred key for each (view, output) of ours
REF_KEYS = {
    (0, "pts3d"): "pred1_pts3d",
    (0, "conf"): "pred1_conf",
    (0, "desc"): "pred1_desc",
    (0, "desc_conf"): "pred1_desc_conf",
    (1, "pts3d"): "pred2_pts3d_in_other_view",
    (1, "conf"): "pred2_conf",
    (1, "desc"): "pred2_desc",
    (1, "desc_conf"): "pred2_desc_conf",
}


def assert_matches_reference(out: PairOutput, ref: dict[str, np.ndarray], batch_index: int = 0) -> None:
    """refvec README tolerances: pts3d/conf/desc_conf |a-b| <= 1e-4 + 1e-4|b|; desc <= 1e-5 abs."""
    for (view_idx, name), key in REF_KEYS.items():
        view = out.view0 if view_idx == 0 else out.view1
        tensor = getattr(view, name)
        assert tensor is not None, f"view{view_idx}.{name} missing"
        got = tensor[batch_index].detach().cpu().float().numpy()
        want = ref[key][0]
        assert got.shape == want.shape, f"{key}: shape {got.shape} vs {want.shape}"
        if name == "desc":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=key)


@pytest.fixture(scope="session")
def check_reference():
    """``check_reference(out, ref, batch_index=0)``: assert the refvec tolerances."""
    return assert_matches_reference


@pytest.fixture(scope="session")
def small_model(small_checkpoint: Path) -> Mast3r:
    """The small MASt3R (catmlp+dpt, 63 M params) loaded through the official container path."""
    return load_model(small_checkpoint, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def forward_ref(refvec_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """The official forward outputs: ``{"p2": {...}, "p3": {...}}``."""
    return {name: dict(np.load(refvec_dir / f"forward_{name}.npz")) for name in ("p2", "p3")}


@pytest.fixture(scope="session")
def small_outputs(small_model: Mast3r, forward_ref) -> dict[str, PairOutput]:
    """Our forward on the reference inputs (computed once per session)."""
    outs = {}
    with torch.inference_mode():
        for name, ref in forward_ref.items():
            outs[name] = small_model(torch.from_numpy(ref["view1_img"]), torch.from_numpy(ref["view2_img"]))
    return outs


@pytest.fixture(scope="session")
def refvec_images(refvec_dir: Path) -> dict[str, Path]:
    """Source images by letter: A 640x480, B 360x480 (portrait), C 700x700, D 1000x688."""
    return {p.name.split("_")[1]: p for p in sorted((refvec_dir / "images").glob("src_*.png"))}
