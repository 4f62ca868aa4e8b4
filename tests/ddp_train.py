"""Tiny DDP training run for tests/test_ddp.py; launch with
`python -m torch.distributed.run --standalone --nproc_per_node=N tests/ddp_train.py OUT_DIR`.
Every rank writes OUT_DIR/rank{RANK}.pt (final weights, history, batch sizes seen); rank 0 alone writes the checkpoint."""
import os, sys
from functools import partial
from pathlib import Path
import torch, torch.nn.functional as F
from torch import nn
from vidnb.core import set_seed
from vidnb.learner import Learner, Callback, DataLoaders, DDPCB, MetricsCB, ProgressCB, CheckpointCB

class BatchSizes(Callback):
    def __init__(self): self.sizes = set()
    def before_batch(self, learn):
        if learn.training: self.sizes.add(len(learn.batch[0]))

out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
set_seed(0)
teacher = torch.randn(16, 4)
x = torch.randn(512, 16)
y = (x @ teacher).argmax(1)
model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 4))
dls = DataLoaders.from_tensors(x, y, bs=64, valid_pct=0)               # global batch 64: 8 steps per epoch
bs = BatchSizes()
learn = Learner(model, dls, F.cross_entropy, lr=0.2, opt_func=partial(torch.optim.SGD, momentum=0.9),
                cbs=[DDPCB(seed=0), MetricsCB(every=4), ProgressCB(disable=True), CheckpointCB(out / 'ckpt.pt', every=8), bs])
learn.fit(3)
rank = int(os.environ.get('RANK', 0))
torch.save(dict(model=learn.model.state_dict(), history=learn.history, sizes=sorted(bs.sizes), world=int(os.environ['WORLD_SIZE']),
                unwrapped=type(learn.model).__name__), out / f'rank{rank}.pt')
