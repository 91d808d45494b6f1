"""A PyTorch-eager GPT with nanoGPT's architecture, timed like the trainer's step.

Written for the peer benchmark (benchmarks/peers/run.py); it is not a runtime dependency
of the toolkit and needs `torch` (the `bench` extra, or any Python with torch installed).
Architecture as nanoGPT's `model.py`: learned positions, LayerNorm without bias, fused
q/k/v, `scaled_dot_product_attention(is_causal=True)`, a 4x tanh-GELU MLP, tied input and
output embeddings, no biases. AdamW (betas 0.9/0.95, weight decay 0.1 on matrices) with
gradient clipping at 1.0, float32.

    python benchmarks/peers/nanogpt_torch.py '{"width": 128, "depth": 4, "heads": 4, "steps": 30}'

prints one JSON line: tokens per CPU-second (the process pinned to one core, one thread).
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(spec: dict) -> dict:
    os.sched_setaffinity(0, {spec.get("core", 0)})
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)
    width, depth, heads = spec["width"], spec["depth"], spec["heads"]
    vocab, seq, batch = spec.get("vocab", 256), spec.get("seq", 256), spec.get("batch", 16)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(width, bias=False)
            self.qkv = nn.Linear(width, 3 * width, bias=False)
            self.proj = nn.Linear(width, width, bias=False)
            self.ln2 = nn.LayerNorm(width, bias=False)
            self.up = nn.Linear(width, 4 * width, bias=False)
            self.down = nn.Linear(4 * width, width, bias=False)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
            q, k, v = (z.view(b, t, heads, width // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, width))
            return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(vocab, width)
            self.wpe = nn.Embedding(seq, width)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.ln_f = nn.LayerNorm(width, bias=False)
            self.head = nn.Linear(width, vocab, bias=False)
            self.head.weight = self.wte.weight  # tied
            for p in self.parameters():
                nn.init.normal_(p, std=0.02) if p.dim() == 2 else None

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            logits = self.head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, vocab), targets.reshape(-1))

    model = GPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, vocab, (batch, seq + 1), generator=gen) for _ in range(4)]

    def step(i: int):
        x = batches[i % 4]
        loss = model(x[:, :-1], x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    for i in range(2):  # warm up
        step(i).item()
    steps = spec["steps"]
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        loss = step(i)
        if (i + 1) % 10 == 0:
            loss.item()
    loss.item()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    tokens = steps * batch * seq
    params = sum(p.numel() for p in model.parameters())
    return {
        "tokens_per_cpu_s": tokens / cpu,
        "tokens_per_s": tokens / wall,
        "cpu_s": cpu,
        "wall_s": wall,
        "steps": steps,
        "params": params,
        "loss": float(loss),
        "torch": torch.__version__,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
