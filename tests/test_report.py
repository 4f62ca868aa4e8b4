"""The chapter contract (nbs/07_report.ipynb) held by every registered chapter: presets, `reproduce` at a tiny size
through `**overrides`, and the `results.json` each writes, validated against its documented schema."""
import json
from dataclasses import replace
import pytest
from vidnb.cli import chapters
from vidnb.report import OUTCOMES, Report, check_chapter, pick_preset, results_json, validate_results, write_reports

MODULES = {m.__name__.split('.')[-1]: m for mods in chapters().values() for m in mods}
CLAIMS = ('gmlr', 'dvae')      # chapters whose reports carry the papers' claims for the scorecard

def _tiny(name):
    "Overrides that make a chapter's smoke run take seconds (the code path is the smoke one; the numbers mean nothing)."
    m = MODULES[name]
    s = m.PRESETS['smoke']
    if name == 'learner': return dict(steps=24, stop_after=3)
    if name == 'metrics': return dict(n=3, seeds=(0,), crop=64, scale=4)
    if name == 'gmlr': return dict(steps=2, tv_steps=3, mnist_sequences=2, line_sequences=1, missing_length=16)
    if name == 'dvae':
        return dict(dvae_budget=m.Budget(12), vae_budget=m.Budget(6), texture_budget=m.Budget(4), digits_frames=400,
                    synth_sequences=2, synth_frames=12)
    if name == 'styleganv':
        return dict(steps=3, bs=4, eval_every=3, n_videos=8, n_fake=4, n_real=4, n_samples=1, sample_frames=8,
                    long_frames=128, memory_frames=(16, 32), ablation_steps=2)
    if name == 'stgconvnet':
        return dict(st=replace(s.st, iters=4, grow=(1, 2)), fc=replace(s.fc, iters=3), sound=replace(s.sound, iters=2),
                    fresh_steps=3, baseline_seeds=2)
    return {}

@pytest.mark.parametrize('name', list(MODULES))
def test_chapter_contract(name):
    m = MODULES[name]
    check_chapter(m)
    with pytest.raises(ValueError, match="preset must be one of 'smoke', ") as e: pick_preset(m.PRESETS, 'huge')
    assert "'paper'" in str(e.value) and str(e.value).endswith("got 'huge'")          # every chapter has both

@pytest.mark.parametrize('name', list(MODULES))
def test_results_json_of_every_chapter_validates(name, tmp_path):
    "A tiny smoke run of the chapter returns a Report whose results.json passes the schema and names every file it made."
    r = MODULES[name].reproduce('smoke', tmp_path / name, **_tiny(name))
    assert isinstance(r, Report) and r.tables and r.text, name
    write_reports({name: r}, tmp_path, dict(preset='smoke'))
    res = validate_results(json.loads((tmp_path / 'results.json').read_text()))
    ch = res['chapters'][name]
    assert ch['tables'] and all(t['rows'] for t in ch['tables'])
    assert all((tmp_path / m['path']).exists() for m in ch['media']), ch['media']
    assert 'missing figure' not in (tmp_path / 'report.html').read_text()
    if name in CLAIMS:                                   # chapters whose paper claims go to the scorecard
        assert ch['claims'] and all(c['verdict'] in OUTCOMES for c in ch['claims']), ch['claims']
        card = (tmp_path / 'scorecard.md').read_text()  # a smoke run: labelled a code check, never counted
        assert card.count('code check (smoke preset): not a result') == len(ch['claims']) and '0 reproduced' in card

def test_validation_catches_a_broken_chapter_entry(tmp_path):
    "The schema test can fail: a results.json with a table cell that is a list, or no tables key, is refused."
    good = results_json({'x': Report('x', tmp_path, 'smoke', tables=[])}, {})
    bad = json.loads(json.dumps(good))
    del bad['chapters']['x']['tables']
    with pytest.raises(ValueError, match="'tables' is a required property"): validate_results(bad)
    bad = json.loads(json.dumps(good))
    bad['chapters']['x']['tables'] = [dict(caption='t', columns=['a'], rows=[dict(a=[1, 2])])]
    with pytest.raises(ValueError, match='/chapters/x/tables/0/rows/0/a'): validate_results(bad)

def _tiny_main(name):
    "`_tiny` for the main preset: the study chapters also shrink their evaluation sets."
    kw = _tiny(name)
    if name == 'styleganv':
        kw.update(n_eval=4, fid_frames=16, n_project=2, project_steps=2, collapse_frames=32, collapse_videos=1,
                  resamples=5)
    if name == 'metrics': kw.update(mnist_n=4, mnist_frames=16, resamples=5)
    return kw

@pytest.mark.slow                                        # about 3-7 min on 2 cores: `pytest -m slow tests/test_report.py`
@pytest.mark.parametrize('name', ['styleganv'])
def test_main_preset_runs_end_to_end(name, tmp_path, monkeypatch):
    "The main job's preset of a chapter whose main path differs from smoke (StyleGAN-V: a one-run study) runs at a tiny size."
    if name == 'styleganv':                              # its runs and features go to tmp_path, not the data cache
        monkeypatch.setattr(MODULES[name], 'study_dir', lambda preset, p=None: tmp_path / 'study')
    r = MODULES[name].reproduce('main', tmp_path / name, **_tiny_main(name))
    assert isinstance(r, Report) and r.tables and not r.error, name
    write_reports({name: r}, tmp_path, dict(preset='main'))
    validate_results(json.loads((tmp_path / 'results.json').read_text()))
