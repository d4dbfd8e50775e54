"""One task per item, run in a local process pool or on a Ray cluster: the batch layer of every bulk command.

``label``, ``bench build`` and ``ingest`` (and its frame caches) hand a module-level task
function and their items to ``open_engine(spec).map(...)`` and read the outcomes back as
tasks finish, so the progress bar and the summary are the same whichever engine ran them.
A task owns its item's outputs and writes them itself (atomically), so a rerun on either
engine resumes the other's work.

- Expensive state (a speech pipeline with its models) is built once per worker process by
  ``setup(*setup_args)`` and handed to every task that process runs.
- Ray retries a task whose worker process died (killed, out of memory) up to
  ``max_retries`` times; an exception raised by the task itself is never retried: a scan
  with bad input fails once, with its one-line error.
- The connection is made when the engine opens, before the caller writes anything: an
  unreachable ``RAY_ADDRESS`` fails within ``connect_timeout_s`` with nothing written.

Example:
    >>> spec = EngineSpec("local", workers=2)
    >>> with open_engine(spec) as engine:  # doctest: +SKIP
    ...     for item, result, error in engine.map(task, items, setup=make_state, setup_args=(cfg,)):
    ...         ...
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sonotell.errors import ConfigError, SonotellError

ENGINES = ("local", "ray")
RAY_EXTRA_HINT = "--engine ray needs Ray, an optional extra: pip install 'sonotell[ray]'"


class EngineError(ConfigError):
    """The engine cannot run (no Ray installed, a cluster that cannot be reached)."""


@dataclass(frozen=True)
class EngineSpec:
    """Where and how wide a batch runs.

    Args:
        name: ``local`` (a process pool of ``workers`` on this machine) or ``ray``.
        workers: local: processes; ray without an address: CPUs of the Ray instance started here.
        address: a Ray cluster to join (``host:port``, ``ray://host:port`` or ``auto``);
            default ``$RAY_ADDRESS``; none: start a local Ray instance.
        cpus_per_task: CPUs Ray reserves per task.
        memory_gb_per_task: memory Ray reserves per task (Whisper workers need more than pocketsphinx).
        max_retries: ray: times a task is rerun after its worker process died; local: pool restarts.
        connect_timeout_s: how long joining a cluster may take before it is an error.
    """

    name: str = "local"
    workers: int = 1
    address: str | None = None
    cpus_per_task: float = 1.0
    memory_gb_per_task: float | None = None
    max_retries: int = 3
    connect_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ConfigError(f"unknown engine {self.name!r}: use 'local' or 'ray'")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, not {self.workers}")
        if self.cpus_per_task <= 0 or (self.memory_gb_per_task is not None and self.memory_gb_per_task <= 0):
            raise ConfigError("per-task CPUs and memory must be positive")

    def with_resources(self, resources: dict | None) -> EngineSpec:
        """This spec with a config's ``resources``: ``cpus_per_task``, ``memory_gb_per_task``, ``max_retries``."""
        resources = dict(resources or {})
        unknown = sorted(set(resources) - {"cpus_per_task", "memory_gb_per_task", "max_retries"})
        if unknown:
            raise ConfigError(
                f"unknown resources key(s): {', '.join(unknown)} (known: cpus_per_task, memory_gb_per_task, "
                "max_retries)"
            )
        try:
            return replace(
                self,
                cpus_per_task=float(resources.get("cpus_per_task", self.cpus_per_task)),
                memory_gb_per_task=None
                if resources.get("memory_gb_per_task", self.memory_gb_per_task) is None
                else float(resources.get("memory_gb_per_task", self.memory_gb_per_task)),
                max_retries=int(resources.get("max_retries", self.max_retries)),
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(f"resources: {e}") from None


# -- worker-side state: built once per worker process ------------------------------------

_STATE: dict[str, Any] = {}


def _worker_state(token: str, setup: Callable | None, setup_args: tuple) -> Any:
    """The state of run ``token`` in this process, built on the first task of that run (one run kept)."""
    if setup is None:
        return None
    if token not in _STATE:
        _STATE.clear()
        _STATE[token] = setup(*setup_args)
    return _STATE[token]


def _call(
    token: str, fn: Callable, setup: Callable | None, setup_args: tuple, item: Any, cwd: str | None = None
) -> Any:
    """What a worker runs for one item.

    Any exception becomes a ``TaskFailed`` with its one line: it crosses process boundaries
    intact (sonotell's own errors take two constructor arguments and do not unpickle), and a
    MemoryError is the item's failure, not the worker's.
    """
    if cwd is not None and cwd != os.getcwd() and os.path.isdir(cwd):
        os.chdir(cwd)  # Ray workers start elsewhere: relative paths in items mean what they mean to the caller
    try:
        return fn(item, _worker_state(token, setup, setup_args))
    except MemoryError as e:
        _STATE.clear()  # free what we can: the next task rebuilds its state
        raise TaskFailed(f"out of memory ({e or 'MemoryError'})") from None
    except Exception as e:  # noqa: BLE001  (any failure is this item's, reported as one line)
        raise TaskFailed(_one_line(e)) from None


class TaskFailed(Exception):
    """A task that failed for a reason worth one line (kept picklable: a plain message)."""


def _local_init(token: str, setup: Callable | None, setup_args: tuple) -> None:
    _worker_state(token, setup, setup_args)


# -- the engines --------------------------------------------------------------------------

Outcome = tuple[Any, Any, "str | None"]  # (item, result, error): result None when error is set


class Engine:
    """An open engine: ``map`` runs tasks; use through ``open_engine``."""

    def __init__(self, spec: EngineSpec):
        self.spec = spec
        self._started_ray = False

    def map(
        self,
        fn: Callable[[Any, Any], Any],
        items: Sequence[Any],
        *,
        setup: Callable | None = None,
        setup_args: tuple = (),
    ) -> Iterator[Outcome]:
        """Run ``fn(item, state)`` for every item, yielding ``(item, result, error)`` in the order tasks finish.

        ``fn`` and ``setup`` must be module-level functions (they travel to other processes).
        ``error`` is a one-line reason (an exception ``fn`` raised, a worker that died after
        its retries, out of memory) and ``result`` is then ``None``.
        """
        items = list(items)
        if not items:
            return iter(())
        token = uuid.uuid4().hex
        if self.spec.name == "ray":
            return self._map_ray(token, fn, items, setup, setup_args)
        return self._map_local(token, fn, items, setup, setup_args)

    # local ------------------------------------------------------------------------------

    def _map_local(self, token, fn, items, setup, setup_args) -> Iterator[Outcome]:
        if self.spec.workers <= 1 or len(items) == 1:
            for item in items:
                try:
                    yield item, _call(token, fn, setup, setup_args, item), None
                except Exception as e:  # noqa: BLE001  (one item's failure, reported in its row)
                    yield item, None, _one_line(e)
            _STATE.pop(token, None)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        attempts = {i: 0 for i in range(len(items))}
        pending = list(range(len(items)))
        while pending:
            broken: list[int] = []
            # spawn: forking a process that already holds PyAV / torch threads can deadlock
            with ProcessPoolExecutor(
                min(self.spec.workers, len(pending)),
                mp_context=mp.get_context("spawn"),
                initializer=_local_init,
                initargs=(token, setup, setup_args),
            ) as pool:
                futures = {pool.submit(_call, token, fn, setup, setup_args, items[i]): i for i in pending}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken.append(i)  # a worker died (killed, out of memory): every unfinished task lands here
                        continue
                    except Exception as e:  # noqa: BLE001  (one item's failure, reported in its row)
                        yield items[i], None, _one_line(e)
                        continue
                    yield items[i], result, None
            pending = []
            for i in sorted(broken):
                attempts[i] += 1
                if attempts[i] > self.spec.max_retries:
                    yield items[i], None, f"worker process died {attempts[i]} times (killed or out of memory)"
                else:
                    pending.append(i)

    # ray --------------------------------------------------------------------------------

    def _map_ray(self, token, fn, items, setup, setup_args) -> Iterator[Outcome]:
        import ray
        from ray import exceptions as rex

        options: dict[str, Any] = {
            "num_cpus": self.spec.cpus_per_task,
            "max_retries": self.spec.max_retries,
            "retry_exceptions": False,
        }
        if self.spec.memory_gb_per_task:
            options["memory"] = int(self.spec.memory_gb_per_task * 2**30)
        _check_feasible(ray, self.spec)
        remote = ray.remote(**options)(_call)
        args_ref = ray.put(setup_args)  # one copy in the object store, not one per task
        cwd = os.getcwd()
        pending = {remote.remote(token, fn, setup, args_ref, item, cwd): item for item in items}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                item = pending.pop(ref)
                try:
                    result, error = ray.get(ref), None
                except rex.RayTaskError as e:  # the task raised: its own exception, not retried
                    result, error = None, _one_line(e.cause if getattr(e, "cause", None) is not None else e)
                except rex.OutOfMemoryError as e:
                    result, error = None, "out of memory (killed by Ray's memory monitor): " + _first_line(str(e))
                except (rex.WorkerCrashedError, rex.TaskCancelledError, rex.ObjectLostError, rex.NodeDiedError) as e:
                    result, error = None, f"worker died after {self.spec.max_retries} retries ({e.__class__.__name__})"
                yield item, result, error

    # open / close -----------------------------------------------------------------------

    def _open(self) -> None:
        if self.spec.name != "ray":
            return
        ray = import_ray()
        address = self.spec.address or os.environ.get("RAY_ADDRESS") or None
        if address:  # checked even when connected: a cluster asked for and not there is an error
            check_reachable(address, self.spec.connect_timeout_s)
        if ray.is_initialized():  # a caller (a notebook, the test fixture, an outer command) already joined
            return
        if address:
            _with_timeout(
                lambda: ray.init(address=address, log_to_driver=False, configure_logging=False),
                self.spec.connect_timeout_s,
                address,
            )
        else:
            start_local_ray(self.spec.workers)
        self._started_ray = True

    def _close(self) -> None:
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False


@contextlib.contextmanager
def open_engine(spec: EngineSpec) -> Iterator[Engine]:
    """Open (for Ray: join or start) the engine; raises ``EngineError`` before any work when it cannot run."""
    engine = Engine(spec)
    engine._open()
    try:
        yield engine
    finally:
        engine._close()


def _check_feasible(ray, spec: EngineSpec) -> None:
    """A task no node can take would wait forever: say so instead (clusters that autoscale excepted)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    memory = (spec.memory_gb_per_task or 0) * 2**30
    if nodes and not any(r.get("CPU", 0) >= spec.cpus_per_task and r.get("memory", 0) >= memory for r in nodes):
        biggest = max(nodes, key=lambda r: (r.get("CPU", 0), r.get("memory", 0)))
        raise EngineError(
            f"no Ray node can take a task asking for {spec.cpus_per_task:g} CPU "
            f"and {spec.memory_gb_per_task or 0:g} GB "
            f"(largest node: {biggest.get('CPU', 0):g} CPU, {biggest.get('memory', 0) / 2**30:.1f} GB); "
            "lower resources.cpus_per_task / memory_gb_per_task"
        )


def start_local_ray(num_cpus: int, attempts: int = 3) -> None:
    """Start a Ray instance on this machine (loopback only, no dashboard).

    Ray gives its raylet a fixed 30 s to register; on a loaded machine that start can time
    out, so it is tried ``attempts`` times before it is an ``EngineError``.
    """
    ray = import_ray()
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
            )
            return
        except Exception as e:  # noqa: BLE001  (Ray raises a bare Exception when its start times out)
            ray.shutdown()
            if attempt == attempts:
                raise EngineError(f"cannot start a local Ray instance ({_one_line(e)})") from None


def import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError(RAY_EXTRA_HINT) from None
    return ray


def check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast (``EngineError``) when a ``host:port`` Ray address does not accept connections."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise EngineError(f"RAY_ADDRESS {address!r}: expected host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout_s, 10.0)):
            pass
    except OSError as e:
        raise EngineError(
            f"RAY_ADDRESS {address}: cannot reach a Ray cluster ({e.strerror or e.__class__.__name__})"
        ) from None


def _with_timeout(fn: Callable[[], Any], timeout_s: float | None, address: str | None) -> None:
    """Run ``fn`` (``ray.init``), giving up after ``timeout_s``: a reachable port that is no Ray head can hang it."""
    if timeout_s is None:
        fn()
        return
    box: dict[str, BaseException | None] = {}

    def target() -> None:
        try:
            fn()
            box["error"] = None
        except BaseException as e:  # noqa: BLE001  (handed to the caller's thread)
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise EngineError(f"RAY_ADDRESS {address}: no Ray cluster answered within {timeout_s:.0f} s")
    if box.get("error") is not None:
        raise EngineError(f"RAY_ADDRESS {address}: cannot join the Ray cluster ({_one_line(box['error'])})") from None


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


def _one_line(e: BaseException) -> str:
    """An exception as one line: sonotell's own errors as they are, others with their type."""
    if isinstance(e, (SonotellError, TaskFailed)):
        return _first_line(str(e))
    return f"{e.__class__.__name__}: {_first_line(str(e))}"
