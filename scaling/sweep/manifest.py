"""The sweep-level files of a results directory: sweep.toml, manifest.json, the plan's run list."""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

from scaling.runtime import git_state, package_versions
from scaling.sweep.plan import Plan
from scaling.sweep.store import ResultsStore, read_json, write_atomic, write_json


def write_sweep_files(
    store: ResultsStore, plan: Plan, *, record_environment: bool = True, data: dict | None = None
) -> None:
    """sweep.toml, manifest.json, runs/plan.json and every planned run's run.json.

    Idempotent, and the same from every worker of one sweep. runs/plan.json names the
    runs the tables show: runs of an earlier plan stay on disk (a later plan that needs
    them again reuses them) but leave the tables. manifest.json is written when missing or
    when the plan changed; a rerun that only resumes or skips leaves it alone, so it keeps
    naming the environment (commit, versions) that trained the runs — `record_training`
    refreshes it once this invocation has trained something. `data`: the data manifest,
    when the caller computed it already (to reject a bad data source before any write).
    """
    write_atomic(store.location("sweep.toml"), to_toml(plan.config.to_dict()))
    for run in plan.runs:
        store.write_run(run.record())
    write_json(store.location("runs/plan.json"), {"run_ids": [r.run_id for r in plan.runs]})
    path = store.location("manifest.json")
    old = _read_manifest(path)
    if old is None or any(old.get(k) != v for k, v in _plan_part(plan).items()):
        write_json(path, manifest(plan, record_environment=record_environment, previous=path, data=data))


def record_training(store: ResultsStore, plan: Plan, *, record_environment: bool = True) -> None:
    """Rewrite manifest.json with this process's environment after it trained runs (the
    creation time is kept; every run's own config.json records its own start's commit)."""
    path = store.location("manifest.json")
    write_json(path, manifest(plan, record_environment=record_environment, previous=path))


def _plan_part(plan: Plan) -> dict[str, Any]:
    """The part of a manifest that describes the sweep itself (the rest describes the
    environment that wrote it)."""
    cfg = plan.config
    return {
        "sweep": {
            "name": cfg.sweep.name,
            "kind": cfg.sweep.kind,
            "runs": len(plan.runs),
            "budgets": list(cfg.sweep.budgets),
            "flops_total": plan.total_flops,
            "flops_independent_runs": plan.independent_flops,
            "flop_convention": cfg.sweep.flop_convention,
        },
        "seeds": list(cfg.sweep.seeds),
        "data_seed": cfg.base.data.seed,
    }


def _read_manifest(path: Path | str) -> dict | None:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def manifest(
    plan: Plan, *, record_environment: bool = True, previous: Path | str | None = None, data: dict | None = None
) -> dict[str, Any]:
    cfg = plan.config
    out: dict[str, Any] = {
        **_plan_part(plan),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git_state(),
    }
    if record_environment:
        out["data"] = data if data is not None else data_manifest(cfg)
        from scaling.runtime import describe_devices

        out["devices"] = describe_devices()
    created = (_read_manifest(previous) or {}).get("created_at") if previous is not None else None
    out["created_at"] = created or _now()
    out["updated_at"] = _now()
    return out


def data_manifest(config) -> dict[str, Any]:
    """The corpus manifest's identity (builds or opens the token cache, as training would)."""
    from scaling.data import corpus_manifest

    cfg = config.base.data  # seq_len reconciled as the trainer does
    m = corpus_manifest(cfg)
    keep = ("manifest_hash", "corpus_hash", "tokenizer", "vocab_size", "source")
    return {"config": cfg.to_dict(), **{k: m[k] for k in keep if k in m}}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---- a small TOML writer (tomllib only reads) -----------------------------------------
def to_toml(data: dict[str, Any]) -> str:
    """Tables of scalars, lists and inline tables, as TOML that tomllib reads back equal."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for name, table in data.items():
        if not isinstance(table, dict):
            continue
        if lines:
            lines.append("")
        lines.append(f"[{_key(name)}]")
        for k, v in table.items():
            if v is None:
                continue
            lines.append(f"{_key(k)} = {_value(v)}")
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} value {v!r} as TOML")
