"""`scaling compress`: the held-out loss of a checkpoint under SVD truncation and weight
quantization.

  scaling compress CKPT [--svd RANK ...] [--energy E ...] [--bits BITS ...] [--embeddings]
                   [--mesh D,F,M] [--json OUT]

  --svd RANK ...   each attention and MLP matrix replaced by its best rank-r approximation;
                   RANK is a fraction of each matrix's full rank in (0, 1] (0.5), or rN for
                   the same rank N in every matrix (r16)
  --energy E ...   r per matrix: the fewest singular values holding a share E of Σ s²
  --bits BITS ...  round-to-nearest symmetric per-output-channel quantization at 2-16 bits,
                   evaluated fake-quantized in float32 (32 = the float32 weights)
  --embeddings     also compress the token embedding and the readout

Losses are nats per token on the validation batches the run's trainer evaluated with, by
its compiled eval step; every row reports the loss increase over the checkpoint, the
parameters retained (a rank-r factorization of an a × b matrix keeps r·(a + b)), the
compression ratio of the compressed matrices and their bits per weight (scales included).
--svd 1 and --bits 32 reproduce the checkpoint's loss exactly.

--json OUT writes (atomically): checkpoint {spec, run_dir, step}, loss, rows [{method,
setting, loss, loss_increase, retained_params, retained_compressible, compression_ratio,
bits_per_weight, mean_rank_fraction}], params_total, params_nonembedding,
compressible_params, embeddings, eval_tokens, mesh, model, seed, data_manifest_hash, versions.

Examples:
  scaling compress runs/tiny@1000 --svd 1 0.5 0.25 0.125 --bits 8 6 4 3 2
  scaling compress runs/tiny --energy 0.99 0.9 --json tiny_compress.json
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compress",
        help="loss of a checkpoint under SVD truncation and weight quantization",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="CKPT", help="RUN_DIR@STEP (RUN_DIR alone: its latest checkpoint)")
    p.add_argument("--svd", nargs="+", default=[], metavar="RANK", help="fractions of full rank in (0, 1], or rN")
    p.add_argument("--energy", nargs="+", type=float, default=[], metavar="E", help="energy thresholds in (0, 1]")
    p.add_argument("--bits", nargs="+", type=int, default=[], metavar="BITS", help="quantization bits, 2-16 (or 32)")
    p.add_argument("--embeddings", action="store_true", help="also compress the embedding and readout")
    p.add_argument("--mesh", default=None, metavar="D,F,M", help="device mesh sizes (default: the run's own)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON (atomically)")
    p.set_defaults(func=run)


def run(args) -> int:
    from scaling.interpolate.compress import check_bits, check_energy, parse_rank

    for spec in args.svd:
        parse_rank(spec)
    for e in args.energy:
        check_energy(e)
    for b in args.bits:
        check_bits(b)
    if not (args.svd or args.energy or args.bits):
        raise ValueError("nothing to do: give --svd, --energy and/or --bits")
    mesh = None
    if args.mesh is not None:
        try:
            mesh = tuple(int(x) for x in args.mesh.split(","))
        except ValueError:
            mesh = ()
        if len(mesh) != 3 or any(s < 1 for s in mesh):
            raise ValueError(f"--mesh {args.mesh!r}: expected three positive sizes data,fsdp,model (e.g. 2,2,2)")

    from scaling.train.distributed import initialize

    initialize()
    from scaling.runtime import enable_compilation_cache

    enable_compilation_cache()
    import jax

    from scaling.interpolate import compress

    result = compress(
        args.checkpoint, svd=args.svd, energy=args.energy, bits=args.bits, embeddings=args.embeddings, mesh=mesh
    )
    if jax.process_index() == 0:
        print(result.table())
        if args.json:
            from scaling.train.metrics import write_json_atomic

            write_json_atomic(args.json, result.to_dict())
    return 0
