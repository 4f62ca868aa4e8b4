"`vidnb fid A B` and `vidnb fvd A B` end to end: folders, video files and saved statistics, against the API's numbers."
import json, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from vidnb import metrics as M
from vidnb.core import write_video, video_to_uint8

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TQDM_DISABLE': '1'}

def vidnb(*args, code=0):
    "The command in a fresh process, as a user runs it."
    r = subprocess.run([sys.executable, '-m', 'vidnb.cli', *map(str, args)], capture_output=True, text=True, env=ENV)
    assert r.returncode == code, f'vidnb {" ".join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}'
    return r

class _Out:
    def __init__(self, out, err): self.stdout, self.stderr = out, err

@pytest.fixture
def run(capsys):
    "The command in this process (the feature networks load once): `run(*args, code=0)` -> stdout and stderr."
    from vidnb.cli import main
    def go(*args, code=0):
        capsys.readouterr()
        got = main(['--quiet' if a == '--quiet' else str(a) for a in args])
        o = capsys.readouterr()
        assert got == code, f'vidnb {" ".join(map(str, args))} exited {got}\n{o.out}\n{o.err}'
        return _Out(o.out, o.err)
    return go

def _write_images(folder, x):
    folder.mkdir()
    for i, im in enumerate(video_to_uint8(x.unsqueeze(2))[:, 0, :, :, 0]): Image.fromarray(im).save(folder / f'img{i}.png')
    return folder

@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    from vidnb.data import mnist
    d = tmp_path_factory.mktemp('digits')
    xs, _ = mnist('train', size=32, n=10)
    xt, _ = mnist('test', size=32, n=10)
    return _write_images(d / 'real', xs), _write_images(d / 'fake', xt), xs, xt

def test_fid_of_two_folders_is_the_api_number_and_stats_round_trip(digits, tmp_path, run):
    real, fake, xs, xt = digits
    r = vidnb('fid', real, fake)                                              # as a user: a fresh process
    value = float(r.stdout.strip().splitlines()[-1])
    assert 'warning: FID from n=10 frames per side' in r.stderr and 'A 10 vs B 10 images' in r.stderr  # the measured curve's
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', M.SmallSampleWarning)
        api = M.fid(xs.unsqueeze(2), xt.unsqueeze(2), progress=False, cache=False)
    assert value == pytest.approx(api, rel=1e-4)
    run('fid', '--save-stats', real, tmp_path / 'real.npz', '--quiet')
    again = json.loads(run('fid', tmp_path / 'real.npz', fake, '--json', '--quiet').stdout)
    assert again['value'] == pytest.approx(api, rel=1e-4) and again['n_A'] == 10 and 'mean_term' in again['details']
    r = run('fid', tmp_path / 'real.npz', fake, '--resize', 'bicubic_aa', code=2)            # other protocol
    assert "A must be statistics of the protocol asked for; it differs in resize 'nv_bilinear'" in r.stderr

def test_fvd_of_folders_of_videos_is_the_api_number(tmp_path, run):
    from vidnb.data import moving_mnist
    v = moving_mnist(6, frames=16, seed=0).float()
    for name, part in (('real', v[:3]), ('fake', v[3:].flip(2))):
        (tmp_path / name).mkdir()
        for i, x in enumerate(part): write_video(x[None], tmp_path / name / f'clip{i}.mp4', fps=8)
    res = json.loads(run('fvd', tmp_path / 'real', tmp_path / 'fake', '--size', 32, '--json', '--quiet').stdout)
    from vidnb.core import read_video
    read = lambda side: torch.cat([read_video(tmp_path / side / f'clip{i}.mp4', size=32) for i in range(3)])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', M.SmallSampleWarning)
        api = M.fvd(read('real'), read('fake'), progress=False, cache=False)
    assert res['n_A'] == res['n_B'] == 3 and res['value'] == pytest.approx(api, rel=1e-4)

def test_bad_sets_are_one_line_errors(digits, tmp_path, run):
    real, *_ = digits
    r = run('fid', real, tmp_path / 'nope', code=2)
    assert 'B must be a folder, a video file or an .npz of statistics' in r.stderr and 'Traceback' not in r.stderr
    (tmp_path / 'bad').mkdir(); (tmp_path / 'bad' / 'x.png').write_text('not an image')
    r = run('fid', real, tmp_path / 'bad', '--quiet', code=2)
    assert 'x.png, which is not a readable image' in r.stderr and 'Traceback' not in r.stderr
    with pytest.raises(SystemExit): run('fvd', real, real, '--frames', 0)      # argparse: usage error, status 2
