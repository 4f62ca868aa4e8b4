"`vidnb stgconvnet` end to end: tiny runs on the real foliage clip and splash sound, divergence, bad input."
import json, math, os, subprocess, sys
from pathlib import Path
import pytest
import torch

pytest.importorskip('vidnb.stgconvnet')
from vidnb.stgconvnet import cli
from vidnb.core import read_video, read_sound
from vidnb.data import locate

CODE = "import sys; from vidnb.stgconvnet import cli; sys.exit(cli(sys.argv[1:]))"
ENV = {**os.environ, 'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': '1', 'TQDM_DISABLE': '1'}

def stg(*args, code=0):
    "Run the command in a fresh process, as a user does; check its exit status."
    r = subprocess.run([sys.executable, '-c', CODE, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == code, f'vidnb stgconvnet {" ".join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}'
    return r

@pytest.fixture(scope='module')
def tree():
    try: return locate('tree')
    except FileNotFoundError as e: pytest.skip(str(e))

@pytest.fixture(scope='module')
def video_run(tmp_path_factory, tree):
    out = tmp_path_factory.mktemp('video')
    return out, stg('train', '--video', tree, '--frames', 8, '--size', 24, '--iters', 6, '--every', 3, '--out', out)

def test_train_video_writes_checkpoint_media_history(video_run):
    out, r = video_run
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary['iters'] == 6 and summary['kind'] == 'video'
    assert {'checkpoint.pt', 'observed.mp4', 'synthesised.mp4', 'frames.png', 'history.json'} <= {p.name for p in out.iterdir()}
    v = read_video(out / 'synthesised.mp4')
    assert v.shape == (1, 3, 8, 24, 24) and torch.isfinite(v).all()
    h = json.loads((out / 'history.json').read_text())
    assert len(h) == 6 and all(math.isfinite(x['loss']) and math.isfinite(x['f_syn']) for x in h)

def run(*args): return cli(list(map(str, args)))     # in process: cheaper than a new interpreter per call

def test_sample_and_resume(video_run, tmp_path, capsys):
    out, _ = video_run
    assert run('sample', '--checkpoint', out / 'checkpoint.pt', '--out', tmp_path / 'more.gif', '--steps', 4) == 0
    assert read_video(tmp_path / 'more.gif').shape[2] == 8
    assert run('sample', '--checkpoint', out / 'checkpoint.pt', '--out', tmp_path / 'fresh.mp4', '--fresh', '--steps', 3, '--chains', 2) == 0
    assert read_video(tmp_path / 'fresh.mp4').shape[-1] == 48                  # two chains side by side
    assert run('train', '--video', locate('tree'), '--frames', 8, '--size', 24, '--iters', 8, '--out', out, '--resume') == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['iters'] == 8
    assert len(json.loads((out / 'history.json').read_text())) == 8           # 6 before, 2 after resuming
    assert run('train', '--video', locate('tree'), '--frames', 8, '--size', 24, '--iters', 9, '--step-size', .2, '--out', out, '--resume') == 2
    assert "--resume must use the checkpoint's arguments; this run differs in step_size 0.2" in capsys.readouterr().err
    assert run('train', '--video', locate('tree'), '--frames', 8, '--size', 24, '--iters', 8, '--out', out, '--resume') == 2
    assert "--iters must be more than the checkpoint's 8 to continue it, got 8" in capsys.readouterr().err
    assert run('train', '--video', locate('tree'), '--frames', 8, '--size', 24, '--iters', 9, '--out', out) == 2
    assert '--resume to continue it, or --force to start over' in capsys.readouterr().err     # never overwritten silently

def test_sound_train_and_sample(tmp_path):
    try: splash = locate('splash')
    except FileNotFoundError as e: pytest.skip(str(e))
    stg('train', '--sound', splash, '--iters', 4, '--chains', 2, '--out', tmp_path)
    s = read_sound(tmp_path / 'synthesised.wav', sr=None)
    n = read_sound(splash).shape[-1]                                           # 0.41 s: shorter than the preset, used whole
    assert s.shape[-1] == 2 * n + int(0.25 * 11025) and torch.isfinite(s).all()
    assert run('sample', '--checkpoint', tmp_path / 'checkpoint.pt', '--out', tmp_path / 'one.wav', '--steps', 3, '--chains', 1) == 0
    assert read_sound(tmp_path / 'one.wav', sr=None).shape[-1] == n

def test_divergence_is_reported_and_nothing_written(tree, tmp_path, capsys):
    assert run('train', '--video', tree, '--frames', 8, '--size', 24, '--iters', 5, '--step-size', 6, '--out', tmp_path) == 1
    err = capsys.readouterr().err
    assert 'Langevin dynamics diverged at learning iteration 0' in err and 'too large' in err and 'Traceback' not in err
    assert not (tmp_path / 'synthesised.mp4').exists() and not (tmp_path / 'checkpoint.pt').exists()

def _bad(tmp_path, tree):
    junk = tmp_path / 'junk.avi'; junk.write_bytes(b'not a video' * 100)
    notck = tmp_path / 'w.pt'; torch.save({'w': torch.zeros(2)}, notck)
    return [
        (['train', '--video', tmp_path / 'nope.avi', '--out', tmp_path], '--video must be an existing video file'),
        (['train', '--video', junk, '--out', tmp_path], 'readable video'),
        (['train', '--video', tree, '--frames', 100, '--out', tmp_path], 'frames'),
        (['train', '--sound', locate('splash'), '--seconds', 0.01, '--out', tmp_path], '--sound must be at least 2000 samples'),
        (['train', '--sound', junk, '--out', tmp_path], 'readable sound file'),
        (['sample', '--checkpoint', notck, '--out', tmp_path / 'a.mp4'], 'not a vidnb checkpoint'),
        (['sample', '--checkpoint', tmp_path / 'none.pt', '--out', tmp_path / 'a.mp4'], 'does not exist'),
    ]

def test_bad_input_is_a_one_line_error(tmp_path, tree, capsys):
    for argv, msg in _bad(tmp_path, tree):
        assert cli(list(map(str, argv))) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith('vidnb stgconvnet: ') and msg in err and 'Traceback' not in err, (argv, err)

def test_wrong_output_type_for_the_model(video_run, tmp_path, capsys):
    out, _ = video_run
    assert cli(['sample', '--checkpoint', str(out / 'checkpoint.pt'), '--out', str(tmp_path / 'a.wav')]) == 2
    assert '.mp4 or .gif' in capsys.readouterr().err

@pytest.mark.parametrize('argv', [['train', '--out', 'x'], ['train', '--video', 'a', '--sound', 'b', '--out', 'x'],
                                  ['train', '--video', 'a', '--preset', 'huge', '--out', 'x'], ['sample', '--out', 'x'],
                                  ['train', '--video', 'a', '--iters', '0', '--out', 'x'],
                                  ['train', '--video', 'a', '--size', '0', '--out', 'x'],
                                  ['train', '--sound', 'a', '--step-size', '-1', '--out', 'x']])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e: cli(argv)
    assert e.value.code == 2
    assert '0' not in argv or 'must be a positive' in capsys.readouterr().err

def test_out_is_checked_before_learning(tree, tmp_path, capsys):
    (tmp_path / 'afile').write_text('x')
    for out, msg in [(tmp_path / 'afile', 'which is a file'), ('/proc/vidnb-out', 'a folder that can be created')]:
        assert run('train', '--video', tree, '--iters', 1000, '--out', out) == 2
        err = capsys.readouterr().err
        assert msg in err and 'Traceback' not in err, err
    assert run('sample', '--checkpoint', tmp_path / 'x.pt', '--out', tmp_path) == 2      # a folder as --out file
    assert 'does not exist' in capsys.readouterr().err

def test_registered_in_vidnb_command():
    from vidnb import cli as vcli, stgconvnet
    assert 'stgconvnet' in vcli.COMMANDS and vcli.commands()['stgconvnet'] is stgconvnet.cli
    assert vcli.chapters()['stgconvnet'] == (stgconvnet,)

def test_langevin_leaves_weights_alone():
    "A Langevin step asks autograd for the input gradient only: no weight gradient is computed or accumulated."
    from vidnb.stgconvnet import config, build_model, langevin
    cfg = config('fc', 'smoke', shape=(8, 16, 16))
    m = build_model(cfg)
    I = langevin(m, torch.randn(2, 3, 8, 16, 16) * 40, steps=2)
    assert all(p.grad is None for p in m.parameters()) and not I.requires_grad and I.shape == (2, 3, 8, 16, 16)

def test_layer_by_layer_joins_keep_f_and_resume_exactly(tmp_path):
    "Experiment 1: a joining layer starts by summing the layer below (f does not collapse), and a run resumed at a join grows identically."
    from vidnb.stgconvnet import config, train, build_model, join_init
    from vidnb.learner import Callback
    torch.manual_seed(0)
    net = build_model(config('st', 'smoke')).net
    I = torch.randn(1, 3, 16, 64, 64) * 40
    net.depth = 1; f1 = net(I).item()
    join_init(net.convs[1]); net.depth = 2
    assert 0.7 < net(I).item() / f1 < 1.05
    cfg = config('st', 'smoke', iters=6, grow=(2, 4))
    x = torch.rand(1, 3, 16, 64, 64) * 2 - 1
    full = train(x, cfg, progress=False)
    class Stop(Callback):
        def after_batch(self, learn):
            if learn.train_iter == 2: raise KeyboardInterrupt       # stop exactly at the first join
    with pytest.raises(KeyboardInterrupt): train(x, cfg, out=tmp_path, every=1, progress=False, cbs=[Stop()])
    resumed = train(x, cfg, out=tmp_path, resume=True, progress=False)
    assert resumed.model.net.depth == 3 and torch.equal(resumed.model.chains, full.model.chains)

def test_chapter_contract_and_presets():
    "One frozen preset per name, read by `config`, the cli and `reproduce`; the chapter passes the report contract."
    from dataclasses import FrozenInstanceError
    from vidnb import stgconvnet as stg
    from vidnb.report import check_chapter
    check_chapter(stg)
    assert stg.config('st', 'paper') == stg.PRESETS['paper'].st and stg.config('fc', iters=6).iters == 6
    with pytest.raises(FrozenInstanceError): stg.PRESETS['smoke'].fc.iters = 1
    video = torch.zeros(1, 3, 8, 16, 16)
    for bad in (lambda: stg.config('fc', 'huge'), lambda: stg.reproduce('huge'), lambda: stg.texture_synthesis(video, 'huge')):
        with pytest.raises(ValueError, match="preset must be one of 'smoke', 'cpu', 'paper', 'main', got 'huge'"): bad()


def test_langevin_samples_the_reference_when_f_is_zero():
    """A result check (issue 18): with f = 0 the model is N(0, sigma^2), and eq. (7) discretised with step epsilon has the
    stationary variance sigma^2 / (1 - epsilon^2 / (4 sigma^2)). 256 chains x 256 values, 300 steps (mixing ~22 steps).
    A sampler with the noise scaled by sqrt(2) (a classic slip) gives about twice the variance and fails."""
    from torch import nn
    from vidnb.core import set_seed
    import vidnb.stgconvnet as S
    set_seed(0)
    zero = S.GenerativeConvNet(S.STConvNet([S.Layer(2, (5,), (1,))], 1, (256,)), sigma=1.5)
    for p in zero.parameters(): nn.init.zeros_(p)
    J = S.langevin(zero, torch.zeros(256, 1, 256), steps=300, step_size=0.3)
    exact = 1.5 ** 2 / (1 - 0.3 ** 2 / (4 * 1.5 ** 2))
    assert abs(J.mean().item()) < 0.02 and abs(J.var().item() - exact) < 0.02 * exact, (J.mean(), J.var(), exact)
    assert abs(J.flatten(1).var(1).mean().item() - exact) < 0.03 * exact              # independent chains, not one
