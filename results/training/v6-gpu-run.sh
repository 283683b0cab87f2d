#!/bin/bash
# On a GPU (fllic-awgn-v6): v5's trunk trained on (cleaner JPEG-97 photo targets), then v5's codec coding its estimate.
# usage: bash .pack/run.sh DEVICE OUT T_TRUNK T_CODEC WORKERS
set -u
DEV=$1; OUT=$2; T1=$3; T2=$4; NW=$5
export PYTHONPATH=$PWD/src
L=.pack; W=${WORK:-build/packwork}
rm -rf $W; mkdir -p $W/trunk $OUT
python -m fllic.train.remote unpack --pack $L --workdir $W/codec || exit 1
ln -sf $W/codec/clean.npz $W/trunk/images.npz
python -m fllic.train.denoiser --data $W/none --workdir $W/trunk --from $L/trunk.pt --device $DEV --workers $NW \
    --max-minutes $T1 --batch 48 --patch 128 --lr 1.5e-4 --warmup 200 --steps 10000000 --val-every 100000000 \
    --ckpt-every 100000000 --log-every 50 --seed 41 \
  && python -m fllic.train.denoiser --workdir $W/trunk --export $OUT/trunk.pt \
  && python -m fllic.train --data $W/none --workdir $W/codec --init $L/init.pt --trunk $W/trunk/checkpoint.pt \
    --freeze-trunk --targets clean --cosine --code-estimate --q-range 0.25 4 --lmbda 0.04 --rate-warmup 1 --lr 1e-4 \
    --warmup 50 --steps 10000000 --batch 8 --patch 384 --seed 43 --device $DEV --workers $NW --max-minutes $T2 \
    --ckpt-every 100000000 --log-every 50 \
  && python -m fllic.train.remote split --checkpoint $W/codec/checkpoint.pt --out $OUT --base $L/init.pt
cp $W/trunk/train.log $OUT/trunk.log; cp $W/codec/train.log $OUT/codec.log
ls -la $OUT; tail -n 3 $OUT/trunk.log $OUT/codec.log
