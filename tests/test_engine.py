"""The engine layer: local process pool and Ray (a local instance started by the ``ray_cluster`` fixture)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sonotell.engine import EngineError, EngineSpec, check_reachable, open_engine
from sonotell.errors import ConfigError
from tests import engine_tasks as tasks

ROOT = Path(__file__).resolve().parents[1]


def _run(spec: EngineSpec, fn, items, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    with open_engine(spec) as engine:
        return {
            item: (result, error)
            for item, result, error in engine.map(fn, items, setup=tasks.setup_marker, setup_args=(str(folder),))
        }


def _attempts(folder: Path, item) -> int:
    return len(list(folder.glob(f"attempt-{item}-*")))


def _setups_per_pid(folder: Path) -> Counter:
    return Counter(p.name.split("-")[1] for p in folder.glob("setup-*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the spec -------------------------------------------------------------------------------


def test_spec_checks_its_values_and_takes_config_resources():
    with pytest.raises(ConfigError, match="unknown engine 'spark'"):
        EngineSpec("spark")
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        EngineSpec("local", workers=0)
    spec = EngineSpec("ray").with_resources({"cpus_per_task": 2, "memory_gb_per_task": 3, "max_retries": 1})
    assert (spec.cpus_per_task, spec.memory_gb_per_task, spec.max_retries) == (2.0, 3.0, 1)
    assert EngineSpec("ray").with_resources(None) == EngineSpec("ray")
    with pytest.raises(ConfigError, match="unknown resources key"):
        EngineSpec("ray").with_resources({"gpus": 1})
    with pytest.raises(ConfigError, match="must be positive"):
        EngineSpec("ray").with_resources({"memory_gb_per_task": -1})


# -- local engine ---------------------------------------------------------------------------


def test_in_process_engine_sets_up_once_and_runs_every_item(tmp_path):
    got = _run(EngineSpec("local", workers=1), tasks.square, [1, 2, 3], tmp_path)
    assert {k: v[0][0] for k, v in got.items()} == {1: 1, 2: 4, 3: 9}
    assert sum(_setups_per_pid(tmp_path).values()) == 1


def test_local_pool_sets_up_once_per_worker_process(tmp_path):
    got = _run(EngineSpec("local", workers=2), tasks.square, list(range(6)), tmp_path)
    assert {k: v[0][0] for k, v in got.items()} == {i: i * i for i in range(6)}
    per_pid = _setups_per_pid(tmp_path)
    assert set(per_pid.values()) == {1} and 1 <= len(per_pid) <= 2
    assert {str(v[0][1]) for v in got.values()} <= set(per_pid)  # every task ran in a set-up process


def test_local_bad_input_fails_once_with_its_line(tmp_path):
    got = _run(EngineSpec("local", workers=2), tasks.bad_input_at_3, [1, 2, 3, 4], tmp_path)
    assert got[3] == (None, "scan3.wav: audio is silent")
    assert all(got[i] == (i, None) for i in (1, 2, 4))
    assert _attempts(tmp_path, 3) == 1


def test_local_pool_reruns_the_tasks_of_a_killed_worker(tmp_path):
    got = _run(EngineSpec("local", workers=2), tasks.killed_at_2_once, [1, 2, 3, 4], tmp_path)
    assert got == {i: (i, None) for i in (1, 2, 3, 4)}
    assert _attempts(tmp_path, 2) == 2


def test_local_pool_gives_up_on_a_task_that_keeps_killing_its_worker(tmp_path):
    # max_retries=0: the first death is final; the scan is reported with the reason
    got = _run(EngineSpec("local", workers=2, max_retries=0), tasks.killed_at_2_once, [1, 2], tmp_path)
    assert got[2] == (None, "worker process died 1 times (killed or out of memory)")


@pytest.mark.parametrize("workers", [1, 2])
def test_out_of_memory_fails_that_item_only(tmp_path, workers):
    got = _run(EngineSpec("local", workers=workers), tasks.out_of_memory_at_1, [0, 1, 2], tmp_path)
    assert got[1][0] is None and got[1][1].startswith("out of memory")
    assert got[0] == (0, None) and got[2] == (2, None)


# -- bad input for the Ray engine -------------------------------------------------------------


def test_missing_ray_is_an_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    hint = r"needs Ray, an optional extra: pip install 'sonotell\[ray\]'"
    with pytest.raises(EngineError, match=hint), open_engine(EngineSpec("ray")):
        pass


def test_unreachable_address_fails_fast():
    t0 = time.perf_counter()
    with pytest.raises(EngineError, match=r"RAY_ADDRESS 127\.0\.0\.1:\d+: cannot reach a Ray cluster"):
        check_reachable(f"127.0.0.1:{_free_port()}", 20.0)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(EngineError, match="expected host:port"):
        check_reachable("no-port-here", 1.0)


def test_cli_with_unreachable_ray_address_exits_2_and_writes_nothing(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "manifest.csv"
    (tmp_path / "scans").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "RAY_ADDRESS": f"127.0.0.1:{_free_port()}"}
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "sonotell", "ingest", str(tmp_path / "scans"), "--out", str(out), "--engine", "ray"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert time.perf_counter() - t0 < 30
    assert r.returncode == 2, r.stderr
    assert "cannot reach a Ray cluster" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans"]  # no manifest, no state file


# -- Ray engine (local instance, loopback, 2 CPUs) ------------------------------------------------

ray_group = pytest.mark.xdist_group("ray")


@ray_group
def test_ray_sets_up_once_per_worker_process(ray_cluster, tmp_path):
    got = _run(EngineSpec("ray"), tasks.square, list(range(6)), tmp_path)
    assert {k: v[0][0] for k, v in got.items()} == {i: i * i for i in range(6)}
    pids = {str(v[0][1]) for v in got.values()}
    per_pid = _setups_per_pid(tmp_path)
    assert set(per_pid) == pids and set(per_pid.values()) == {1}
    assert ray_cluster.is_initialized()  # a cluster the caller joined is left running


@ray_group
def test_ray_bad_input_fails_once_no_retry(ray_cluster, tmp_path):
    got = _run(EngineSpec("ray", max_retries=3), tasks.bad_input_at_3, [1, 2, 3, 4], tmp_path)
    assert got[3] == (None, "scan3.wav: audio is silent")
    assert all(got[i] == (i, None) for i in (1, 2, 4))
    assert _attempts(tmp_path, 3) == 1


@ray_group
def test_ray_retries_the_task_of_a_killed_worker(ray_cluster, tmp_path):
    got = _run(EngineSpec("ray"), tasks.killed_at_2_once, [1, 2, 3], tmp_path)
    assert got == {i: (i, None) for i in (1, 2, 3)}
    assert _attempts(tmp_path, 2) == 2


@ray_group
def test_ray_reports_a_killed_worker_after_its_retries(ray_cluster, tmp_path):
    got = _run(EngineSpec("ray", max_retries=0), tasks.killed_at_2_once, [1, 2], tmp_path)
    assert got[1] == (1, None)
    assert got[2][0] is None and got[2][1] == "worker died after 0 retries (WorkerCrashedError)"


@ray_group
def test_ray_out_of_memory_fails_that_scan_only(ray_cluster, tmp_path):
    got = _run(EngineSpec("ray", memory_gb_per_task=0.1), tasks.out_of_memory_at_1, [0, 1, 2], tmp_path)
    assert got[1][0] is None and got[1][1].startswith("out of memory")
    assert got[0] == (0, None) and got[2] == (2, None)
    assert _attempts(tmp_path, 1) == 1


@ray_group
def test_ray_task_no_node_can_take_is_an_error_not_a_hang(ray_cluster, tmp_path):
    with pytest.raises(EngineError, match=r"no Ray node can take a task asking for 1 CPU and 100000 GB"):
        _run(EngineSpec("ray", memory_gb_per_task=100000), tasks.square, [1], tmp_path)
