"""Release like an nbdev project (issue 21): the GitHub workflows, the one version source, the changelog and the
first cells pinned to the version. The workflows cannot run here (no GitHub), so they are parsed and checked:
their triggers, their jobs, and that the commands they run are the README's and the Makefile's.
`workflow_problems` is the checker; each rule is also shown failing on a deliberately broken copy."""
import copy, re, sys
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tests'))
import release_check

WF = ROOT / '.github' / 'workflows'


def load(name):
    wf = yaml.safe_load((WF / name).read_text())
    if True in wf: wf['on'] = wf.pop(True)                        # YAML 1.1 reads the key `on` as a boolean
    return wf


def readme_commands():
    "The README's two set-up commands: the `make ...` lines of its first shell block."
    block = re.search(r'```sh\n(.*?)```', (ROOT / 'README.md').read_text(), re.S)[1]
    return [l.split('#')[0].strip() for l in block.splitlines() if l.startswith('make ')]


def make_targets_and_vars():
    mk = (ROOT / 'Makefile').read_text()
    return set(re.findall(r'^([\w-]+):', mk, re.M)), set(re.findall(r'^(\w+)\s*\?=', mk, re.M))


def runs(job): return [s['run'] for s in job.get('steps', []) if 'run' in s]
def uses(job): return [s['uses'] for s in job.get('steps', []) if 'uses' in s]


def workflow_problems(test, docs, release, readme=None):
    "Everything wrong with the three workflows (parsed YAML), as sentences; [] when they are right."
    readme, bad = readme or readme_commands(), []
    targets, variables = make_targets_and_vars()
    for name, wf in (('test', test), ('docs', docs), ('release', release)):
        for job_name, job in wf.get('jobs', {}).items():
            for u in uses(job):
                if not re.search(r'@(v\d+|release/v\d+)$', u): bad.append(f'{name}.{job_name}: {u} is not pinned to a major version')
            for r in runs(job):
                for m in re.finditer(r'\bmake\s+([\w-]+)((?:\s+\w+=\S+)*)', r):
                    if m[1] not in targets: bad.append(f'{name}.{job_name}: make {m[1]} is not a Makefile target')
                    bad += [f'{name}.{job_name}: make variable {v} is not in the Makefile'
                            for v in re.findall(r'(\w+)=', m[2]) if v not in variables]
        text = yaml.safe_dump(wf)
        if 'secrets.' in text or re.search(r'\b(password|api[-_]?token)\b', text, re.I):
            bad.append(f'{name}: uses a stored secret (publishing must be trusted publishing)')
    # test: every push and pull request runs the README's test command
    on = test.get('on', {})
    if not {'push', 'pull_request'} <= set(on if isinstance(on, (dict, list)) else [on]):
        bad.append('test: must run on push and pull_request')
    if 'push' in on and isinstance(on, dict) and (on['push'] or {}).get('branches'):
        bad.append('test: must run on every push, not only some branches')
    test_cmd = next(c for c in readme if c.startswith('make test'))
    if not any(r.strip().startswith(test_cmd) for j in test.get('jobs', {}).values() for r in runs(j)):
        bad.append(f"test: no step runs the README's test command {test_cmd!r}")
    # docs: built with `vidnb docs --out DIR`, DIR uploaded and deployed to GitHub Pages from main
    jobs = docs.get('jobs', {})
    build = next((j for j in jobs.values() if any('vidnb docs' in r for r in runs(j))), None)
    if build is None: bad.append('docs: no job runs vidnb docs')
    else:
        out = re.search(r'vidnb docs --out (\S+)', ' '.join(runs(build)))
        up = [s for s in build['steps'] if s.get('uses', '').startswith('actions/upload-pages-artifact')]
        if not out or not up or up[0].get('with', {}).get('path') != out[1]:
            bad.append('docs: the folder vidnb docs writes is not the one uploaded to Pages')
    if not any('actions/deploy-pages' in u for j in jobs.values() for u in uses(j)): bad.append('docs: nothing deploys to Pages')
    if (docs.get('on', {}).get('push') or {}).get('branches') != ['main']: bad.append('docs: must deploy on push to main')
    perms = docs.get('permissions', {})
    if perms.get('pages') != 'write' or perms.get('id-token') != 'write': bad.append('docs: needs pages and id-token write')
    # release: a tag v*; check the tag, build both files, check the wheel in a fresh env, then trusted publishing
    if (release.get('on', {}).get('push') or {}).get('tags') != ['v*']: bad.append('release: must run on tags v*')
    jobs = release.get('jobs', {})
    pub = [n for n, j in jobs.items() if any(u.startswith('pypa/gh-action-pypi-publish') for u in uses(j))]
    if len(pub) != 1: bad.append('release: one job must publish with pypa/gh-action-pypi-publish')
    else:
        p = jobs[pub[0]]
        if (p.get('permissions') or {}).get('id-token') != 'write': bad.append('release: publishing needs id-token: write (trusted publishing)')
        if (release.get('permissions') or {}).get('id-token') == 'write': bad.append('release: only the publish job may get an id-token')
        need = p.get('needs', [])
        builds = [need] if isinstance(need, str) else need
        steps = ' '.join(r for n in builds for r in runs(jobs.get(n, {})))
        for what, cmd in (('check the tag', 'release_check.py tag "$GITHUB_REF_NAME"'), ('build the sdist and wheel', 'python -m build --sdist --wheel'),
                          ("run the chapters' first cells from the wheel", 'release_check.py first-cells')):
            if cmd not in steps: bad.append(f'release: the job publishing needs one that must {what} ({cmd})')
        if 'PIP_FIND_LINKS' not in steps: bad.append('release: the first cells must install the built wheel (PIP_FIND_LINKS)')
    return bad


def workflows(): return load('test.yml'), load('docs.yml'), load('release.yml')


def test_workflows_are_right():
    assert readme_commands() == ['make reproduce', 'make test']
    assert workflow_problems(*workflows()) == []


@pytest.mark.parametrize('breakage, expect', [
    (lambda t, d, r: t['on'].pop('pull_request'), 'test: must run on push and pull_request'),
    (lambda t, d, r: t['jobs']['test']['steps'][-1].update(run='make install'), "README's test command"),
    (lambda t, d, r: t['jobs']['test']['steps'][-1].update(run='make test TORCH_IDX=x'), 'TORCH_IDX is not in the Makefile'),
    (lambda t, d, r: d['jobs']['build']['steps'][-1]['with'].update(path='_docs'), 'not the one uploaded'),
    (lambda t, d, r: r['jobs']['publish']['steps'][-1].update({'with': {'password': '${{ secrets.PYPI_TOKEN }}'}}), 'stored secret'),
    (lambda t, d, r: r['jobs']['publish'].pop('permissions'), 'id-token: write'),
    (lambda t, d, r: r['jobs']['build'].update(steps=[s for s in r['jobs']['build']['steps'] if ' tag ' not in s.get('run', '')]),
     'check the tag'),
    (lambda t, d, r: r['on']['push'].update(tags=['*']), 'tags v*'),
    (lambda t, d, r: d['jobs']['build']['steps'][0].update(uses='actions/checkout@main'), 'not pinned'),
])
def test_the_checker_catches_broken_workflows(breakage, expect):
    t, d, r = copy.deepcopy(workflows())
    breakage(t, d, r)
    assert any(expect in p for p in workflow_problems(t, d, r)), workflow_problems(t, d, r)


def test_one_version_source_changelog_and_tag(tmp_path):
    import vidnb
    v = release_check.version()
    assert v == vidnb.__version__                                    # the package, pyproject's dynamic version, the checks
    assert release_check.changelog_versions()[0] == v                # the changelog's newest entry is this version
    assert release_check.check_tag(f'v{v}') == v
    with pytest.raises(SystemExit, match='must be v \\+ vidnb.__version__'): release_check.check_tag('v99.0.0')
    with pytest.raises(SystemExit, match='must be v'): release_check.check_tag(v)         # no v
    (tmp_path / 'vidnb').mkdir()
    (tmp_path / 'vidnb' / '__init__.py').write_text('__version__ = "0.2.0"\n')
    (tmp_path / 'CHANGELOG.md').write_text('# Release notes\n\n## 0.1.0\n\n- first\n')
    with pytest.raises(SystemExit, match='CHANGELOG.md must start with an entry "## 0.2.0"'): release_check.check_tag('v0.2.0', tmp_path)


def test_every_notebook_installs_this_version():
    "The first cell pins this version (CI also runs `vidnb install-cells` and fails on a change)."
    from vidnb.docs import install_cell
    want = install_cell()
    nbs = [p for p in sorted((ROOT / 'nbs').glob('[!_.]*.ipynb')) if p.name != 'index.ipynb']
    assert len(nbs) >= 14
    for p in nbs: assert release_check.first_code_cell(p) == want, f'{p.name}: run vidnb install-cells'
    assert f"VIDNB_VERSION = '{release_check.version()}'" in want
