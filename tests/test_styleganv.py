"StyleGAN-V command line and contracts: tiny runs in tmp_path (resume, bad input, generate any length)."
import json, math, torch, pytest
torch.set_num_threads(1)
from vidnb import styleganv as sgv
from vidnb.core import video_info, write_video
from vidnb.learner import load_checkpoint


def _train(out, steps, *flags):
    return sgv.cli(['train', '--data', 'moving_mnist', '--out', str(out), '--steps', str(steps), '--videos', '16', '--bs', '4',
                    '--quiet', *flags])


def test_train_resume_generate(tmp_path, capsys):
    out = tmp_path / 'run'
    assert _train(out, 2) == 0
    ck = load_checkpoint(out / 'checkpoint.pt')
    assert ck['pos']['train_iter'] == 2 and set(ck['opts']) == {'G', 'D'} and 'EMACB' in ck['cbs']
    assert video_info(out / 'preview.mp4')['frames'] == 64
    capsys.readouterr()
    assert _train(out, 3) == 2                                           # a checkpoint is never continued silently
    assert '--resume to continue it, or --force to start over' in capsys.readouterr().err
    assert sgv.cli(['train', '--data', 'moving_mnist', '--out', str(out), '--steps', '3', '--videos', '16', '--bs', '2',
                    '--quiet', '--resume']) == 2
    assert "bs 2 (the checkpoint's run had 4)" in capsys.readouterr().err
    assert _train(out, 3, '--resume') == 0                               # resumes: one more step, not three
    io = capsys.readouterr()
    assert 'resuming' in io.err and 'at step 2 of 3' in io.err
    last = json.loads(io.out.strip().splitlines()[-1])
    assert last['steps'] == 3
    assert load_checkpoint(out / 'checkpoint.pt')['pos']['train_iter'] == 3
    f = tmp_path / 'long.mp4'
    assert sgv.cli(['generate', '--checkpoint', str(out / 'checkpoint.pt'), '--frames', '120', '--fps', '25', '--out', str(f)]) == 0
    info = video_info(f)
    assert info['frames'] == 120
    f2 = tmp_path / 'fast.mp4'
    assert sgv.cli(['generate', '--checkpoint', str(out / 'checkpoint.pt'), '--frames', '30', '--time-step', '0.5', '--out', str(f2)]) == 0
    assert video_info(f2)['frames'] == 30


def test_bad_input(tmp_path, capsys):
    assert sgv.cli(['train', '--data', str(tmp_path / 'missing'), '--out', str(tmp_path / 'o')]) == 2
    assert 'vidnb styleganv: data must be' in capsys.readouterr().err
    assert sgv.cli(['train', '--data', 'moving_mnist', '--out', str(tmp_path / 'o'), '--steps', '0']) == 2
    assert "must be a positive integer, got '0'" in capsys.readouterr().err
    (tmp_path / 'afile').write_text('x')
    assert sgv.cli(['train', '--data', 'moving_mnist', '--out', str(tmp_path / 'afile')]) == 2
    assert 'which is a file' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()                                 # refused runs leave no folder behind
    assert sgv.cli(['train', '--data', 'moving_mnist', '--preset', 'paper', '--out', str(tmp_path / 'o'), '--steps', '1']) == 2
    assert 'moving_mnist' in capsys.readouterr().err
    assert sgv.cli(['train', '--data', 'moving_mnist', '--preset', 'huge', '--out', str(tmp_path / 'o')]) == 2
    assert "preset must be one of 'smoke', 'cpu', 'paper'" in capsys.readouterr().err
    assert sgv.cli(['generate', '--checkpoint', str(tmp_path / 'nope.pt'), '--frames', '5', '--out', str(tmp_path / 'x.mp4')]) == 2
    bad = tmp_path / 'bad.pt'; bad.write_bytes(b'not a checkpoint')
    assert sgv.cli(['generate', '--checkpoint', str(bad), '--frames', '5', '--out', str(tmp_path / 'x.mp4')]) == 2
    assert 'vidnb styleganv:' in capsys.readouterr().err
    assert sgv.cli(['train', '--out', 'x']) == 2                        # argparse: --data missing
    assert sgv.cli(['generate', '--checkpoint', 'c', '--frames', '5', '--out', str(tmp_path / 'x.gif')]) == 2


def test_folder_data(tmp_path):
    d = tmp_path / 'vids'; d.mkdir()
    v = sgv.moving_mnist_videos(1, frames=40, size=32)
    write_video(v, d / 'a.mp4', fps=10)
    clips = sgv._load_data(str(d), sgv.PRESETS['smoke'])
    assert clips.shape == (1, 1, 33, 32, 32)
    (tmp_path / 'short').mkdir()
    write_video(v[:, :, :5], tmp_path / 'short' / 'b.mp4', fps=10)
    with pytest.raises(ValueError, match='no video with at least 33 frames'):
        sgv._load_data(str(tmp_path / 'short'), sgv.PRESETS['smoke'])


def test_any_time_and_lstm():
    cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16)
    for motion in ('conv', 'lstm'):
        G = sgv.Generator(sgv.SGVConfig(**{**cfg.__dict__, 'motion': motion}))
        v = sgv.generate(G, 5, n_videos=2, start=10_000.5, time_step=0.25)
        assert v.shape == (2, 1, 5, 32, 32) and torch.isfinite(v).all()
    with pytest.raises(ValueError, match='t must be >= 0'): G(torch.randn(1, 16), torch.tensor([[-0.5]]))


@pytest.mark.parametrize('motion', ['conv', 'lstm'])
def test_a_video_is_a_function_of_time(motion):
    "Issue 18: equal times give equal frames for every video of a batch, across lengths, frame rates, chunks, batches."
    cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16, motion=motion)
    G = sgv.Generator(cfg)
    v = sgv.generate(G, 40, n_videos=3, seed=2)
    close = lambda a, b: torch.allclose(a, b, atol=1e-4)        # batch sizes change the float rounding (2e-5 seen)
    assert close(sgv.generate(G, 20, n_videos=3, seed=2, time_step=2.0), v[:, :, ::2])
    assert close(sgv.generate(G, 79, n_videos=3, seed=2, time_step=0.5)[:, :, ::2], v)
    assert close(sgv.generate(G, 5, n_videos=3, seed=2), v[:, :, :5])
    assert close(sgv.generate(G, 40, n_videos=3, seed=2, chunk=6), v)
    assert close(sgv.generate(G, 40, n_videos=1, seed=2), v[:1]) and close(sgv.generate(G, 12, n_videos=2, seed=2), v[:2, :, :12])
    assert not close(sgv.generate(G, 40, n_videos=3, seed=3), v)


def test_reproduce_paper_and_contract(tmp_path):
    from vidnb.report import Report, check_chapter, results_json
    check_chapter(sgv)
    r = sgv.reproduce('paper', tmp_path)
    assert isinstance(r, Report) and r.media == [] and r.results['preset'] == 'paper'
    assert [t.caption for t in r.tables][0] == 'Network sizes' and len(r.tables) == 4
    results_json(dict(styleganv=r), root=tmp_path)                       # JSON-able, and valid against the schema
    sizes = {row['preset']: row for row in r.tables[0].rows}
    assert sizes['paper']['G_params'] > 10 * sizes['smoke']['G_params']
    with pytest.raises(ValueError, match='preset must be one of'): sgv.reproduce('nope', tmp_path)


def test_presets():
    smoke, paper = sgv.PRESETS['smoke'], sgv.PRESETS['paper']
    assert smoke.model.size == 32 and smoke.model.tanh_out and paper.model.size == 256 and not paper.model.tanh_out
    assert (smoke.train.steps, smoke.train.bs, smoke.n_fake, smoke.eval_every) == (2400, 16, 32, 400)
    p = sgv.sgv_preset('smoke', steps=7, motion='lstm', n_real=5, bs=None)
    assert (p.train.steps, p.model.motion, p.n_real, p.train.bs) == (7, 'lstm', 5, 16)
    with pytest.raises(ValueError, match="overrides must be fields of SGVPreset"): sgv.sgv_preset('smoke', step=3)
    with pytest.raises(ValueError, match="preset must be one of 'smoke', 'cpu', 'paper'"): sgv.sgv_preset('big')


def test_paper_discriminator_matches_the_reference():
    "Issue 18: the paper preset has the reference's learned embedding of each time difference and its 20 kimg EMA."
    paper = sgv.PRESETS['paper']
    assert paper.model.dt_embed == 256 and paper.train.ema_kimg == 20
    cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16, dt_embed=8)
    D = sgv.Discriminator(cfg)
    assert D.cmap.embed.weight.shape == (cfg.max_period_len, 8)
    x, dt = torch.rand(2, 1, 3, 32, 32) * 2 - 1, torch.tensor([[1., 4.], [8., 16.]])
    D(x, dt).sum().backward()
    assert D.cmap.embed.weight.grad[[1, 4, 8, 16]].abs().sum(1).gt(0).all() and D.cmap.embed.weight.grad[2].abs().sum() == 0
    with pytest.raises(ValueError, match='dt_embed must be a positive int or None'): sgv.SGVConfig(dt_embed=0)


def test_import_is_light():
    import subprocess, sys
    code = "import sys, vidnb.styleganv; print(any(m in sys.modules for m in ('matplotlib', 'scipy')))"
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout.strip() == 'False'


def test_motion_over_time():
    G = sgv.Generator(sgv.SGVConfig())
    v = sgv.generate(G, 36, n_videos=2, seed=1)
    rows = sgv.motion_over_time(G, 36, window=16, n_videos=2, seed=1)
    assert [(r['start'], r['end']) for r in rows] == [(0, 16), (16, 32), (32, 36)]
    d = (v[:, :, 1:] - v[:, :, :-1]).abs()
    assert d.mean() > 0
    assert math.isclose(rows[1]['motion'], d[:, :, 15:31].mean().item(), rel_tol=1e-4)        # the step 15 -> 16 is the second window's
    steps = [15, 16, 4]                                                                        # the windows share out all 35 steps
    assert math.isclose(sum(r['motion'] * n for r, n in zip(rows, steps)) / 35, d.mean().item(), rel_tol=1e-4)
    assert math.isclose(rows[2]['ink'], (v[:, :, 32:] > 0).float().mean().item(), rel_tol=1e-4)
    with pytest.raises(ValueError, match='window must be an int >= 2'): sgv.motion_over_time(G, 36, window=1)
    with pytest.raises(ValueError, match='n_frames must be an int >= 2'): sgv.motion_over_time(G, 1)


def test_gan_callbacks_reach_the_network_being_stepped():
    "Issue 18: in the D step the Learner's `opt` is D's (clipping and schedules act on D), in the G step G's."
    from functools import partial
    from vidnb.learner import Callback, GradClipCB, LRSchedCB
    seen = []
    class Spy(Callback):
        order = 25                                                       # after GradClipCB (20)
        def after_backward(self, learn):
            gs = [p.grad for g in learn.opt.param_groups for p in g['params'] if p.grad is not None]
            seen.append((learn.phase, learn.opt is learn.opts[learn.phase], len(gs), torch.stack([g.norm() for g in gs]).norm().item()))
    cfg = sgv.SGVConfig(ch_base=128, ch_max=16, num_freqs=8, z_dim=16, w_dim=16, motion_z_dim=16)
    tc = sgv.TrainConfig(steps=2, bs=2, r1_every=1)
    videos = torch.rand(4, 1, 12, 32, 32) * 2 - 1
    half = partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=lambda s: 0.5 ** s)
    learn = sgv.train_gan(videos, cfg, tc, progress=False, cbs=[GradClipCB(1e-3), Spy(), LRSchedCB(half, opt='D')])
    assert [s[0] for s in seen] == ['D', 'D', 'G'] * 2                   # D loss, lazy R1, G loss per batch
    assert all(ok and n > 0 and norm <= 1e-3 * (1 + 1e-4) for _, ok, n, norm in seen), seen
    assert learn.opts['D'].param_groups[0]['lr'] == pytest.approx(tc.lr / 4) and learn.opts['G'].param_groups[0]['lr'] == tc.lr
