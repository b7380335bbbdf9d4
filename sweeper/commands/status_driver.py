"""What ``sweeper status NAME`` reads from a sweep's storage (a folder or ``s3://...``): whether a
driver holds its lease and is alive, and the tracking URI its launch recorded."""

from __future__ import annotations

from typing import Any


def driver(name: str, parent: Any, storage: str | None) -> dict[str, Any] | None:
    """Whether a driver holds sweep ``name``'s lease and is alive; None where the storage holds no
    lease (a URI scheme other than s3://)."""
    from sweeper.run.cluster import is_uri, storage_root
    from sweeper.run.lease import driver_state, lease_store
    from sweeper.run.object_store import adopt_credentials, sweep_folder

    root = storage_root(storage or parent.data.tags.get("sweeper.storage"))
    folder = sweep_folder(adopt_credentials(root) if is_uri(root) else root, name)
    store = lease_store(folder)
    return None if store is None else {"folder": folder, **driver_state(folder, store)}


def recorded_tracking_uri(name: str, storage: str) -> str | None:
    """The tracking URI that sweep ``name``'s launch recorded in ``storage`` (its resume state,
    ``sweeper.json``), or None when there is none to read."""
    from sweeper.run.cluster import is_uri, storage_root
    from sweeper.run.object_store import adopt_credentials, sweep_folder
    from sweeper.run.resume_state import read_resume_state
    from trainables.errors import InputError

    root = storage_root(storage)
    folder = sweep_folder(adopt_credentials(root) if is_uri(root) else root, name)
    try:
        return str(read_resume_state(folder, name)["tracking_uri"])
    except InputError:
        return None


def driver_line(name: str, found: dict[str, Any] | None, status: str) -> str:
    """``driver: alive (pid 1234 on host h1, last heartbeat 3 s ago)``, or why there is none."""
    if found is None:
        return "driver: unknown (this URI storage holds no lease; s3:// does)"
    if found["alive"] is None:
        return f"driver: unknown ({found['folder']} is not on this machine or out of reach; give --storage)"
    if found["alive"]:
        age = found["heartbeat_age_s"]
        return f"driver: alive (pid {found['pid']} on host {found['host']}, last heartbeat {age:.0f} s ago)"
    gone = (
        f"not alive (lease of pid {found['pid']} on host {found['host']}: {found['stale']})"
        if found["lease"]
        else f"not alive (no lease in {found['folder']})"
    )
    return f"driver: {gone}" + (f"; `sweeper resume {name}` finishes the sweep" if status == "RUNNING" else "")
