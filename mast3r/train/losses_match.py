"""Descriptor matching criteria: ``InfoNCE``, ``APLoss`` (torch mode), ``MatchingLoss``, ``ConfMatchingLoss``.

``MatchingLoss`` gathers, per pair, the descriptors of view 1 at ``gt1['corres']`` and of view 2 at
``gt2['corres']`` ((x, y) pixel coordinates, (B,N,2)); row i of view 1 and row i of view 2 are the positive
pair i when ``gt1['valid_corres'][b, i]``; invalid rows are distractors only. Similarities are computed within
each pair (never across the batch). With ``negatives_padding = P`` the first P pixels of view 2 (raster order)
not in ``gt2['corres']`` are appended to view 2 as extra distractors. With N > ``blocksize`` the N rows are
shuffled per pair (torch's global RNG, or the generator given to ``set_generator``) and split into blocks of
``blocksize``; similarities are taken within blocks only. Matching losses run in float32 (official ``fp``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mast3r.train.criterion_base import Batch, Criterion, Details, masked_mean, upcast
from mast3r.train.infonce_chunked import infonce_dot

REDUCTIONS = ("mean", "sum", "1-mean", "none")
AP_BLOCK_ELEMS = 1 << 27


def similarities(d1: Tensor, d2: Tensor, euc: bool = False) -> Tensor:
    """(B,N,D) x (B,M,D) -> (B,N,M): dot products, or ``1 / (1 + euclidean distance)`` when ``euc``."""
    if euc:
        return 1 / (1 + torch.cdist(d1, d2, compute_mode="donot_use_mm_for_euclid_dist"))
    return d1 @ d2.transpose(-2, -1)


class MatchingCriterion:
    """Per-query criterion on matched descriptor lists; ``reduction`` is applied by ``MatchingLoss``."""

    def __init__(self, reduction: str = "mean", fp: torch.dtype = torch.float32):
        if not isinstance(fp, torch.dtype) or not fp.is_floating_point:
            raise ValueError(f"{type(self).__name__}: fp must be a floating torch dtype, got {fp!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, "
                             f"got {reduction!r}")
        self.reduction = reduction
        self.fp = fp

    def per_query(self, d1: Tensor, d2: Tensor, euc: bool = False) -> Tensor:
        """(B,N,D), (B,M,D) with M >= N, positives on the diagonal -> (B,N) per-query values."""
        raise NotImplementedError

    def reduce(self, values: Tensor, valid: Tensor) -> Tensor:
        if self.reduction == "none":
            raise ValueError(f"{self!r}: reduction='none' does not give a scalar loss")
        if self.reduction == "sum":
            return torch.where(valid, values, values.new_zeros(())).sum()
        mean = masked_mean(values, valid)
        return 1 - mean if self.reduction == "1-mean" else mean

    def __repr__(self) -> str:
        kw = self._kw + ((("fp", self.fp),) if self.fp != torch.float32 else ())
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in kw)})"

    _kw: tuple = ()


class InfoNCE(MatchingCriterion):
    """Official ``InfoNCE(temperature=0.07, eps=1e-8, mode='all')`` with ``s = sim / T``:

    - ``'proper'``: ``-log clip(P_ii / sum_j P_ji, eps) - log clip(P_ii / sum_j P_ij, eps)``
    - ``'dual'``: ``-log clip(P_ii^2 / sum_j P_ij / sum_j P_ji, eps)``
    - ``'all'``: ``-log clip(P_ii / sum_jk P_jk, eps)``

    with ``P = exp(s)``, evaluated in log space (logsumexp; the clip becomes a cap at ``-log eps``).
    """

    def __init__(self, temperature: float = 0.07, eps: float = 1e-8, mode: str = "all",
                 reduction: str = "mean", fp: torch.dtype = torch.float32):
        super().__init__(reduction, fp)
        if mode not in ("all", "proper", "dual"):
            raise ValueError(f"InfoNCE: mode must be 'all', 'proper' or 'dual', got {mode!r}")
        for name, value in (("temperature", temperature), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"InfoNCE: {name} must be a number > 0, got {value!r}")
        self.temperature = float(temperature)
        self.eps = float(eps)
        self.mode = mode
        self._kw = tuple((k, v) for k, v, d in (("mode", mode, "all"), ("temperature", temperature, 0.07),
                                                ("eps", eps, 1e-8), ("reduction", reduction, "mean"))
                         if v != d)

    def per_query(self, d1: Tensor, d2: Tensor, euc: bool = False) -> Tensor:
        if not euc:  # block-wise, never holding the (B,N,M) similarities
            return infonce_dot(d1, d2, self.temperature, self.mode, self.eps)
        return self.per_query_dense(d1, d2, euc)

    def per_query_dense(self, d1: Tensor, d2: Tensor, euc: bool = False) -> Tensor:
        """The same values through plain autograd on the full similarity matrix."""
        n = d1.shape[1]
        s = similarities(d1, d2, euc) / self.temperature
        s = torch.where(torch.isnan(s), -torch.inf, s)
        pos = s.diagonal(dim1=-2, dim2=-1)
        cap = -math.log(self.eps)
        if self.mode == "all":
            return (s.flatten(1).logsumexp(dim=1, keepdim=True) - pos).clamp(max=cap)
        row = s.logsumexp(dim=-1)  # over view-2 candidates of each query
        col = s.logsumexp(dim=-2)[:, :n]  # over view-1 candidates of each view-2 positive
        if self.mode == "proper":
            return (col - pos).clamp(max=cap) + (row - pos).clamp(max=cap)
        return (row + col - 2 * pos).clamp(max=cap)


class APLoss(MatchingCriterion):
    """Official ``APLoss(nq='torch')``: exact average precision of each query (one positive: the diagonal)
    = ``1 / (1 + rank)``, rank = the number of candidates scoring strictly higher than the positive.
    Not differentiable (as official); ``reduction='1-mean'`` makes it a loss. ``min``/``max``/``euc`` are
    accepted and unused, as official."""

    def __init__(self, nq: str = "torch", min: float = 0, max: float = 1, euc: bool = False,  # noqa: A002
                 reduction: str = "mean", fp: torch.dtype = torch.float32):
        super().__init__(reduction, fp)
        if nq != "torch":
            raise ValueError(f"APLoss: only nq='torch' is implemented, got {nq!r}")
        self._kw = (("nq", nq),) + ((("reduction", reduction),) if reduction != "mean" else ())

    @torch.no_grad()
    def per_query(self, d1: Tensor, d2: Tensor, euc: bool = False) -> Tensor:
        B, N, _ = d1.shape
        step = max(1, AP_BLOCK_ELEMS // max(1, B * d2.shape[1]))
        rank = torch.empty(B, N, dtype=torch.long, device=d1.device)
        for k0 in range(0, N, step):  # blocks of query rows bound the memory of the score matrix
            k1 = min(N, k0 + step)
            scores = similarities(d1[:, k0:k1], d2, euc)
            pos = scores[:, :, k0:k1].diagonal(dim1=-2, dim2=-1)
            rank[:, k0:k1] = (scores > pos[..., None]).sum(dim=-1)
        return 1.0 / (1 + rank).float()


def gather_pixels(x: Tensor, corres: Tensor) -> Tensor:
    """(B,H,W[,C]) at (B,N,2) integer (x, y) -> (B,N[,C])."""
    B, H, W = x.shape[:3]
    idx = corres[..., 1].long() * W + corres[..., 0].long()
    flat = x.reshape(B, H * W, -1)
    out = torch.take_along_dim(flat, idx[..., None], dim=1)
    return out if x.ndim == 4 else out[..., 0]


class MatchingLoss(Criterion):
    """Official ``MatchingLoss(criterion, withconf=False, use_pts3d=False, negatives_padding=0,
    blocksize=4096)`` (``use_pts3d``: match the pointmaps with euclidean similarities instead of ``desc``)."""

    def __init__(self, criterion: MatchingCriterion, withconf: bool = False, use_pts3d: bool = False,
                 negatives_padding: int = 0, blocksize: int = 4096):
        if not isinstance(criterion, MatchingCriterion):
            raise ValueError(f"MatchingLoss wraps InfoNCE or APLoss, got {criterion!r}")
        for name, value, lo in (("negatives_padding", negatives_padding, 0), ("blocksize", blocksize, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"MatchingLoss: {name} must be an integer >= {lo}, got {value!r}")
        if negatives_padding and getattr(criterion, "mode", "all") != "all":
            raise ValueError("MatchingLoss: negatives_padding needs InfoNCE mode='all' (the official "
                             "'proper'/'dual' cannot broadcast the padded columns)")
        self.criterion = criterion
        self.withconf = bool(withconf)
        self.use_pts3d = bool(use_pts3d)
        self.negatives_padding = negatives_padding
        self.blocksize = blocksize
        self.generator: torch.Generator | None = None
        self._pos = (criterion,)
        self._kw = tuple((k, v) for k, v, d in (("withconf", withconf, False),
                                                ("use_pts3d", use_pts3d, False),
                                                ("negatives_padding", negatives_padding, 0),
                                                ("blocksize", blocksize, 4096)) if v != d)

    def set_generator(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def _permutation(self, B: int, N: int, device: torch.device) -> Tensor:
        gen = self.generator
        keys = torch.rand(B, N, generator=gen, dtype=torch.float64,
                          device=gen.device if gen is not None else device)
        return keys.argsort(dim=1).to(device)

    def matches(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch, with_conf: bool
                ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Per-match criterion values (B',n) (float32), valid (B',n) bool and the confidences (B',n) at the
        matches (``desc_conf``, or ``conf`` with ``use_pts3d``), after blocking/shuffling (B' = B * N/n)."""
        k1, k2 = ("pts3d", "pts3d_in_other_view") if self.use_pts3d else ("desc", "desc")
        desc1, desc2 = pred1[k1], pred2[k2]
        c1, c2 = gt1["corres"].to(desc1.device), gt2["corres"].to(desc2.device)
        valid = gt1["valid_corres"].to(device=desc1.device, dtype=torch.bool)
        fp = self.criterion.fp
        f1 = gather_pixels(desc1, c1).to(fp)
        f2 = gather_pixels(desc2, c2).to(fp)
        conf1 = conf2 = None
        if with_conf:
            ck = "conf" if self.use_pts3d else "desc_conf"
            conf1 = upcast(gather_pixels(pred1[ck], c1))
            conf2 = upcast(gather_pixels(pred2[ck], c2))
        B, N, D = f1.shape
        if self.negatives_padding:
            f2 = torch.cat((f2, self._negatives(desc2, c2).to(fp)), dim=1)
        if N > self.blocksize:
            if N % self.blocksize:
                raise ValueError(f"MatchingLoss: {N} correspondences cannot be split in blocks of "
                                 f"{self.blocksize} (N must be a multiple of blocksize)")
            if self.negatives_padding:
                raise ValueError("MatchingLoss: negatives_padding cannot be combined with blocks "
                                 "(N > blocksize), as in the official code")
            perm = self._permutation(B, N, f1.device)
            f1 = torch.take_along_dim(f1, perm[..., None], dim=1).reshape(-1, self.blocksize, D)
            f2 = torch.take_along_dim(f2, perm[..., None], dim=1).reshape(-1, self.blocksize, D)
            valid = torch.take_along_dim(valid, perm, dim=1).reshape(-1, self.blocksize)
            if with_conf:
                conf1 = torch.take_along_dim(conf1, perm, dim=1).reshape(-1, self.blocksize)
                conf2 = torch.take_along_dim(conf2, perm, dim=1).reshape(-1, self.blocksize)
        return self.criterion.per_query(f1, f2, euc=self.use_pts3d), valid, conf1, conf2

    def _negatives(self, desc2: Tensor, corres2: Tensor) -> Tensor:
        """(B,P,D): the first P pixels of each view 2, raster order, not hit by any of its correspondences."""
        B, H, W, _ = desc2.shape
        P, HW = self.negatives_padding, H * W
        idx = corres2[..., 1].long() * W + corres2[..., 0].long()
        free = torch.ones(B, HW, dtype=torch.bool, device=desc2.device).scatter_(1, idx, False)
        order = torch.arange(HW, device=desc2.device).expand(B, HW)
        first = torch.where(free, order, order + HW).sort(dim=1).values[:, :P]
        if not first.is_cuda and bool((first >= HW).any()):
            raise ValueError(f"MatchingLoss: fewer than negatives_padding={P} free pixels in view 2")
        return torch.take_along_dim(desc2.reshape(B, HW, -1), first[..., None], dim=1)

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        values, valid, conf1, conf2 = self.matches(gt1, gt2, pred1, pred2, with_conf=self.withconf)
        loss = self.criterion.reduce(values, valid)
        details: Details = {}
        if conf1 is not None and conf2 is not None:  # official monitoring with withconf=True
            details.update(Conf1_std=conf1.detach().std(), Conf2_std=conf2.detach().std())
        details[type(self).__name__] = loss.detach()
        return loss, details

    def children(self) -> tuple[Criterion, ...]:
        return ()


class ConfMatchingLoss(Criterion):
    """Official ``ConfMatchingLoss(pixel_loss, alpha=1., confmode='prod', neg_conf_loss_quantile=False)``:
    ``mean(l * c - alpha * log c)`` over the positive matches, ``c`` = product (``'prod'``) or mean
    (``'mean'``) of the two views' confidences at the match; with ``neg_conf_loss_quantile = q`` the
    confidences of both views at the non-positive rows add ``mean(v * c - alpha * log c)`` with
    ``v`` = the (detached) q-quantile of the positive losses."""

    def __init__(self, pixel_loss: MatchingLoss, alpha: float = 1.0, confmode: str = "prod",
                 neg_conf_loss_quantile: float | bool = False):
        if not isinstance(pixel_loss, MatchingLoss):
            raise ValueError(f"ConfMatchingLoss wraps one MatchingLoss, got {pixel_loss!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"ConfMatchingLoss: alpha must be a number > 0, got {alpha!r}")
        if confmode not in ("prod", "mean"):
            raise ValueError(f"ConfMatchingLoss: confmode must be 'prod' or 'mean', got {confmode!r}")
        q = neg_conf_loss_quantile
        if not isinstance(q, (int, float)) or (q and not 0 <= q <= 1):
            raise ValueError(f"ConfMatchingLoss: neg_conf_loss_quantile must be False or in [0, 1], "
                             f"got {q!r}")
        self.pixel_loss = pixel_loss
        self.alpha = alpha
        self.confmode = confmode
        self.neg_conf_loss_quantile = q
        self._pos = (pixel_loss,)
        self._kw = tuple((k, v) for k, v, d in (("alpha", alpha, 1.0), ("confmode", confmode, "prod"),
                                                ("neg_conf_loss_quantile", q, False)) if v != d)

    def set_generator(self, generator: torch.Generator | None) -> None:
        self.pixel_loss.set_generator(generator)

    def children(self) -> tuple[Criterion, ...]:
        return (self.pixel_loss,)

    def compute(self, gt1: Batch, gt2: Batch, pred1: Batch, pred2: Batch) -> tuple[Tensor, Details]:
        loss, valid, c1, c2 = self.pixel_loss.matches(gt1, gt2, pred1, pred2, with_conf=True)
        assert c1 is not None and c2 is not None
        conf = c1 * c2 if self.confmode == "prod" else 0.5 * (c1 + c2)
        conf = torch.where(valid, conf, conf.new_ones(()))
        conf_loss = masked_mean(loss * conf - self.alpha * torch.log(conf), valid)
        if self.neg_conf_loss_quantile:
            flat = torch.where(valid, loss, torch.nan).flatten()
            value = torch.nanquantile(flat, float(self.neg_conf_loss_quantile)).detach()
            neg = ~valid
            total = conf_loss.new_zeros(())
            for c in (c1, c2):
                c = torch.where(neg, c, c.new_ones(()))
                total = total + torch.where(neg, value * c - self.alpha * torch.log(c), c.new_zeros(())).sum()
            conf_loss = conf_loss + total / (2 * neg.sum()).clamp(min=1).to(total.dtype)
        details: Details = {"matching_conf_loss": conf_loss.detach(), "Conf1_std": c1.detach().std(),
                            "Conf2_std": c2.detach().std(),
                            type(self.pixel_loss).__name__: masked_mean(loss.detach(), valid)}
        return conf_loss, details
