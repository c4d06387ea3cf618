"""WorkflowCache: compiled plans by content hash, and step results.

Step results are cached for steps marked ``cache: true`` (or with a TTL), under
a key made of the handler's name and version, the params as written, the
inputs they refer to and a digest of each upstream output, so a change to any
of them is a miss. The cache is an optimisation: a store failure reading it
is a miss, writing it a skipped write (logged, counted), never a failed step;
pruning runs in a task of its own. Only successes are
cached. Values are JSON-encoded with msgspec (never pickled): a hit decodes a fresh copy,
so no two executions ever share a mutable output. An in-memory LRU, bounded by
count and bytes, sits in front of the store's ``cache_entries``; expired
entries are ignored and pruned.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from corral.core.errors import StoreError
from corral.storage.base import CacheEntry

if TYPE_CHECKING:
    from corral.storage.base import Store
    from corral.workflow.plan import Plan, StepPlan

__all__ = ["CacheStatistics", "WorkflowCache"]

log = logging.getLogger("corral.cache")
_encoder = msgspec.json.Encoder()
_MISS = object()


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    hits: int
    misses: int
    plans: int


class WorkflowCache:
    def __init__(
        self,
        store: Store,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_plans: int = 256,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.on_error = on_error  # counts a store failure (the engine's metrics)
        self._prune_due = trio.Event()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_plans = max_plans
        self.clock = clock
        self._lru: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._plans: OrderedDict[Any, Plan] = OrderedDict()
        self._puts = 0
        self.hits = 0
        self.misses = 0
        self.errors = 0

    # ------------------------------------------------------------ plans

    def plan(self, key: Any) -> Plan | None:
        plan = self._plans.get(key)
        if plan is not None:
            self._plans.move_to_end(key)
        return plan

    def keep_plan(self, key: Any, plan: Plan) -> None:
        self._plans[key] = plan
        if len(self._plans) > self.max_plans:
            self._plans.popitem(last=False)

    # ------------------------------------------------------------ results

    @staticmethod
    def key_for(sp: StepPlan, inputs: bytes | None, upstream: list[tuple[str, bytes]]) -> str:
        """The key of a step's result: its handler and version, its params as
        written (references unresolved), the execution's inputs when the
        params refer to them, and a digest of each upstream output it can
        see (``upstream``: step id and :func:`output_digest`, in step order).

        Together these determine the resolved params, so the resolved
        params (often the upstream outputs themselves, megabytes of them)
        are never encoded again just to be hashed.
        """
        assert sp.handler is not None
        h = hashlib.sha256()
        h.update(f"{sp.handler.name}\0{sp.handler.version}\0".encode())
        h.update(_written_params(sp))
        if inputs is not None:
            h.update(b"\0inputs\0")
            h.update(inputs)
        for step_id, digest in upstream:
            h.update(f"\0{step_id}\0".encode())
            h.update(digest)
        return h.hexdigest()

    @staticmethod
    def output_digest(output: Any) -> bytes:
        """A digest of a step's output as a dependent's cache key sees it
        (key order does not matter)."""
        return hashlib.blake2b(msgspec.json.encode(output, order="sorted"), digest_size=16).digest()

    async def get(self, key: str) -> Any:
        """The cached value (a fresh copy), or ``WorkflowCache.MISS``."""
        now = self.clock()
        entry = self._lru.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
            self._drop(key)
            entry = None
        if entry is None:
            try:
                entry = await self.store.get_cache(key, now)
            except StoreError as exc:  # the step runs: a miss, not a failure
                self._failed("read", exc)
                entry = None
            if entry is not None:
                self._remember(entry)
        else:
            self._lru.move_to_end(key)
        if entry is None:
            self.misses += 1
            return _MISS
        try:
            value = msgspec.json.decode(entry.value)
        except msgspec.DecodeError as exc:  # a damaged entry: recomputed
            self._drop(key)
            self._failed("read", exc)
            self.misses += 1
            return _MISS
        self.hits += 1
        return value

    MISS = _MISS

    async def put(
        self, key: str, value: Any, ttl: float | None, *, blob: bytes | None = None
    ) -> None:
        """Cache a successful result (values too large for the cache are
        skipped). ``blob``: the value already JSON-encoded, if it is."""
        if blob is None:
            try:
                blob = _encoder.encode(value)
            except (TypeError, ValueError, OverflowError):
                return
        if len(blob) > self.max_bytes:
            return
        now = self.clock()
        entry = CacheEntry(key, blob, now, None if ttl is None else now + ttl)
        self._remember(entry)
        try:
            await self.store.put_cache(entry)
        except StoreError as exc:  # the step succeeded: its result is just not kept
            self._failed("write", exc)
            return
        self._puts += 1
        if self._puts % 32 == 0:
            self._prune_due.set()  # done by keep_pruned, outside any step

    async def prune(self) -> int:
        """Apply expiry and the count and byte bounds to the persisted entries too."""
        return await self.store.prune_cache(self.clock(), self.max_entries, self.max_bytes)

    async def keep_pruned(self) -> None:
        """Run for the engine's life: prune after every 32 writes. A failure
        is logged and counted; the next round tries again."""
        while True:
            await self._prune_due.wait()
            self._prune_due = trio.Event()
            try:
                await self.prune()
            except StoreError as exc:
                self._failed("prune", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        log.warning("result cache: %s failed: %s", what, exc)
        self.errors += 1
        self.on_error()

    def _remember(self, entry: CacheEntry) -> None:
        if entry.key in self._lru:
            self._drop(entry.key)
        self._lru[entry.key] = entry
        self._bytes += len(entry.value)
        while self._lru and (len(self._lru) > self.max_entries or self._bytes > self.max_bytes):
            oldest = next(iter(self._lru))
            self._drop(oldest)

    def _drop(self, key: str) -> None:
        entry = self._lru.pop(key)
        self._bytes -= len(entry.value)

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            len(self._lru),
            self._bytes,
            self.max_entries,
            self.max_bytes,
            self.hits,
            self.misses,
            len(self._plans),
        )


def _written_params(sp: StepPlan) -> bytes:
    """The step's params as the spec writes them, encoded once per plan."""
    if sp.written_params is None:
        sp.written_params = msgspec.json.encode(sp.spec.params, order="sorted")
    return sp.written_params
