"""The driver lease on s3:// storage, against a real S3-compatible server (moto's, started here):
conditional creates and replaces decide every race, a live lease is refused naming its driver, a
stale one is taken over by exactly one of several takers, and a taken-over driver learns it.
Also the storage check (a missing bucket, an unreachable endpoint, no boto3) and the credentials
that a URI may carry."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from servers import S3_SECRET, moto_server, s3_env

from sweeper.run.lease import DriverLease, driver_state
from sweeper.run.lease_s3 import S3LeaseStore
from sweeper.run.object_store import adopt_credentials, check_object_storage, child, read_text, redact, write_text
from trainables.errors import InputError

BUCKET = "sweeps"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        boto3.client("s3", endpoint_url=url, region_name="us-east-1", **_keys()).create_bucket(Bucket=BUCKET)
        yield url


def _keys() -> dict[str, str]:
    env = s3_env("")
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}


@pytest.fixture()
def folder(endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A sweep folder of its own per test, with the AWS variables pointing at the server."""
    for key, value in s3_env(endpoint).items():
        monkeypatch.setenv(key, value)
    return f"s3://{BUCKET}/leases/{request.node.name}"


def stale_lease(folder: str, token: str = "old") -> None:
    """A lease that another machine's driver left an hour ago."""
    record = {"token": token, "host": "other-host", "pid": 4242, "heartbeat": time.time() - 3600}
    store = S3LeaseStore(folder)
    store.client.put_object(Bucket=store.bucket, Key=store.key, Body=json.dumps(record).encode())


def test_a_live_lease_is_refused_naming_its_driver_and_released_at_the_end(folder: str) -> None:
    store = S3LeaseStore(folder)
    with DriverLease(None, "s", store=S3LeaseStore(folder)):
        held = store.read()
        assert held is not None and held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(InputError) as error:
            DriverLease(None, "s", store=S3LeaseStore(folder)).acquire()
        assert f"a driver is already running it: pid {os.getpid()} on host {socket.gethostname()}" in str(error.value)
        assert f"lease {folder}/driver.lease" in str(error.value)
        assert driver_state(folder, store)["alive"] is True
    assert store.read() is None
    assert driver_state(folder, store) == {"alive": False, "lease": None}


def test_of_many_drivers_starting_together_exactly_one_gets_the_lease(folder: str) -> None:
    leases = [DriverLease(None, "s", store=S3LeaseStore(folder)) for _ in range(8)]
    outcomes: list[str] = []
    start = threading.Barrier(len(leases))

    def race(lease: DriverLease) -> None:
        start.wait()
        try:
            lease.acquire()
            outcomes.append("held")
        except InputError:
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["held"] + ["refused"] * 7
    for lease in leases:
        lease.release()
    assert S3LeaseStore(folder).read() is None


def test_a_stale_lease_is_taken_over_by_exactly_one_of_several_takers(
    folder: str, capsys: pytest.CaptureFixture
) -> None:
    stale_lease(folder)
    leases = [DriverLease(None, "s", store=S3LeaseStore(folder)) for _ in range(6)]
    outcomes: dict[int, str] = {}
    start = threading.Barrier(len(leases))

    def race(i: int) -> None:
        start.wait()
        try:
            leases[i].acquire()
            outcomes[i] = "held"
        except InputError:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [i for i, outcome in outcomes.items() if outcome == "held"]
    assert len(winners) == 1 and len(outcomes) == 6
    assert S3LeaseStore(folder).read()["token"] == leases[winners[0]].record["token"]  # type: ignore[index]
    err = capsys.readouterr().err
    assert err.count("taking over the stale lease of pid 4242 on host other-host (its last heartbeat is") == 1
    for lease in leases:
        lease.release()


def test_a_replace_with_an_old_etag_loses(folder: str) -> None:
    store = S3LeaseStore(folder)
    first = {"token": "a", "host": "h", "pid": 1, "heartbeat": time.time()}
    assert store.create(first) and not store.create({**first, "token": "b"})
    seen = store.read()
    assert seen is not None and store.replace(seen, {**first, "token": "c"})
    assert not store.replace(seen, {**first, "token": "d"})  # seen's version is gone
    store.delete(seen)  # not the current version: left alone
    current = store.read()
    assert current is not None and current["token"] == "c"
    store.delete(current)
    assert store.read() is None


def test_the_heartbeat_renews_and_a_taken_over_driver_learns_it(folder: str) -> None:
    lost: list[str] = []
    lease = DriverLease(None, "s", heartbeat_s=0.1, on_lost=lost.append, store=S3LeaseStore(folder))
    lease.acquire()
    store = S3LeaseStore(folder)
    first = store.read()
    deadline = time.monotonic() + 10
    while (store.read() or {}).get("heartbeat") == first["heartbeat"]:  # type: ignore[index]
        assert time.monotonic() < deadline, "the heartbeat was not renewed"
        time.sleep(0.05)
    stale_lease(folder, token="someone-else")
    while not lost:
        assert time.monotonic() < deadline + 10, "the driver did not learn that its lease was taken"
        time.sleep(0.05)
    assert lost == ["sweep s: the lease was taken over by " + lost[0].split("taken over by ")[1]]
    assert "pid 4242 on host other-host" in lost[0]
    lease.release()
    assert S3LeaseStore(folder).read()["token"] == "someone-else"  # type: ignore[index]  # not deleted


def test_an_endpoint_in_the_uri_query_reaches_the_same_store(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in s3_env(endpoint).items():
        if key != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(key, value)
    host = endpoint.removeprefix("http://")
    folder = f"s3://{BUCKET}/query?endpoint_override={host}&scheme=http"
    assert child(folder, "s") == f"s3://{BUCKET}/query/s?endpoint_override={host}&scheme=http"
    check_object_storage(folder)
    with DriverLease(None, "s", store=S3LeaseStore(child(folder, "s"))):
        assert S3LeaseStore(child(folder, "s")).read() is not None


def test_credentials_in_the_uri_go_to_the_environment_and_out_of_the_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    uri = f"s3://AKIAX:{S3_SECRET}%2Fpart@{BUCKET}/prefix"
    assert redact(uri) == f"s3://{BUCKET}/prefix"
    assert adopt_credentials(uri) == f"s3://{BUCKET}/prefix"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAX" and os.environ["AWS_SECRET_ACCESS_KEY"] == f"{S3_SECRET}/part"
    assert adopt_credentials("s3://b/p") == "s3://b/p"


def test_a_missing_bucket_or_an_unreachable_store_is_refused_naming_storage(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_env(endpoint).items():
        monkeypatch.setenv(key, value)
    check_object_storage(f"s3://{BUCKET}/prefix")
    with pytest.raises(InputError, match="no such bucket") as error:
        check_object_storage("s3://no-such-bucket/prefix")
    assert error.value.where == "--storage"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    with pytest.raises(InputError, match=r"cannot reach the object store at http://127\.0\.0\.1") as error:
        check_object_storage(f"s3://{BUCKET}/prefix")
    assert error.value.where == "--storage"


def test_without_boto3_s3_storage_is_refused_naming_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an install without the s3 extra sees
    with pytest.raises(InputError, match=r"needs boto3.*pip install 'sweeper\[s3\]'") as error:
        check_object_storage(f"s3://{BUCKET}/prefix")
    assert error.value.where == "--storage"


def test_the_s3_endpoint_variable_alone_reaches_the_store_for_pyarrow_and_boto3(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_env(endpoint).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    folder = f"s3://{BUCKET}/s3-variable/s"
    check_object_storage(folder)  # boto3
    assert read_text(child(folder, "sweeper.json")) is None
    write_text(child(folder, "sweeper.json"), '{"name": "s"}\n')  # pyarrow, as Ray Tune reaches the store
    assert read_text(child(folder, "sweeper.json")) == '{"name": "s"}\n'
    held = S3LeaseStore(folder)
    assert held.create({"token": "t", "heartbeat": 1.0}) and held.read()["token"] == "t"  # type: ignore[index]
