"""GPU matching without per-iteration host synchronisation (the ``triton`` NN backend).

Layers, each importing only those before it (``tests/mast3r/matching/test_import_graph.py``):

1. :mod:`~mast3r.matching.gpu.tables`: padded float32 / scaled fp16 tables, the fp16 score error
   bound, launch-shape helpers;
2. :mod:`~mast3r.matching.gpu.kernels`: Triton availability, the lazy kernel loader (the Triton
   sources ``_triton_kernels`` / ``_triton_screen`` are imported on first use only, so every module
   here imports without Triton) and the exhaustive NN search :func:`~mast3r.matching.gpu.kernels.nn_search`;
3. :mod:`~mast3r.matching.gpu.screen`: the fp16 screen with a certified margin (one direction, and
   the FRM half-step);
4. :mod:`~mast3r.matching.gpu.frm` (sync-free FRM loop, captured-engine pool) and
   :mod:`~mast3r.matching.gpu.dense` (dense mutual NN, joint screen).

Which backend a call uses is decided by :func:`mast3r.matching.backend.resolve_backend` alone.
Import the submodules directly; this package re-exports nothing.
"""
