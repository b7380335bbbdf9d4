"""Sweep storage in an object store (``s3://bucket/prefix``): the URI, its credentials, its check.

Ray Tune reads and writes the store through pyarrow's file systems; the resume state goes the same
way (:func:`read_text`, :func:`write_text`), and the driver lease through boto3, which can make
the conditional writes a lease needs (:mod:`sweeper.run.lease_s3`; the ``s3`` extra).

Endpoint and credentials come the usual AWS way, which pyarrow and boto3 both honour:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, and for S3-compatible
stores (MinIO, moto) ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``. Credentials written into the
URI (``s3://KEY:SECRET@bucket/prefix``) are moved into those variables as the driver starts
(Ray's workers inherit them) and dropped from the URI, so that no log line, MLflow tag or Ray Tune
file ever holds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from trainables.errors import InputError

CHECK_TIMEOUT_S = 5  # connect and read timeouts of the storage check: an unreachable endpoint fails fast


def redact(uri: str) -> str:
    """``uri`` without the user name and password of its network location."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])) if "@" in parts.netloc else uri


def adopt_credentials(uri: str) -> str:
    """Move credentials written into ``uri`` into this process's AWS variables; returns ``uri`` without them."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    user, _, password = parts.netloc.rpartition("@")[0].partition(":")
    if user:
        os.environ["AWS_ACCESS_KEY_ID"] = unquote(user)
    if password:
        os.environ["AWS_SECRET_ACCESS_KEY"] = unquote(password)
    return redact(uri)


def child(uri: str, name: str) -> str:
    """``uri`` with ``/name`` appended to its path (a query such as ``?endpoint_override=`` stays last)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{name}"))


def bucket_key(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    parts = urlsplit(uri)
    return parts.netloc.rpartition("@")[2], parts.path.strip("/")


def s3_client(uri: str, timeout_s: float | None = None) -> Any:
    """A boto3 S3 client for ``uri``'s store: the AWS variables, or the URI's own
    ``endpoint_override``/``scheme``/``region`` query (pyarrow's spelling)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise InputError(
            "--storage",
            "s3:// storage needs boto3 (for the driver lease's conditional writes): pip install 'sweeper[s3]'",
        ) from None
    query = {key: values[-1] for key, values in parse_qs(urlsplit(uri).query).items()}
    options: dict[str, Any] = {}
    if "endpoint_override" in query:
        endpoint = query["endpoint_override"]
        options["endpoint_url"] = endpoint if "://" in endpoint else f"{query.get('scheme', 'https')}://{endpoint}"
    if "region" in query:
        options["region_name"] = query["region"]
    retries = {"max_attempts": 2, "mode": "standard"}
    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries=retries) if timeout_s else None
    return boto3.session.Session().client("s3", config=config, **options)


def check_object_storage(uri: str, field: str = "--storage") -> None:
    """Refuse, before a sweep starts, an object store that cannot be reached or lacks the bucket."""
    if not uri.lower().startswith("s3://"):
        return _check_with_pyarrow(uri, field)
    import botocore.exceptions as failures

    bucket, _ = bucket_key(uri)
    client = s3_client(uri, CHECK_TIMEOUT_S)
    where = f"{client.meta.endpoint_url} (bucket {bucket!r}, from {redact(uri)})"
    try:
        client.head_bucket(Bucket=bucket)
    except failures.NoCredentialsError:
        hint = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        raise InputError(field, f"no S3 credentials for {where}: {hint}") from None
    except (failures.EndpointConnectionError, failures.ConnectTimeoutError, failures.ReadTimeoutError) as error:
        raise InputError(field, f"cannot reach the object store at {where}: {type(error).__name__}") from None
    except failures.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "?"))
        why = {"404": "no such bucket", "NoSuchBucket": "no such bucket", "403": "access denied"}.get(code, code)
        raise InputError(field, f"{why} at {where}; create the bucket or check the credentials") from None
    except failures.BotoCoreError as error:
        raise InputError(field, f"cannot use the object store at {where}: {error}") from None


def _check_with_pyarrow(uri: str, field: str) -> None:
    import pyarrow.fs as pafs

    try:
        store, path = pafs.FileSystem.from_uri(uri)
        store.get_file_info(path.split("/", 1)[0])
    except (OSError, ValueError) as error:
        raise InputError(field, f"cannot use the storage {redact(uri)}: {error}") from None


def read_text(uri: str) -> str | None:
    """The object at ``uri`` as text, or None when there is none."""
    import pyarrow.fs as pafs

    store, path = pafs.FileSystem.from_uri(uri)
    if store.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with store.open_input_stream(path) as stream:
        return stream.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    """Write ``text`` to the object at ``uri`` (an object store publishes a put whole: no reader
    ever sees part of it)."""
    import pyarrow.fs as pafs

    store, path = pafs.FileSystem.from_uri(uri)
    with store.open_output_stream(path) as stream:
        stream.write(text.encode("utf-8"))


def sweep_folder(storage: str, name: str) -> str:
    """Where sweep ``name`` lives in ``storage`` (a path or a URI): ``<storage>/<name>``."""
    from sweeper.run.cluster import is_uri

    return child(storage, name) if is_uri(storage) else str(Path(storage) / name)


def open_storage(storage: str, field: str = "--storage") -> str:
    """A URI storage ready for a driver: its credentials moved into the environment, the store
    checked; returns the URI without credentials."""
    storage = adopt_credentials(storage)
    check_object_storage(storage, field)
    return storage
