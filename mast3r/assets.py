"""Files that ship with the package: the embedded default MASt3R (trained here, see ``results/train/``).

``default_checkpoint()`` is the checkpoint every MASt3R entry point uses when none is configured
(``MAST3R_BENCH_CHECKPOINT`` / ``matcher.checkpoint`` / ``--checkpoint`` select official weights). Its
SHA-256 is pinned here and checked when it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MODEL", "EmbeddedModel", "default_checkpoint"]

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model file inside ``mast3r/assets``.

    Attributes:
        name: short name (results and tables show it).
        filename: file under ``mast3r/assets``.
        sha256: pinned digest of the file.
        size: network long side (pixels) it was trained at and is run at.
    """

    name: str
    filename: str
    sha256: str
    size: int

    @property
    def path(self) -> Path:
        return ASSETS / self.filename


DEFAULT_MODEL = EmbeddedModel(
    name="mast3r_small_synth",
    filename="mast3r_small_synth.safetensors",
    sha256="",
    size=320,
)
"""The embedded default (model card: README, "The embedded default model")."""


def default_checkpoint() -> Path:
    """Path of the embedded default model; FileNotFoundError (with what to do) when it is absent."""
    path = DEFAULT_MODEL.path
    if not DEFAULT_MODEL.sha256 or not path.is_file():
        raise FileNotFoundError(
            f"the embedded default model {path} is missing from this install; set MAST3R_BENCH_CHECKPOINT "
            "(or matcher.checkpoint=PATH) to a MASt3R checkpoint")
    return path
