"""TokenDataset: deterministic, stateless, per-process batches of windows.

Training windows (seq_len + 1 tokens: inputs and shifted targets) come from the
train token array only. Global sample g = step * global_batch_size + row lives
in epoch g // W, where W is the number of non-overlapping windows per epoch;
each epoch has its own seeded permutation of those windows and its own random
start offset, so within an epoch no window repeats and across epochs window
boundaries move. A batch is therefore a pure function of (seed, step,
global_batch_size, seq_len): resuming, re-sharding or skipping steps changes
nothing, and process p of P gets rows [p*B/P, (p+1)*B/P) of the global batch.

Validation batches are fixed: K = global_batch_size * num_batches
non-overlapping windows spread evenly over the validation array, the same on
every call; each process takes its own rows of each batch.
"""

from __future__ import annotations

import threading

import numpy as np


def _check_split(global_batch_size: int, process_index: int, process_count: int) -> int:
    for name, v in (("global_batch_size", global_batch_size), ("process_count", process_count)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if global_batch_size % process_count:
        raise ValueError(f"global_batch_size={global_batch_size} is not divisible by process_count={process_count}")
    if (
        isinstance(process_index, bool)
        or not isinstance(process_index, (int, np.integer))
        or not (0 <= process_index < process_count)
    ):
        raise ValueError(f"process_index={process_index} is outside [0, process_count={process_count})")
    return global_batch_size // process_count


class TokenDataset:
    """Train and validation token arrays (usually memory-mapped) plus the batch logic.

    Attributes: vocab_size, seq_len, seed, manifest (JSON-able), bytes_per_token
    (validation bytes per token, a document separator counting as one byte:
    exactly 1.0 for the byte tokenizer), separator_id, tokenizer (None for token
    files), train_tokens, validation_tokens, windows_per_epoch, num_eval_windows.
    """

    _EPOCH_CACHE = 4

    def __init__(
        self,
        train: np.ndarray,
        validation: np.ndarray,
        *,
        vocab_size: int,
        seq_len: int,
        seed: int,
        manifest: dict,
        bytes_per_token: float,
        separator_id: int | None = None,
        tokenizer=None,
    ) -> None:
        self.train_tokens = train
        self.validation_tokens = validation
        self.vocab_size = int(vocab_size)
        self.seq_len = int(seq_len)
        self.seed = int(seed)
        self.manifest = manifest
        self.bytes_per_token = float(bytes_per_token)
        self.separator_id = separator_id
        self.tokenizer = tokenizer
        for name, arr in (("train", train), ("validation", validation)):
            if len(arr) < seq_len + 1:
                raise ValueError(
                    f"the {name} split has {len(arr)} tokens, fewer than one window of seq_len + 1 = "
                    f"{seq_len + 1} tokens (source {manifest.get('source')!r}); use a larger corpus, "
                    + ("a larger validation_fraction, " if name == "validation" else "")
                    + "or a smaller seq_len"
                )
        # Windows per epoch: keep one window of slack (when there is room) so the
        # per-epoch offset can range over a whole window length.
        n, L = len(train), self.seq_len
        full = (n - 1) // L
        self.windows_per_epoch = full - 1 if full >= 2 else full
        self._max_offset = min(L - 1, n - 1 - self.windows_per_epoch * L)
        self.num_eval_windows = (len(validation) - 1) // L
        self._window = np.arange(L + 1, dtype=np.int64)
        self._epochs: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ training

    def _epoch_starts(self, epoch: int) -> np.ndarray:
        """Start offsets of epoch `epoch`'s windows, in that epoch's order (cached)."""
        with self._lock:
            starts = self._epochs.get(epoch)
            if starts is None:
                rng = np.random.default_rng([self.seed, epoch])
                offset = int(rng.integers(0, self._max_offset + 1))
                starts = offset + rng.permutation(self.windows_per_epoch).astype(np.int64) * self.seq_len
                if len(self._epochs) >= self._EPOCH_CACHE:
                    self._epochs.pop(min(self._epochs))
                self._epochs[epoch] = starts
            return starts

    def train_starts(self, step: int, global_batch_size: int, process_index: int = 0, process_count: int = 1):
        """Start offsets (into train_tokens) of this process's rows of batch `step`."""
        rows = _check_split(global_batch_size, process_index, process_count)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step!r}")
        first = int(step) * global_batch_size + process_index * rows
        g = first + np.arange(rows, dtype=np.int64)
        W = self.windows_per_epoch
        e0, e1 = first // W, (first + rows - 1) // W
        if e0 == e1:
            return self._epoch_starts(e0)[g - e0 * W]
        epoch, pos = np.divmod(g, W)
        starts = np.empty(rows, dtype=np.int64)
        for e in range(e0, e1 + 1):
            mask = epoch == e
            starts[mask] = self._epoch_starts(e)[pos[mask]]
        return starts

    def train_batch(
        self, step: int, global_batch_size: int, process_index: int = 0, process_count: int = 1
    ) -> np.ndarray:
        """int32 [global_batch_size // process_count, seq_len + 1]: this process's rows of batch `step`."""
        starts = self.train_starts(step, global_batch_size, process_index, process_count)
        return self.train_tokens[starts[:, None] + self._window].astype(np.int32)

    # ------------------------------------------------------------ evaluation

    def check_eval(self, global_batch_size: int, num_batches: int) -> None:
        """Raise if validation holds fewer than global_batch_size * num_batches non-overlapping windows."""
        if isinstance(num_batches, bool) or not isinstance(num_batches, (int, np.integer)) or num_batches < 1:
            raise ValueError(f"num_batches must be a positive integer, got {num_batches!r}")
        need = global_batch_size * num_batches
        if need > self.num_eval_windows:
            raise ValueError(
                f"the validation split is too small for the requested evaluation: {num_batches} batches x "
                f"global_batch_size {global_batch_size} = {need} windows of seq_len + 1 = {self.seq_len + 1} "
                f"tokens, but its {len(self.validation_tokens)} tokens hold {self.num_eval_windows} "
                f"non-overlapping windows; raise validation_fraction "
                f"(now {self.manifest.get('validation_fraction')}) or lower the eval batch count"
            )

    def eval_batches(
        self, global_batch_size: int, num_batches: int, process_index: int = 0, process_count: int = 1
    ) -> list[np.ndarray]:
        """The fixed validation batches: num_batches arrays, int32 [global_batch_size // process_count, seq_len + 1]."""
        rows = _check_split(global_batch_size, process_index, process_count)
        self.check_eval(global_batch_size, num_batches)
        k = global_batch_size * num_batches
        starts = (np.arange(k, dtype=np.int64) * self.num_eval_windows // k) * self.seq_len
        starts = starts.reshape(num_batches, global_batch_size)[:, process_index * rows : (process_index + 1) * rows]
        return list(self.validation_tokens[starts[..., None] + self._window].astype(np.int32))

    LIMIT_BLOCK = 2048  # tokens per contiguous block of a limited training split

    def limit_train(self, n: int) -> TokenDataset:
        """The same dataset trained on only n tokens of its training split (repeated over
        epochs): blocks of LIMIT_BLOCK tokens spread evenly over the split, so the subset
        samples the whole corpus (its first n tokens would be a few files, a shift of
        domain rather than repetition). The manifest records the limit."""
        total = len(self.train_tokens)
        if n > total:
            raise ValueError(
                f"DataConfig.max_train_tokens={n:,} exceeds the training split's {total:,} tokens "
                f"(source {self.manifest.get('source')!r})"
            )
        k = -(-n // self.LIMIT_BLOCK)  # blocks of near-equal size summing to n
        sizes = np.full(k, n // k)
        sizes[: n % k] += 1
        starts = np.linspace(0, total - sizes.max(), k).astype(np.int64)
        train = np.concatenate([np.asarray(self.train_tokens[s : s + z]) for s, z in zip(starts, sizes)])
        return TokenDataset(
            train, self.validation_tokens, vocab_size=self.vocab_size, seq_len=self.seq_len,
            seed=self.seed, manifest={**self.manifest, "max_train_tokens": int(n)},
            bytes_per_token=self.bytes_per_token, separator_id=self.separator_id, tokenizer=self.tokenizer,
        )  # fmt: skip

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"TokenDataset(source={m.get('source')!r}, tokenizer={m.get('tokenizer', {}).get('name')!r}, "
            f"vocab_size={self.vocab_size}, seq_len={self.seq_len}, train_tokens={len(self.train_tokens)}, "
            f"validation_tokens={len(self.validation_tokens)}, manifest_hash={m.get('manifest_hash', '')[:12]!r})"
        )
