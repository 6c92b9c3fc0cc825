"""A zarr store wrapper that counts reads, to prove what a reader does not touch."""

from collections import Counter

import zarr.storage


class CountingStore(zarr.storage.WrapperStore):
    """Counts every read request by key (full gets and byte-range gets alike)."""

    def __init__(self, store):
        super().__init__(store)
        self.reads = Counter()

    async def get(self, key, prototype, byte_range=None):
        self.reads[key] += 1
        return await super().get(key, prototype, byte_range)

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self.reads[key] += 1
        return await super().get_partial_values(prototype, key_ranges)
