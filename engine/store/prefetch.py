"""Prefetch: chunks other replicas compile, read into this replica's memory as they appear.

Every write to the shared tier announces the chunk's key (tier.py). A replica that
prefetches listens there on a thread of its own and reads each new chunk into its memory while
its budget has room (a prefetch never evicts), so that its first request on a document another
replica compiled is a local hit instead of a transfer. The tier down or restarted: the listener
waits and subscribes again; nothing it does can fail a request.
"""

from __future__ import annotations

import logging
import threading
import weakref

from engine.store.store import ChunkStore
from engine.store.tier import Subscription

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often the listener looks up from the channel to see whether to stop


class Prefetcher:
    """Listens for chunks shared by other replicas and prefetches them into one store.

    The thread holds the store weakly: it ends with the store, or with `stop`.
    """

    def __init__(self, store: ChunkStore) -> None:
        if store.tier is None:
            raise ValueError("prefetching needs a store with a shared tier")
        self.tier = store.tier
        self._store = weakref.ref(store)
        self._stop = threading.Event()
        self.num_prefetched = 0
        self._thread = threading.Thread(target=self._run, name="epic-prefetch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the listener (within POLL_S)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                subscription = self.tier.subscribe()
            except OSError as e:
                log.info("prefetch: cannot subscribe (%s); retrying", e)
                self._stop.wait(self.tier.retry_after_s)
                continue
            try:
                self._listen(subscription)
            except OSError as e:  # the tier went away: subscribe again
                log.info("prefetch: subscription lost (%s); retrying", e)
                self._stop.wait(self.tier.retry_after_s)
            finally:
                subscription.close()

    def _listen(self, subscription: Subscription) -> None:
        while not self._stop.is_set():
            key = subscription.next_key(POLL_S)
            if key is None:
                continue
            store = self._store()
            if store is None:  # the store is gone: so is the reason to listen
                self._stop.set()
                return
            try:
                if store.prefetch(key):
                    self.num_prefetched += 1
            except Exception as e:  # a bad value must not end the listener
                log.warning("prefetch of %s failed: %s", key[:40], e)
            del store
