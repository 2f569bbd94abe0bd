"""Where the embarrassingly parallel stages run: in this process (default) or on a Ray cluster.

Data contract (both executors):

* ``segment(texts) -> list[list[str]]`` – one token list per text, in input order, exactly as
  ``make_segmenter(config).segment_many(texts)``.
* ``embedder(driver_embedder)`` – an object with the :class:`miner.topics.embed.Embedder` protocol
  (``model_id``, ``dim``, ``encode(texts, kind)``) whose ``encode`` returns ``(n, dim)`` float32 rows in
  input order. It is handed to :func:`miner.topics.embed.cached_encode`, so the embedding cache stays
  on the driver and only cache misses reach the workers.
* Workers never receive a loaded model: each Ray actor builds its own embedder once from a picklable
  spec (the :class:`MinerConfig`, through :func:`miner.topics.embed.get_embedder`) and checks that its
  ``model_id`` equals the driver's. Texts are split into contiguous partitions (:func:`partitions`),
  or, for an embedder whose vectors depend on their batchmates (it has ``batch_plan``, e.g. int8),
  into exactly the batches it would form itself; results are put back in input order.
* One worker = one CPU: each actor asks Ray for ``num_cpus=1`` and limits torch / BLAS / OpenMP to
  one thread, so ``n_workers`` workers use ``n_workers`` cores.

``make_executor(config)`` picks the executor from ``config.executor`` (``local`` | ``ray``),
``config.ray_address`` (None: start a local cluster; an address: join that cluster) and
``config.ray_workers`` (None: one per CPU of the cluster). Use it as a context manager: a local
cluster it started is shut down on exit.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import numpy as np

from miner.config import REPO_ROOT, MinerConfig
from miner.errors import MinerError

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
PARTITION_SIZE = 64          # texts per Ray task: small enough to balance, big enough to batch
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "TOKENIZERS_PARALLELISM": "false", "RAY_DEDUP_LOGS": "0"}


class ExecutorError(MinerError):
    """Ray is missing, or the cluster cannot be reached."""


def partitions(n: int, size: int = PARTITION_SIZE) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` ranges covering ``range(n)`` in order, each at most ``size`` long."""
    size = max(1, int(size))
    return [(start, min(start + size, n)) for start in range(0, max(0, int(n)), size)]


class LocalExecutor:
    """Everything in this process (segmentation may fork, see ``JiebaSegmenter.segment_many``)."""

    name = "local"

    def __init__(self, config: MinerConfig):
        self.config = config

    def segment(self, texts: Sequence[str], n_jobs: int = -1, show_progress: bool = False) -> list[list[str]]:
        from miner.topics.segment import make_segmenter
        return make_segmenter(self.config, n_jobs=n_jobs).segment_many(list(texts), show_progress=show_progress)

    def embedder(self, driver_embedder):
        return driver_embedder

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Worker:
    """Body of one Ray actor: builds the segmenter and embedder once, from the config."""

    def __init__(self, config: MinerConfig, expected_model_id: str | None):
        _one_thread()
        self.config = config
        self._embedder = None
        self._segmenter = None
        self.expected_model_id = expected_model_id

    def _get_embedder(self):
        if self._embedder is None:
            from miner.topics.embed import get_embedder
            embedder = get_embedder(self.config)
            if hasattr(embedder, "threads"):          # ONNX Runtime ignores OMP_NUM_THREADS
                embedder.threads = 1
            if self.expected_model_id is not None and embedder.model_id != self.expected_model_id:
                raise RuntimeError(f"worker model {embedder.model_id} differs from the driver's "
                                   f"{self.expected_model_id}: install the same model on every node")
            self._embedder = embedder
        return self._embedder

    def encode(self, texts: list[str], kind: str) -> np.ndarray:
        return np.ascontiguousarray(self._get_embedder().encode(texts, kind=kind, show_progress=False),
                                    dtype=np.float32)

    def segment(self, texts: list[str]) -> list[list[str]]:
        if self._segmenter is None:
            from miner.topics.segment import make_segmenter
            self._segmenter = make_segmenter(self.config, n_jobs=1)
        return [self._segmenter.segment(t) for t in texts]

    def warm(self) -> str:
        return self._get_embedder().model_id


def _one_thread() -> None:
    os.environ.update(_ONE_THREAD)
    try:
        import torch
        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
    except Exception:        # noqa: BLE001  torch absent, or interop threads already fixed
        pass


class _RayEmbedder:
    """The driver-side face of the actor pool: an Embedder whose ``encode`` runs on the workers."""

    def __init__(self, executor: "RayExecutor", driver_embedder):
        self._executor = executor
        self._driver = driver_embedder
        self.model_id = driver_embedder.model_id
        self.dim = driver_embedder.dim

    def encode(self, texts: Sequence[str], kind: str = "passage", show_progress=None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        plan = getattr(self._driver, "batch_plan", None)
        # Batch-dependent embedders (int8: activation scales per batch) get the driver's own batches.
        groups = (plan(texts, kind) if plan is not None
                  else [np.arange(a, b) for a, b in self._executor._partitions(len(texts))])
        parts = self._executor._map_groups("encode", [[texts[i] for i in g] for g in groups], kind)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows, part in zip(groups, parts):
            out[rows] = part
        return out

    def __repr__(self) -> str:
        return f"RayEmbedder({self.model_id!r})"


class RayExecutor:
    """Segmentation and embedding over an actor pool on a Ray cluster.

    ``address=None`` starts a local cluster with ``n_workers`` CPUs (shut down by :meth:`close`);
    an address (``HOST:6379`` or ``ray://HOST:10001``) joins an existing cluster, which is left
    running. The actors (``num_cpus=1`` each) are created on first use and reused for the build.
    """

    name = "ray"

    def __init__(self, config: MinerConfig, address: str | None = None, n_workers: int | None = None):
        self.config = config
        self.address = address
        self.n_workers = n_workers
        self._ray = None
        self._started_local = False
        self._actors: list = []
        self._model_id: str | None = None
        self._start()

    def _start(self) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError("未安装 Ray, 无法使用 --executor ray; 请运行 pip install ray==2.60.0 "
                                "(Ray is not installed; pip install ray==2.60.0, or use --executor local)") from exc
        self._ray = ray
        env = {"env_vars": {**_ONE_THREAD, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}}
        kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                      configure_logging=True, runtime_env=env, ignore_reinit_error=True)
        if ray.is_initialized():
            return
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                n_cpus = self.n_workers or os.cpu_count() or 1
                ray.init(num_cpus=n_cpus, **kwargs)
                self._started_local = True
        except Exception as exc:     # noqa: BLE001  ConnectionError, RuntimeError, grpc errors …
            where = self.address or "local"
            raise ExecutorError(f"无法连接 Ray 集群 {where}: {exc} (cannot start or reach the Ray cluster "
                                f"{where!r}; check `ray status` on the head node, or use --executor local)") from exc

    def _workers_wanted(self) -> int:
        if self.n_workers:
            return int(self.n_workers)
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def _pool(self):
        if not self._actors:
            ray = self._ray
            actor = ray.remote(num_cpus=1)(_Worker)
            self._actors = [actor.remote(self.config, self._model_id) for _ in range(self._workers_wanted())]
        return self._actors

    def _partitions(self, n: int) -> list[tuple[int, int]]:
        return partitions(n, self._partition_size(n))

    def _map_groups(self, method: str, groups: list[list[str]], *args) -> list:
        """Run ``method`` on each group as given; results in group order."""
        from ray.util import ActorPool
        pool = ActorPool(self._pool())
        return list(pool.map(lambda a, group: getattr(a, method).remote(group, *args), groups))

    def _partition_size(self, n: int) -> int:
        workers = len(self._pool())
        return max(1, min(PARTITION_SIZE, -(-n // workers)))

    def warm(self) -> None:
        """Load the model in every actor now (so timings exclude loading)."""
        self._ray.get([a.warm.remote() for a in self._pool()])

    def segment(self, texts: Sequence[str], n_jobs: int = -1, show_progress: bool = False) -> list[list[str]]:
        texts = list(texts)
        if not texts:
            return []
        from miner.topics.segment import interned_tokens
        out: list[list[str]] = []
        for part in self._map_groups("segment", [texts[a:b] for a, b in self._partitions(len(texts))]):
            out.extend(interned_tokens(part))
        return out

    def embedder(self, driver_embedder):
        self._model_id = driver_embedder.model_id
        for actor in self._actors:       # built for another model: rebuild
            self._ray.kill(actor)
        self._actors = []
        return _RayEmbedder(self, driver_embedder)

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:    # noqa: BLE001
                pass
        self._actors = []
        if self._started_local and ray.is_initialized():
            ray.shutdown()
        self._ray = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_executor(config: MinerConfig):
    """The executor ``config`` asks for (``executor``, ``ray_address``, ``ray_workers``)."""
    kind = (config.executor or "local").lower()
    if kind == "local":
        return LocalExecutor(config)
    if kind == "ray":
        return RayExecutor(config, address=config.ray_address or None, n_workers=config.ray_workers)
    raise ExecutorError(f"未知的执行器 {kind!r}, 可选 local / ray (unknown executor {kind!r}; use one of {EXECUTORS})")


def embedding_throughput(config_or_model_name, texts: Sequence[str], n_workers: int, repeats: int = 3) -> float:
    """Steady-state notes per second embedding ``texts`` on a fresh local Ray cluster of ``n_workers``
    workers (one CPU each): the median of ``repeats`` timed passes.

    One untimed pass first: it loads the model in every actor and the driver's tokenizer, and lets
    each ONNX Runtime session allocate its buffers for every batch shape (the first pass over a set
    of lengths runs 10–25 % slower, which would otherwise be charged to whichever run meets it)."""
    from miner.topics.embed import get_embedder
    config = (config_or_model_name if isinstance(config_or_model_name, MinerConfig)
              else MinerConfig(embedding_model=str(config_or_model_name)))
    config = config.with_overrides(executor="ray", ray_workers=int(n_workers))
    driver = get_embedder(config)
    texts = list(texts)
    with RayExecutor(config, address=None, n_workers=int(n_workers)) as executor:
        remote = executor.embedder(driver)
        executor.warm()
        remote.encode(texts)
        rates = []
        for _ in range(max(1, int(repeats))):
            started = time.perf_counter()
            remote.encode(texts)
            rates.append(len(texts) / (time.perf_counter() - started))
        return float(np.median(rates))
