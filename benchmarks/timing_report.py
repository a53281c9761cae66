"""Tables (plain text and Markdown) for ``mast3r-bench time`` reports."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

__all__ = ["forward_table", "frm_table", "dense_table", "c2f_table", "profile_table", "render_markdown"]


def _f(x: Any, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _baseline(entries: list[dict[str, Any]], variant: str, batch: int) -> float | None:
    for e in entries:
        if e.get("variant") == variant and e.get("batch") == batch and "ms_per_pair" in e:
            return float(e["ms_per_pair"])
    return None


def forward_table(entries: list[dict[str, Any]], fmt: str = "simple") -> str:
    """One row per timed forward: times, throughput, TFLOP/s, ratios vs fp32/TF32 eager (same batch)."""
    rows = []
    for e in entries:
        if "error" in e:
            rows.append([e["variant"], e["batch"], "error: " + e["error"][:60]] + [""] * 11)
            continue
        s = e["stats"]
        fp32 = _baseline(entries, "eager fp32", e["batch"])
        tf32 = _baseline(entries, "eager tf32", e["batch"])
        acc = e.get("accuracy_all") or {}
        peak = e.get("peak_activation_gb")
        mem = None if peak is None else peak + e.get("model_gb", 0.0)
        rows.append(
            [
                e["variant"],
                e["batch"],
                _f(s["median_ms"]),
                _f(s["iqr_ms"]),
                _f(e["ms_per_pair"]),
                _f(e["pairs_per_s"], 1),
                _f(e["tflops"], 0),
                _f(fp32 / e["ms_per_pair"]) + "x" if fp32 else "-",
                _f(tf32 / e["ms_per_pair"]) + "x" if tf32 else "-",
                _f(mem),
                _f(acc["pts3d_rel"] * 100 if "pts3d_rel" in acc else None, 3),
                _f(acc["frm_same"] * 100 if "frm_same" in acc else None, 1),
                _f(e.get("first_call_s"), 1),
            ]
        )
    head = [
        "variant",
        "B",
        "median ms",
        "IQR ms",
        "ms/pair",
        "pairs/s",
        "TFLOP/s",
        "vs fp32",
        "vs tf32",
        "peak GB",
        "pts3d rel %",
        "FRM same %",
        "1st call s",
    ]
    return tabulate(rows, head, tablefmt=fmt)


def frm_table(rows: list[dict[str, Any]], fmt: str = "simple") -> str:
    out = [
        [
            r["variant"],
            _f(r["stats"]["median_ms"], 3),
            _f(r["stats"].get("iqr_ms"), 3),
            r.get("matches"),
            _f(r.get("identical")),
        ]
        for r in rows
    ]
    return tabulate(out, ["FRM variant", "median ms", "IQR ms", "matches", "identical to CPU"], tablefmt=fmt)


def profile_table(rows: list[dict[str, Any]], fmt: str = "simple") -> str:
    out = [[r["name"][:70], _f(r["ms"], 3), r["calls"], r["category"]] for r in rows]
    return tabulate(out, ["kernel", "ms/iter", "calls/iter", "category"], tablefmt=fmt)


def dense_table(rows: list[dict[str, Any]], fmt: str = "simple") -> str:
    out = [
        [
            r["variant"],
            _f(r["stats"]["median_ms"], 2),
            _f(r["stats"].get("iqr_ms"), 2),
            r.get("matches", "-"),
            _f(r.get("same_as_torch")),
            _f(r.get("nn_equal_fp64_on_sample"), 5),
        ]
        for r in rows
    ]
    return tabulate(
        out,
        ["dense variant", "median ms", "IQR ms", "matches", "same as torch", "NN = fp64 (sample)"],
        tablefmt=fmt,
    )


def c2f_table(rows: list[dict[str, Any]], fmt: str = "simple") -> str:
    out = [[r["variant"], r["batch"], _f(r["stats"]["median_ms"]), _f(r["tiles_per_s"], 1)] for r in rows]
    return tabulate(out, ["coarse-to-fine tiles", "tiles/batch", "median ms", "tiles/s"], tablefmt=fmt)


def render_markdown(report: dict[str, Any]) -> str:
    """The whole report as Markdown (environment, command, one table per benchmark)."""
    env = report.get("env", {})
    tflop = (report.get("flops_per_pair") or {}).get("total", 0) / 1e12
    lines = [
        f"# MASt3R timings on {env.get('device_name', '?')}",
        "",
        f"Command: `{report.get('command', '?')}`",
        "",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()),
        "",
        f"Model: {report.get('model')} random init, input {report.get('size')} (W x H) per view; "
        f"analytic forward cost {tflop:.3f} TFLOP per pair.",
        "",
    ]
    if report.get("forward"):
        lines += ["## Forward", "", forward_table(report["forward"], "github"), ""]
    if report.get("frm"):
        lines += ["## Fast reciprocal matching (subsample 8)", "", frm_table(report["frm"], "github"), ""]
    if report.get("dense"):
        lines += ["## Dense reciprocal NN (all pixels)", "", dense_table(report["dense"], "github"), ""]
    if report.get("c2f"):
        lines += ["## Coarse-to-fine tiles", "", c2f_table(report["c2f"], "github"), ""]
    for prof in report.get("profile", []):
        lines += [
            f"## Profile: {prof['variant']} (batch {prof['batch']})",
            "",
            "By category (ms per iteration): "
            + ", ".join(f"{k} {v:.2f}" for k, v in prof["categories"].items()),
            "",
            profile_table(prof["kernels"], "github"),
            "",
        ]
    return "\n".join(lines)
