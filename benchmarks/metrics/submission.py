"""Submission files: the Map-free zip and the visuallocalization.net upload text (writers and readers).

This is the I/O side of ``benchmarks.metrics``. Poses are OpenCV ``cam_from_world`` (4, 4) float64,
metres; quaternions are written ``qw qx qy qz`` with ``qw >= 0``; numbers are written with Python's
shortest round-trip ``repr`` so nothing is lost. Errors name the file, the line and the key.
"""

from __future__ import annotations

import logging
import math
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from benchmarks.metrics._geometry import quat_wxyz_to_rotmat, rotmat_to_quat_wxyz, split_pose

__all__ = [
    "SubmissionFormatError",
    "write_mapfree_submission",
    "read_mapfree_submission",
    "read_zip_members",
    "list_zip_members",
    "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES",
    "write_visloc_results",
    "read_visloc_results",
    "read_visloc_gt",
    "read_name_map",
]

log = logging.getLogger(__name__)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class SubmissionFormatError(ValueError):
    """A submission or ground-truth file is malformed; the message is ``"where: problem"``."""


def _num(x: float) -> str:
    return repr(float(x))


def _pose_tokens(cam_from_world: np.ndarray, where: str) -> list[str]:
    """``qw qx qy qz tx ty tz`` of a world-to-camera pose, after checking it is a finite rigid motion."""
    R, t = split_pose(cam_from_world)
    if R.shape != (3, 3):
        raise ValueError(f"{where}: expected a (4, 4) or (3, 4) pose, got {np.shape(cam_from_world)}")
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise ValueError(f"{where}: pose has NaN/inf entries (pass None for a failed estimate)")
    if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise ValueError(f"{where}: the rotation block is not a rotation matrix")
    return [_num(v) for v in (*rotmat_to_quat_wxyz(R), *t)]


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def write_mapfree_submission(
    path: str | Path, poses: Mapping[str, Sequence[tuple[str, np.ndarray | None, float]]]
) -> Path:
    """Write the official Map-free submission zip (deterministic bytes).

    Args:
        path: output ``.zip``.
        poses: ``{scene: [(frame_name, cam_from_world, confidence), ...]}`` with ``frame_name`` like
            ``seq1/frame_00005.jpg``, ``cam_from_world`` (4, 4) world-to-camera in the scene frame
            (the reference image is the identity), metres, or ``None`` for a failed frame (no line:
            the evaluator counts it as a failure), and ``confidence >= 0`` (finite; ranks the AUC).

    One ``pose_<scene>.txt`` per scene at the zip root (scenes sorted, lines in the given order),
    lines ``name qw qx qy qz tx ty tz confidence``; stored uncompressed with fixed timestamps and
    permissions so the same input gives the same bytes. Raises ``ValueError`` for a name the
    evaluator cannot key (``int(name[-9:-4])``), two names with the same frame key in a scene (the
    evaluator would keep only the later), a non-rigid or non-finite pose, or a bad confidence.
    """
    path = Path(path)
    members: list[tuple[str, bytes]] = []
    for scene in sorted(poses):
        if not scene or any(c in scene for c in "/\\ \t\n"):
            raise ValueError(f"invalid scene name {scene!r}")
        lines: list[str] = []
        keys: dict[int, str] = {}
        for name, cam_from_world, confidence in poses[scene]:
            where = f"scene {scene!r} frame {name!r}"
            if not name or any(c.isspace() for c in name) or "#" in name:
                raise ValueError(f"{where}: frame names must be non-empty, without spaces or '#'")
            try:
                key = int(name[-9:-4])
            except ValueError:
                raise ValueError(f"{where}: the evaluator keys frames by int(name[-9:-4]); "
                                 "expected a name like 'seq1/frame_00005.jpg'") from None
            if key in keys:
                raise ValueError(f"{where}: same frame key {key} as {keys[key]!r} (the evaluator would "
                                 "keep only one of them)")
            keys[key] = name
            if cam_from_world is None:
                continue
            conf = float(confidence)
            if not (math.isfinite(conf) and conf >= 0):
                raise ValueError(f"{where}: confidence must be finite and >= 0, got {confidence!r}")
            lines.append(" ".join([name, *_pose_tokens(cam_from_world, where), _num(conf)]))
        members.append((f"pose_{scene}.txt", "".join(line + "\n" for line in lines).encode("utf-8")))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(_zip_info(name), data)
    return path


MAPFREE_MAX_FRAMES_PER_SCENE = 100_000
"""Frames one ``pose_<scene>.txt`` can key: the evaluator keys by ``int(name[-9:-4])``, five digits."""
MAPFREE_MAX_LINE_BYTES = 512
"""Bytes of one pose line: a name (<= 255 bytes), 8 numbers of <= 24 characters (a float64's ``repr``),
separators and the newline (<= 480), rounded up."""
MAX_MEMBER_BYTES = MAPFREE_MAX_FRAMES_PER_SCENE * MAPFREE_MAX_LINE_BYTES
"""Uncompressed bytes of one member (51,200,000): one line for every frame key a scene can have."""
MAX_TOTAL_BYTES = 256 << 20
"""Uncompressed bytes read from one zip (256 MiB = 5.2 full members; at the <= 221 bytes of a written
``seq1/frame_XXXXX.jpg`` line, 1.2 M pose lines, i.e. over 9,000 frames for each of the 130 test scenes)."""
_CHUNK = 1 << 20


def _zip_error(path: Path, exc: BaseException) -> SubmissionFormatError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SubmissionFormatError(f"{path}: not a zip file ({text})")


def list_zip_members(path: str | Path) -> list[str]:
    """Member names of a zip, in central-directory order (nothing is decompressed)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path, "r") as zf:
            return [info.filename for info in zf.infolist()]
    except FileNotFoundError:
        raise SubmissionFormatError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _zip_error(path, exc) from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, where: str) -> bytes:
    """The member's bytes, streamed; more than ``cap`` bytes (whatever the declared size) raises."""
    chunks: list[bytes] = []
    total = 0
    with zf.open(info) as fh:
        while chunk := fh.read(min(_CHUNK, cap + 1 - total)):
            total += len(chunk)
            if total > cap:
                raise SubmissionFormatError(f"{where}: holds more than {cap} bytes uncompressed although it "
                                            f"declares {info.file_size}; refusing to read further")
            chunks.append(chunk)
    return b"".join(chunks)


def read_zip_members(path: str | Path, names: Iterable[str] | None = None, *,
                     max_member_bytes: int = MAX_MEMBER_BYTES,
                     max_total_bytes: int = MAX_TOTAL_BYTES) -> dict[str, bytes]:
    """Members of a zip, name -> bytes (a repeated name keeps the last, like ``ZipFile.open``).

    ``names``: read only these members (absent ones are simply not in the result); default all.
    Bounded: a member whose declared uncompressed size exceeds ``max_member_bytes``, or members whose
    declared sizes add up to more than ``max_total_bytes``, raise :class:`SubmissionFormatError`
    before anything is decompressed; reading stops at the cap if a declared size lies. The defaults
    are what a Map-free submission can need (:data:`MAX_MEMBER_BYTES`, :data:`MAX_TOTAL_BYTES`).
    """
    path = Path(path)
    wanted = None if names is None else set(names)
    try:
        with zipfile.ZipFile(path, "r") as zf:
            infos = {info.filename: info for info in zf.infolist()
                     if wanted is None or info.filename in wanted}
            total = 0
            for name, info in infos.items():
                if info.file_size > max_member_bytes:
                    raise SubmissionFormatError(
                        f"{path}:{name}: {info.file_size} bytes uncompressed, over the cap of "
                        f"{max_member_bytes} bytes for one member (a Map-free pose file needs at most "
                        f"{MAPFREE_MAX_FRAMES_PER_SCENE} lines of {MAPFREE_MAX_LINE_BYTES} bytes)")
                total += info.file_size
            if total > max_total_bytes:
                raise SubmissionFormatError(
                    f"{path}: members hold {total} bytes uncompressed, over the cap of {max_total_bytes} "
                    "bytes for one submission")
            out: dict[str, bytes] = {}
            left = max_total_bytes
            for name, info in infos.items():
                where = f"{path}:{name}"
                try:
                    out[name] = _read_member(zf, info, min(max_member_bytes, left), where)
                except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
                        OSError) as exc:
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise SubmissionFormatError(f"{where}: corrupt or unsupported member ({text})") from None
                left -= len(out[name])
            return out
    except SubmissionFormatError:
        raise
    except FileNotFoundError:
        raise SubmissionFormatError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _zip_error(path, exc) from None


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionFormatError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _floats(tokens: Sequence[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise SubmissionFormatError(f"{where}: expected numbers, got {' '.join(tokens)!r}") from None


def _pose_from_tokens(values: Sequence[float]) -> np.ndarray:
    """(4, 4) world-to-camera from ``qw qx qy qz tx ty tz``; NaN matrix for an unusable quaternion."""
    T = np.eye(4)
    T[:3, :3] = quat_wxyz_to_rotmat(np.array(values[:4]))
    T[:3, 3] = values[4:7]
    if not np.all(np.isfinite(T)):
        T[:] = np.nan
    return T


def read_mapfree_submission(path: str | Path) -> dict[str, list[tuple[str, np.ndarray, float]]]:
    """Read a Map-free submission zip strictly (for round trips and inspection, not for scoring).

    Returns ``{scene: [(frame_name, cam_from_world (4, 4), confidence), ...]}`` in file order from the
    root-level ``pose_<scene>.txt`` members (others are ignored with a warning). Any line that is not
    ``name`` + 8 numbers (blank lines aside) raises :class:`SubmissionFormatError`. Scoring uses the
    evaluator's own lenient parser, ``benchmarks.metrics.mapfree.load_poses``.
    """
    out: dict[str, list[tuple[str, np.ndarray, float]]] = {}
    poses = []
    for member in dict.fromkeys(list_zip_members(path)):
        if "/" in member or not (member.startswith("pose_") and member.endswith(".txt")):
            log.warning("%s: ignoring member %r (not a root-level pose_<scene>.txt)", path, member)
        else:
            poses.append(member)
    for member, data in read_zip_members(path, poses).items():
        rows = out.setdefault(member[5:-4], [])
        for number, line in enumerate(_decode(data, f"{path}:{member}").splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{path}:{member}:{number}"
            if len(tokens) != 9:
                raise SubmissionFormatError(f"{where}: expected 'name qw qx qy qz tx ty tz confidence', "
                                            f"got {len(tokens)} fields")
            values = _floats(tokens[1:], where)
            rows.append((tokens[0], _pose_from_tokens(values), values[7]))
    return out


def _basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def write_visloc_results(path: str | Path, results: Iterable[tuple[str, np.ndarray | None]]) -> Path:
    """Write a visuallocalization.net upload file (Aachen, InLoc): ``basename qw qx qy qz tx ty tz``.

    Args:
        path: output text file (e.g. ``Aachen_eval_<method>.txt``).
        results: ``(query_name, cam_from_world)`` per query, in the order to write; ``query_name`` may
            include folders (only the basename is written); ``cam_from_world`` (4, 4) world-to-camera,
            or ``None`` for a failed query.

    A failed query still gets a line with the IDENTITY pose (``1 0 0 0 0 0 0``), as dust3r's
    ``export_results`` does (hloc writes whatever its fallback pose is): the server then scores it as
    a miss. Two queries with the same basename raise ``ValueError`` (the format cannot tell them apart).
    """
    path = Path(path)
    lines: list[str] = []
    seen: dict[str, str] = {}
    for name, cam_from_world in results:
        base = _basename(name)
        if not base or any(c.isspace() for c in base):
            raise ValueError(f"query {name!r}: invalid name (empty or with spaces)")
        if base in seen:
            raise ValueError(f"queries {seen[base]!r} and {name!r} have the same basename {base!r}")
        seen[base] = name
        pose = np.eye(4) if cam_from_world is None else cam_from_world
        lines.append(" ".join([base, *_pose_tokens(pose, f"query {name!r}")]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _data_lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SubmissionFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise SubmissionFormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if tokens and not tokens[0].startswith("#"):
            yield number, tokens


def read_visloc_results(path: str | Path) -> dict[str, np.ndarray]:
    """Read an upload file: basename -> (4, 4) ``cam_from_world``.

    Blank lines and lines starting with ``#`` are skipped. A name with folders is keyed by its
    basename. A line with NaN/inf or a zero quaternion gives a NaN pose (scored as a failure, with a
    warning). A wrong field count, a non-number or a repeated basename raises
    :class:`SubmissionFormatError`.
    """
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    lines_of: dict[str, int] = {}
    for number, tokens in _data_lines(path):
        where = f"{path}:{number}"
        if len(tokens) != 8:
            raise SubmissionFormatError(f"{where}: expected 'name qw qx qy qz tx ty tz', "
                                        f"got {len(tokens)} fields")
        base = _basename(tokens[0])
        if base in out:
            raise SubmissionFormatError(f"{where}: query {base!r} already given on line {lines_of[base]}")
        pose = _pose_from_tokens(_floats(tokens[1:], where))
        if not np.all(np.isfinite(pose)):
            log.warning("%s: unusable pose for %r; it counts as a failure", where, base)
        out[base] = pose
        lines_of[base] = number
    return out


def read_visloc_gt(path: str | Path) -> list[tuple[str, np.ndarray, str | None]]:
    """Read a ground-truth file: lines ``name qw qx qy qz tx ty tz [condition]`` (world-to-camera).

    Returns ``[(name, cam_from_world (4, 4), condition or None), ...]`` in file order. Names keep their
    folders (``query/night/nexus5x/IMG_....jpg``). Blank and ``#`` lines are skipped; a wrong field
    count, a non-number, a non-finite value, a zero quaternion or a repeated name raises
    :class:`SubmissionFormatError`.
    """
    path = Path(path)
    out: list[tuple[str, np.ndarray, str | None]] = []
    seen: dict[str, int] = {}
    for number, tokens in _data_lines(path):
        where = f"{path}:{number}"
        if len(tokens) not in (8, 9):
            raise SubmissionFormatError(f"{where}: expected 'name qw qx qy qz tx ty tz [condition]', "
                                        f"got {len(tokens)} fields")
        if tokens[0] in seen:
            raise SubmissionFormatError(f"{where}: query {tokens[0]!r} already given on line "
                                        f"{seen[tokens[0]]}")
        pose = _pose_from_tokens(_floats(tokens[1:8], where))
        if not np.all(np.isfinite(pose)):
            raise SubmissionFormatError(f"{where}: non-finite value or zero quaternion in the ground truth")
        seen[tokens[0]] = number
        out.append((tokens[0], pose, tokens[8] if len(tokens) == 9 else None))
    return out


def read_name_map(path: str | Path) -> dict[str, str]:
    """Read ``name value`` lines (e.g. an InLoc ``query building`` map); repeated names raise."""
    path = Path(path)
    out: dict[str, str] = {}
    for number, tokens in _data_lines(path):
        if len(tokens) != 2:
            raise SubmissionFormatError(f"{path}:{number}: expected 'name value', got {len(tokens)} fields")
        if tokens[0] in out:
            raise SubmissionFormatError(f"{path}:{number}: {tokens[0]!r} given twice")
        out[tokens[0]] = tokens[1]
    return out
