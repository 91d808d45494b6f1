"""Packed runs: several runs of one shape trained by one compiled program.

    from scaling.train.packed import train_packed, pack_key
    results = train_packed([cfg_a, cfg_b, cfg_c], ["runs/a", "runs/b", "runs/c"])

Runs whose configs differ only in the peak learning rate (optimizer.lr) and the init
seed (train.seed) are stacked along a leading run axis: parameters and optimizer state
become [K, ...], the learning rate a [K] vector, and `jax.vmap` of the trainer's own
compiled init, train step and eval step (`scaling.train.step.program`) runs them in one
program on one stream of batches. Nothing about a step is re-implemented: the loss, the
gradients, the optimizer and the evaluation sums are the unpacked run's, so each packed
run equals its unpacked self within float32 rounding (tests/train/test_train_packed.py
measures it). On an accelerator a tiny model leaves most of the chip idle, and K runs
cost about one run's wall time; on a CPU the gain is the saved per-step dispatch only.

Each run gets a normal run directory (config.json, metrics.jsonl, the final checkpoint,
result.json), so a packed run reads back like any other (`scaling.train.evaluate`,
`train()` on the directory reports it finished). Differences from `train`, by design:
a packed group saves only its final checkpoint and reruns from step 0 as a unit when
interrupted (SIGTERM raises `Preempted` at once; tiny runs cost less to redo than to
checkpoint every few seconds); a run that diverges is recorded diverged at the sync point
that saw it while the others go on; `train.init_from`, `save_steps` and
`keep_eval_checkpoints` are not packable (`pack_key` says why), nor multi-process jobs.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import threading
import time
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from scaling.core.status import FINISHED
from scaling.train import metrics as M
from scaling.train.checkpoint import Checkpoints, checkpoint_dir
from scaling.train.config import RunConfig, diff_configs
from scaling.train.evaluate import eval_arrays, eval_loss_sum, eval_metrics, put_batch
from scaling.train.mesh import check_batch, make_mesh
from scaling.train.schedules import check_schedule, schedule_fn
from scaling.train.step import compiler_options_for_init, program
from scaling.train.trainer import Preempted, TrainResult, read_result

# The keys that may differ between the runs of one pack (everything else must be equal).
PER_RUN_KEYS = (("optimizer", "lr"), ("train", "seed"))


def as_run_config(config) -> RunConfig:
    return config if isinstance(config, RunConfig) else RunConfig.from_dict(config)


def pack_key(config) -> str | None:
    """A string equal for runs that can share one program (None: this run cannot be packed).

    The config without its per-run keys (peak LR, init seed) and without the keys that
    never change the numbers (progress, logging, mesh shape)."""
    cfg = as_run_config(config)
    t = cfg.train
    if t.init_from is not None or t.save_steps or t.keep_eval_checkpoints:
        return None
    d = cfg.to_dict()
    for section, key in PER_RUN_KEYS:
        d[section].pop(key, None)
    return json.dumps(d, sort_keys=True)


def _check_packable(cfgs: list[RunConfig]) -> None:
    keys = [pack_key(c) for c in cfgs]
    for i, (c, k) in enumerate(zip(cfgs, keys)):
        if k is None:
            raise ValueError(
                f"run {i} cannot be packed: train.init_from, train.save_steps and train.keep_eval_checkpoints "
                f"need the unpacked trainer (got init_from={c.train.init_from}, save_steps={list(c.train.save_steps)}, "
                f"keep_eval_checkpoints={c.train.keep_eval_checkpoints})"
            )
        if k != keys[0]:
            ignore = set(PER_RUN_KEYS) | _resume_free()
            diffs = diff_configs(cfgs[0].to_dict(), c.to_dict(), ignore=ignore)
            raise ValueError(
                f"run {i} differs from run 0 in more than the learning rate and seed, so they cannot share one "
                f"program: {'; '.join(diffs)}"
            )


def _resume_free():
    from scaling.train.config import RESUME_FREE_KEYS

    return set(RESUME_FREE_KEYS)


def _eval_steps(cfg: RunConfig) -> set[int]:
    """The trainer's evaluation steps: multiples of train.eval_every, and the last step."""
    every, total = cfg.train.eval_every, cfg.steps
    steps = set(range(every, total + 1, every)) if every else set()
    return steps | {total}


def _config_record(cfg: RunConfig, ds, slot: int, group: list[str]) -> dict:
    from scaling.runtime import describe_devices, git_state, package_versions

    return {
        "config": cfg.to_dict(),
        "seed": cfg.train.seed,
        "data_seed": cfg.data.seed,
        "steps_total": cfg.steps,
        "data_manifest_hash": ds.manifest.get("manifest_hash"),
        "data_manifest": ds.manifest,
        "versions": package_versions(),
        "packed": {"slot": slot, "runs": group},
        "starts": [
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "devices": describe_devices(),
                "argv": sys.argv,
                "git": git_state(),
                "packed": True,
            }  # fmt: skip
        ],
    }


def _fresh_dir(out: Path, cfg: RunConfig) -> None:
    """Make `out` an empty run directory for `cfg` (a packed group restarts from step 0)."""
    stored = out / "config.json"
    if stored.exists():
        diffs = diff_configs(json.loads(stored.read_text()).get("config", {}), cfg.to_dict())
        if diffs:
            raise ValueError(f"{out} holds a run with a different config:\n  " + "\n  ".join(diffs))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.jsonl", "result.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)


class _Stop:
    """SIGTERM sets a flag the loop polls (main thread only)."""

    def __init__(self) -> None:
        self.flag, self._old = False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.flag = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def train_packed(configs, out_dirs, *, log=None) -> list[TrainResult]:
    """Train the runs `configs` (RunConfigs or dicts) into `out_dirs` as one packed program.

    Runs already finished in their directories are returned as they are and left out of
    the pack; the others train together from step 0. Bad input raises before compiling.
    """
    cfgs = [as_run_config(c) for c in configs]
    outs = [Path(d).absolute() for d in out_dirs]
    if len(cfgs) != len(outs) or not cfgs:
        raise ValueError(f"train_packed: {len(cfgs)} configs for {len(outs)} output directories")
    if len(set(outs)) != len(outs):
        raise ValueError("train_packed: two runs share one output directory")
    if jax.process_count() != 1:
        raise ValueError("packed runs are single-process; a multi-host job trains its runs unpacked")
    _check_packable(cfgs)
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    results: list[TrainResult | None] = [None] * len(cfgs)
    todo = []
    for i, out in enumerate(outs):
        prev = read_result(out) if (out / "config.json").exists() else None
        if (
            prev is not None
            and prev.status in FINISHED
            and not diff_configs(json.loads((out / "config.json").read_text()).get("config", {}), cfgs[i].to_dict())
        ):
            results[i] = prev
        else:
            todo.append(i)
    if todo:
        got = _Pack([cfgs[i] for i in todo], [outs[i] for i in todo], say).run()
        for i, r in zip(todo, got):
            results[i] = r
    return results


class _Pack:
    def __init__(self, cfgs: list[RunConfig], outs: list[Path], say) -> None:
        from scaling.data import build_dataset
        from scaling.model import flops_per_token

        self.cfgs, self.outs, self.say = cfgs, outs, say
        c = cfgs[0]
        t = c.train
        self.mesh = make_mesh(c.mesh)
        check_batch(self.mesh, t.global_batch_size, t.microbatches)
        if c.data.eval_batch_size:
            check_batch(self.mesh, c.data.eval_batch_size, what="data.eval_batch_size")
        self.ds = build_dataset(c.data.replace(eval_batch_size=c.eval_batch_size))
        if c.model.vocab_size < self.ds.vocab_size:
            raise ValueError(
                f"model.vocab_size={c.model.vocab_size} is smaller than the data's vocabulary ({self.ds.vocab_size})"
            )
        check_schedule(c.schedule, c.steps)
        for cfg, out in zip(cfgs, outs):
            _fresh_dir(out, cfg)
        self.total = c.steps
        self.tokens_per_step = t.global_batch_size * c.model.seq_len
        self.fpt = flops_per_token(c.model, t.flop_convention)
        self.lrs = [schedule_fn(cfg.schedule, cfg.optimizer.lr, self.total) for cfg in cfgs]
        self.prog = program(c.model, c.optimizer, t.microbatches, self.mesh, c.mesh.sharding_rules())
        prog = self.prog
        self.init = jax.jit(jax.vmap(prog.init_fn), compiler_options=compiler_options_for_init(self.mesh))
        self.step = jax.jit(jax.vmap(prog.train_step, in_axes=(0, 0, None, 0)), donate_argnums=(0, 1))
        # eval_loss_sum reads only .eval_step: the same summation, one [K] sum per batch
        self.evaluator = types.SimpleNamespace(eval_step=jax.jit(jax.vmap(prog.eval_step, in_axes=(0, None))))
        ids = [o.name for o in outs]
        for k, (cfg, out) in enumerate(zip(cfgs, outs)):
            M.write_json_atomic(out / "config.json", _config_record(cfg, self.ds, k, ids))

    def _eval(self, params, evals) -> np.ndarray:
        return np.asarray(jax.device_get(eval_loss_sum(self.evaluator, params, evals)), np.float64) / len(evals)

    def _result(self, k: int, status: str, step: int, elapsed: float, **extra) -> TrainResult:
        res = TrainResult(
            status=status,
            out_dir=str(self.outs[k]),
            steps=step,
            tokens=step * self.tokens_per_step,
            flops=step * self.tokens_per_step * self.fpt,
            flop_convention=self.cfgs[0].train.flop_convention,
            wall_time=elapsed,
            **extra,
        )
        M.write_json_atomic(self.outs[k] / "result.json", res.to_dict())
        return res

    def run(self) -> list[TrainResult]:
        from scaling.data import Prefetcher

        c, K = self.cfgs[0], len(self.cfgs)
        t = c.train
        B = t.global_batch_size
        logs = [M.MetricsLog(o / "metrics.jsonl", resume_step=None) for o in self.outs]
        params, opt_state = self.init(jnp.asarray([cfg.train.seed for cfg in self.cfgs], jnp.int32))
        evals = eval_arrays(self.prog, self.ds, c)
        eval_steps = _eval_steps(c)
        t0 = time.perf_counter()
        alive = [True] * K
        results: list[TrainResult | None] = [None] * K
        last_train = [None] * K
        pending = []
        batches = Prefetcher(lambda i: put_batch(self.prog, self.ds.train_batch(i, B), B), start_step=0, depth=2,
                             stop_step=self.total)  # fmt: skip
        window_start, window_steps = time.perf_counter(), 0
        next_line = time.perf_counter() + 60.0
        try:
            with _Stop() as stop:
                for i, batch in batches:
                    lr = np.asarray([f(i) for f in self.lrs], np.float32)
                    params, opt_state, m = self.step(params, opt_state, batch, lr)
                    step = i + 1
                    pending.append((step, m))
                    window_steps += 1
                    is_eval = step in eval_steps
                    if not (is_eval or step % t.log_every == 0 or step == 1 or stop.flag):
                        continue
                    fetched = jax.device_get([x for _, x in pending])
                    for (s, _), f in zip(pending, fetched):
                        for k in range(K):
                            if alive[k] and not math.isfinite(float(f["loss"][k])):
                                alive[k] = False
                                self.say(f"{self.outs[k]}: loss {float(f['loss'][k])} at step {s}: diverged")
                                results[k] = self._result(k, "diverged", s, time.perf_counter() - t0, diverged_step=s)
                    pending.clear()
                    now = time.perf_counter()
                    if step == 1:  # the first step includes compilation: not throughput
                        window_start, window_steps = now, 0
                    tok_s = window_steps * self.tokens_per_step / (now - window_start) if window_steps else None
                    losses, gnorm = fetched[-1]["loss"], fetched[-1]["grad_norm"]
                    for k in range(K):
                        last_train[k] = float(losses[k])
                    if is_eval:
                        ev = self._eval(params, evals)
                        for k in range(K):
                            if not alive[k]:
                                continue
                            row = {
                                "step": step,
                                "tokens": step * self.tokens_per_step,
                                "flops": step * self.tokens_per_step * self.fpt,
                                "flops_convention": t.flop_convention,
                                "train_loss": last_train[k],
                                **eval_metrics(float(ev[k]), self.ds.bytes_per_token),
                                "lr": self.lrs[k](step - 1),
                                "grad_norm": float(gnorm[k]),
                                "tokens_per_s": tok_s,
                                "mfu": None,
                                "elapsed": now - t0,
                            }
                            logs[k].write(row)
                            if not math.isfinite(ev[k]):
                                alive[k] = False
                                results[k] = self._result(k, "diverged", step, now - t0, diverged_step=step)
                        if step == self.total:
                            final_eval = ev
                    if now >= next_line and step < self.total:  # a periodic line in long packs
                        next_line = now + 60.0
                        self.say(f"[packed x{K}] step {step}/{self.total}: train_loss "
                                 + " ".join(f"{x:.3f}" for x in last_train))  # fmt: skip
                    if stop.flag and step < self.total:
                        for k in range(K):
                            if alive[k]:
                                self._result(k, "preempted", step, now - t0, final_train_loss=last_train[k])
                        self.say(f"[packed x{K}] SIGTERM at step {step}: the pack reruns from step 0 as a unit")
                        raise Preempted(step)
                    window_start, window_steps = time.perf_counter(), 0
        finally:
            batches.close()
        elapsed = time.perf_counter() - t0
        for k in range(K):
            if not alive[k]:
                continue
            one = jax.tree.map(lambda a, k=k: a[k], (params, opt_state))
            with Checkpoints(checkpoint_dir(self.outs[k]), keep=1, async_save=False) as ckpts:
                meta = {"step": self.total, "elapsed": elapsed, "tokens": self.total * self.tokens_per_step,
                        "config": self.cfgs[k].to_dict()}  # fmt: skip
                ckpts.save(self.total, one[0], one[1], meta)
                ckpts.wait()
            results[k] = self._result(k, "done", self.total, elapsed, final_eval_loss=float(final_eval[k]),
                                      final_train_loss=last_train[k])  # fmt: skip
        return results


__all__ = ["PER_RUN_KEYS", "pack_key", "train_packed"]
