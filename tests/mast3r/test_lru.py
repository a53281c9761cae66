"""The tiny LRU cache shared by the adapters, the network and the FRM engine pool."""

from __future__ import annotations

from mast3r.lru import LRU


def test_keeps_the_most_recently_used_entries():
    made = []
    cache = LRU(2)

    def make(k):
        def build():
            made.append(k)
            assert len(cache) < 2  # room is made before building
            return k * 10

        return build

    assert cache.get_or("a", make("a")) == "a" * 10 and cache.get_or("b", make("b")) == "b" * 10
    assert cache.get_or("a", make("a")) == "a" * 10  # hit: "a" becomes the most recent
    cache.get_or("c", make("c"))  # evicts "b"
    assert list(cache) == ["a", "c"] and made == ["a", "b", "c"]
