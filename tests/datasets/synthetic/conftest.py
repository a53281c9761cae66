"""Fixtures for the synthetic-suite tests: a small texture bank and a render recorder."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest

from datasets.synthetic.render import Render, render
from datasets.synthetic.textures import make_texture_bank


@pytest.fixture(scope="session")
def bank():
    """A small texture bank (all photographs, two procedural textures of each kind)."""
    return make_texture_bank(np.random.default_rng(0), n_noise=2, n_rect=2)


@dataclass
class Recorded:
    K: np.ndarray
    cam_from_world: np.ndarray
    render: Render


@pytest.fixture
def record(monkeypatch):
    """``record(writer_module) -> list`` that fills with every view the writer renders, in order:
    the renderer's own K, pose (scene world frame, metres) and :class:`Render`."""

    def install(module: ModuleType) -> list[Recorded]:
        seen: list[Recorded] = []

        def recording(scene, K, cam_from_world, width, height):
            r = render(scene, K, cam_from_world, width, height)
            seen.append(Recorded(np.array(K, float), np.array(cam_from_world, float), r))
            return r

        monkeypatch.setattr(module, "render_view", recording)
        return seen

    return install


@pytest.fixture(scope="session")
def load_rgb():
    """``load_rgb(path) -> (H, W, 3) uint8``."""
    from PIL import Image

    def load(path) -> np.ndarray:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))

    return load
