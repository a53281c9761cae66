"""One writer per benchmark: render scenes and lay them out exactly as the real download.

Each module exposes ``Config`` (a frozen dataclass), ``PRESETS`` (``{"small": ..., "default": ...}``)
and ``write(root, rng, bank, config) -> dict`` (a JSON-serialisable summary for the manifest).
"""
