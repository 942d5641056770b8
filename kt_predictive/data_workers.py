"""Stopping the Keras data workers that a fit stopped mid-epoch leaves running.

Keras (3.15) stops a `keras.utils.PyDataset`'s worker pool (``workers > 0``) at the end of
an epoch only. A fit that ends mid-epoch because a callback set ``model.stop_training`` (the
early budget of an exploration trial, the end of the full budget, ``EarlyStopping``) leaves
the pool's worker processes and its feeder thread alive until the interpreter exits: one
pool per trial, which a search of hundreds of trials cannot afford (each worker holds its
own copy-on-write view of the training data). `StepLossRecorder.on_train_end` calls
`stop_abandoned_data_workers` after every fit it recorded.

Keras starts those pools with the platform's default start method, ``fork`` on Linux. JAX is
multithreaded, and a fork of a JAX process can deadlock (JAX warns at every fork). On JAX,
`StepLossRecorder.on_train_begin` calls `use_data_worker_start_method` so that the pools'
workers start from a fork server instead: the training process itself never forks. The fork
server imports Keras before it forks any worker (it computes nothing, so it starts no JAX
thread): without that, every pool's workers imported Keras and JAX again, seconds per pool
and so per trial, and fed a fit at a fraction of fork's rate; spawn is as slow
(``bench/data_workers.py``, section ``data-workers`` of bench/RESULTS.md). The dataset's class
must be importable by the workers (defined in a module, not in ``__main__`` of an interactive
session), and the dataset is pickled to each worker of each pool, where fork shares it
copy-on-write: a dataset that holds hundreds of MB in memory costs seconds per pool. For it,
``BACKEND_START_METHODS["jax"] = "fork"`` goes back to fork, at the risk JAX warns of.
TensorFlow keeps fork: a fork server's later pools measured as fast, its first one slower.
"""

from __future__ import annotations

import gc
import multiprocessing
import types

#: The start method of data workers per Keras backend; a backend not listed keeps Keras'
#: (the platform default).
BACKEND_START_METHODS = {"jax": "forkserver"}

#: What a fork server imports before forking data workers (``"__main__"``: Python's default).
FORKSERVER_PRELOAD = ("__main__", "keras")


def stop_abandoned_data_workers() -> int:
    """Stops every PyDataset worker pool of this process that is still running.

    Call it when no fit is running in this process (between trials): a pool whose fit has
    returned is abandoned. The pool's queued batches are received and dropped, its worker
    processes exit. Returns how many pools were stopped.
    """
    try:
        from keras.src.trainers.data_adapters import py_dataset_adapter
    except ImportError:  # a Keras without this module has no such pools
        return 0
    # Keras internals: a Keras that renamed them is left alone (tests/test_data_workers.py
    # fails on it) rather than failing every trial's end.
    sequences = getattr(py_dataset_adapter, "_SHARED_SEQUENCES", None) or {}
    enqueuer_type = getattr(py_dataset_adapter, "PyDatasetEnqueuer", None)
    live = [data for data in sequences.values() if data is not None]
    if not live or enqueuer_type is None:  # the common case, and cheap: none was left running
        return 0
    # The enqueuer that runs a pool refers to its dataset; finding it through the dataset's
    # referrers is ~5x faster than scanning every object of a TensorFlow process.
    enqueuers = [
        referrer
        for referrer in gc.get_referrers(*live)
        if isinstance(referrer, enqueuer_type) and referrer.is_running()
    ]
    for enqueuer in enqueuers:
        enqueuer.stop()
    return len(enqueuers)


class _ContextModule(types.ModuleType):
    """Keras' adapter module refers to ``multiprocessing`` for ``Pool``, ``Queue`` and
    ``Value``; this stand-in gives those of one start method's context, and the rest of
    ``multiprocessing`` (``dummy``: the thread pool) unchanged."""

    def __init__(self, context):
        super().__init__("multiprocessing")
        self._context = context

    def __getattr__(self, name):
        if name in ("Pool", "Queue", "Value", "Lock", "Process"):
            return getattr(self._context, name)
        return getattr(multiprocessing, name)


def use_data_worker_start_method(method: str | None) -> bool:
    """Starts the worker processes of Keras' ``PyDataset`` pools with ``method``
    (``"spawn"``, ``"forkserver"`` or ``"fork"``; ``None``: Keras' own, the platform default).

    Applies to pools started afterwards in this process. A fork server started for them
    imports `FORKSERVER_PRELOAD` first, so that the workers it forks need not import Keras.
    Returns whether Keras could be configured (False for a Keras without this module, whose
    pools are left alone).

    Raises:
        ValueError: ``method`` is not a start method of this platform.
    """
    try:
        from keras.src.trainers.data_adapters import py_dataset_adapter
    except ImportError:
        return False
    if method is None:
        py_dataset_adapter.multiprocessing = multiprocessing
    else:
        if method not in multiprocessing.get_all_start_methods():
            raise ValueError(
                f"data worker start method {method!r} is not available here; choose one of "
                f"{multiprocessing.get_all_start_methods()}"
            )
        current = py_dataset_adapter.multiprocessing
        if isinstance(current, _ContextModule) and current._context.get_start_method() == method:
            return True
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            context.set_forkserver_preload(list(FORKSERVER_PRELOAD))  # before the server starts
        py_dataset_adapter.multiprocessing = _ContextModule(context)
    # The queue of worker ids belongs to the context the pools start with.
    py_dataset_adapter._WORKER_ID_QUEUE = None
    return True


def use_backend_start_method() -> None:
    """Applies `BACKEND_START_METHODS` for the running Keras backend (once per process is
    enough; repeating it is cheap)."""
    import keras

    method = BACKEND_START_METHODS.get(keras.backend.backend())
    if method is not None:
        use_data_worker_start_method(method)
