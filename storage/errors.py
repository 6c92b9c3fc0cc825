"""Which exceptions mean "the store failed" rather than "the input is bad"."""

from __future__ import annotations

import botocore.exceptions

# s3fs turns S3's answers into OSError, but a connection that stays closed or a body cut short
# after its retries reaches the caller as botocore's own exception (BotoCoreError is public).
STORE_ERRORS: tuple[type[BaseException], ...] = (OSError, botocore.exceptions.BotoCoreError)
