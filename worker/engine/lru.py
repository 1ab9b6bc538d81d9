"""A bounded least-recently-used map, shared by the engine's two caches.

- the vision-state cache (``LlamaGuardClassifier``): projected vision states of an
  image, on the model's device, so a repeated image with new text skips the encoder;
- the verdict cache (``CachingClassifier``): whole results of exact-repeat prompts;
- the prefix cache (``LlamaGuardClassifier``): the policy prefix's KV cache per policy
  and assessed role, on the model's device, for text-only prompts.

Callers report hits and misses through a ``CacheObserver`` (``(cache name, hit)``):
the engine knows nothing of Prometheus; the worker passes a callback that counts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

CacheObserver = Callable[[str, bool], None]
"""Called once per lookup with the cache's name (``"vision"``, ``"verdict"``, ``"prefix"``:
one lookup per prefix group of a batch) and hit/miss."""


class LruCache(Generic[K, V]):
    """At most ``capacity`` entries; the least recently used goes first. 0 disables it."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        if not self.capacity:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
