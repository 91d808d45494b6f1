"""Readers for what the trackers wrote: TensorBoard through TensorBoard's own event
reader (which applies purges as the dashboard does), W&B offline runs from their
transaction log."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as the TensorBoard dashboard shows them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def tensorboard_raw_steps(logdir: Path, tag: str) -> list[int]:
    """Every step logged for `tag` in the event files, purged or not."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    steps = []
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == tag:
                    steps.append(event.step)
    return steps


def _wandb_records(path: Path):
    """The protobuf records of a W&B transaction log (.wandb): a 7-byte header, then
    32 KiB blocks of chunks (crc32 uint32, length uint16, type uint8: 1 full, 2 first,
    3 middle, 4 last)."""
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), f"{path}: not a W&B transaction log"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            break
        pending += data[pos : pos + length]
        pos += length
        if kind in (1, 4):
            yield pending
            pending = b""


def wandb_offline_runs(wandb_root: Path) -> list[dict]:
    """Per offline run directory (oldest first): its run id, project, group and history
    rows [(step, {key: value})]."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs = []
    for path in sorted(Path(wandb_root).glob("wandb/offline-run-*/*.wandb")):
        run = {"dir": path.parent.name, "history": []}
        for raw in _wandb_records(path):
            record = pb.Record()
            record.ParseFromString(raw)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.update(run_id=record.run.run_id, project=record.run.project, group=record.run.run_group)
            elif kind == "history":
                items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
                run["history"].append((record.history.step.num, items))
        runs.append(run)
    return runs
