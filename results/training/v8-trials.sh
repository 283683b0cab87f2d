#!/bin/bash
# fllic-awgn-v8 trials on the CPU (issue 29): v7's float codec (v6's resume point: v7 is v6's networks with eight
# quality levels) trained on from the same start, as it is (control) and with its latent widened by a
# function-preserving widening (step 0 decodes what v7 decodes; --quiet: and spends v7's bits, its new latents near
# zero under a scale of a twentieth of a step) to 320 channels (a codec the exact integer decoder cannot take,
# so it is not evaluated on coded files: results/training/v8-trials.md) and to 224 (within its bound). v7's trunk
# frozen; the codec codes its estimate (--code-estimate), v6's recipe except for the patch, the batch and the steps.
# usage (from the repository root): bash results/training/v8-trials.sh STEPS
set -eu
STEPS=${1:-400}
W=~/.cache/fllic/v8
python -m fllic.train.remote join --parts weights/fllic-awgn-v6-float --trunk weights/fllic-awgn-v6-float-trunk.pt \
    --out $W/joined.pt
python -m fllic.train.widen --from $W/joined.pt --m 320 --quiet 0.01 --out $W/init-m320-quiet.pt
python -m fllic.train.widen --from $W/joined.pt --m 224 --quiet 0.01 --out $W/init-m224-quiet.pt
COMMON="--data ../shared/data --trunk weights/fllic-awgn-v6-float-trunk.pt --freeze-trunk --targets clean --cosine
  --code-estimate --q-range 0.25 4 --lmbda 0.04 --rate-warmup 1 --lr 1e-4 --warmup 50 --batch 8 --patch 128
  --seed 43 --threads 2 --ckpt-every 50 --log-every 10 --steps $STEPS"
EVAL="--data ../shared/data/CBSD68 --limit 6 --sigma 15 25 --q 1 0.5 0.25 --threads 2"
python -m fllic.train.evaluate --checkpoint $W/joined.pt $EVAL > $W/start-eval.txt
for trial in control m320-quiet m224-quiet; do
  init=$W/joined.pt; [ $trial != control ] && init=$W/init-$trial.pt
  python -m fllic.train $COMMON --init $init --workdir $W/$trial
  python -m fllic.train.evaluate --checkpoint $W/$trial/checkpoint.pt $EVAL > $W/$trial/eval.txt \
    || echo "$trial: not exportable to the integer decoder (results/training/v8-trials.md)"
done
