"""Readers for the six benchmark downloads and the synthetic multi-view suite written in their layouts."""
