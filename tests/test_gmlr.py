"`vidnb gmlr reconstruct` end to end, as a user runs it (a subprocess, real data, real files), and its bad-input errors."
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

# `vidnb gmlr ...` once the chapter is registered in vidnb.cli.COMMANDS; the same function called directly until then.
_RUN = ("import sys; from vidnb import cli\n"
        "if 'gmlr' in cli.COMMANDS: sys.exit(cli.main(['gmlr', *sys.argv[1:]]))\n"
        "from vidnb.gmlr import cli as c; sys.exit(c(sys.argv[1:]))")

def gmlr(*args, check=True):
    r = subprocess.run([sys.executable, '-c', _RUN, *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, 'MPLBACKEND': 'Agg', 'OMP_NUM_THREADS': '1'})
    if check and r.returncode: raise AssertionError(f'vidnb gmlr {" ".join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}')
    return r

def _outputs(out, frames, channels):
    m = json.loads((out / 'metrics.json').read_text())
    assert {'psnr', 'psnr_per_frame', 'seconds', 'steps', 'method', 'operator'} <= set(m)
    assert np.isfinite(m['psnr']) and len(m['psnr_per_frame']) == frames and m['seconds'] > 0
    a = np.load(out / 'reconstruction.npy')
    assert a.shape == (1, channels, frames, 64, 64) and a.dtype == np.float32 and np.abs(a).max() <= 1
    assert (out / 'reconstruction.mp4').stat().st_size > 1000 and (out / 'latent.png').stat().st_size > 1000
    return m

def test_sequence_missing_pixels_joint_low_rank(tmp_path):
    out = tmp_path / 'fresh' / 'run'
    r = gmlr('reconstruct', '--sequence', 'rotating_mnist', '--frames', '8', '--operator', 'missing:0.8', '--method', 'joint',
             '--rank', '3', '--rank-type', 'svd', '--similarity', '0.9', '--noise', '0.01', '--steps', '4', '--seed', '1', '--out', out)
    m = _outputs(out, 8, 1)
    assert m['steps'] == 4 and m['method'] == 'joint' and m['operator'] == 'missing:0.8' and 'psnr' in r.stdout

def test_video_file_gaussian_latent_pca(tmp_path):
    import torch
    from vidnb.core import write_video
    from vidnb.data import rotating_mnist
    write_video(rotating_mnist(1, frames=6), tmp_path / 'clip.mp4')                  # a real clip file (gray content, RGB mp4)
    out = tmp_path / 'out'
    gmlr('reconstruct', '--video', tmp_path / 'clip.mp4', '--gray', '--operator', 'gaussian:200', '--method', 'latent',
         '--rank', '2', '--rank-type', 'pca', '--steps', '3', '--out', out)
    m = _outputs(out, 6, 1)
    assert m['method'] == 'latent' and m['operator'] == 'gaussian:200'

# The rest call the command's function in this process (same parser and code path, no interpreter start-up).
def run(*args):
    from vidnb.gmlr import cli
    return cli([str(a) for a in args])

def _psnr_from_files(out, x):
    "PSNR computed here from the saved reconstruction, in numpy (GMLR's peak: the range of the true sequence)."
    xh = (np.load(out / 'reconstruction.npy').astype(np.float64) + 1) / 2
    t = (x.numpy().astype(np.float64) + 1) / 2
    return 10 * np.log10((t.max() - t.min()) ** 2 / ((xh - t) ** 2).mean())

def test_joint_reconstruction_reaches_its_floor(tmp_path):
    """A result check (issue 18): a held-out MNIST test digit, 80 % of its pixels missing, joint fit for 200 steps.
    Measured at 200 steps (digits 0, 5, 9 of the test set): pretrained 31.8, 33.1, 28.7 dB; untrained 13.7, 12.6,
    13.7 dB. Floors: 29 dB for the pretrained generator, below 20 dB for the untrained one."""
    from vidnb.gmlr import sequence
    args = ('reconstruct', '--sequence', 'rotating_mnist', '--frames', '16', '--operator', 'missing:0.8', '--method',
            'joint', '--steps', '200', '--seed', '0')
    x = sequence('rotating_mnist', seed=0, frames=16)
    scores = {}
    for g in ('pretrained', 'untrained'):
        assert run(*args, '--generator', g, '--out', tmp_path / g) == 0
        reported = json.loads((tmp_path / g / 'metrics.json').read_text())['psnr']
        assert reported == pytest.approx(_psnr_from_files(tmp_path / g, x), abs=1e-3)
        scores[g] = reported
    assert scores['pretrained'] > 29 and scores['untrained'] < 20, scores

def test_rgb_video_untrained_generator(tmp_path):
    assert run('reconstruct', '--sequence', 'color_wheel', '--frames', '4', '--generator', 'untrained', '--steps', '2', '--out', tmp_path) == 0
    _outputs(tmp_path, 4, 3)

@pytest.mark.parametrize('args,msg', [
    (['--rank', '13'], 'rank must be an int in [1, 12]'),                              # rank > frames
    (['--frames', '40', '--rank', '33'], 'latent size (k=32)'),                      # rank > latent size
    (['--rank', '13', '--rank-type', 'pca'], 'rank must be an int in [1, 12]'),
    (['--operator', 'missing:1.0'], 'fraction in [0, 1)'),
    (['--operator', 'missing:-0.1'], 'fraction in [0, 1)'),
    (['--operator', 'gaussian:5000'], 'pixel count C*H*W = 4096'),
    (['--operator', 'fourier:3'], "operator must be 'identity', 'gaussian:M' or 'missing:FRACTION'"),
    (['--similarity', '1.5'], 'similarity must be a weight lambda in (0, 1]'),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, msg):
    assert run('reconstruct', '--sequence', 'rotating_mnist', '--frames', '12', '--steps', '1', '--out', tmp_path / 'o', *args) == 2
    err = capsys.readouterr().err
    assert err.startswith('vidnb gmlr: ') and msg in err, err
    assert not (tmp_path / 'o' / 'metrics.json').exists()

def test_gray_generator_for_rgb_video(tmp_path, capsys):
    from vidnb.gmlr import weights_path
    assert run('reconstruct', '--sequence', 'color_wheel', '--frames', '4', '--weights', weights_path('gray'), '--steps', '1', '--out', tmp_path) == 2
    assert 'x must have 1 channel(s) for this gray generator, got 3' in capsys.readouterr().err

def test_unreadable_or_missing_video(tmp_path, capsys):
    (tmp_path / 'bad.mp4').write_bytes(b'not a video')
    assert run('reconstruct', '--video', tmp_path / 'bad.mp4', '--steps', '1', '--out', tmp_path / 'o') == 2
    assert 'bad.mp4' in capsys.readouterr().err
    assert run('reconstruct', '--video', tmp_path / 'missing.mp4', '--steps', '1', '--out', tmp_path / 'o') == 2
    assert 'not found' in capsys.readouterr().err
    assert run('reconstruct', '--sequence', 'rotating_mnist', '--weights', tmp_path / 'bad.mp4', '--steps', '1', '--out', tmp_path / 'o') == 2
    assert 'weights must be a file written by vidnb.gmlr.pretrain' in capsys.readouterr().err

# `vidnb bench gmlr`: the JSON it writes, with the measurements shrunk (the full run is the chapter's slow bench cell).
def test_bench_json(tmp_path, monkeypatch):
    import vidnb.gmlr as g
    from vidnb.cli import main
    step, target, batch = g.bench_step, g.seconds_to_target, g.bench_batch
    monkeypatch.setattr(g, 'bench_step', lambda kind, frames, reps=5: step(kind, 4, reps=1, rounds=1))
    monkeypatch.setattr(g, 'bench_batch', lambda kind, frames, seqs: batch(kind, 4, 3, reps=1, rounds=1))
    monkeypatch.setattr(g, 'seconds_to_target', lambda max_steps=2000: target(10., max_steps=20, every=5))
    assert main(['bench', 'gmlr', '--out', str(tmp_path / 'b.json')]) == 0
    b = json.loads((tmp_path / 'b.json').read_text())['gmlr']['gmlr']
    for k in ('gray_32', 'rgb_64'):
        assert {'steps_per_s', 'gflops_step', 'gflops_plain', 'ratio'} <= set(b[k]) and b[k]['ratio'] > 0
    assert b['ratio_target'] == 0.6 and isinstance(b['ratio_ok'], bool)
    assert b['batch_gray_32x10']['seqs'] == 3 and b['batch_gray_32x10']['ratio'] > 0 and isinstance(b['batch_ok'], bool)
    t = b['to_table2_target']
    assert t['reached'] and t['steps'] <= 20 and t['seconds'] > 0

def test_chapter_contract():
    import vidnb.gmlr as g
    from vidnb.report import check_chapter, pick_preset
    check_chapter(g)
    assert pick_preset(g.PRESETS, 'smoke', steps=3).steps == 3 and g.PRESETS['paper'].steps == 2000
    with pytest.raises(ValueError, match="preset must be one of 'smoke', 'cpu', 'paper'"): g.reproduce('huge')

def test_flops_are_torch_count():
    from torch.utils.flop_counter import FlopCounterMode
    from vidnb.gmlr import generator, plain_conv_transpose, _gen_flops
    g = generator('gray')
    with FlopCounterMode(display=False) as fc: plain_conv_transpose(g, 3)()
    assert fc.get_total_flops() == 3 * _gen_flops(g, 3)



def test_bad_frames_and_measurements_name_the_argument():
    "Issue 18: `sequence(frames=-2)` and `reconstruct(y=<bad shape>)` raised raw torch errors."
    import torch
    import vidnb.gmlr as g
    for bad in (-2, 0, 2.5, True):
        with pytest.raises(ValueError, match=rf'frames must be a positive int or None, got {bad!r}'):
            g.sequence('rotating_mnist', frames=bad)
    x = g.sequence('rotating_mnist', frames=4)
    cfg = g.FitConfig(steps=1)
    for y in (torch.zeros(3), torch.zeros(1, 4, 64, 64), 'y'):
        with pytest.raises(ValueError, match=r"y must be the measurements of x under operator 'missing:0.5': a tensor of shape \(1, 1, 4, 64, 64\)"):
            g.reconstruct(x, 'missing:0.5', cfg, y=y)
    r = g.reconstruct(x, 'missing:0.5', cfg, y=g.measure(g.physics_operator('missing:0.5', 4, 64, 1, 0), None, x))
    assert r['steps'] == 1


@pytest.mark.parametrize('flag', ['--steps', '--rank', '--frames'])
def test_zero_is_a_usage_error_not_the_default(flag):
    r = gmlr('reconstruct', '--sequence', 'rotating_mnist', flag, '0', '--out', 'x', check=False)
    assert r.returncode == 2 and "must be a positive integer, got '0'" in r.stderr, r.stderr

def test_gray_folder_picks_the_gray_generator_and_says_so(tmp_path):
    "A folder of gray PNG frames (numbered 1..12, as people name them) is reconstructed with the gray generator."
    from PIL import Image
    from vidnb.data import rotating_mnist
    x = rotating_mnist(frames=12, index=[0])[0, 0]                        # (T, 64, 64) in [-1, 1]
    (tmp_path / 'frames').mkdir()
    for t, f in enumerate(((x + 1) * 127.5).round().byte().numpy(), 1): Image.fromarray(f).convert('RGB').save(tmp_path / 'frames' / f'frame{t}.png')
    r = gmlr('reconstruct', '--video', tmp_path / 'frames', '--steps', '3', '--out', tmp_path / 'o')
    assert 'using the pretrained gray MNIST generator (the video is gray; --rgb for the RGB one)' in r.stderr, r.stderr
    m = _outputs(tmp_path / 'o', 12, 1)
    assert m['generator_kind'] == 'gray'
    a = np.load(tmp_path / 'o' / 'reconstruction.npy')
    r = gmlr('reconstruct', '--video', tmp_path / 'frames', '--steps', '3', '--rgb', '--out', tmp_path / 'rgb')
    assert 'using the pretrained RGB generator' in r.stderr and _outputs(tmp_path / 'rgb', 12, 3)['generator_kind'] == 'rgb'

def test_out_is_checked_before_any_compute(tmp_path):
    (tmp_path / 'afile').write_text('x')
    for out, msg in [(tmp_path / 'afile', 'which is a file'), ('/proc/vidnb-out', 'a folder that can be created')]:
        r = gmlr('reconstruct', '--sequence', 'rotating_mnist', '--steps', '2000', '--out', out, check=False)
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, r.stderr
