"""Network building blocks with the official state-dict names: patch embedding, RoPE2D, encoder and
decoder blocks (``blocks``), the DPT decoder (``dpt``), the linear / DPT / MASt3R local-feature heads
(``heads``) and the output activations (``postprocess``)."""
