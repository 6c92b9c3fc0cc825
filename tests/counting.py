"""A zarr store wrapper that counts reads, to prove what a reader does not touch."""

from collections import Counter

import zarr.storage


class CountingStore(zarr.storage.WrapperStore):
    """Counts every read request by key (full gets and byte-range gets alike) and its bytes."""

    def __init__(self, store):
        super().__init__(store)
        self.reads = Counter()
        self.bytes = Counter()

    async def get(self, key, prototype, byte_range=None):
        self.reads[key] += 1
        value = await super().get(key, prototype, byte_range)
        self.bytes[key] += 0 if value is None else len(value)
        return value

    async def get_partial_values(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self.reads[key] += 1
        values = await super().get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values, strict=True):
            self.bytes[key] += 0 if value is None else len(value)
        return values
