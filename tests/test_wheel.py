"""Release readiness: the two ways people use vidnb besides a clone.

1. `pip install vidnb`: `python -m build` makes a wheel and an sdist; the wheel holds the package and the files
   trained here (as data files under `<prefix>/share/vidnb`), and no tests or notebooks. Installed into a clean venv
   (not editable), `vidnb info`, the shipped weights and one chapter's smoke reproduction work.
2. Colab/Kaggle: a chapter notebook's first code cell installs the vidnb version it was written with when vidnb is
   missing. We run those very cells, taken from the notebooks, in a fresh venv that has torch but no vidnb:
   - with the built wheel's folder as a package index (`PIP_FIND_LINKS`), a stand-in for PyPI after a release: the
     pinned `vidnb[metrics]==<version>` installs from it; then every notebook's first cell and one training step of
     each paper chapter's `smoke` preset run there (`tests/release_check.py first-cells`, as the release workflow);
   - with the real package index, which has no vidnb: the cell falls back to the repository's tag `v<version>`,
     here a local clone given by `VIDNB_REPO` (no network to the repository host is needed).

The venv gets torch from `$VIDNB_TEST_TORCH` (default `torch==2.13.0`, the CPU build on this machine's disk) and
everything else from the package registry, as a user's machine would. The offline data cache is shared through
`$VIDNB_DATA` so the Debian-package data are not fetched twice.
"""
import json, os, subprocess, sys, zipfile
from pathlib import Path
import pytest

pytestmark = pytest.mark.xdist_group('wheel')      # one worker builds the wheel and the venv once for all tests here

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get('VIDNB_TEST_TORCH', 'torch==2.13.0')


def run(cmd, env=None, timeout=900, cwd=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    run([sys.executable, '-m', 'build', '--wheel', '--sdist', '--outdir', str(out), str(ROOT)], timeout=600)
    wheel, = out.glob('vidnb-*.whl')
    sdist, = out.glob('vidnb-*.tar.gz')
    return wheel, sdist


def test_wheel_contents(dist):
    wheel, sdist = dist
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split('/')[0] for n in names}
    assert all(t == 'vidnb' or t.startswith('vidnb-') for t in top), top            # no tests/, nbs/, data/ at top level
    assert not any(n.endswith('.ipynb') or '/tests/' in n or n.startswith('tests/') for n in names)
    shipped = {n.rsplit('/', 1)[-1] for n in names if '.data/data/share/vidnb/' in n}
    assert {'gmlr_gray_mnist64.pt', 'mnist_digit_classifier.pt', 'README.md'} <= shipped, shipped
    mods = {n for n in names if n.startswith('vidnb/') and n.endswith('.py')}
    assert {'vidnb/__init__.py', 'vidnb/cli.py', 'vidnb/core.py', 'vidnb/metrics.py', 'vidnb/gmlr.py'} <= mods
    assert 'vidnb/assets/sample_size.json' in names        # the measured curves fid/fvd warn from
    ep = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('entry_points.txt'))).decode()
    assert 'vidnb = vidnb.cli:main' in ep
    assert wheel.stat().st_size < 25e6 and sdist.stat().st_size < 25e6, (wheel.stat().st_size, sdist.stat().st_size)


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    "A fresh venv with torch only (what Colab has before the first cell runs)."
    d = tmp_path_factory.mktemp('venv') / 'env'
    run([sys.executable, '-m', 'venv', str(d)])
    py = d / 'bin' / 'python'
    # a current pip, as Colab's: the one bundled with Python 3.11's venv (23.2) rejects `name @ git+file:///path`
    run([py, '-m', 'pip', 'install', '-q', '-U', 'pip'])
    run([py, '-m', 'pip', 'install', '-q', *TORCH.split()])
    return d


def index_with(*dirs):
    "PIP_FIND_LINKS of this machine's pip plus `dirs`: a package index holding the built wheel."
    return ' '.join([*os.environ.get('PIP_FIND_LINKS', '').split(), *map(str, dirs)])


def test_colab_first_cells_install_the_pinned_wheel_then_chapters_train(dist, venv, tmp_path):
    wheel, _ = dist
    py = venv / 'bin' / 'python'
    env = dict(os.environ, PIP_FIND_LINKS=index_with(wheel.parent), OMP_NUM_THREADS='1')
    for k in ('PYTHONPATH', 'VIDNB_PIP', 'VIDNB_REPO'): env.pop(k, None)
    check = [py, '-c', 'import importlib.util; print(importlib.util.find_spec("vidnb") is None)']
    assert run(check, env, cwd=tmp_path).strip() == 'True'                                   # no vidnb yet
    version = wheel.name.split('-')[1]
    out = run([py, str(ROOT / 'tests' / 'release_check.py'), 'first-cells'], env, timeout=1800, cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith('ok   00_core.ipynb') and f'installed vidnb[metrics]=={version}' in lines[0], out
    assert sum(l.startswith('ok   ') for l in lines) == len(lines) >= 14 + 4, out                # every cell, every step
    assert all(f"vidnb {version} on cpu, preset 'smoke'" in l for l in lines if '.ipynb' in l), out
    # installed from the wheel, not from this clone, and not editable
    loc = run([py, '-c', 'import vidnb; print(vidnb.__file__)'], env, cwd=tmp_path).strip()
    assert str(venv) in loc and str(ROOT) not in loc, loc
    vidnb = venv / 'bin' / 'vidnb'
    info = json.loads(run([vidnb, 'info'], env, cwd=tmp_path))
    assert info['torch'] and all(p.startswith(str(venv)) for p in info['weights'].values()), info['weights']
    for cmd in (['docs', '--out', str(tmp_path / 'site')], ['readme']):                       # need a clone: one line
        r = subprocess.run([str(vidnb), *cmd], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 2 and 'a clone of the vidnb repository' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    w = run([py, '-c', 'from vidnb.gmlr import weights_path, pretrained; print(weights_path("gray")); pretrained("gray")'], env, cwd=tmp_path).strip()
    assert w.startswith(str(venv)) and w.endswith('share/vidnb/gmlr_gray_mnist64.pt'), w
    # one chapter's smoke run from the installed package: GMLR on a Rotating MNIST digit with 80% missing pixels
    out_dir = tmp_path / 'rec'
    run([vidnb, 'gmlr', 'reconstruct', '--sequence', 'rotating_mnist', '--operator', 'missing:0.8', '--method', 'joint',
         '--rank', '3', '--steps', '40', '--out', str(out_dir)], env, cwd=tmp_path)
    m = json.loads((out_dir / 'metrics.json').read_text())
    assert m['steps'] == 40 and m['psnr'] > 12, m
    assert (out_dir / 'reconstruction.mp4').stat().st_size > 0
    # a user's own files: a folder of gray frames (reconstructed with the gray generator), FID of two folders,
    # and a training run continued with --resume; none of them may end in a traceback
    from PIL import Image
    import numpy as np
    frames, other = tmp_path / 'frames', tmp_path / 'other'
    for d, shift in ((frames, 0), (other, 7)):
        d.mkdir()
        for t in range(1, 11):
            a = (np.add.outer(np.arange(64), np.arange(64)) * 2 + 9 * (t + shift)) % 256
            Image.fromarray(a.astype(np.uint8)).save(d / f'frame{t}.png')
    rec = subprocess.run([str(vidnb), 'gmlr', 'reconstruct', '--video', str(frames), '--steps', '3', '--quiet',
                          '--out', str(tmp_path / 'mine')], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert rec.returncode == 0 and 'using the pretrained gray MNIST generator' in rec.stderr, rec.stderr
    score = run([vidnb, 'fid', str(frames), str(other), '--quiet'], env, cwd=tmp_path)
    assert float(score.strip().splitlines()[-1]) > 0
    train = [vidnb, 'dvae', 'train', '--video', str(frames), '--out', str(tmp_path / 'tex'), '--quiet']
    run([*train, '--steps', '2'], env, cwd=tmp_path)
    again = subprocess.run(list(map(str, [*train, '--steps', '3'])), env=env, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 2 and '--resume' in again.stderr and 'Traceback' not in again.stderr, again.stderr
    assert json.loads(run([*train, '--steps', '3', '--resume'], env, cwd=tmp_path).strip().splitlines()[-1])['steps'] == 3
    # and the chapter-level smoke reproduction with its report
    run([vidnb, 'reproduce', 'core', '--out', str(tmp_path / 'rep')], env, timeout=1200, cwd=tmp_path)
    res = json.loads((tmp_path / 'rep' / 'results.json').read_text())
    assert res['chapters'] and not any(c.get('error') for c in res['chapters'].values()), res['chapters']
    assert (tmp_path / 'rep' / 'report.html').read_text().count('<section') >= 4


def test_colab_first_cell_falls_back_to_the_repository_tag(venv, tmp_path):
    """The package index has no vidnb (true of PyPI today): the first cell installs the repository's tag v<version>.
    The repository is a local clone of this one (`VIDNB_REPO`), tagged here, so no network to GitHub is needed."""
    sys.path.insert(0, str(ROOT / 'tests'))
    from release_check import version, first_code_cell
    v = version()
    py = venv / 'bin' / 'python'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for k in ('PYTHONPATH', 'VIDNB_PIP'): env.pop(k, None)
    subprocess.run([py, '-m', 'pip', 'uninstall', '-q', '-y', 'vidnb'], env=env, capture_output=True)   # if installed
    repo = tmp_path / 'repo'
    run(['git', 'clone', '-q', str(ROOT), str(repo)])
    run(['git', '-C', str(repo), 'tag', f'v{v}'])
    env['VIDNB_REPO'] = f'file://{repo}'
    script = tmp_path / 'first_cell.py'; script.write_text(first_code_cell(ROOT / 'nbs' / '10_gmlr.ipynb'))
    r = subprocess.run([py, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f'could not install vidnb[metrics]=={v}' in r.stderr, r.stderr                       # not on the index
    assert f'installed vidnb[metrics] @ git+file://{repo}@v{v}' in r.stdout, r.stdout            # so the tag
    assert f"vidnb {v} on cpu, preset 'smoke'" in r.stdout, r.stdout
    loc = run([py, '-c', 'import vidnb; print(vidnb.__file__)'], env, cwd=tmp_path).strip()
    assert str(venv) in loc and str(ROOT) not in loc and str(repo) not in loc, loc              # installed, not a path


def test_shipped_weights_found_after_pip_install_target(dist, tmp_path):
    "`pip install --target DIR`: the package and its share/vidnb land in DIR; shipped_file finds the weights there."
    wheel, _ = dist
    target = tmp_path / 'lib'
    run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(target), str(wheel)], timeout=600)
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import vidnb; from vidnb.data import shipped_file; print(vidnb.__file__); "
            "print(shipped_file('gmlr_gray_mnist64.pt')); print(shipped_file('mnist_digit_classifier.pt'))")
    where, gray, clf = run([sys.executable, '-c', code], env, cwd=tmp_path).split()
    assert where.startswith(str(target)) and gray.startswith(str(target)) and clf.startswith(str(target)), (where, gray)
