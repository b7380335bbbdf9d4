"""The driver lease as an object, ``s3://bucket/prefix/<name>/driver.lease``, written with S3's
conditional writes (boto3: pyarrow's S3 file system cannot send them).

``PutObject`` with ``If-None-Match: *`` creates the lease only where none exists; a renewal or a
take-over writes with ``If-Match`` on the ETag it read, and a release deletes the same way, so of
two writers racing on one version exactly one succeeds: the store itself decides, no claim needed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from sweeper.run.lease_files import LEASE_FILE
from sweeper.run.lease_record import is_lease, unreadable
from sweeper.run.object_store import bucket_key, s3_client

# What S3 answers when a condition fails: 412 the ETag or absence did not hold, 409 a concurrent
# conditional write to the same key won; 404 (on If-Match) the object is gone.
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409", "404"}


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _as_os_errors() -> Iterator[None]:
    """The store's failures as ``OSError``, the one kind a lease store raises."""
    import botocore.exceptions as failures

    try:
        yield
    except (failures.ClientError, failures.BotoCoreError) as error:
        raise OSError(f"S3: {error}") from error


class S3LeaseStore:
    """The lease object of one sweep folder ``s3://bucket/prefix/<name>``."""

    def __init__(self, folder: str) -> None:
        bucket, prefix = bucket_key(folder)
        self.bucket, self.key = bucket, f"{prefix}/{LEASE_FILE}".lstrip("/")
        self.where = f"s3://{self.bucket}/{self.key}"
        self.client = s3_client(folder)

    def prepare(self) -> None:
        pass  # an object store needs no folder; the bucket was checked with --storage

    def found(self) -> bool:
        return True

    def _put(self, record: dict[str, Any], **condition: str) -> bool:
        body = json.dumps(record, indent=1).encode("utf-8")
        with _as_os_errors():
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)
            except self.client.exceptions.ClientError as error:
                if _code(error) in _LOST_RACE:
                    return False
                raise
        return True

    def create(self, record: dict[str, Any]) -> bool:
        return self._put(record, IfNoneMatch="*")

    def read(self) -> dict[str, Any] | None:
        """The lease with its ``etag`` (what a conditional write names), or None when there is none."""
        with _as_os_errors():
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            except self.client.exceptions.NoSuchKey:
                return None
            etag, body = answer["ETag"], answer["Body"].read()
        try:
            lease = json.loads(body)
            if is_lease(lease):
                return {**lease, "etag": etag}
        except ValueError:
            pass
        return {**unreadable(etag.strip('"'), answer["LastModified"].timestamp()), "etag": etag}

    def replace(self, seen: dict[str, Any], record: dict[str, Any]) -> bool:
        return self._put(record, IfMatch=seen["etag"])

    def delete(self, seen: dict[str, Any]) -> None:
        with _as_os_errors():
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=seen["etag"])
            except self.client.exceptions.ClientError as error:
                if _code(error) not in _LOST_RACE:
                    raise

    @contextlib.contextmanager
    def claim(self, seen: dict[str, Any], record: dict[str, Any]) -> Iterator[bool]:
        yield True  # the conditional replace decides between takers
