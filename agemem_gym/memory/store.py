"""The chromadb store behind long-term memory: one long-lived client per location and process.

Creating and deleting a chromadb collection per episode leaks native memory (chromadb 1.x keeps
about 2.5 MB of every deleted collection), so a :class:`ChromaStore` keeps its emptied
collections in a pool and hands them to the next memory: a process holds at most as many
collections as memories were open at once.

Every call to a server goes through :meth:`ChromaStore.call`: bounded by ``timeout`` seconds,
retried ``retries`` times (every operation the memory sends is idempotent: writes are upserts
and deletes by id), then a :class:`~agemem_gym.errors.StoreUnavailableError` that says what
to check. A forked child (a fork-mode ``AsyncVectorEnv`` worker) forgets the parent's clients
and chromadb's cached systems, whose native threads do not survive a fork, and builds its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from agemem_gym.errors import ConfigError, StoreUnavailableError

logger = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
_BACKOFF = 0.25  # seconds before the first retry; doubles after each


@dataclass(frozen=True)
class StoreSettings:
    """Where chromadb keeps memories and how long a server may take to answer.

    Args:
        location: None (embedded, in memory), a directory, or an ``http(s)://host:port`` URL.
        timeout: seconds one request to a server may take before it is retried.
        retries: further tries of a request that timed out or could not connect.
    """

    location: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    @property
    def is_server(self) -> bool:
        return bool(self.location) and str(self.location).startswith(("http://", "https://"))

    @property
    def key(self) -> str:
        return str(self.location or "memory")


def _connection_errors() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.TransportError, ConnectionError, TimeoutError)


def make_chroma_client(store: str | None = None, timeout: float | None = None) -> Any:
    """A new chromadb client: in memory (None or ``"memory"``), a directory, or a server URL.

    A server is probed first with ``timeout``, so one that is down or not answering fails fast
    (:class:`ChromaStore` retries it and then raises
    :class:`~agemem_gym.errors.StoreUnavailableError`).
    """
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if store in (None, "memory", "ephemeral"):
        return chromadb.EphemeralClient(settings=settings)
    if not store.startswith(("http://", "https://")):
        return chromadb.PersistentClient(path=store, settings=settings)
    from urllib.parse import urlparse

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    _probe(store, timeout)
    url = urlparse(store)
    client = chromadb.HttpClient(host=url.hostname or "localhost", port=url.port or 8000,
                                 ssl=url.scheme == "https", settings=settings)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:  # chromadb leaves its HTTP session without a timeout
        import httpx

        session.timeout = httpx.Timeout(timeout)
    return client


def _probe(url: str, timeout: float) -> None:
    """Ask the server's heartbeat; transport errors propagate (the caller retries them)."""
    import httpx

    start = time.monotonic()
    try:
        httpx.get(f"{url.rstrip('/')}/api/v2/heartbeat", timeout=timeout).raise_for_status()
    except httpx.HTTPStatusError as e:  # something answers, but not a Chroma 1.x server
        raise StoreUnavailableError(url, "heartbeat", time.monotonic() - start, 1, e) from e


class ChromaStore:
    """One client and a pool of empty collections for one location, in one process.

    Use :func:`shared_store` to get the process's store for a location.
    """

    def __init__(self, settings: StoreSettings):
        if settings.timeout <= 0:
            raise ConfigError(f"store_timeout must be > 0 seconds, got {settings.timeout}")
        if settings.retries < 0:
            raise ConfigError(f"store_retries must be >= 0, got {settings.retries}")
        self.settings = settings
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self._in_use = 0
        self.client = self.call("connect", self._connect)

    def _connect(self) -> Any:
        if _embedded_broken and not self.settings.is_server:
            if self.settings.location is None:
                from agemem_gym.memory.array_store import ArrayClient

                return ArrayClient()
            raise ConfigError(
                f"this process was forked after its parent started chromadb, whose native "
                f"threads do not survive a fork, so it cannot open the store at "
                f"{self.settings.location}: start workers with the 'spawn' context "
                f"(vector_kwargs={{'context': 'spawn'}}) or use a Chroma server URL")
        return make_chroma_client(self.settings.location, self.settings.timeout)

    # -- collections -------------------------------------------------------------------------
    def acquire(self) -> Any:
        """An empty cosine collection, from the pool when one is free."""
        with self._lock:
            collection = self._free.pop() if self._free else None
            self._in_use += 1
        if collection is not None:
            return collection
        name = f"agemem-{uuid.uuid4().hex}"
        return self.call("create_collection", lambda: self.client.get_or_create_collection(
            name=name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None))

    def release(self, collection: Any, ids: list[str]) -> None:
        """Empty ``collection`` (its entries are ``ids``) and put it back in the pool.

        A store that fails here loses only the collection: it is dropped, not pooled.
        """
        with self._lock:
            self._in_use = max(0, self._in_use - 1)
        try:
            if ids:
                self.call("delete", lambda: collection.delete(ids=ids))
        except StoreUnavailableError as e:
            logger.warning("could not empty a memory collection: %s", e)
            return
        with self._lock:
            self._free.append(collection)

    @property
    def pooled(self) -> int:
        """Empty collections waiting for a memory."""
        return len(self._free)

    def drop_pool(self) -> None:
        """Delete the pooled collections (at exit, so a server or directory keeps none)."""
        with self._lock:
            free, self._free = self._free, []
        for collection in free:
            try:
                self.client.delete_collection(collection.name)
            except Exception:  # a store that is gone keeps them; do not wait on each
                return

    # -- calls -------------------------------------------------------------------------------
    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying a server that timed out or refused the connection."""
        if not self.settings.is_server:
            return fn()
        errors = _connection_errors()
        start = time.monotonic()
        tries = self.settings.retries + 1
        for attempt in range(1, tries + 1):
            try:
                return fn()
            except StoreUnavailableError:
                raise
            except errors as e:
                if attempt == tries:
                    raise StoreUnavailableError(self.settings.key, operation,
                                                time.monotonic() - start, tries, e) from e
                logger.warning("memory store %s: %s failed (%s); retry %d of %d",
                               self.settings.key, operation, type(e).__name__, attempt,
                               tries - 1)
                time.sleep(_BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")


_stores: dict[StoreSettings, ChromaStore] = {}
_stores_lock = threading.Lock()


def shared_store(settings: StoreSettings) -> ChromaStore:
    """The process's store for ``settings``, made on first use."""
    with _stores_lock:
        store = _stores.get(settings)
    if store is None:
        store = ChromaStore(settings)  # outside the lock: a server probe can take a while
        with _stores_lock:
            store = _stores.setdefault(settings, store)
    return store


#: True in a process forked after embedded chromadb started: chromadb hangs there, even with
#: a new client, so the in-memory store becomes :class:`~agemem_gym.memory.array_store.ArrayClient`.
_embedded_broken = False


def _forget_after_fork() -> None:
    # The parent's clients run native threads that a forked child does not have: calling
    # them hangs. Forget them (never close them: that would touch the parent's threads).
    global _stores_lock, _embedded_broken
    _embedded_broken = _embedded_broken or any(not s.settings.is_server for s in _stores.values())
    _stores.clear()
    _stores_lock = threading.Lock()
    import sys

    shared = sys.modules.get("chromadb.api.shared_system_client")
    if shared is None:  # chromadb never started here: nothing to forget
        return
    SharedSystemClient = shared.SharedSystemClient
    _embedded_broken = _embedded_broken or any(
        "fastapi" not in str(system.settings.chroma_api_impl)
        for system in SharedSystemClient._identifier_to_system.values())
    SharedSystemClient._identifier_to_system.clear()
    SharedSystemClient._identifier_to_refcount.clear()
    SharedSystemClient._refcount_lock = threading.Lock()


def _drop_pools() -> None:
    for store in list(_stores.values()):
        if store.settings.location is not None:
            store.drop_pool()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(_drop_pools)
