"""build_criterion: the official grammar, parsed without eval; everything else refused with a clear error."""

from __future__ import annotations

import pytest
import torch

from mast3r.train import (
    KNOWN_CALLS,
    MAST3R_CRITERION,
    APLoss,
    ConfLoss,
    ConfMatchingLoss,
    CriterionSpecError,
    InfoNCE,
    MatchingLoss,
    Regr3D,
    Regr3D_ScaleShiftInv,
    WeightedSum,
    build_criterion,
)


def test_release_string_builds_the_release_objects():
    crit = build_criterion(MAST3R_CRITERION)
    assert isinstance(crit, WeightedSum)
    (w1, conf), (w2, match) = crit.terms
    assert (w1, w2) == (1.0, 0.075)
    assert isinstance(conf, ConfLoss) and conf.alpha == 0.2
    regr = conf.pixel_loss
    assert type(regr) is Regr3D and regr.norm_mode == "avg_dis" and not regr.norm_all
    assert regr.sky_loss_value == 2 and regr.loss_in_log is False and regr.gt_scale is False
    assert isinstance(match, ConfMatchingLoss) and match.alpha == 10.0 and match.confmode == "mean"
    ml = match.pixel_loss
    assert isinstance(ml, MatchingLoss) and ml.blocksize == 8192 and ml.negatives_padding == 0
    assert isinstance(ml.criterion, InfoNCE) and ml.criterion.mode == "proper"
    assert ml.criterion.temperature == 0.05


@pytest.mark.parametrize("spec, weight", [
    ("-1.*MatchingLoss(APLoss(nq='torch'))", -1.0),
    ("MatchingLoss(APLoss(nq='torch', reduction='1-mean')) * 2", 2.0),
    ("+0.5*MatchingLoss(InfoNCE())", 0.5),
    ("(3*MatchingLoss(InfoNCE()))", 3.0),
])
def test_scalar_times_criterion(spec, weight):
    crit = build_criterion(spec)
    assert isinstance(crit, WeightedSum) and crit.terms[0][0] == weight
    assert isinstance(crit.terms[0][1], MatchingLoss)


def test_literals_signs_inf_none_and_sums():
    crit = build_criterion("Regr3D_ScaleShiftInv(L21, norm_mode=None, gt_scale=True, sky_loss_value=0, "
                           "max_metric_scale=inf) + ConfLoss(Regr3D(L21, '?median_dis', True, False, -1.5), "
                           "2)"
                           " + MatchingLoss(InfoNCE(mode='dual', temperature=1e-1))")
    a, b, c = (t for _, t in crit.terms)
    assert isinstance(a, Regr3D_ScaleShiftInv) and a.norm_mode == "" and a.gt_scale
    assert a.max_metric_scale == float("inf")
    assert b.alpha == 2 and b.pixel_loss.norm_mode == "median_dis" and b.pixel_loss.sky_loss_value == -1.5
    assert c.criterion.mode == "dual" and c.criterion.temperature == 0.1


@pytest.mark.parametrize("spec", [
    MAST3R_CRITERION,
    "ConfLoss(Regr3D(L21, norm_mode='avg_dis'), alpha=0.2)",
    "-1.0*MatchingLoss(APLoss(nq='torch'), withconf=True) + 0.5*Regr3D_ShiftInv(L21, sky_loss_value=0)",
    "ConfMatchingLoss(MatchingLoss(InfoNCE(mode='all'), negatives_padding=16, blocksize=64), "
    "neg_conf_loss_quantile=0.5)",
])
def test_repr_round_trips(spec):
    crit = build_criterion(spec)
    assert repr(build_criterion(repr(crit))) == repr(crit)


OFFICIAL_TEST_CRITERION = ("Regr3D_ScaleShiftInv(L21, norm_mode='?avg_dis', gt_scale=True, "
                           "sky_loss_value=0) + -1.*MatchingLoss(APLoss(nq='torch', fp=torch.float16), "
                           "negatives_padding=12288)")


def test_official_test_criterion_parses():
    crit = build_criterion(OFFICIAL_TEST_CRITERION)
    (w1, regr), (w2, ap) = crit.terms
    assert (w1, w2) == (1.0, -1.0)
    assert isinstance(regr, Regr3D_ScaleShiftInv) and regr.gt_scale and regr.sky_loss_value == 0
    assert isinstance(ap.criterion, APLoss) and ap.criterion.fp == torch.float16
    assert ap.negatives_padding == 12288
    assert repr(build_criterion(repr(crit))) == repr(crit)


def test_generator_reaches_the_matching_losses():
    gen = torch.Generator().manual_seed(3)
    crit = build_criterion(MAST3R_CRITERION, generator=gen)
    assert crit.terms[1][1].pixel_loss.generator is gen


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(CriterionSpecError) as err:
        build_criterion("ConfLoss(Regr3DX(L21), alpha=0.2)")
    msg = str(err.value)
    assert "unknown criterion 'Regr3DX'" in msg and "column 10" in msg
    assert all(name in msg for name in KNOWN_CALLS)


@pytest.mark.parametrize("spec, why", [
    ("__import__('os')", "unknown criterion '__import__'"),
    ("__import__('os').system('true')", "only calls of known names"),
    ("torch.nn.L1Loss()", "only calls of known names"),
    ("ConfLoss(Regr3D(L21).with_reduction('none'))", "only calls of known names"),
    ("MatchingLoss(InfoNCE(temperature=torch.nn))", "attribute access is not allowed (except torch."),
    ("MatchingLoss(APLoss(fp=torch.int64))", "attribute access is not allowed"),
    ("MatchingLoss(APLoss(fp='float16'))", "fp must be a floating torch dtype"),
    ("MatchingLoss((lambda: InfoNCE())())", "only calls of known names"),
    ("MatchingLoss(InfoNCE(mode=f'{1}'))", "JoinedStr is not part"),
    ("ConfLoss(x)", "unknown name 'x'"),
    ("ConfLoss(Regr3D)", "Regr3D must be called"),
    ("ConfLoss(Regr3D(L21), **{'alpha': 1})", "'**' arguments"),
    ("ConfLoss(*[Regr3D(L21)])", "'*' arguments"),
    ("2*(ConfLoss(Regr3D(L21)) + MatchingLoss(InfoNCE()))", "a number times a sum is ambiguous"),
    ("2*(3*MatchingLoss(InfoNCE()))", "an already scaled criterion"),
    ("MatchingLoss(InfoNCE()) - MatchingLoss(InfoNCE())", "BinOp is not part"),
    ("MatchingLoss(InfoNCE()) / 2", "BinOp is not part"),
    ("MatchingLoss(InfoNCE()) * MatchingLoss(InfoNCE())", "multiplies a criterion by a number"),
    ("True*MatchingLoss(InfoNCE())", "multiplies a criterion by a number"),
    ("-MatchingLoss(InfoNCE())", "a sign applies to numbers only"),
    ("0.5", "expected a criterion"),
    ("L21", "expected a criterion"),
    ("ConfLoss(Regr3D(L21), beta=1)", "bad arguments"),
    ("ConfLoss(Regr3D(L21), alpha=0)", "alpha must be a number > 0"),
    ("ConfLoss(Regr3D(L21), alpha=(1, 2))", "alpha must be a number > 0"),
    ("ConfLoss(MatchingLoss(InfoNCE()))", "ConfLoss wraps one Regr3D-family"),
    ("ConfLoss(2*Regr3D(L21))", "ConfLoss wraps one Regr3D-family"),
    ("ConfMatchingLoss(Regr3D(L21))", "wraps one MatchingLoss"),
    ("Regr3D(InfoNCE())", "the pixel criterion must be L21"),
    ("Regr3D(L21, norm_mode='avg')", "bad norm_mode 'avg'"),
    ("Regr3D(L21, norm_mode='mean_dis')", "bad norm_mode"),
    ("Regr3D(L21, loss_in_log='after')", "loss_in_log must be"),
    ("MatchingLoss(InfoNCE(mode='best'))", "mode must be"),
    ("MatchingLoss(InfoNCE(temperature=-0.05))", "temperature must be a number > 0"),
    ("MatchingLoss(APLoss(nq='sklearn'))", "only nq='torch'"),
    ("MatchingLoss(InfoNCE(mode='proper'), negatives_padding=8)", "negatives_padding needs InfoNCE"),
    ("MatchingLoss(InfoNCE(), blocksize=0)", "blocksize must be an integer >= 1"),
    ("ConfMatchingLoss(MatchingLoss(InfoNCE()), confmode='max')", "confmode must be"),
    ("ConfMatchingLoss(MatchingLoss(InfoNCE()), neg_conf_loss_quantile=2)", "neg_conf_loss_quantile"),
    ("MatchingLoss(InfoNCE(reduction='avg'))", "reduction must be one of"),
    ("MatchingLoss(InfoNCE(b'x'))", "literal of type bytes"),
    ("ConfLoss(Regr3D(L21)", "syntax error"),
    ("", "empty criterion string"),
])
def test_refused(spec, why):
    with pytest.raises(CriterionSpecError) as err:
        build_criterion(spec)
    assert why in str(err.value)
    assert isinstance(err.value, ValueError)


def test_apl_and_regr_classes_exported():
    assert isinstance(build_criterion("MatchingLoss(APLoss())").criterion, APLoss)


def test_python_api_composition_is_plain_arithmetic():
    a, b = build_criterion("MatchingLoss(InfoNCE())"), build_criterion("MatchingLoss(APLoss())")
    crit = 2 * (a + 0.5 * b)
    assert [w for w, _ in crit.terms] == [2.0, 1.0]
    assert repr(crit) == "2*MatchingLoss(InfoNCE()) + MatchingLoss(APLoss(nq='torch'))"


def test_non_scalar_reduction_is_refused_at_call():
    crit = build_criterion("MatchingLoss(InfoNCE(reduction='none'))")
    corres = torch.zeros(1, 2, 2, dtype=torch.long)
    corres[0, 1, 0] = 1
    gt = dict(corres=corres, valid_corres=torch.ones(1, 2, dtype=torch.bool))
    pred = dict(desc=torch.eye(2).reshape(1, 1, 2, 2))
    with pytest.raises(ValueError, match="reduction='none' does not give a scalar loss"):
        crit(gt, gt, pred, pred)
