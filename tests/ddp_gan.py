"""Tiny StyleGAN-V run for tests/test_ddp.py under torchrun (gloo on CPU): the global batch is 8 whatever the number of
processes; augmentation with adaptive p, lazy R1 and the EMA are on. Every rank writes OUT/rank{RANK}.pt."""
import os, sys
from dataclasses import replace
from pathlib import Path
import torch
import vidnb.styleganv as sgv

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16)
tc = sgv.TrainConfig(steps=6, bs=8, r1_every=2, aug_p=0.5, ada_target=0.6, ada_speed_img=200)
videos = sgv.moving_mnist_videos(16, frames=9, seed=0)
learn = sgv.train_gan(videos, cfg, tc, out=out / 'run', every=3, progress=False, seed=0)
rank = int(os.environ.get('RANK', 0))
torch.save(dict(G=learn.model.G.state_dict(), D=learn.model.D.state_dict(), G_ema=learn.G_ema.state_dict(),
                p_aug=float(learn.model.aug.p), history=learn.history, world=int(os.environ['WORLD_SIZE'])),
           out / f'rank{rank}.pt')
