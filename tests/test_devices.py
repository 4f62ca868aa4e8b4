"""Device placement without a GPU (issue 18): every chapter's models, samplers and feature networks run a forward pass
with their weights as *fake* tensors on a device that is not the CPU (`torch._subclasses.fake_tensor.FakeTensorMode`:
shapes, dtypes and devices, no data). Any tensor left on the CPU then fails: a real one (a plain attribute that
`.to(device)` would not move) because the mode takes no real inputs, a fake one created without `device=` with
`FakeTensorDeviceMismatchError` when it meets a tensor of the other device (every op checks, matmul included).

The other device is `meta`, not a fake `cuda`: on this CPU-only PyTorch build fake CUDA tensors abort the process
(not an exception) as soon as an op takes a device guard, which plain indexing `z[:, :, None]` and every autograd
node do. Meta tensors have a device guard and no data, so the check is the same: what is not on the CPU must stay off
it. Checks of values (finite, in range) need data and are skipped for data-free tensors (`vidnb.core.has_data`)."""
import contextlib
import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

DEV = torch.device('meta')      # the stand-in accelerator (see above)
torch.set_num_threads(1)


@contextlib.contextmanager
def fake_device(*modules):
    "Inside: `modules` (eval mode) hold fake parameters and buffers on DEV; restored on exit."
    saved, mode = [], FakeTensorMode(allow_non_fake_inputs=False)
    for m in modules: m.eval()
    try:
        with mode, torch.no_grad():
            for m in modules:
                for sub in m.modules():
                    for store in (sub._parameters, sub._buffers):
                        for k, v in list(store.items()):
                            if v is None: continue
                            saved.append((store, k, v))
                            f = torch.empty(v.shape, dtype=v.dtype, device=DEV)
                            store[k] = nn.Parameter(f, requires_grad=False) if isinstance(v, nn.Parameter) else f
            yield
    finally:
        for store, k, v in saved: store[k] = v


def on_dev(*ts):
    for t in ts: assert t.device == DEV, t.device
    return ts[0]


def randn(*shape): return torch.randn(*shape, device=DEV)


def test_the_check_catches_a_tensor_left_on_the_cpu():
    "The harness itself: a module that builds a constant without `device=` fails, one that uses the input's passes."
    class Bad(nn.Module):
        def __init__(self): super().__init__(); self.lin = nn.Linear(4, 4)
        def forward(self, x): return self.lin(x) + torch.arange(4.)
    class Good(Bad):
        def forward(self, x): return self.lin(x) + torch.arange(4., device=x.device)
    g, b = Good(), Bad()
    with fake_device(g, b):
        on_dev(g(randn(2, 4)))
        with pytest.raises(Exception, match='cpu'): b(randn(2, 4))
    assert g.lin.weight.device.type == 'cpu' and torch.isfinite(g.lin.weight).all()       # restored


def test_gmlr():
    from vidnb.gmlr import generator, GMLR, Generators
    from vidnb.physics import GaussianCS, MissingPixels
    for kind in ('gray', 'rgb'):
        g = generator(kind)
        with fake_device(g): on_dev(g(randn(3, g.nz)))
    g = generator('gray')
    for shared, grouped in ((False, None), (False, True), (True, None)):
        m = GMLR(g, 4, 3, 0, shared=shared)              # 3 sequences, a generator copy each (grouped: CUDA's path)
        m.gen.grouped = grouped
        with fake_device(m): assert on_dev(m()).shape == (3, 1, 4, 64, 64)
    for op in (GaussianCS(50, 4, 64), MissingPixels(0.8, frames=4, size=64)):
        with fake_device(op):
            x = randn(2, 1, 4, 64, 64)
            on_dev(op.A(x), op.A_adjoint(op.A(x)), op.A_dagger(op.A(x)))


def test_dvae():
    from vidnb.dvae import DVAE, DVAEConfig, synthesize, LDS
    cfg = DVAEConfig(size=32, n=8, n_mc=2)
    m = DVAE(cfg)
    with fake_device(m):
        out = m(randn(2, 1, 2, 32, 32))
        on_dev(out['recon'], out['mu'])
        on_dev(synthesize(m, 5, h0=randn(1, cfg.n)))


def test_styleganv():
    import vidnb.styleganv as sgv
    cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16, dt_embed=8)
    G, D = sgv.Generator(cfg), sgv.Discriminator(cfg)
    with fake_device(G, D):
        v = sgv.generate(G, 5, n_videos=2, time_step=0.5)          # runs on G's device, hands frames back on the CPU
        assert v.shape == (2, 1, 5, 32, 32) and v.device.type == 'cpu'
        seen = []
        sgv.generate(G, 5, n_videos=2, chunk=2, on_chunk=seen.append)
        assert [c.shape[2] for c in seen] == [2, 2, 1]
        on_dev(D(randn(2, 1, 3, 32, 32), torch.ones(2, 2, device=DEV)))        # times: shapes only on DEV
        t = torch.zeros(2, 3, device=DEV)
        on_dev(G(randn(2, 16), t, randn(2, G.motion.n_codes(7.), 16)))


def test_stgconvnet():
    import vidnb.stgconvnet as stg
    cfg = stg.PRESETS['smoke'].st
    m = stg.build_model(cfg)
    with fake_device(m):
        on_dev(m.B(randn(2, *m.chains.shape[1:])) if hasattr(m, 'chains') else m.net(randn(2, *cfg.shape)))


def test_feature_networks():
    from vidnb.featnets import load_inception, load_i3d
    inc, i3d = load_inception(), load_i3d()
    with fake_device(inc, i3d):
        on_dev(inc(randn(2, 3, 299, 299)))
        on_dev(i3d(randn(2, 3, 16, 224, 224)))


def test_metrics_and_latents():
    from vidnb.metrics import psnr, ssim
    from vidnb.latent import low_rank_project, pca_fit, pca_project
    with fake_device():
        x, y = randn(2, 1, 4, 32, 32).clamp(-1, 1), randn(2, 1, 4, 32, 32).clamp(-1, 1)
        on_dev(psnr(x, y, check=False), ssim(x, y))
        z = randn(2, 8, 6)
        on_dev(low_rank_project(z, 2), pca_project(z, 2))


# Mixed precision: each chapter's training step under bfloat16 autocast on the CPU (`MixedPrecisionCB(cpu=True)`), the
# code path CUDA's autocast takes. A spy checks the forward pass really ran in bfloat16 and the step left finite weights.
def _first_float(o):
    if torch.is_tensor(o) and o.is_floating_point(): return o
    for v in (o.values() if isinstance(o, dict) else o if isinstance(o, (tuple, list)) else ()):
        f = _first_float(v)
        if f is not None: return f


def _amp_cbs():
    from vidnb.learner import Callback, MixedPrecisionCB
    class Spy(Callback):
        order = 90
        def __init__(self): self.dtypes = []
        def after_predict(self, learn):
            if learn.training: self.dtypes.append(_first_float(learn.preds).dtype)
    spy = Spy()
    return spy, [MixedPrecisionCB(cpu=True), spy]


def _finite(m): return all(torch.isfinite(p).all() for p in m.parameters())


@pytest.mark.parametrize('chapter', ['gmlr', 'dvae', 'stgconvnet', 'styleganv'])
def test_training_step_under_cpu_mixed_precision(chapter):
    from dataclasses import replace
    from vidnb.core import set_seed
    set_seed(0)
    spy, cbs = _amp_cbs()
    if chapter == 'gmlr':
        from vidnb.gmlr import reconstruct, FitConfig, sequence
        r = reconstruct(sequence('rotating_mnist', frames=4), 'missing:0.5', FitConfig(steps=2, log_every=0), cbs=cbs)
        model = r['model']
    elif chapter == 'dvae':
        from vidnb.dvae import DVAE, DVAEConfig, fit_dvae
        model = DVAE(DVAEConfig(size=32, n=4, width=8, n_mc=2))
        fit_dvae(model, torch.rand(8, 1, 2, 32, 32) * 2 - 1, steps=2, bs=4, progress=False, cbs=cbs)
    elif chapter == 'stgconvnet':
        import vidnb.stgconvnet as stg
        cfg = replace(stg.PRESETS['smoke'].fc, iters=2, langevin_steps=2)
        model = stg.train(torch.rand(1, 3, *cfg.shape) * 2 - 1, cfg, progress=False, cbs=cbs).model
    else:
        import vidnb.styleganv as sgv
        cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16)
        model = sgv.train_gan(torch.rand(4, 1, 12, 32, 32) * 2 - 1, cfg, sgv.TrainConfig(steps=2, bs=2), progress=False,
                              cbs=cbs).model
    assert spy.dtypes and all(d == torch.bfloat16 for d in spy.dtypes), spy.dtypes
    assert _finite(model)
