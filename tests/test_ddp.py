"DDP through torchrun on CPU (gloo): 2 processes with half the global batch each == 1 process on the full batch."
import os, sys, subprocess
from pathlib import Path
import pytest, torch

SCRIPT = Path(__file__).with_name('ddp_train.py')


def _torchrun(nproc, out, script=SCRIPT):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', str(script), str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [torch.load(out / f'rank{i}.pt', weights_only=True) for i in range(nproc)]


@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch.distributed not available')
def test_two_processes_equal_one(tmp_path):
    one, = _torchrun(1, tmp_path / 'one')
    two = _torchrun(2, tmp_path / 'two')
    assert one['sizes'] == [64] and all(r['sizes'] == [32] for r in two)        # the global batch is split
    assert all(r['unwrapped'] == 'Sequential' for r in [one, *two])            # DDP wrapper removed after fit
    for k, w in one['model'].items():
        for r in two:
            torch.testing.assert_close(r['model'][k], w, rtol=0, atol=1e-5)
    h1, h2 = one['history'], two[0]['history']
    assert [r['step'] for r in h1] == [r['step'] for r in h2] and len(h1) >= 6
    for a, b in zip(h1, h2): assert abs(a['loss'] - b['loss']) < 1e-5             # metrics are all-reduced
    assert h2 == two[1]['history']
    files = sorted(p.name for p in (tmp_path / 'two').iterdir())
    assert files == ['ckpt.pt', 'rank0.pt', 'rank1.pt'], files                   # rank 0 alone wrote the checkpoint


GAN = Path(__file__).with_name('ddp_gan.py')


@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch.distributed not available')
def test_gan_two_processes_equal_one(tmp_path):
    """Issue 18: StyleGAN-V's GANLearner under torchrun. G and D both get their gradients averaged, R1 and the EMA
    follow, the loader is sharded and the random draws (z, times, augmentation) are split by rows of one global draw:
    2 gloo processes with 4 clips each equal 1 process with 8, including the adaptive augmentation probability."""
    one, = _torchrun(1, tmp_path / 'one', GAN)
    two = _torchrun(2, tmp_path / 'two', GAN)
    # Adam divides by each gradient's own scale, so float summation order moves a few weights by up to ~2e-4 in 6 steps
    # (mean ~1e-6); a run whose motion noise was drawn per process differed by 3e-2 (seen while writing this).
    for part in ('G', 'D', 'G_ema'):
        for r in two:
            d = torch.cat([(r[part][k] - w).abs().flatten() for k, w in one[part].items()])
            assert d.max() < 1e-3 and d.mean() < 1e-5, (part, d.max(), d.mean())
    assert one['p_aug'] > 0.5 and all(abs(r['p_aug'] - one['p_aug']) < 1e-6 for r in two), (one['p_aug'], two)
    for a, b in zip(one['history'], two[0]['history']): assert abs(a['loss_D'] - b['loss_D']) < 1e-4
    assert sorted(p.name for p in (tmp_path / 'two' / 'run').iterdir()) == ['checkpoint.pt']   # rank 0 alone wrote


@pytest.mark.skipif(not torch.distributed.is_available(), reason='torch.distributed not available')
def test_torchrun_trains_the_styleganv_smoke_model(tmp_path):
    "`torchrun --nproc_per_node 2 -m vidnb.cli styleganv train`: the smoke model on 2 processes; rank 0 writes the run."
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'vidnb.cli',
           'styleganv', 'train', '--data', 'moving_mnist', '--steps', '3', '--videos', '32', '--out', str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert '"rank": 1, "steps": 3' in r.stdout and '"steps": 3, "preview"' in r.stdout, r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.lock', 'checkpoint.pt', 'preview.mp4', 'run.json']
    from vidnb.learner import load_checkpoint
    assert load_checkpoint(tmp_path / 'checkpoint.pt')['pos']['train_iter'] == 3
