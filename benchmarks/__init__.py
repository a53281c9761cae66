"""Benchmark harness: registries, adapters, matchers, metrics, runner, tables and the CLI."""
