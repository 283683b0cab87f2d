"""python -m fllic.train: train (or resume) a FLLIC model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fllic train", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with CBSD432, WikipediaPhotos, Waterloo, BSD400")
    p.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "fllic" / "train", help="checkpoints and logs (outside the repo)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lmbda", type=float, default=0.015, help="λ0 in λ(q) = λ0/q²")
    p.add_argument("--rate-warmup", type=int, default=2000, help="steps over which the rate term is phased in")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiny", action="store_true", help="a tiny model, for smoke tests")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--trunk", type=Path, default=None, help="v2: a denoising trunk (checkpoint or export of python -m fllic.train.denoiser) ahead of g_a")
    p.add_argument("--freeze-trunk", action="store_true", help="train the codec only, on the trunk's estimates")
    p.add_argument("--bf16", action="store_true", help="run the trunk under bf16 autocast (faster on CPUs with AVX-512 BF16)")
    p.add_argument("--bf16-codec", action="store_true",
                   help="run the codec's transforms under bf16 autocast too (CPUs with AVX-512 BF16 or AMX: about "
                        "half the step time); weights, rates and the loss stay float32")
    p.add_argument("--targets", choices=("v1", "clean"), default="v1",
                   help="training images: v1's set, or the v2 estimator's cleaner targets (BSD JPEGs downscaled by 2)")
    p.add_argument("--cosine", action="store_true", help="cosine learning-rate decay to 2%% at --steps (fine-tuning)")
    p.add_argument("--q-range", type=float, nargs=2, default=(0.5, 4.0), metavar=("LO", "HI"),
                   help="step-map scales q drawn log-uniformly from this range")
    p.add_argument("--code-estimate", action="store_true",
                   help="with --trunk and --freeze-trunk: measure distortion against the trunk's estimate (remote-source "
                        "coding), not the clean image")
    p.add_argument("--camera-fraction", type=float, default=0.0,
                   help="with --code-estimate: this fraction of patches through the camera pipeline, the trunk "
                        "reading their per-pixel noise maps (the camera model)")
    p.add_argument("--grey-fraction", type=float, default=0.2, help="grey patches (AWGN patches only, with --camera-fraction)")
    p.add_argument("--encoder-only", action="store_true",
                   help="train g_a and h_a only: the decoder part and the coding tables stay the start's")
    p.add_argument("--grey-output", action="store_true",
                   help="distortion on the channels' mean, the pixels a grey image decodes to (with --grey-fraction 1)")
    p.add_argument("--warmup", type=int, default=300, help="learning-rate warm-up steps")
    p.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU (python -m fllic.train.remote packs the work for another machine)")
    p.add_argument("--workers", type=int, default=0, help="processes making patches ahead of the step (for a GPU)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much wall time of this run, checkpointing; with --cosine the decay follows "
                        "this run's clock (a resumed run starts its own)")
    p.add_argument("--trial", choices=("finer-latent", "mixer", "control"), default=None,
                   help="issue 29's float trials (fllic.train.trials): a second latent at 1/8 resolution, or "
                        "attention-free blocks in g_s; grown from --init, measured by python -m fllic.train.trials")
    p.add_argument("--new-lr-scale", type=float, default=1.0, help="a trial's new modules learn at this multiple of --lr")
    p.add_argument("--init", type=Path, default=None, help="start from these float weights (a checkpoint, or a float resume point such as weights/fllic-awgn-v1-float.pt) when the workdir has no checkpoint")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fllic.train.loop import TrainConfig, train

    if args.patch % 64:
        print("error: --patch must be a multiple of 64", file=sys.stderr)
        return 2
    kw = vars(args)
    kw["q_range"] = tuple(kw["q_range"])
    train(TrainConfig(**kw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
