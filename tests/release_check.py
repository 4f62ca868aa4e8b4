"""Release checks that run outside pytest too: in `.github/workflows/release.yml` and in `tests/test_wheel.py`.

    python tests/release_check.py tag v0.2.0    the tag is `v` + vidnb's `__version__`, and CHANGELOG.md has its entry
    python tests/release_check.py first-cells   run by a fresh environment's python that has torch but no vidnb:
        each notebook's first code cell (the first one installs vidnb as in Colab or Kaggle, the others find it),
        then one training step of each paper chapter's `smoke` preset, each in its own process

`first-cells` takes the notebooks from this clone (`../nbs`) and runs every cell in an empty folder, so the
package imported is the one the first cell installed, never this clone's.
"""
import json, os, re, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def version(root=ROOT) -> str:
    "vidnb's one version source: `__version__` in vidnb/__init__.py, read without importing vidnb."
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', (root / 'vidnb' / '__init__.py').read_text(), re.M)
    if not m: raise SystemExit('vidnb/__init__.py has no __version__')
    return m[1]

def changelog_versions(root=ROOT) -> list:
    "The versions of CHANGELOG.md's entries (`## 0.1.0` headings), newest first."
    return re.findall(r'^##\s+v?(\d[^\s(]*)', (root / 'CHANGELOG.md').read_text(), re.M)

def check_tag(tag: str, root=ROOT) -> str:
    "The version a tag releases; SystemExit naming the mismatch when the tag, `__version__` and CHANGELOG disagree."
    v = version(root)
    if tag != f'v{v}': raise SystemExit(f'tag {tag!r} must be v + vidnb.__version__ = v{v} (vidnb/__init__.py)')
    top = changelog_versions(root)[:1]
    if top != [v]: raise SystemExit(f'CHANGELOG.md must start with an entry "## {v}", its newest is {top or "none"}')
    return v

def first_code_cell(nb: Path) -> str:
    return next(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')

# One training step of each paper chapter's smoke preset, on the chapter's own data (real, from `vidnb data prepare`).
STEPS = dict(
    gmlr="""
import vidnb.gmlr as g
p = g.PRESETS['smoke']
seq, op, rl, rj, _ = g.TABLE2[p.table2_rows[-1]]
x = g.sequence(seq)
r = g.reconstruct(x, op, g.column_config(p.table2_columns[-1], rl, rj, steps=1))
assert r['steps'] == 1 and r['x_hat'].shape == x.shape""",
    dvae="""
from dataclasses import replace
import vidnb.dvae as d
p = d.PRESETS['smoke']
video = d.texture_video(p.texture_size, p.textures[0])
learn = d.train_texture(video, replace(p, texture_budget=d.Budget(steps=1), dvae_budget=d.Budget(steps=1)), progress=False)
assert learn.train_iter == 1""",
    stgconvnet="""
from dataclasses import replace
import vidnb.stgconvnet as stg
cfg = replace(stg.PRESETS['smoke'].st, iters=1)
learn = stg.train(stg._foliage(cfg), cfg, progress=False)
assert learn.train_iter == 1""",
    styleganv="""
from dataclasses import replace
import vidnb.styleganv as sgv
p = sgv.PRESETS['smoke']
videos = sgv.moving_mnist_videos(p.train.bs, p.frames, p.model.size)
learn = sgv.train_gan(videos, p.model, replace(p.train, steps=1), progress=False)
assert learn.train_iter == 1""",
)

def run_first_cells(nbs=ROOT / 'nbs', chapters=tuple(STEPS), log=print) -> list:
    "Run every notebook's first cell, then `chapters`' smoke steps, with this python in an empty folder; the failures."
    failures, env = [], dict(os.environ, MPLBACKEND='Agg')
    env.pop('PYTHONPATH', None)
    with tempfile.TemporaryDirectory() as d:
        jobs = [(nb.name, first_code_cell(nb)) for nb in sorted(nbs.glob('[!_.]*.ipynb')) if nb.name != 'index.ipynb']
        jobs += [(f'{ch}: one smoke training step', STEPS[ch]) for ch in chapters]
        for name, code in jobs:
            r = subprocess.run([sys.executable, '-c', code], cwd=d, env=env, capture_output=True, text=True)
            lines = r.stdout.strip().splitlines()
            said = [l for l in lines[:-1] if l.startswith('installed')] + lines[-1:]     # what was installed, and the last line
            log(f'{"ok  " if r.returncode == 0 else "FAIL"} {name}: {" | ".join(said)}')
            if r.returncode: failures.append((name, r.stdout[-2000:] + r.stderr[-4000:]))
    return failures

if __name__ == '__main__':
    cmd, *args = sys.argv[1:] or ['']
    if cmd == 'tag' and len(args) == 1: print(f'releasing vidnb {check_tag(args[0])}')
    elif cmd == 'first-cells' and not args:
        bad = run_first_cells()
        for name, out in bad: print(f'--- {name}\n{out}', file=sys.stderr)
        sys.exit(1 if bad else 0)
    else: sys.exit(__doc__)
