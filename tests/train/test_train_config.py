"""Config parsing: TOML sections -> frozen dataclasses, overrides, clear errors (no JAX compile)."""

from __future__ import annotations

import json

import pytest
from train_helpers import RUN, run_config, write_toml

from scaling.core.config import parse_value
from scaling.train.config import (
    MeshConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
    apply_overrides,
    diff_configs,
    load_config,
)


def test_toml_round_trip_and_overrides(tmp_path):
    path = write_toml(tmp_path / "run.toml", RUN)
    cfg = load_config(
        path, ["optimizer.lr=3e-3", "train.init_from=['/x', 4]", "mesh.rules.vocab=''", "data.source=stdlib"]
    )
    assert cfg.optimizer.lr == 3e-3
    assert cfg.train.init_from == ("/x", 4)
    assert dict(cfg.mesh.rules) == {"vocab": None}
    assert cfg.model.width == 64 and cfg.data.seq_len == cfg.model.seq_len == 32
    # the resolved dict (what config.json holds) reads back to the same config
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(AttributeError):
        cfg.train.steps = 3  # frozen


def test_parse_value_is_a_toml_literal_or_a_bare_string():
    assert parse_value("3e-3") == 3e-3
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('"a b"') == "a b"
    assert parse_value("stdlib") == "stdlib"


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lrr=1", "did you mean optimizer.lr"),
        ("train.stepz=5", "did you mean train.steps"),
        ("model.widht=5", "width"),
        ("data.sorce=text", "source"),
        ("optimiser.lr=1", r"did you mean \[optimizer\]"),
        ("mesh.rules.vocabb='model'", "did you mean mesh.rules.vocab"),
    ],
)
def test_unknown_keys_name_the_closest_valid_key(override, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(apply_overrides(RUN, [override]))


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"optimizer": {"lr": -1.0}}, r"optimizer.lr=-1.0"),
        ({"optimizer": {"name": "adam"}}, r"did you mean 'adamw'"),
        ({"schedule": {"kind": "cos"}}, r"schedule.kind='cos'"),
        ({"schedule": {"warmup": 2.5}}, r"schedule.warmup=2.5"),
        ({"train": {"tokens": 1000}}, r"exactly one of train.steps or train.tokens"),
        ({"train": {"microbatches": 3}}, r"train.microbatches=3"),
        ({"train": {"init_from": ["a"]}}, r"train.init_from"),
        ({"mesh": {"data": -1, "fsdp": -1}}, r"at most one axis may be -1"),
        ({"mesh": {"model": 0}}, r"mesh.model=0"),
        ({"data": {"seq_len": 64}}, r"model.seq_len=32 and data.seq_len=64 differ"),
    ],
)
def test_bad_values_are_named(sections, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(run_config(**sections))


def test_seq_len_given_once_applies_to_model_and_data():
    raw = run_config()
    raw["model"] = {k: v for k, v in raw["model"].items() if k != "seq_len"}
    raw["data"] = {"seq_len": 48}
    cfg = RunConfig.from_dict(raw)
    assert cfg.model.seq_len == cfg.data.seq_len == 48


def test_tokens_to_steps_and_warmup_fraction():
    t = TrainConfig(tokens=10_000, global_batch_size=8)
    assert t.num_steps(seq_len=32) == 40  # ceil(10000 / 256)
    assert TrainConfig(steps=7).num_steps(32) == 7
    assert ScheduleConfig(warmup=0.1).warmup == 0.1


def test_mesh_rules_override_defaults():
    rules = dict(MeshConfig(rules={"vocab": "", "mlp": ["model", "fsdp"]}).sharding_rules())
    assert rules["vocab"] is None and rules["mlp"] == ("model", "fsdp") and rules["embed"] == "fsdp"


def test_diff_ignores_resume_free_keys():
    a = RunConfig.from_dict(RUN).to_dict()
    b = RunConfig.from_dict(run_config(train={"progress": True}, mesh={"data": 2, "fsdp": -1})).to_dict()
    assert diff_configs(a, b) == []
    c = RunConfig.from_dict(run_config(optimizer={"lr": 0.5})).to_dict()
    assert diff_configs(a, c) == ["optimizer.lr: 0.01 (existing run) != 0.5 (this config)"]


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nwidth=3")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_config(bad)


def test_multi_host_detection_and_flag_errors(monkeypatch):
    from scaling.train import distributed

    for var in (
        "SCALING_COORDINATOR",
        "SLURM_NTASKS",
        "TPU_WORKER_HOSTNAMES",
        "MEGASCALE_COORDINATOR_ADDRESS",
        "SCALING_DISTRIBUTED",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(distributed, "_on_tpu_vm", lambda: False)
    assert distributed.detect() is None
    assert distributed.initialize() is False  # one process: nothing to do
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert distributed.detect() == "slurm"
    monkeypatch.setenv("SCALING_COORDINATOR", "127.0.0.1:1234")
    assert distributed.detect() == "explicit"
    with pytest.raises(ValueError, match="needs --num-processes and --process-id"):
        distributed.initialize()
    with pytest.raises(ValueError, match=r"process_id=2 must be in \[0, num_processes=2\)"):
        distributed.initialize(num_processes=2, process_id=2)
    monkeypatch.setenv("SCALING_NUM_PROCESSES", "x")
    with pytest.raises(ValueError, match="SCALING_NUM_PROCESSES='x' must be an integer"):
        distributed.initialize(process_id=0)


def test_runs_started_before_an_option_existed_resume_at_its_default():
    """A run's stored config lacks options added to the trainer later: they read as their
    defaults, so the run resumes; a non-default value is still a difference."""
    new = RunConfig.from_dict(RUN).to_dict()
    old = json.loads(json.dumps(new))
    del old["model"]["tied_embeddings"], old["schedule"]["cooldown_shape"]
    assert diff_configs(old, new) == []
    changed = RunConfig.from_dict(run_config(model={"tied_embeddings": True})).to_dict()
    assert diff_configs(old, changed) == ["model.tied_embeddings: False (existing run) != True (this config)"]
    # rematerialization changes memory, not numbers: a run may resume with another policy
    assert diff_configs(new, RunConfig.from_dict(run_config(model={"remat": "full"})).to_dict()) == []


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.eval_batches=4", "train.eval_batches is now data.num_eval_batches; rename it"),
        ("train.flops_convention='6N'", "train.flops_convention is now train.flop_convention"),
        ("schedule.decay_fraction=0.1", "schedule.decay_fraction is now schedule.cooldown_fraction"),
        ("schedule.cooldown_shape='sqrt'", "schedule.cooldown_shape='sqrt': is now '1-sqrt'"),
    ],
)
def test_renamed_keys_name_their_new_spelling(override, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(apply_overrides(RUN, [override]))


def test_a_config_json_written_before_the_renames_reads_and_resumes():
    """A run directory's config.json from before the renames upgrades to today's spelling,
    so the run resumes instead of reading as a different config."""
    new = RunConfig.from_dict(run_config(schedule={"kind": "wsd", "cooldown_shape": "1-sqrt"})).to_dict()
    old = json.loads(json.dumps(new))
    old["train"]["flops_convention"] = old["train"].pop("flop_convention")
    old["train"]["eval_batches"] = old["data"].pop("num_eval_batches")
    old["schedule"]["decay_shape"] = "sqrt"
    del old["schedule"]["cooldown_shape"]
    assert diff_configs(old, new) == []
    assert RunConfig.from_dict(core_upgrade(old)).to_dict() == new


def core_upgrade(raw):
    from scaling.core.config import upgrade

    return upgrade(raw)
