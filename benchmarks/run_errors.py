"""What can go wrong in a run, and how the runner tells a broken setup, broken data and a failed
method apart.

* :class:`SetupError`: the matcher or the estimator cannot be set up (checkpoint load, config
  validation); raised once before the first sample, nothing is recorded (``run`` exits 2).
* :class:`DataChangedError`: the records of a run directory belong to other data (another data root,
  an edited file, a foreign record); nothing is resumed (``run`` exits 2).
* :class:`EmptyBenchmarkError`: the adapter lists no sample (``run`` exits 1).
* :class:`RunInterrupted`: Ctrl-C; carries how many records are kept (``run`` exits 130).
* A sample whose files are unreadable (corrupt or zero-byte image, image size != intrinsics, image
  over the pixel budget, unreadable depth map or ``.mat``) is a record of status ``data_error``
  (:func:`is_data_error`), counted apart from method failures, retried by the next run.

The pixel budget: an image of more than ``$MAST3R_BENCH_MAX_IMAGE_MPX`` megapixels (default
:data:`DEFAULT_MAX_IMAGE_MPX`) is refused from its header, before anything decodes it.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.capabilities import SetupCapable
from datasets.records import DatasetFormatError

__all__ = ["SetupError", "DataChangedError", "EmptyBenchmarkError", "RunInterrupted", "ResourceError",
           "DATA_ERROR", "MAX_MPX_ENV", "DEFAULT_MAX_IMAGE_MPX", "max_image_pixels", "is_data_error",
           "record_status", "check_sample_files", "data_error_files", "is_resource_error",
           "describe_os_error", "setup_matcher"]

DATA_ERROR = "data_error"
"""Prefix of ``Prediction.failure_reason`` (``"data_error: <file>: <problem>"``) and record status."""
MAX_MPX_ENV = "MAST3R_BENCH_MAX_IMAGE_MPX"
DEFAULT_MAX_IMAGE_MPX = 64.0


class SetupError(ValueError):
    """The matcher or estimator could not be set up (before the first sample)."""


class DataChangedError(ValueError):
    """A run directory's records do not belong to the data the adapter reads now."""


class EmptyBenchmarkError(ValueError):
    """The adapter lists no sample: there is nothing to run."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run. ``records``: records kept in ``run_dir`` (all complete, durable)."""

    def __init__(self, run_dir: Path | None, records: int) -> None:
        super().__init__(f"interrupted: {records} records kept")
        self.run_dir, self.records = run_dir, records


class ResourceError(RuntimeError):
    """The disk refused a write (full, read-only, no permission, not a folder). ``records``: records
    kept (all complete; the next run repairs a torn last line)."""

    def __init__(self, message: str, records: int | None = None) -> None:
        super().__init__(message)
        self.records = records


_RESOURCE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOTDIR,
                    errno.EEXIST, errno.EISDIR, errno.EIO, errno.EMFILE, errno.ENFILE}


def is_resource_error(exc: BaseException) -> bool:
    """An ``OSError`` of the machine (disk full, read-only, permissions, ...), not of the data."""
    return isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS


def describe_os_error(exc: OSError) -> str:
    """``"No space left on device: /path"`` (strerror and the file it concerns)."""
    what = exc.strerror or str(exc)
    where = exc.filename if exc.filename is not None else None
    return f"{what}: {where}" if where is not None else what


def setup_matcher(matcher: Any, name: str) -> None:
    """Call the matcher's optional ``setup()`` (checkpoint load, model checks); any failure is a
    :class:`SetupError` ``matcher 'NAME' cannot be set up: <Type>: <first line of the message>``."""
    if not isinstance(matcher, SetupCapable):
        return
    try:
        matcher.setup()
    except Exception as e:  # noqa: BLE001 - any failure of the setup stops the run
        msg = str(e).splitlines()[0] if str(e) else ""
        raise SetupError(f"matcher {name!r} cannot be set up: {type(e).__name__}: {msg}") from e


def max_image_pixels() -> int:
    """The pixel budget of one image (``$MAST3R_BENCH_MAX_IMAGE_MPX`` megapixels, default 64)."""
    text = os.environ.get(MAX_MPX_ENV, "").strip()
    try:
        mpx = float(text) if text else DEFAULT_MAX_IMAGE_MPX
    except ValueError:
        raise SetupError(f"${MAX_MPX_ENV}={text!r} is not a number of megapixels") from None
    if not mpx > 0:
        raise SetupError(f"${MAX_MPX_ENV}={text!r} must be > 0")
    return int(mpx * 1e6)


def _data_error_types() -> tuple[type, ...]:
    types: list[type] = [DatasetFormatError, FileNotFoundError]
    preprocess = sys.modules.get("mast3r.preprocess")  # only loaded when a network matcher ran
    if preprocess is not None and hasattr(preprocess, "ImageLoadError"):
        types.append(preprocess.ImageLoadError)
    pil = sys.modules.get("PIL.Image")
    if pil is not None:
        types.append(pil.DecompressionBombError)
    return tuple(types)


def is_data_error(exc: BaseException) -> bool:
    """Whether ``exc`` (raised while matching or solving a sample) says the sample's files are bad."""
    seen: set[int] = set()
    # also when wrapped explicitly (``raise ... from exc``); an error raised while *handling* one (its
    # ``__context__``, e.g. after a missing optional cache file) is not the data's fault
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, _data_error_types()):
            return True
        seen.add(id(exc))
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def record_status(prediction: Mapping[str, Any]) -> str:
    """``"ok"``, ``"data_error"`` or ``"failure"`` of a record's ``prediction`` dict."""
    if prediction.get("success", False):
        return "ok"
    return DATA_ERROR if str(prediction.get("failure_reason") or "").startswith(DATA_ERROR) else "failure"


def data_error_files(prediction: Mapping[str, Any]) -> str:
    """The ``<file>: <problem>`` part of a data-error record's reason."""
    return str(prediction.get("failure_reason") or "").removeprefix(f"{DATA_ERROR}:").strip()


def _check_image(path: Path, width: int | None, height: int | None, budget: int, what: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError:  # a missing file is the reader's (or matcher's) error, if it reads it at all
        return
    if size == 0:
        raise DatasetFormatError(path, None, f"{what} is an empty (0-byte) file")
    try:
        with warnings.catch_warnings():  # the budget below says it in one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)  # reads the header only
        with im:
            w, h = im.size
            if w * h > budget:
                raise DatasetFormatError(path, None, f"{what} is {w}x{h} = {w * h / 1e6:.1f} Mpx, over the "
                                         f"pixel budget of {budget / 1e6:g} Mpx (${MAX_MPX_ENV})")
            orientation = im.getexif().get(0x0112, 1) if width is not None else 1
    except DatasetFormatError:
        raise
    except Image.DecompressionBombError as e:
        raise DatasetFormatError(path, None, f"{what} refused: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetFormatError(path, None, f"cannot read {what}: {e}") from None
    if orientation in (5, 6, 7, 8):  # EXIF transposes: the displayed size is swapped
        w, h = h, w
    if width is not None and (w, h) != (width, height):
        raise DatasetFormatError(path, None, f"{what} is {w}x{h} (WxH), the dataset says {width}x{height} "
                                 "(the size its intrinsics refer to)")


def check_sample_files(sample: Any, budget: int) -> None:
    """Cheap checks of a sample's files from their headers (nothing is decoded): each view's image is
    not empty, is an image of the size the dataset gives and within ``budget`` pixels; so is its
    depth map (when given), size aside. A missing file is left to its reader to report. Raises
    :class:`DatasetFormatError`."""
    for view in sample.views:
        _check_image(Path(view.image_path), int(view.width), int(view.height), budget,
                     f"image of view {view.name!r}")
        depth = view.depth_path
        if depth is not None and Path(depth).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            _check_image(Path(depth), None, None, budget, f"depth map of view {view.name!r}")
