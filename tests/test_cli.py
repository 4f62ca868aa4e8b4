"The `vidnb` command line end to end, as a user runs it: a fresh output folder, real chapters, real files."
import json, subprocess, sys, os
from pathlib import Path
import pytest

def vidnb(*args, cwd=None, check=True):
    exe = Path(sys.executable).parent / 'vidnb'  # the console script pip installed beside this python
    r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                       env={**os.environ, 'MPLBACKEND': 'Agg'})
    if check and r.returncode: raise AssertionError(f'vidnb {" ".join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}')
    return r

def test_info_is_json_with_versions_and_data():
    d = json.loads(vidnb('info').stdout)
    assert d['torch'] and d['device'] in ('cpu', 'cuda', 'mps')
    assert isinstance(d['data'], dict) and d['data'], d['data']

def test_unknown_chapter_is_a_clear_error(tmp_path):
    r = vidnb('reproduce', 'nope', '--out', tmp_path / 'r', check=False)
    assert r.returncode == 2 and 'unknown chapter nope' in r.stderr
    assert not (tmp_path / 'r' / 'report.html').exists()

def test_bad_preset_is_rejected(tmp_path):
    r = vidnb('reproduce', 'core', '--preset', 'huge', '--out', tmp_path, check=False)
    assert r.returncode == 2 and "invalid choice: 'huge'" in r.stderr

def test_reproduce_core_writes_report_and_results(tmp_path):
    out = tmp_path / 'fresh' / 'run'
    vidnb('reproduce', 'core', '--preset', 'smoke', '--out', 'fresh/run', cwd=tmp_path)     # relative, as `make reproduce` gives it
    html = (out / 'report.html').read_text()
    assert 'missing figure' not in html and 'missing figure' not in (out / 'data.html').read_text()
    res = json.loads((out / 'results.json').read_text())
    assert res['settings']['preset'] == 'smoke'
    for name, ch in res['chapters'].items():
        assert ch['error'] is None, f'{name} failed:\n{ch["error"]}'
    assert html.count('<section') == len(res['chapters']) and 'data:image/png;base64,' in html
