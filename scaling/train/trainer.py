"""`train(config, out_dir) -> TrainResult`: one model, trained, evaluated and checkpointed.

A run directory holds
    config.json     the resolved config plus seed, package versions, data manifest hash,
                    devices, mesh and git commit of every (re)start
    metrics.jsonl   one row per evaluation (see scaling.train.metrics); mirrored live to
                    TensorBoard (tensorboard/) and W&B when [track] asks (scaling.train.tracking)
    profile/        a jax.profiler trace, when train.profile_steps asks (scaling.train.profile)
    checkpoints/    Orbax steps (see scaling.train.checkpoint)
    result.json     status (done | diverged | failed | preempted), final losses, totals

The run directory may be an object-store URL (s3://..., gs://...: the s3 / gcs extras).
The run then trains in a local scratch directory (`scaling.storage.scratch_dir`) that is a
`scaling.storage.Mirror` of the URL (its manifest: URL/mirror.json): pushed at the first host sync after each checkpoint
completes, and at the end (done, failed or preempted); pulled before a start, so a run
preempted on one host resumes on another from its last pushed checkpoint. (Orbax could
write gs:// itself, but not s3:// without a tensorstore S3 driver; the mirror serves
every fsspec backend the same way, for a single-process run.)

Calling `train` again on the same directory resumes from the last complete checkpoint
(batches are a pure function of the step, so the curve continues exactly), or returns the
stored result when the run already finished. A directory holding a different config is
an error naming the differing keys.

Step numbering: step s means s optimizer updates done; update t (0-based) consumes the
data's batch t and uses lr(t). Evaluation happens at steps that are multiples of
train.eval_every and at the last step; the loss is pulled to the host only at log,
evaluation and checkpoint steps (non-finite losses are detected there and end the run
as "diverged"). SIGTERM saves a checkpoint at the current step and ends the run as
"preempted" and raises `Preempted` (a SystemExit) so the process exits; rerun to continue.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import json
import math
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from scaling.core.status import FINISHED
from scaling.runtime import PREEMPTED_EXIT_CODE
from scaling.train import metrics as M
from scaling.train.checkpoint import CheckpointCorrupt, Checkpoints, CheckpointSaveFailed, checkpoint_dir
from scaling.train.config import RunConfig, diff_configs, load_config
from scaling.train.evaluate import eval_arrays, eval_loss, eval_metrics
from scaling.train.mesh import check_batch, make_mesh
from scaling.train.schedules import check_schedule, schedule_fn
from scaling.train.step import program


class Preempted(SystemExit):
    """Raised by `train` after SIGTERM, once the checkpoint is saved: the process should
    exit (status 75, "try again"); rerunning resumes. result.json says "preempted"."""

    def __init__(self, step: int) -> None:
        super().__init__(PREEMPTED_EXIT_CODE)
        self.step = step


@dataclass
class TrainResult:
    status: str  # done | diverged | failed
    out_dir: str
    steps: int
    tokens: int
    flops: float
    flop_convention: str
    final_eval_loss: float | None = None
    final_train_loss: float | None = None
    wall_time: float = 0.0
    diverged_step: int | None = None
    error: str | None = None

    @property
    def eval_loss(self) -> float | None:
        """`final_eval_loss` under the name of the train-function protocol
        (`scaling.core.protocol.TrainOutcome`) and the sweep store."""
        return self.final_eval_loss

    @property
    def wall_time_s(self) -> float:
        """`wall_time`, under the protocol's name."""
        return self.wall_time

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainResult:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {
            "flop_convention" if k == "flops_convention" else k: v for k, v in d.items()
        }  # result.json written before the rename
        return cls(**{k: v for k, v in d.items() if k in names})


# ---- run directory --------------------------------------------------------------------


def _as_config(config) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return RunConfig.from_dict(config)
    return load_config(config)


def _prepare_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write_test.{jax.process_index()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise PermissionError(f"output directory {str(out_dir)!r} is not writable: {err.strerror or err}") from None


def read_result(out_dir: str | Path) -> TrainResult | None:
    path = Path(out_dir) / "result.json"
    return TrainResult.from_dict(json.loads(path.read_text())) if path.exists() else None


def _check_same_run(out_dir: Path, cfg: RunConfig) -> dict | None:
    """The stored config.json (None if new); raise if it describes a different run."""
    path = out_dir / "config.json"
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    diffs = diff_configs(stored.get("config", {}), cfg.to_dict())
    if diffs:
        raise ValueError(
            f"{out_dir} holds a run with a different config:\n  "
            + "\n  ".join(diffs)
            + "\nuse another --out directory (or the same config to resume)"
        )
    return stored


# ---- signals ---------------------------------------------------------------------------


class _Preemption:
    """SIGTERM sets a flag the loop polls (a save then happens at a step boundary)."""

    def __init__(self) -> None:
        self.flag = False
        self._old = None

    def __enter__(self) -> _Preemption:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.flag = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)

    def requested(self, collective: bool) -> bool:
        if not collective or jax.process_count() == 1:
            return self.flag
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.int32(self.flag))))


# ---- the run -------------------------------------------------------------------------------


@dataclass
class _Plan:
    cfg: RunConfig
    out_dir: Path
    total_steps: int
    batch: int
    tokens_per_step: int
    flops_per_token: float
    mfu_flops_per_token: float  # under train.mfu_convention
    eval_steps: set
    checkpoint_steps: set
    keep_steps: tuple

    @classmethod
    def make(cls, cfg: RunConfig, out_dir: Path) -> _Plan:
        from scaling.model import flops_per_token

        t = cfg.train
        total = cfg.steps
        evals = set(range(t.eval_every, total + 1, t.eval_every)) if t.eval_every else set()
        evals.add(total)
        ckpts = set(range(t.checkpoint_every, total + 1, t.checkpoint_every)) if t.checkpoint_every else set()
        ckpts |= {total} | {s for s in t.save_steps if s <= total}
        keep = set(s for s in t.save_steps if s <= total)
        if t.keep_eval_checkpoints:
            ckpts |= evals
            keep |= evals
        return cls(
            cfg,
            out_dir,
            total,
            t.global_batch_size,
            t.global_batch_size * cfg.model.seq_len,
            flops_per_token(cfg.model, t.flop_convention),
            flops_per_token(cfg.model, t.mfu_convention),
            evals,
            ckpts,
            tuple(sorted(keep)),
        )


def train(config, out_dir) -> TrainResult:
    """Train (or resume, or report the finished run in) `out_dir`, a path or a URL.

    config: a RunConfig, a dict of sections, or a path to a TOML/JSON config file.
    Bad input raises ValueError/PermissionError before anything is compiled; failures
    during training return a TrainResult with status "failed" (traceback on stderr).
    SIGTERM saves a checkpoint and raises `Preempted` (a SystemExit).
    """
    cfg = _as_config(config)
    from scaling.storage import is_url

    if is_url(out_dir):
        return _train_mirrored(cfg, str(out_dir).rstrip("/"))
    return _train_in(cfg, Path(out_dir).absolute())


def _train_mirrored(cfg: RunConfig, url: str) -> TrainResult:
    """`train` into a URL: in a local mirror of it (see the module docstring)."""
    import shutil

    from scaling.storage import Mirror, Storage, is_url, scratch_dir

    if jax.process_count() > 1:
        raise ValueError(
            f"out_dir={url!r}: a run directory on an object store is mirrored from one process's local disk; "
            "a multi-process run needs a shared file system (or gs:// through Orbax) for its checkpoints"
        )
    if cfg.train.init_params_step is not None and is_url(cfg.train.init_params_step[0]):
        raise ValueError(f"train.init_params_from={cfg.train.init_params_step[0]!r}: not readable from a URL yet")
    local = scratch_dir(url)
    mirror = Mirror(Storage.at(url), "", local, last=("result.json",))
    mirror.pull()
    init_dir = None
    if cfg.train.init_from is not None and is_url(cfg.train.init_from[0]):
        src, step = cfg.train.init_from
        init_dir = scratch_dir(src).with_name(scratch_dir(src).name + ".init")
        Mirror(Storage.at(src), "", init_dir).pull(only=f"{Mirror.CHECKPOINTS}/{step}/")
        init_dir = checkpoint_dir(init_dir)
    try:
        result = _train_in(cfg, local, mirror=mirror, init_dir=init_dir, where=url)
    except Preempted:
        shutil.rmtree(local, ignore_errors=True)  # pushed: the store holds the checkpoint
        raise
    finally:
        if init_dir is not None:
            shutil.rmtree(init_dir.parent, ignore_errors=True)
    shutil.rmtree(local, ignore_errors=True)
    return result


def _train_in(
    cfg: RunConfig, out_dir: Path, *, mirror=None, init_dir: Path | None = None, where: str | None = None
) -> TrainResult:
    """`train` in the local directory `out_dir` (mirrored to `where` when `mirror` is set;
    `init_dir`: the local checkpoints of train.init_from, when that is a URL)."""
    primary = jax.process_index() == 0
    created = not out_dir.exists()
    _prepare_dir(out_dir)
    stored = _check_same_run(out_dir, cfg)
    previous = read_result(out_dir) if stored is not None else None
    if previous is not None and previous.status in FINISHED:
        if primary:
            print(
                f"{out_dir}: run already finished ({previous.status} at step {previous.steps}); nothing to do",
                file=sys.stderr,
            )
        return previous

    # ---- everything that can reject the input, before compiling ----
    try:
        from scaling.data import build_dataset

        mesh = make_mesh(cfg.mesh)
        t = cfg.train
        cfg.track.check_available()  # a missing tracking extra fails before any compute
        check_batch(mesh, t.global_batch_size, t.microbatches)
        if cfg.data.eval_batch_size:
            check_batch(mesh, cfg.data.eval_batch_size, what="data.eval_batch_size")
        if init_dir is None and t.init_from is not None:
            init_dir = checkpoint_dir(t.init_from[0])
            init_dir = init_dir if init_dir.is_dir() else Path(t.init_from[0]).absolute()
        if init_dir is not None and not init_dir.is_dir():
            raise FileNotFoundError(f"train.init_from: no run directory {t.init_from[0]!r}")
        parent = None
        if t.init_params_step is not None:
            from scaling.train.parent import check_parent

            parent = check_parent(t.init_params_from, *t.init_params_step, cfg.model)
        data_cfg = cfg.data.replace(eval_batch_size=cfg.eval_batch_size)
        ds = build_dataset(data_cfg)
        if cfg.model.vocab_size < ds.vocab_size:
            raise ValueError(
                f"model.vocab_size={cfg.model.vocab_size} is smaller than the data's vocabulary "
                f"({ds.vocab_size} tokens); set model.vocab_size = {ds.vocab_size}"
            )
        manifest_hash = ds.manifest.get("manifest_hash")
        if stored is not None and stored.get("data_manifest_hash") not in (None, manifest_hash):
            raise ValueError(
                f"{out_dir}: the data changed since this run started (manifest hash "
                f"{stored.get('data_manifest_hash')} -> {manifest_hash}); use a new --out directory"
            )
        plan = _Plan.make(cfg, out_dir)
        check_schedule(cfg.schedule, plan.total_steps)
        if t.profile_steps and t.profile_steps[0] >= plan.total_steps:
            raise ValueError(
                f"train.profile_steps={list(t.profile_steps)}: starts after the run's last step {plan.total_steps}"
            )
        if t.init_from is not None and t.init_from[1] >= plan.total_steps:
            raise ValueError(
                f"train.init_from step {t.init_from[1]} is not before the run's last step {plan.total_steps}"
            )
    except Exception:
        if created:  # leave no empty directory behind for a rejected config
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise

    if primary:
        from scaling.runtime import describe_devices, git_state, package_versions

        start_info = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "devices": describe_devices(),
            "mesh": dict(mesh.shape),
            "argv": sys.argv,
            "git": git_state(),
        }
        M.write_json_atomic(
            out_dir / "config.json",
            {
                "config": cfg.to_dict(),
                "seed": t.seed,
                "data_seed": cfg.data.seed,
                "steps_total": plan.total_steps,
                "data_manifest_hash": manifest_hash,
                "data_manifest": ds.manifest,
                "versions": package_versions(),
                "starts": (stored or {}).get("starts", []) + [start_info],
                **({"parent": parent} if parent is not None else {}),
            },
        )
    return _Run(plan, mesh, ds, mirror=mirror, init_dir=init_dir, where=where).run()


class _Run:
    def __init__(self, plan: _Plan, mesh, ds, *, mirror=None, init_dir: Path | None = None,
                 where: str | None = None) -> None:  # fmt: skip
        self.plan, self.mesh, self.ds = plan, mesh, ds
        self.mirror = mirror if jax.process_index() == 0 else None  # a scaling.storage.Mirror of a URL
        self.init_dir, self.where = init_dir, where or str(plan.out_dir)
        self.cfg = plan.cfg
        self.primary = jax.process_index() == 0
        self.prog = program(
            self.cfg.model, self.cfg.optimizer, self.cfg.train.microbatches, mesh, self.cfg.mesh.sharding_rules()
        )
        self.lr = schedule_fn(self.cfg.schedule, self.cfg.optimizer.lr, plan.total_steps)
        device_kind = jax.devices()[0].device_kind
        peak = M.peak_flops(device_kind, self.cfg.train.peak_flops)
        self.peak_total = peak * jax.device_count() if peak else None

    # ---- state ----
    def _restore_or_init(self, ckpts: Checkpoints) -> tuple[int, dict, Any, float]:
        """(start step, params, opt_state, elapsed seconds so far)."""
        prog, t = self.prog, self.cfg.train
        restored = ckpts.restore_latest(prog.abstract_params(), prog.abstract_opt_state(), say=self._say)
        if restored is not None:  # the newest intact step (a damaged one is set aside and recorded)
            latest, got = restored
            return latest, got["params"], got["opt_state"], float(got["meta"].get("elapsed", 0.0))
        if t.init_from is not None:
            step = t.init_from[1]
            with Checkpoints(self.init_dir, read_only=True) as other:
                got = other.restore(step, prog.abstract_params(), prog.abstract_opt_state())
            return step, got["params"], got["opt_state"], 0.0
        params, opt_state = prog.init(np.int32(t.seed))
        if t.init_params_step is not None:  # fine-tuning: the parent's params, a fresh optimizer
            src, step = t.init_params_step
            with Checkpoints(checkpoint_dir(src), read_only=True) as other:
                params = other.restore(step, prog.abstract_params())["params"]
        return 0, params, opt_state, 0.0

    def _say(self, message: str) -> None:
        if self.primary:
            from tqdm.auto import tqdm

            tqdm.write(message, file=sys.stderr)

    def _meta(self, step: int, elapsed: float) -> dict:
        return {
            "step": step,
            "elapsed": elapsed,
            "tokens": step * self.plan.tokens_per_step,
            "config": self.cfg.to_dict(),
        }

    def _result(self, status: str, step: int, elapsed: float, **extra) -> TrainResult:
        p = self.plan
        res = TrainResult(
            status=status,
            out_dir=self.where,
            steps=step,
            tokens=step * p.tokens_per_step,
            flops=step * p.tokens_per_step * p.flops_per_token,
            flop_convention=self.cfg.train.flop_convention,
            wall_time=elapsed,
            **extra,
        )
        if self.primary:
            try:
                M.write_json_atomic(p.out_dir / "result.json", res.to_dict())
            except OSError as err:  # e.g. the disk is full: the result is still returned
                self._say(f"{p.out_dir}: could not write result.json ({err.strerror or err})")
        return res

    def _row(self, step: int, *, train_loss: float | None, loss: float, lr: float, elapsed: float,
             **throughput: Any) -> dict:  # fmt: skip
        """The metrics.jsonl row of an evaluation at `step` (the one place it is built)."""
        p = self.plan
        return {
            "step": step,
            "tokens": step * p.tokens_per_step,
            "flops": step * p.tokens_per_step * p.flops_per_token,
            "flops_convention": self.cfg.train.flop_convention,
            "train_loss": train_loss,
            **eval_metrics(loss, self.ds.bytes_per_token),
            "lr": lr,
            **throughput,
            **({"mfu_convention": self.cfg.train.mfu_convention} if "mfu" in throughput else {}),
            "elapsed": elapsed,
        }

    def _mfu(self, tok_s: float | None) -> float | None:
        if not tok_s or not self.peak_total:
            return None
        return tok_s * self.plan.mfu_flops_per_token / self.peak_total

    # ---- the loop ----
    def run(self) -> TrainResult:
        from scaling.data import Prefetcher

        plan, prog, t = self.plan, self.prog, self.cfg.train
        ckpts = Checkpoints(
            checkpoint_dir(plan.out_dir), keep=t.keep, keep_steps=plan.keep_steps, async_save=t.async_checkpointing
        )
        pi, pc = jax.process_index(), jax.process_count()
        B = plan.batch
        batches = None
        failed = False
        log = None
        status = "failed"
        try:
            start, params, opt_state, elapsed0 = self._restore_or_init(ckpts)
            resumed = ckpts.latest_step() is not None
            log = M.MetricsLog(
                plan.out_dir / "metrics.jsonl", resume_step=start if resumed else None, enabled=self.primary
            )
            if self.primary:
                from scaling.train.tracking import Tracker

                log.tracker = Tracker.open(
                    self.cfg.track,
                    plan.out_dir,
                    config=self.cfg.to_dict(),
                    resume_step=start if resumed else None,
                    kept_rows=log.kept,
                )
            evals = eval_arrays(prog, self.ds, self.cfg)
            t0 = time.perf_counter()
            elapsed = lambda: elapsed0 + time.perf_counter() - t0  # noqa: E731

            if t.eval_at_start and start == 0 and not resumed:
                loss = eval_loss(prog, params, evals)
                log.write(self._row(0, train_loss=None, loss=loss, lr=self.lr(0), elapsed=elapsed()))

            batches = Prefetcher(  # host batches; the loop stacks a call's worth and puts them at once
                lambda i: self.ds.train_batch(i, B, pi, pc),
                start_step=start,
                depth=prog.steps_per_call + 1,
                stop_step=plan.total_steps,
            )
            result = self._loop(batches, ckpts, log, start, params, opt_state, evals, elapsed)
            status = result.status
            return result
        except Preempted:
            status = "preempted"
            raise
        except (CheckpointSaveFailed, CheckpointCorrupt) as err:  # known faults: one line, no traceback
            failed = True
            self._say(f"{plan.out_dir}: {err}")
            return self._result("failed", ckpts.latest_step() or 0, 0.0, error=str(err))
        except Exception as err:  # noqa: BLE001 - a failed run is a result, not a crash of the sweep
            failed = True
            if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # a known fault too: one line
                message = f"disk full: no space left on device writing {err.filename or plan.out_dir}"
                self._say(f"{plan.out_dir}: {message}")
                return self._result("failed", ckpts.latest_step() or 0, 0.0, error=message)
            traceback.print_exc()
            step = ckpts.latest_step() or 0
            return self._result("failed", step, 0.0, error=f"{type(err).__name__}: {err}")
        finally:
            if batches is not None:
                batches.close()
            try:
                ckpts.close()
            except Exception:  # noqa: BLE001 - after a failed save, closing fails the same way
                if not failed:
                    raise
            finally:
                if log is not None and log.tracker is not None:
                    log.tracker.close(status)
                if self.mirror is not None:  # the final state (done, failed, preempted) reaches the store
                    self.mirror.push()

    def _loop(self, batches, ckpts, log, start, params, opt_state, evals, elapsed) -> TrainResult:
        """Step; at log, eval and checkpoint steps sync with the device, check the loss,
        evaluate, save; stop on divergence or SIGTERM. The device runs ahead between syncs,
        and the steps up to the next sync point go to the device in one call of up to
        `steps_per_call` (`Program.train_steps`)."""
        from tqdm.auto import tqdm

        plan, prog, t = self.plan, self.prog, self.cfg.train
        total = plan.total_steps
        single = jax.process_count() == 1
        bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr,
                   disable=not (t.progress and self.primary), desc=plan.out_dir.name)  # fmt: skip
        pending: list[tuple[int, int, Any]] = []  # (first step, steps, device metrics) not yet pulled
        last_loss = last_eval = None
        window = _Window(plan.tokens_per_step)
        step = start
        saved = None
        from scaling.train.profile import StepProfiler

        profiler = StepProfiler(t.profile_steps, plan.out_dir, enabled=self.primary)
        # the last step is an eval and a checkpoint step, so a later sync point always exists
        syncs = sorted(plan.eval_steps | plan.checkpoint_steps | {start + 1} | set(profiler.window))
        K, rows = prog.steps_per_call, plan.batch // jax.process_count()

        def save(step: int) -> None:
            nonlocal saved
            if saved != step:
                ckpts.save(step, params, opt_state, self._meta(step, elapsed()))
                saved = step

        with _Preemption() as preempt, bar, profiler:
            while step < total:
                # the steps up to the next sync point (a log, eval or checkpoint step, the
                # first step, a profile window's edge), at most K of them
                stop = min((step // t.log_every + 1) * t.log_every, syncs[bisect.bisect_right(syncs, step)])
                n = min(K, stop - step)
                chunk = np.zeros((K, rows, self.cfg.model.seq_len + 1), np.int32)
                lrs = np.zeros(K, np.float32)
                for j in range(n):
                    i, chunk[j] = next(batches)
                    lrs[j] = np.float32(self.lr(i))
                profiler.before(step)
                stacked = jax.make_array_from_process_local_data(
                    prog.batches_sharding(), chunk, (K, plan.batch, chunk.shape[2])
                )
                params, opt_state, metrics_dev = prog.train_steps(params, opt_state, stacked, lrs, np.int32(n))
                profiler.after(step + n - 1, metrics_dev)
                first = step == start
                step += n
                pending.append((step - n + 1, n, metrics_dev))
                window.steps += n
                bar.update(n)
                is_eval, is_ckpt = step in plan.eval_steps, step in plan.checkpoint_steps
                if not (is_eval or is_ckpt or step % t.log_every == 0 or first or (single and preempt.flag)):
                    continue

                # ---- a host sync point: the only place the loop waits for the device ----
                fetched = jax.device_get([m for _, _, m in pending])
                n_last = pending[-1][1] - 1  # the last call's last step
                bad = _first_nonfinite(pending, fetched)
                if bad is not None:
                    self._say(f"{plan.out_dir}: loss {bad[1]} at step {bad[0]}: diverged")
                    return self._result("diverged", bad[0], elapsed(), diverged_step=bad[0],
                                        error=f"diverged at step {bad[0]}: train loss {bad[1]}")  # fmt: skip
                pending.clear()
                ckpts.check_saves()  # stop at the first failed asynchronous save
                if self.mirror is not None:
                    self.mirror.sync()  # a checkpoint completed since the last sync: push it
                last_loss, grad_norm = float(fetched[-1]["loss"][n_last]), float(fetched[-1]["grad_norm"][n_last])
                tok_s = window.tokens_per_s(first)  # the first step includes compilation: not throughput
                bar.set_postfix(loss=f"{last_loss:.4f}", tok_s=f"{tok_s:.0f}" if tok_s else "-", refresh=False)

                if is_eval:
                    last_eval = (step, eval_loss(prog, params, evals))
                    row = self._row(step, train_loss=last_loss, loss=last_eval[1], lr=self.lr(step - 1),
                                    elapsed=elapsed(), grad_norm=grad_norm, tokens_per_s=tok_s,
                                    mfu=self._mfu(tok_s))  # fmt: skip
                    log.write(row)
                    self._say(
                        f"step {step}: train_loss {last_loss:.4f}  eval_loss {last_eval[1]:.4f}  "
                        f"eval_bpb {row['eval_bpb'] or float('nan'):.4f}"
                    )
                    if not math.isfinite(last_eval[1]):
                        return self._result("diverged", step, elapsed(), diverged_step=step,
                                            error=f"diverged at step {step}: eval loss {last_eval[1]}")  # fmt: skip
                if is_ckpt:
                    save(step)
                if step < total and preempt.requested(collective=not single):
                    save(step)
                    ckpts.wait()
                    self._say(f"{plan.out_dir}: SIGTERM: checkpoint saved at step {step}; rerun to resume")
                    self._result("preempted", step, elapsed(), final_train_loss=last_loss)
                    raise Preempted(step)
                window.restart()
        ckpts.wait()
        if last_eval is None or last_eval[0] != step:  # resumed at the end: evaluate once more
            last_eval = (step, eval_loss(prog, params, evals))
        if last_loss is None and log.enabled and log.last:
            last_loss = log.last.get("train_loss")
        return self._result("done", step, elapsed(), final_eval_loss=last_eval[1], final_train_loss=last_loss)


class _Window:
    """Training throughput between two host syncs (evaluation and saving excluded)."""

    def __init__(self, tokens_per_step: int) -> None:
        self.tokens_per_step = tokens_per_step
        self.restart()

    def restart(self) -> None:
        self.start, self.steps = time.perf_counter(), 0

    def tokens_per_s(self, first: bool) -> float | None:
        """Tokens per second since the last restart, read at a sync; after the run's first
        step (which includes compilation) the window starts afresh and reads None."""
        now = time.perf_counter()
        if first:
            self.start, self.steps = now, 0
        return self.steps * self.tokens_per_step / (now - self.start) if self.steps else None


def _first_nonfinite(pending: list[tuple[int, int, Any]], fetched: list[dict]) -> tuple[int, float] | None:
    """(step, loss) of the first non-finite training loss among the steps just pulled
    (`pending`: (first step, steps, metrics) per call of `train_steps`)."""
    for (first, n, _), m in zip(pending, fetched):
        for j in range(n):
            loss = float(m["loss"][j])
            if not math.isfinite(loss):
                return first + j, loss
    return None
