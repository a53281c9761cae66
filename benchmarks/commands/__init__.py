"""Subcommands of ``mast3r-bench``: one module each, discovered by ``benchmarks.cli``."""
