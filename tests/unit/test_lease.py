"""The driver lease: one driver per sweep, stale leases taken over, races won by exactly one.

The races are real: separate processes released at the same instant try to acquire the lease.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper.run.lease import LEASE_FILE, DriverLease, driver_state
from sweeper.run.lease_files import read_lease
from sweeper.run.lease_record import machine, start_ticks
from trainables.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def write_lease(folder: Path, **fields: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"sweep": "s", "host": "other-host", "pid": 4242, "token": "old", "heartbeat": time.time(), **fields}
    (folder / LEASE_FILE).write_text(json.dumps(record))


def test_acquire_renew_release(tmp_path: Path) -> None:
    lease = DriverLease(tmp_path / "s", "s", heartbeat_s=0.1)
    lease.acquire()
    first = read_lease(tmp_path / "s" / LEASE_FILE)
    assert first is not None and first["pid"] == os.getpid() and first["host"] == machine()["host"]
    assert first["pid_start"] == start_ticks(os.getpid()) and first["stale_after_s"] == 60.0
    time.sleep(0.5)
    renewed = read_lease(tmp_path / "s" / LEASE_FILE)
    assert renewed is not None and renewed["heartbeat"] > first["heartbeat"]
    assert driver_state(tmp_path / "s")["alive"] is True
    lease.release()
    assert not (tmp_path / "s" / LEASE_FILE).exists()
    assert driver_state(tmp_path / "s") == {"alive": False, "lease": None}
    assert [p.name for p in (tmp_path / "s").iterdir()] == []  # no temporary or claim file left


def test_the_lease_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), DriverLease(tmp_path, "s"):
        raise RuntimeError("boom")
    assert not (tmp_path / LEASE_FILE).exists()


def test_a_live_lease_is_refused_naming_host_pid_and_heartbeat(tmp_path: Path) -> None:
    with DriverLease(tmp_path, "s"):
        with pytest.raises(InputError) as refused:
            DriverLease(tmp_path, "s").acquire()
        message = str(refused.value)
        assert message.startswith("sweep 's': a driver is already running it: ")
        assert f"pid {os.getpid()} on host {machine()['host']}, last heartbeat 0 s ago" in message
        assert "\n" not in message
    write_lease(tmp_path, heartbeat=time.time() - 30)  # another machine's, within the timeout
    with pytest.raises(InputError, match="pid 4242 on host other-host, last heartbeat 30 s ago"):
        DriverLease(tmp_path, "s").acquire()


def test_a_heartbeat_older_than_the_timeout_is_taken_over(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_lease(tmp_path, heartbeat=time.time() - 600)
    assert driver_state(tmp_path)["alive"] is False
    with DriverLease(tmp_path, "s"):
        assert read_lease(tmp_path / LEASE_FILE)["pid"] == os.getpid()  # type: ignore[index]
    err = capsys.readouterr().err
    assert "taking over the stale lease of pid 4242 on host other-host (its last heartbeat is 600 s old" in err


def test_a_dead_pid_on_this_machine_is_taken_over_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lease(tmp_path, **machine(), pid=int(gone.stdout), heartbeat=time.time())
    with DriverLease(tmp_path, "s"):
        pass
    assert f"stale lease of pid {int(gone.stdout)} on host {machine()['host']} (its process is gone)" in (
        capsys.readouterr().err
    )


def test_a_reused_pid_is_told_apart_by_its_start_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    own = start_ticks(os.getpid())
    assert own is not None
    write_lease(tmp_path, **machine(), pid=os.getpid(), pid_start=own - 1)
    with DriverLease(tmp_path, "s"):
        pass
    assert "(its pid now belongs to another process)" in capsys.readouterr().err
    write_lease(tmp_path, **machine(), pid=os.getpid(), pid_start=own, heartbeat=time.time() - 600)
    with pytest.raises(InputError):  # alive on this machine: an old heartbeat alone is not enough
        DriverLease(tmp_path, "s").acquire()


def test_a_driver_whose_lease_was_taken_over_stops(tmp_path: Path) -> None:
    lost: list[str] = []
    lease = DriverLease(tmp_path, "s", heartbeat_s=0.05, on_lost=lost.append)
    lease.acquire()
    write_lease(tmp_path, token="someone-else")
    deadline = time.monotonic() + 5
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    lease.release()
    assert lost and "taken over by pid 4242 on host other-host" in lost[0]
    assert read_lease(tmp_path / LEASE_FILE)["token"] == "someone-else"  # type: ignore[index]


RACER = """
import sys, time
from pathlib import Path
from sweeper.run.lease import DriverLease
from trainables.errors import InputError
folder, start = Path(sys.argv[1]), float(sys.argv[2])
lease = DriverLease(folder, "s")
time.sleep(max(0.0, start - time.time()))
try:
    lease.acquire()
except InputError:
    print("lost", flush=True)
    sys.exit(0)
print("won", flush=True)
time.sleep(max(0.0, start + 3 - time.time()))  # hold it until every racer has tried
lease.release()
"""


def race(folder: Path, racers: int = 4) -> tuple[list[str], str]:
    start = time.time() + 4  # after every racer's imports
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(folder), str(start)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(racers)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return sorted(out.strip() for out, _ in outs), "".join(err for _, err in outs)


@pytest.mark.parametrize("round_", range(3))
def test_racing_drivers_exactly_one_wins(tmp_path: Path, round_: int) -> None:
    results, _ = race(tmp_path / "s")
    assert results == ["lost", "lost", "lost", "won"]
    assert not (tmp_path / "s" / LEASE_FILE).exists()


@pytest.mark.parametrize("round_", range(3))
def test_racing_takers_of_a_stale_lease_exactly_one_wins(tmp_path: Path, round_: int) -> None:
    write_lease(tmp_path / "s", heartbeat=time.time() - 600)
    results, err = race(tmp_path / "s")
    assert results == ["lost", "lost", "lost", "won"]
    assert err.count("taking over the stale lease of pid 4242") == 1, err
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == []  # claims removed, lease released


def test_a_claim_left_by_a_taker_that_died_is_itself_taken_over(tmp_path: Path) -> None:
    write_lease(tmp_path, heartbeat=time.time() - 600)
    claim = {"host": "third-host", "pid": 7, "token": "dead-claim", "heartbeat": time.time() - 600}
    (tmp_path / f"{LEASE_FILE}.claim-old").write_text(json.dumps(claim))
    with DriverLease(tmp_path, "s"):
        assert read_lease(tmp_path / LEASE_FILE)["pid"] == os.getpid()  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_status_says_whether_the_driver_is_alive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sweeper.cli import main
    from sweeper.tracking.runs import start_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage = tmp_path / "sweeps"
    start_sweep("s", None, uri, tags={"sweeper.storage": str(storage)}, sweep_file="name: s\n")
    with DriverLease(storage / "s", "s"):
        assert main(["status", "s", "--tracking-uri", uri]) == 0
        assert f"driver: alive (pid {os.getpid()} on host {machine()['host']}, last heartbeat 0 s ago)" in (
            capsys.readouterr().out
        )
    assert main(["status", "s", "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"driver: not alive (no lease in {storage / 's'}); `sweeper resume s` finishes the sweep" in out
    write_lease(tmp_path / "elsewhere" / "s", heartbeat=time.time() - 600)
    assert main(["status", "s", "--tracking-uri", uri, "--storage", str(tmp_path / "elsewhere"), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["driver"]
    assert found["alive"] is False and found["pid"] == 4242 and "600 s old" in found["stale"]


def test_launch_holds_the_lease_on_a_local_storage_and_none_on_a_gs_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweeper.run import launch
    from sweeper.spec.loading import from_mapping

    sweep = {"name": "s", "method": "lipsum_ft", "model": "zoo/tiny-clip-v1", "search": {"L": {"grid": [2]}}}
    spec = from_mapping({**sweep, "data": {"source": "shapes", "id": "photo", "ood": ["sketch"]}})
    monkeypatch.chdir(tmp_path)
    seen: list[dict | None] = []
    monkeypatch.setattr(launch, "_launch", lambda spec, storage, *rest: seen.append(driver_state(Path(storage) / "s")))
    assert launch.launch(spec, storage=str(tmp_path / "sweeps")) is None
    assert seen[0] is not None and seen[0]["alive"] is True and seen[0]["pid"] == os.getpid()
    assert not (tmp_path / "sweeps" / "s" / LEASE_FILE).exists()  # released at the end
    # gs:// cannot hold a lease (s3:// can: tests/unit/test_lease_s3.py); the store is not checked here.
    monkeypatch.setattr(launch, "open_storage", lambda storage: storage)
    launch.launch(spec, storage="gs://bucket/prefix")  # no lease, and no local folder for it
    assert seen[1] == {"alive": None, "lease": None} and not (tmp_path / "gs:").exists()


def test_an_unreadable_lease_counts_by_its_file_time(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / LEASE_FILE).write_text('{"token": "x", "heartbeat": "soon"')
    with pytest.raises(InputError, match=re.escape("pid ? on host ?, last heartbeat 0 s ago")):
        DriverLease(tmp_path, "s").acquire()
    os.utime(tmp_path / LEASE_FILE, (time.time() - 600, time.time() - 600))
    with DriverLease(tmp_path, "s"):
        pass
    assert "taking over the stale lease of pid ? on host ?" in capsys.readouterr().err


HOLDER = """
import sys, time
from pathlib import Path
from sweeper.run.lease import DriverLease
DriverLease(Path(sys.argv[1]), "s", heartbeat_s=0.1).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_driver_process_whose_lease_was_taken_over_exits(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        write_lease(tmp_path, token="someone-else")
        assert holder.wait(timeout=20) == 1
        assert holder.stderr is not None
        err = holder.stderr.read()
        assert "the lease was taken over by pid 4242 on host other-host" in err and "this driver stops now" in err
    finally:
        holder.kill()
        holder.wait()
