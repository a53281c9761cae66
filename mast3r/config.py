"""Model configuration: every constructor argument of the official MASt3R / DUSt3R checkpoints.

``ModelConfig`` is a frozen dataclass. Build it from a named preset (the four released checkpoints)
or from the ``args.model`` string a checkpoint stores, which is *parsed* (literal keyword arguments
only; never ``eval``-ed). The official loader rewrite is applied on parsing: ``ManyAR_PatchEmbed``
becomes ``PatchEmbedDust3R`` and ``landscape_only`` becomes ``False`` (portrait images then go
through the network natively, which is how the released models are used at inference).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mast3r.config_parse import ConfigError, parse_constructor_string

__all__ = ["ModelConfig", "ConfigError", "PRESETS", "parse_constructor_string"]

INF = math.inf

MAST3R_CLASS = "AsymmetricMASt3R"
DUST3R_CLASS = "AsymmetricCroCo3DStereo"
MODEL_CLASSES = (MAST3R_CLASS, DUST3R_CLASS)
HEAD_TYPES = ("linear", "dpt", "catmlp+dpt")
PATCH_EMBED_CLASSES = ("PatchEmbedDust3R", "ManyAR_PatchEmbed")


Mode = tuple[str, float, float]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an asymmetric CroCo-style two-view network (MASt3R or DUSt3R).

    Defaults are the released MASt3R ViT-L model (``ModelConfig() == ModelConfig.preset(
    "mast3r_vitl_512")``). Field names are the official constructor keyword names.

    Attributes:
        model_class: ``"AsymmetricMASt3R"`` or ``"AsymmetricCroCo3DStereo"`` (DUSt3R).
        head_type: ``"catmlp+dpt"`` (MASt3R), ``"dpt"`` or ``"linear"``.
        output_mode: ``"pts3d"`` or ``"pts3d+desc<N>"`` (N = descriptor size, MASt3R).
        depth_mode, conf_mode, desc_conf_mode: postprocess modes ``(kind, vmin, vmax)``.
        desc_mode: descriptor postprocess (``"norm"``: L2-normalised, no epsilon).
        two_confs: the local-feature head predicts its own ``desc_conf`` channel.
        img_size: (H, W) nominal training size in pixels (only checked to be patch multiples).
        pos_embed: ``"RoPE<base>"`` (2D rotary embedding with frequency base, e.g. ``RoPE100``).
        landscape_only: must be False at inference (the training-time transpose trick is not used).
        freeze, mask_ratio: training-only arguments, kept for a faithful round trip.
        dpt_layer_dims, dpt_feature_dim, dpt_last_dim, local_feat_hidden_factor: head widths. The
            defaults are the widths the official code hard-codes (DPT 96/192/384/768, 256, 128; the
            local-feature MLP's hidden size 4x its input). Other values are this project's own
            (small trained models); they are written into the constructor string only when they
            differ from the defaults, and the official loader cannot read such a string.
    """

    model_class: str = MAST3R_CLASS
    head_type: str = "catmlp+dpt"
    output_mode: str = "pts3d+desc24"
    depth_mode: Mode = ("exp", -INF, INF)
    conf_mode: Mode | None = ("exp", 1.0, INF)
    desc_mode: str = "norm"
    two_confs: bool = True
    desc_conf_mode: Mode | None = ("exp", 0.0, INF)
    patch_embed_cls: str = "PatchEmbedDust3R"
    landscape_only: bool = False
    img_size: tuple[int, int] = (512, 512)
    patch_size: int = 16
    pos_embed: str = "RoPE100"
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    mlp_ratio: float = 4.0
    norm_im2_in_dec: bool = True
    freeze: str = "none"
    mask_ratio: float = 0.9
    dpt_layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768)
    dpt_feature_dim: int = 256
    dpt_last_dim: int = 128
    local_feat_hidden_factor: float = 4.0

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ derived values
    @property
    def is_mast3r(self) -> bool:
        return self.model_class == MAST3R_CLASS

    @property
    def has_conf(self) -> bool:
        return self.conf_mode is not None

    @property
    def desc_dim(self) -> int | None:
        """Descriptor size for ``pts3d+desc<N>`` output modes, else None."""
        if self.output_mode.startswith("pts3d+desc"):
            return int(self.output_mode[len("pts3d+desc") :])
        return None

    @property
    def rope_base(self) -> float:
        return float(self.pos_embed[len("RoPE") :])

    @property
    def dpt_hooks(self) -> tuple[int, int, int, int]:
        """Indices into ``[E, D_1, ..., D_L]`` read by the DPT head (``[0, 6, 9, 12]`` for L=12)."""
        depth = self.dec_depth
        return (0, depth * 2 // 4, depth * 3 // 4, depth)

    @property
    def name(self) -> str:
        """The preset name if this config equals a preset, else ``"custom"``."""
        for key, preset in PRESETS.items():
            if preset == self:
                return key
        return "custom"

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def preset(name: str) -> ModelConfig:
        """One of :data:`PRESETS` (``mast3r_vitl_512``, ``dust3r_vitl_512_dpt``, ...)."""
        try:
            return PRESETS[name]
        except KeyError:
            hint = difflib.get_close_matches(name, PRESETS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"unknown model preset {name!r} (known: {', '.join(PRESETS)}){extra}") from None

    @staticmethod
    def from_args_string(text: str, *, loader_rewrite: bool = True) -> ModelConfig:
        """Parse a checkpoint's ``args.model`` constructor string (never evaluated).

        With ``loader_rewrite`` (the default, as the official ``load_model``), ``ManyAR_PatchEmbed``
        becomes ``PatchEmbedDust3R`` and ``landscape_only`` is forced to False.
        """
        cls_name, kwargs = parse_constructor_string(text)
        if cls_name not in MODEL_CLASSES:
            raise ConfigError(
                f"unsupported model class {cls_name!r} in {text!r} (known: {', '.join(MODEL_CLASSES)})"
            )
        if loader_rewrite:
            if kwargs.get("patch_embed_cls") == "ManyAR_PatchEmbed":
                kwargs["patch_embed_cls"] = "PatchEmbedDust3R"
            kwargs["landscape_only"] = False
        return ModelConfig.from_kwargs(cls_name, kwargs)

    @staticmethod
    def from_kwargs(model_class: str, kwargs: dict[str, Any]) -> ModelConfig:
        """Build from official constructor keyword arguments; missing ones take the official defaults."""
        if model_class not in MODEL_CLASSES:
            raise ConfigError(f"unsupported model class {model_class!r} (known: {', '.join(MODEL_CLASSES)})")
        allowed = dict(_CROCO_DEFAULTS)
        allowed.update(_DUST3R_DEFAULTS)
        allowed.update(_OWN_DEFAULTS)
        if model_class == MAST3R_CLASS:
            allowed.update(_MAST3R_DEFAULTS)
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, allowed, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"unknown argument(s) for {model_class}: {', '.join(hints)}")
        values = {**allowed, **_MAST3R_DEFAULTS, **kwargs}  # MASt3R-only fields stay inert for DUSt3R
        values["img_size"] = _pair(values["img_size"], "img_size")
        values["patch_size"] = _single_patch(values["patch_size"])
        for key in ("depth_mode", "conf_mode", "desc_conf_mode"):
            if values[key] is not None:
                values[key] = _mode(values[key], key)
        if isinstance(values["desc_mode"], tuple | list):  # official default is written ('norm')
            values["desc_mode"] = values["desc_mode"][0]
        for key in ("mlp_ratio", "mask_ratio", "local_feat_hidden_factor"):
            values[key] = float(values[key])
        values["dpt_layer_dims"] = _dims4(values["dpt_layer_dims"])
        return ModelConfig(model_class=model_class, **values)

    def to_args_string(self) -> str:
        """The official constructor expression for this config (``from_args_string`` inverts it)."""
        skip = {"model_class"}
        if not self.is_mast3r:
            skip |= set(_MAST3R_DEFAULTS)
        skip |= {k for k, v in _OWN_DEFAULTS.items() if getattr(self, k) == v}  # official strings unchanged
        parts = [f"{f.name}={_literal(getattr(self, f.name))}" for f in fields(self) if f.name not in skip]
        return f"{self.model_class}({', '.join(parts)})"

    def replace(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (infinities as strings ``"inf"``/``"-inf"``)."""
        return _jsonable(asdict(self))


# ---------------------------------------------------------------------------------------------
# Official constructor defaults (CroCoNet, AsymmetricCroCo3DStereo, AsymmetricMASt3R) used when a
# stored string omits an argument. ``norm_layer`` cannot appear in a literal string and is fixed.
_CROCO_DEFAULTS: dict[str, Any] = dict(
    img_size=224,
    patch_size=16,
    mask_ratio=0.9,
    enc_embed_dim=768,
    enc_depth=12,
    enc_num_heads=12,
    dec_embed_dim=512,
    dec_depth=8,
    dec_num_heads=16,
    mlp_ratio=4,
    norm_im2_in_dec=True,
    pos_embed="cosine",
)
_DUST3R_DEFAULTS: dict[str, Any] = dict(
    output_mode="pts3d",
    head_type="linear",
    depth_mode=("exp", -INF, INF),
    conf_mode=("exp", 1, INF),
    freeze="none",
    landscape_only=True,
    patch_embed_cls="PatchEmbedDust3R",
)
_MAST3R_DEFAULTS: dict[str, Any] = dict(desc_mode="norm", two_confs=False, desc_conf_mode=None)
# This project's head widths (not official constructor arguments; defaults = the official widths).
_OWN_DEFAULTS: dict[str, Any] = dict(
    dpt_layer_dims=(96, 192, 384, 768), dpt_feature_dim=256, dpt_last_dim=128, local_feat_hidden_factor=4.0
)


def _validate(cfg: ModelConfig) -> None:
    def fail(msg: str) -> None:
        raise ConfigError(f"invalid ModelConfig: {msg}")

    if cfg.model_class not in MODEL_CLASSES:
        fail(f"model_class {cfg.model_class!r} not in {MODEL_CLASSES}")
    if cfg.head_type not in HEAD_TYPES:
        fail(f"head_type {cfg.head_type!r} not in {HEAD_TYPES}")
    desc_dim = (
        cfg.desc_dim if cfg.output_mode.startswith("pts3d+desc") and cfg.output_mode[10:].isdigit() else None
    )
    if cfg.head_type == "catmlp+dpt":
        if not cfg.is_mast3r:
            fail("head_type 'catmlp+dpt' needs model_class AsymmetricMASt3R")
        if desc_dim is None or desc_dim <= 0:
            fail(f"head_type 'catmlp+dpt' needs output_mode 'pts3d+desc<N>', got {cfg.output_mode!r}")
    elif cfg.output_mode != "pts3d":
        fail(f"head_type {cfg.head_type!r} supports output_mode 'pts3d' only, got {cfg.output_mode!r}")
    if cfg.head_type in ("dpt", "catmlp+dpt") and cfg.dec_depth < 2:
        fail(f"DPT heads need dec_depth >= 2 (hooks [0, L*2//4, L*3//4, L]), got {cfg.dec_depth}")
    if min(cfg.dpt_layer_dims) < 1 or cfg.dpt_feature_dim < 2 or cfg.dpt_last_dim < 1:
        fail(f"DPT widths must be positive, got {cfg.dpt_layer_dims}, {cfg.dpt_feature_dim}, "
             f"{cfg.dpt_last_dim}")
    if cfg.dpt_feature_dim % 2:
        fail(f"dpt_feature_dim must be even (the head halves it), got {cfg.dpt_feature_dim}")
    if not cfg.local_feat_hidden_factor > 0:
        fail(f"local_feat_hidden_factor must be > 0, got {cfg.local_feat_hidden_factor}")
    if cfg.patch_embed_cls == "ManyAR_PatchEmbed":
        fail(
            "patch_embed_cls 'ManyAR_PatchEmbed' (transposes portrait inputs) is training-only; the official "
            "loader replaces it by 'PatchEmbedDust3R'"
        )
    if cfg.patch_embed_cls not in PATCH_EMBED_CLASSES:
        fail(f"patch_embed_cls {cfg.patch_embed_cls!r} not in {PATCH_EMBED_CLASSES}")
    if not (cfg.pos_embed.startswith("RoPE") and _is_number(cfg.pos_embed[4:])):
        fail(f"pos_embed {cfg.pos_embed!r} unsupported (only 'RoPE<base>', e.g. 'RoPE100')")
    for name, dim, heads in (
        ("enc", cfg.enc_embed_dim, cfg.enc_num_heads),
        ("dec", cfg.dec_embed_dim, cfg.dec_num_heads),
    ):
        if dim <= 0 or heads <= 0 or dim % heads:
            fail(f"{name}_embed_dim {dim} is not a positive multiple of {name}_num_heads {heads}")
        if (dim // heads) % 4:
            fail(f"{name} head dim {dim // heads} must be a multiple of 4 for 2D RoPE")
    if cfg.enc_depth < 1 or cfg.dec_depth < 1:
        fail("enc_depth and dec_depth must be >= 1")
    if cfg.patch_size <= 0 or any(s % cfg.patch_size for s in cfg.img_size):
        fail(f"img_size {cfg.img_size} must be multiples of patch_size {cfg.patch_size}")
    kind, lo, hi = cfg.depth_mode
    if kind not in ("exp", "linear", "square") or lo != -INF or hi != INF:
        fail(f"depth_mode {cfg.depth_mode!r} unsupported (kinds exp/linear/square without bounds)")
    for key in ("conf_mode", "desc_conf_mode"):
        mode = getattr(cfg, key)
        if mode is not None and mode[0] not in ("exp", "sigmoid"):
            fail(f"{key} {mode!r} unsupported (kinds exp/sigmoid)")
    if (
        cfg.head_type == "catmlp+dpt"
        and cfg.two_confs
        and cfg.desc_conf_mode is None
        and cfg.conf_mode is None
    ):
        fail("two_confs=True needs desc_conf_mode or conf_mode")
    if cfg.desc_mode != "norm":
        fail(f"desc_mode {cfg.desc_mode!r} unsupported (only 'norm')")
    if cfg.landscape_only:
        fail("landscape_only=True is a training-time transpose trick; the official loader sets it False")
    if cfg.freeze not in ("none", "mask", "encoder"):
        fail(f"freeze {cfg.freeze!r} not in ('none', 'mask', 'encoder')")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pair(value: Any, key: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ConfigError(f"{key} must be an int or a pair of ints, got {value!r}")


def _dims4(value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, tuple | list) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]), int(value[2]), int(value[3]))
    raise ConfigError(f"dpt_layer_dims must be 4 ints, got {value!r}")


def _single_patch(value: Any) -> int:
    if isinstance(value, tuple | list) and len(value) == 2 and value[0] == value[1]:
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"patch_size must be an int, got {value!r}")
    return value


def _mode(value: Any, key: str) -> Mode:
    if not (isinstance(value, tuple | list) and len(value) == 3 and isinstance(value[0], str)):
        raise ConfigError(f"{key} must be (kind, vmin, vmax), got {value!r}")
    return (value[0], float(value[1]), float(value[2]))


def _literal(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


# ---------------------------------------------------------------------------------------------
_VITL = dict(
    pos_embed="RoPE100",
    enc_embed_dim=1024,
    enc_depth=24,
    enc_num_heads=16,
    dec_embed_dim=768,
    dec_depth=12,
    dec_num_heads=12,
    depth_mode=("exp", -INF, INF),
    conf_mode=("exp", 1.0, INF),
    landscape_only=False,
    patch_embed_cls="PatchEmbedDust3R",
)
_DUST3R = dict(_VITL, model_class=DUST3R_CLASS, output_mode="pts3d", two_confs=False, desc_conf_mode=None)

PRESETS: dict[str, ModelConfig] = {
    # MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric
    "mast3r_vitl_512": ModelConfig(
        model_class=MAST3R_CLASS,
        head_type="catmlp+dpt",
        output_mode="pts3d+desc24",
        img_size=(512, 512),
        two_confs=True,
        desc_conf_mode=("exp", 0.0, INF),
        **_VITL,  # type: ignore[arg-type]
    ),
    # DUSt3R_ViTLarge_BaseDecoder_512_dpt
    "dust3r_vitl_512_dpt": ModelConfig(head_type="dpt", img_size=(512, 512), **_DUST3R),  # type: ignore[arg-type]
    # DUSt3R_ViTLarge_BaseDecoder_512_linear
    "dust3r_vitl_512_linear": ModelConfig(head_type="linear", img_size=(512, 512), **_DUST3R),  # type: ignore[arg-type]
    # DUSt3R_ViTLarge_BaseDecoder_224_linear
    "dust3r_vitl_224_linear": ModelConfig(head_type="linear", img_size=(224, 224), **_DUST3R),  # type: ignore[arg-type]
}
"""The four released checkpoints, as the official loader instantiates them."""
