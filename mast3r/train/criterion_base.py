"""Base of the training criteria: the call convention, weighted sums, masked reductions, dtype rules.

A criterion is called ``crit(gt1, gt2, pred1, pred2) -> (loss, details)`` on the official dict views
(see :mod:`mast3r.train`). ``loss`` is a 0-d tensor with gradients; ``details`` maps descriptive names to
detached Python floats (gathered with a single device sync). The loss is always computed outside autocast,
in float32 at least (float64 inputs stay float64, except the matching criteria which run in float32 as the
official ones do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

Batch = Mapping[str, Any]
Details = dict[str, Tensor | float]


def upcast(x: Tensor) -> Tensor:
    """Half/bfloat16 floating tensors to float32; anything else unchanged."""
    if x.is_floating_point() and x.element_size() < 4:
        return x.float()
    return x


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask`` (same shape), over every dimension; 0 where the mask is empty.

    Masked-out entries must be finite (callers sanitise them first) so that no NaN reaches the gradient.
    """
    total = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device)).sum()
    return total / mask.sum().clamp(min=1).to(values.dtype)


def first_tensor_device(*views: Batch) -> torch.device:
    for view in views:
        for value in view.values():
            if isinstance(value, Tensor):
                return value.device
    return torch.device("cpu")


def details_to_floats(details: Details) -> dict[str, float]:
    """Tensors -> floats with one host transfer (a single sync on GPU)."""
    keys = [k for k, v in details.items() if isinstance(v, Tensor)]
    out = {k: float(v) for k, v in details.items() if not isinstance(v, Tensor)}
    if keys:
        stacked = torch.stack([details[k].detach().reshape(()).double() for k in keys]).cpu().tolist()
        out.update(zip(keys, stacked))
    return {k: out[k] for k in details}


def fmt_value(value: Any) -> str:
    """A literal as the criterion grammar writes it (round-trips through ``build_criterion``)."""
    if isinstance(value, Criterion):
        return repr(value)
    if isinstance(value, float):
        return "inf" if value == float("inf") else ("-inf" if value == -float("inf") else repr(value))
    return repr(value)


class Criterion:
    """A training criterion. Subclasses implement :meth:`compute` (tensor details, autocast already off)."""

    #: positional and keyword constructor arguments, for ``repr`` (set by subclasses)
    _pos: tuple[Any, ...] = ()
    _kw: tuple[tuple[str, Any], ...] = ()

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        raise NotImplementedError

    def __call__(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, dict[str, float]]:
        device = first_tensor_device(pred1, pred2, gt1, gt2)
        with torch.autocast(device_type=device.type, enabled=False):
            loss, details = self.compute(gt1, gt2, pred1, pred2)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError(f"{self!r} does not reduce to a scalar loss")
        return loss, details_to_floats(details)

    # --- composition (Python API; the parser refuses the forms whose official meaning differs) ---
    def __add__(self, other: Criterion) -> WeightedSum:
        if not isinstance(other, Criterion):
            return NotImplemented
        return WeightedSum(_terms(self) + _terms(other))

    def __mul__(self, weight: float) -> WeightedSum:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return WeightedSum(tuple((w * float(weight), c) for w, c in _terms(self)))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        parts = [fmt_value(v) for v in self._pos] + [f"{k}={fmt_value(v)}" for k, v in self._kw]
        return f"{type(self).__name__}({', '.join(parts)})"

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Random source for criteria that shuffle (no-op for the others)."""

    def children(self) -> tuple[Criterion, ...]:
        return ()


class WeightedSum(Criterion):
    """``sum_k w_k * crit_k``; details are merged in order (later terms overwrite equal keys, as official),
    unweighted."""

    def __init__(self, terms: tuple[tuple[float, Criterion], ...]):
        if not terms:
            raise ValueError("an empty sum of criteria")
        self.terms = terms

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        total: Tensor | None = None
        details: Details = {}
        for weight, crit in self.terms:
            loss, det = crit.compute(gt1, gt2, pred1, pred2)
            term = loss if weight == 1 else loss * weight
            total = term if total is None else total + term
            details.update(det)
        assert total is not None
        return total, details

    def children(self) -> tuple[Criterion, ...]:
        return tuple(c for _, c in self.terms)

    def set_generator(self, generator: torch.Generator | None) -> None:
        for _, crit in self.terms:
            crit.set_generator(generator)

    def __repr__(self) -> str:
        return " + ".join(repr(c) if w == 1 else f"{w:g}*{c!r}" for w, c in self.terms)


def _terms(crit: Criterion) -> tuple[tuple[float, Criterion], ...]:
    return crit.terms if isinstance(crit, WeightedSum) else ((1.0, crit),)


def preds_from_pair(out: Any) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """This project's ``PairOutput`` (``view0``/``view1`` with ``pts3d``, ``conf``, ``desc``, ``desc_conf``,
    both pointmaps in camera 0) -> the official ``pred1``, ``pred2`` dicts (view 1's ``pts3d`` becomes
    ``pts3d_in_other_view``); absent outputs are left out."""
    pred1 = dict(out.view0.items())
    pred2 = dict(out.view1.items())
    pred2["pts3d_in_other_view"] = pred2.pop("pts3d")
    return pred1, pred2
