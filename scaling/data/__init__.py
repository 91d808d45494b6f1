"""The data pipeline: corpora, tokenizers, a token cache, and a deterministic per-process loader.

    from scaling.data import DataConfig, build_dataset, Prefetcher
    ds = build_dataset(DataConfig(source="stdlib", tokenizer="bytes", seq_len=256, seed=0))
    batch = ds.train_batch(step, global_batch_size, process_index, process_count)  # int32 [B/P, seq_len+1]
    evals = ds.eval_batches(global_batch_size, num_batches, process_index, process_count)

See scaling/data/README.md for the sources, the cache and the manifest.
"""

from scaling.data.build import build_dataset, cache_root, corpus_manifest
from scaling.data.config import SOURCES, TOKENIZERS, DataConfig
from scaling.data.loader import TokenDataset
from scaling.data.prefetch import Prefetcher
from scaling.data.token_file import read_token_file, write_token_file
from scaling.data.tokenizer import BPETokenizer, ByteTokenizer

__all__ = [
    "SOURCES",
    "TOKENIZERS",
    "BPETokenizer",
    "ByteTokenizer",
    "DataConfig",
    "Prefetcher",
    "TokenDataset",
    "build_dataset",
    "cache_root",
    "corpus_manifest",
    "read_token_file",
    "write_token_file",
]
