"""The run-status vocabulary, shared by the trainer (result.json), the sweep store
(status.json, runs.csv) and the runner.

    pending    planned, not started (or preempted: checkpointed, to be resumed)
    running    claimed by a worker
    done       trained to the end
    diverged   stopped at a non-finite loss: an outcome, not an error
    failed     an error; retried on the next invocation
    preempted  the trainer's own word for a run stopped by SIGTERM at a checkpoint;
               the sweep store records it as pending
"""

from __future__ import annotations

PENDING = "pending"
RUNNING = "running"
DONE = "done"
DIVERGED = "diverged"
FAILED = "failed"
PREEMPTED = "preempted"

STATUSES = (PENDING, RUNNING, DONE, DIVERGED, FAILED)  # what a sweep store holds
RESULT_STATUSES = (DONE, DIVERGED, FAILED, PREEMPTED)  # what a train function returns
FINISHED = (DONE, DIVERGED)  # terminal: never trained again
