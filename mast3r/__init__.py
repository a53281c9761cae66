"""MASt3R / DUSt3R reimplementation: model, preprocessing, matching and geometry (no dataset I/O)."""
