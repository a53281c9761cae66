"""The MASt3R inference engine (:class:`~mast3r.engine.engine.Engine`), in layers:

* :mod:`~mast3r.engine.source`: checkpoint path -> file (empty: the embedded default, pinned
  SHA-256 checked), network size, memoised file SHA-256, the load;
* :mod:`~mast3r.engine.forward`: the pair forward (autocast or fast path), per-pair outputs,
  focals, fast-path options;
* :mod:`~mast3r.engine.network`: the lazily loaded network with batching, CUDA graphs, prepared
  images and forward-store keys;
* :mod:`~mast3r.engine.c2f`: coarse-to-fine on window crops;
* :mod:`~mast3r.engine.engine`: network + matching backend (:class:`mast3r.matching.MatchingBackend`).

This package knows nothing of the benchmark harness (views, correspondences, result folders).
"""
