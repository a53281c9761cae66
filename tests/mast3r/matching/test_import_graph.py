"""Import graph of :mod:`mast3r.matching` (read with ``ast``, nothing executed): no cycle, the GPU
layers ``tables -> kernels -> screen -> frm / dense`` import only downwards, no private helper is
imported across modules, and every module imports on this machine (Triton or not)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import mast3r.matching

ROOT = Path(mast3r.matching.__file__).parent
PKG = "mast3r.matching"
GPU_LAYERS = {"tables": 0, "kernels": 1, "screen": 2, "frm": 3, "dense": 3}
# the Triton JIT sources (moved verbatim; only gpu.kernels loads them)
TRITON_SOURCES = {f"{PKG}.gpu._triton_kernels", f"{PKG}.gpu._triton_screen"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PKG, *parts])


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) of every import statement (also inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub, None) if sub in MODULES else (base, a.name))
    return out


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}


def test_the_graph_is_read():
    graph = _graph()
    assert f"{PKG}.gpu.tables" in graph[f"{PKG}.gpu.screen"]
    assert f"{PKG}.backend" in graph[f"{PKG}.frm"]
    assert len(MODULES) >= 15


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(t):], m, t]))
            if t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_gpu_layers_import_only_downwards():
    graph = _graph()
    for name, level in GPU_LAYERS.items():
        for t in graph[f"{PKG}.gpu.{name}"]:
            assert t.startswith(f"{PKG}.gpu."), f"gpu.{name} imports {t} (outside the gpu layers)"
            leaf = t.rsplit(".", 1)[1]
            if t in TRITON_SOURCES:
                assert name == "kernels", f"gpu.{name} imports the Triton sources (only gpu.kernels may)"
                continue
            assert GPU_LAYERS[leaf] < level, f"gpu.{name} ({level}) imports gpu.{leaf} ({GPU_LAYERS[leaf]})"


def test_no_private_helper_crosses_modules():
    for m in MODULES:
        if m in TRITON_SOURCES:
            continue
        for target, name in _imports(m):
            if target.startswith(PKG) and name is not None:
                assert not name.startswith("_"), f"{m} imports the private {target}.{name}"


@pytest.mark.parametrize("name", sorted(set(MODULES) - TRITON_SOURCES))
def test_every_module_imports(name):
    importlib.import_module(name)
