"DDP through torchrun on CPU (gloo): 2 processes with half the global batch each == 1 process on the full batch."
import os, sys, subprocess
from pathlib import Path
import pytest, torch

SCRIPT = Path(__file__).with_name('ddp_train.py')


def _torchrun(nproc, out):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', str(SCRIPT), str(out)]
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
