"""The money benchmark's oracle (bench/money/run.py) and its gap model (bench/money/gap.py),
on tiny hand-made months: pure Python, no binary needed."""

import pathlib
import sys

import pytest

MONEY = pathlib.Path(__file__).resolve().parents[2] / "bench" / "money"
sys.path.insert(0, str(MONEY))
import gap  # noqa: E402
import run  # noqa: E402

PRICE, DISK = 1.0, 0.5
HOURS = 24.0  # 2026-05-01


def meta(*instances):
    return {
        "from": "2026-05-01T00:00:00Z",
        "to": "2026-05-02T00:00:00Z",
        "prices": {"vm": PRICE},
        "stopped_hourly": {"disk": DISK},
        "timing": {"start": 120, "stop": 120},
        "lightsout_idle": "30m",
        "instances": {f"ws/i{n}": i for n, i in enumerate(instances)},
    }


def inst(windows, running=False, native="60m"):
    return {"vm_size": "vm", "running_at_start": running, "native_idle": native,
            "windows": [["kernel", a, b] for a, b in windows]}


def test_oracle_bills_the_disk_while_running_too():
    # Started at 10:00 by its owner, idle from 11:00, stopped at 11:30, stopped at 11:32.
    m = meta(inst([("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z")]))
    o = run.oracle(m, 1800)
    run_h = 1 + 32 / 60
    assert o["stops"] == 1
    assert o["running_hours"] == pytest.approx(run_h, abs=0.05)
    # Running: compute + disk (as cost.rs bills it); stopped: disk only.
    assert o["spent"] == pytest.approx(run_h * (PRICE + DISK) + (HOURS - run_h) * DISK, abs=0.01)


def test_oracle_always_busy_costs_compute_plus_disk_all_day():
    m = meta(inst([("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")], running=True))
    o = run.oracle(m, 1800)
    assert o["stops"] == 0
    assert o["spent"] == pytest.approx(HOURS * (PRICE + DISK), abs=0.01)


def test_gap_model_without_options_is_the_oracle():
    m = meta(
        inst([("2026-05-01T10:00:10Z", "2026-05-01T11:00:20Z"),
              ("2026-05-01T11:20:00Z", "2026-05-01T12:00:00Z"),
              ("2026-05-01T12:31:00Z", "2026-05-01T13:00:00Z")]),
        inst([("2026-05-01T08:00:00Z", "2026-05-01T09:00:00Z")], running=True),
    )
    total = sum(gap.play(m, i, 1800)["spent"] for i in m["instances"].values())
    assert total == pytest.approx(run.oracle(m, 1800)["spent"], abs=0.01)


def test_first_sighting_delays_the_stop_of_an_instance_left_running():
    # Idle since an hour before the month: the oracle stops it at 00:00, the daemon (which
    # starts with the month) at 00:30.
    i = inst([("2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z")], running=True)
    m = meta(i)
    assert gap.play(m, i, 1800)["stops"][0][0] == run.ts("2026-05-01T00:00:00Z")
    assert gap.play(m, i, 1800, first_seen=True)["stops"][0][0] == run.ts("2026-05-01T00:30:00Z")


def test_poll_interval_sends_the_stop_at_the_next_pass_or_not_at_all():
    i = inst([("2026-05-01T10:00:00Z", "2026-05-01T11:00:20Z"),
              ("2026-05-01T11:30:50Z", "2026-05-01T12:00:00Z")])
    m = meta(i)
    # The oracle stops at 11:30:20, 30 s before the owner comes back (and restarts it).
    assert len(gap.play(m, i, 1800)["stops"]) == 2
    # The next pass is at 11:31:00: the owner is back, no stop then.
    r = gap.play(m, i, 1800, poll=True)
    assert [s for s, _ in r["stops"]] == [run.ts("2026-05-01T12:30:00Z")]


def test_pass_accounting_bills_a_start_from_the_next_pass():
    i = inst([("2026-05-01T10:00:30Z", "2026-05-01T11:00:00Z")])
    m = meta(i)
    exact = gap.play(m, i, 1800, poll=True)
    passes = gap.play(m, i, 1800, poll=True, leftpoint=True)
    # Started 10:00:30, seen at 10:01; stopped at 11:30 (a pass), seen stopped at 11:32.
    assert exact["run_s"] == 91 * 60 + 30
    assert passes["run_s"] == 91 * 60
