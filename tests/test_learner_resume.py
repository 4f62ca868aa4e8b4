"Exact resume of a Learner run (bit for bit on CPU) and the checkpoint failure modes."
from functools import partial
import numpy as np, pytest, torch, torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, DataLoader
from vidnb.core import set_seed
from vidnb.learner import (Learner, Callback, DataLoaders, CheckpointCB, LRSchedCB, EMACB, MetricsCB, ProgressCB, GradClipCB,
                           NaNStopCB, load_checkpoint, save_checkpoint, load_model)

torch.set_num_threads(1)


def _digits(n=300):
    from sklearn.datasets import load_digits
    return torch.tensor(load_digits().data[:n], dtype=torch.float32).view(-1, 1, 8, 8) / 8 - 1


class Jitter(Dataset):
    "Real digits with random noise drawn from the global torch RNG in `__getitem__` (augmentation)."
    def __init__(self, x): self.x = x
    def __len__(self): return len(self.x)
    def __getitem__(self, i): return (self.x[i] + 0.05 * torch.randn_like(self.x[i]),)


def _model():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2), nn.Conv2d(8, 8, 3, 2, 1), nn.ReLU(),
                         nn.ConvTranspose2d(8, 8, 4, 2, 1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))


class Crash(Callback):
    order = 95
    def __init__(self, at): self.at = at
    def after_batch(self, learn):
        if learn.training and learn.train_iter == self.at: raise RuntimeError(f'crash at {self.at}')


def _learner(seed, steps, loader='shuffle', cbs=()):
    "A run using every RNG consumer: shuffled loader, augmentation, dropout; plus a schedule, EMA, clipping, metrics."
    set_seed(seed)
    x = _digits()
    tr, va = Jitter(x[:256]), Jitter(x[256:])
    gen = torch.Generator().manual_seed(7) if loader == 'generator' else None
    dls = DataLoaders(DataLoader(tr, 32, shuffle=True, generator=gen), DataLoader(va, 32))
    sched = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-2, total_steps=steps)
    cbs = [LRSchedCB(sched), EMACB(0.9), GradClipCB(1.0), MetricsCB(every=3), ProgressCB(disable=True), *cbs]
    return Learner(_model(), dls, lr=1e-2, cbs=cbs)


def _assert_same(a, b, path='state'):
    "Bit-for-bit equality of nested states."
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a: _assert_same(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)): _assert_same(u, v, f'{path}[{i}]')
    elif isinstance(a, np.ndarray): assert np.array_equal(a, b), path
    else: assert a == b, f'{path}: {a!r} != {b!r}'


# 8 batches per epoch, steps=20: (crash, checkpoint every) inside an epoch, at an epoch's end, right after the start
@pytest.mark.parametrize('crash,every,loader', [(13, 5, 'shuffle'), (11, 8, 'shuffle'), (4, 1, 'generator'), (19, 6, 'generator')])
def test_resume_equals_uninterrupted(tmp_path, crash, every, loader):
    steps, ck = 20, tmp_path / 'ck.pt'
    full = _learner(0, steps, loader); full.fit(steps=steps)
    with pytest.raises(RuntimeError, match='crash'):
        _learner(0, steps, loader, [CheckpointCB(ck, every=every), Crash(crash)]).fit(steps=steps)
    assert load_checkpoint(ck)['pos']['train_iter'] == crash // every * every
    res = _learner(123, steps, loader)               # another seed: another initialisation, overwritten by the checkpoint
    res.fit(steps=steps, resume=ck)
    a, b = full.state_dict(), res.state_dict()
    for k in ('model', 'opts', 'cbs', 'pos', 'rng'): _assert_same(a[k], b[k], k)
    for p, q in zip(full.model.parameters(), res.model.parameters()): assert torch.equal(p, q)
    assert full.history == res.history and len(full.history) > 5


def test_checkpointcb_resume_true_continues(tmp_path):
    "Running the same command twice continues the run: `CheckpointCB(resume=True)`."
    ck, steps = tmp_path / 'ck.pt', 20
    full = _learner(0, steps); full.fit(steps=steps)
    with pytest.raises(RuntimeError):
        _learner(0, steps, cbs=[CheckpointCB(ck, every=3, resume=True), Crash(10)]).fit(steps=steps)
    again = _learner(0, steps, cbs=[CheckpointCB(ck, every=3, resume=True)]); again.fit(steps=steps)
    _assert_same(full.state_dict()['model'], again.state_dict()['model'])
    assert full.history == again.history
    assert load_checkpoint(ck)['pos'] == dict(epoch=2, seen=4, train_iter=20)


def test_epochs_resume(tmp_path):
    "`fit(n_epochs)` with a validation loader, crash in the third epoch."
    ck = tmp_path / 'ck.pt'
    full = _learner(0, 32); full.fit(4)
    with pytest.raises(RuntimeError):
        _learner(0, 32, cbs=[CheckpointCB(ck, every=4), Crash(22)]).fit(4)
    res = _learner(5, 32); res.fit(4, resume=ck)
    _assert_same(full.state_dict()['model'], res.state_dict()['model'])
    assert full.history == res.history and any('valid_loss' in r for r in full.history)


@pytest.fixture
def good_ckpt(tmp_path):
    ck = tmp_path / 'ck.pt'
    _learner(0, 6, cbs=[CheckpointCB(ck)]).fit(steps=6)
    return ck


def test_truncated_and_flipped(good_ckpt, tmp_path):
    data = good_ckpt.read_bytes()
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(data[:len(data) // 3])
    with pytest.raises(ValueError, match='corrupt or truncated'): _learner(0, 6).fit(steps=6, resume=bad)
    w = load_checkpoint(good_ckpt)['model']['3.weight'].numpy().tobytes()
    flipped = bytearray(data); flipped[data.find(w) + 17] ^= 0x40
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match='checksum'): load_checkpoint(bad)
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='corrupt'): load_checkpoint(bad)
    torch.save({'model': {}}, bad)
    with pytest.raises(ValueError, match='not a vidnb checkpoint'): load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match='does not exist'): load_checkpoint(tmp_path / 'nope.pt')


def test_other_model(good_ckpt):
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    learn = Learner(other, DataLoaders.from_tensors(_digits(), bs=32), default_cbs=False)
    with pytest.raises(ValueError, match='another model'): learn.fit(steps=1, resume=good_ckpt)
    wider = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1))
    with pytest.raises(ValueError, match=r"other shapes.*0.weight \(8, 1, 3, 3\) vs \(16, 1, 3, 3\)"): load_model(wider, good_ckpt)
    assert load_model(_model(), good_ckpt, key='cbs.EMACB') is not None
    with pytest.raises(ValueError, match='key'): load_model(_model(), good_ckpt, key='cbs.Nope')


def test_other_optimiser(good_ckpt):
    "Issue 18: resuming an Adam checkpoint with SGD names the optimisers (it was `KeyError: 'momentum'`)."
    learn = _learner(0, 6); learn.opt_func = partial(torch.optim.SGD, momentum=0.9)
    with pytest.raises(ValueError, match=r"written with another optimiser for 'opt' \(Adam\); this Learner's is SGD"):
        learn.fit(steps=8, resume=good_ckpt)
    sd = load_checkpoint(good_ckpt); del sd['meta']['opts']; sd.pop('digest', None)
    old = save_checkpoint(sd, good_ckpt.parent / 'old.pt')             # written before the types were saved
    learn = _learner(0, 6); learn.opt_func = partial(torch.optim.SGD, momentum=0.9)
    with pytest.raises(ValueError, match=r"another optimiser for 'opt' \(without .*momentum"): learn.fit(steps=8, resume=old)
    _learner(0, 6).fit(steps=6, resume=old)                            # the same optimiser still resumes


class Poison(Callback):
    order = 55
    def after_loss(self, learn):
        if learn.train_iter + 1 >= 5: learn.loss = learn.loss * float('nan')


class BadState(Callback):
    "A callback whose state cannot be saved (a lambda)."
    def state_dict(self): return {'f': lambda: 0}
    def load_state_dict(self, sd): pass


def test_never_overwrite_good_with_bad(good_ckpt):
    data = good_ckpt.read_bytes()
    with pytest.raises(FloatingPointError, match='NaN/inf at step 6'):
        _learner(0, 12, cbs=[Poison(), CheckpointCB(good_ckpt, every=6)]).fit(steps=12)
    with pytest.raises(Exception):
        _learner(0, 12, cbs=[BadState(), CheckpointCB(good_ckpt, every=2)]).fit(steps=12)
    assert good_ckpt.read_bytes() == data
    assert [p.name for p in good_ckpt.parent.iterdir()] == [good_ckpt.name]      # no temporary files left


def test_nanstop_names_step(tmp_path):
    ck = tmp_path / 'ck.pt'
    with pytest.raises(FloatingPointError, match=r'loss is nan at step 5 \(epoch 0\)'):
        _learner(0, 12, cbs=[Poison(), NaNStopCB(every=4), CheckpointCB(ck, every=8)]).fit(steps=12)
    assert not ck.exists()
