"""The documentation site (`vidnb docs`) and the `vidnb reproduce` report, opened in headless Chromium.

The site is built into a temporary folder, served on localhost, and every page is loaded in Debian's Chromium,
driven through the DevTools protocol (`websocket-client`): no console errors or exceptions, no request leaves
localhost, figures decode, animations and audio load, tables are there, maths is native MathML with a size,
and the sidebar marks the page. Screenshots go to `$VIDNB_SCREENSHOTS` (default: a pytest temporary folder).
"""
import base64, functools, http.server, json, os, re, shutil, subprocess, tempfile, threading, time, urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get('VIDNB_CHROMIUM', '/usr/bin/chromium'))
NBS = Path(os.environ.get('VIDNB_DOCS_NBS') or Path(__file__).resolve().parent.parent / 'nbs')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--remote-debugging-port=0', '--remote-allow-origins=*',
         '--window-size=1280,900', '--autoplay-policy=no-user-gesture-required']

from vidnb import docs  # noqa: E402


# ---------------------------------------------------------------- a minimal DevTools client
class Browser:
    "Headless Chromium with one tab, driven through the DevTools protocol."
    def __init__(self):
        websocket = pytest.importorskip('websocket', reason='needs websocket-client (pip install websocket-client)')
        self.profile = tempfile.mkdtemp(prefix='vidnb-chromium-')
        self.proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f'--user-data-dir={self.profile}', 'about:blank'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, t0 = Path(self.profile) / 'DevToolsActivePort', time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() - t0 > 30 or self.proc.poll() is not None: self.close(); raise RuntimeError('Chromium did not start')
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        for _ in range(50):
            tabs = [t for t in json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list')) if t['type'] == 'page']
            if tabs: break
            time.sleep(0.1)
        self.ws = websocket.create_connection(tabs[0]['webSocketDebuggerUrl'], timeout=60, suppress_origin=True)
        self.n, self.events = 0, []
        for domain in ('Page', 'Runtime', 'Log', 'Network'): self.send(f'{domain}.enable')

    def send(self, method, **params):
        self.n += 1; self.ws.send(json.dumps(dict(id=self.n, method=method, params=params)))
        while True:
            m = json.loads(self.ws.recv())
            if m.get('id') == self.n:
                if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
                return m.get('result', {})
            self.events.append(m)

    def wait_event(self, method, timeout=60):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if any(e.get('method') == method for e in self.events): return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, url):
        "Load `url`; wait for its load event and for its media to have metadata (or fail)."
        self.events = []
        self.send('Page.navigate', url=url)
        self.wait_event('Page.loadEventFired')
        self.js("""Promise.all([...document.querySelectorAll('video,audio')].map(m => m.readyState >= 1 || m.error ? 1 :
                   new Promise(r => { m.addEventListener('loadedmetadata', r); m.addEventListener('error', r); setTimeout(r, 10000); })))""")

    def js(self, expr):
        r = self.send('Runtime.evaluate', expression=expr, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(r['exceptionDetails'])
        return r['result'].get('value')

    def problems(self):
        "Console errors, uncaught exceptions and failed loads seen since the page was opened."
        res = []
        for e in self.events:
            m, p = e.get('method'), e.get('params', {})
            if m == 'Runtime.exceptionThrown': res.append(f"exception: {p['exceptionDetails'].get('text')} {p['exceptionDetails'].get('exception', {}).get('description', '')}")
            elif m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
                res.append('console.error: ' + ' '.join(str(a.get('value', a.get('description'))) for a in p.get('args', [])))
            elif m == 'Log.entryAdded' and p['entry'].get('level') == 'error': res.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == 'Network.loadingFailed' and not p.get('canceled'): res.append(f"network: {p.get('errorText')}")
        return res

    def requests(self):
        return [e['params']['request']['url'] for e in self.events if e.get('method') == 'Network.requestWillBeSent']

    def screenshot(self, path, scroll_to=None):
        if scroll_to and not self.js(f"(e => e ? (e.scrollIntoView({{block: 'center'}}), true) : false)(document.querySelector({json.dumps(scroll_to)}))"): return None
        if scroll_to: time.sleep(0.2)
        Path(path).write_bytes(base64.b64decode(self.send('Page.captureScreenshot', format='png')['data']))
        self.js('window.scrollTo(0, 0)')
        return path

    def close(self):
        try: self.ws.close()
        except Exception: pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def serve(folder):
    "Serve `folder` on localhost in a thread; return the server (its url is `srv.url`, the requests it failed `srv.failed`)."
    failed = []
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def send_error(self, code, *a, **k): failed.append((code, self.path)); super().send_error(code, *a, **k)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.url, srv.failed = f'http://127.0.0.1:{srv.server_address[1]}/', failed
    return srv


# ---------------------------------------------------------------- what each notebook should show
def expected(nb_path):
    "Counts of what a notebook's visible cells hold: image outputs, tables, formulas, animations, audio players."
    nb, c = json.loads(Path(nb_path).read_text()), dict(img=0, table=0, math=0, video=0, audio=0)
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':
            c['math'] += len(re.findall(r'\$\$.+?\$\$|\$[^\s$][^$\n]*?\$', re.sub(r'``.+?``|`[^`\n]*`', '', src), re.S))
            c['table'] += len(re.findall(r'^\|?\s*:?-{3,}', src, re.M))
            continue
        d, _ = docs.directives(src)
        if 'hide' in d or d.get('include') == 'false' or d.get('output') == 'false': continue
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            if 'application/vnd.jupyter.widget-view+json' in data: continue
            if any(k in data for k in ('image/png', 'image/jpeg', 'image/gif')): c['img'] += 1; continue
            h = ''.join(data.get('text/html', '') or data.get('text/markdown', ''))   # the one the site shows
            c['table'] += h.count('<table') + len(re.findall(r'^\|?\s*:?-{3,}', h, re.M))
            c['video'] += h.count('<video'); c['audio'] += h.count('<audio')
    return c


LISTED = list(dict.fromkeys(['index.ipynb'] + [nb for _, l in docs.read_sidebar(NBS) for nb in l]))  # in the sidebar
PAGES = docs.site_notebooks(NBS)  # the sidebar's and any other notebook

PAGE_STATE = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const maths = q('math');
  return {
    title: document.title, h1: (document.querySelector('h1.title') || {}).textContent,
    img: q('main img').length, img_broken: q('img').filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
    table: q('main table').length,
    math: maths.length, math_not_mathml: maths.filter(m => !(m instanceof MathMLElement)).length,
    math_empty: maths.filter(m => { const r = m.getBoundingClientRect(); return !(r.width > 0 && r.height > 0); }).length,
    math_errors: q('.math-error').length,
    video: q('video').length, video_bad: q('video').filter(v => v.error || v.readyState < 1 || !(v.videoWidth > 0)).length,
    audio: q('audio').length, audio_bad: q('audio').filter(a => a.error || a.readyState < 1 || !(a.duration > 0)).length,
    sidebar: q('nav.sidebar a').map(a => a.getAttribute('href')), active: q('nav.sidebar a.active').map(a => a.getAttribute('href')),
    sections: q('nav.sidebar .section-title').map(s => s.textContent),
    directives: ((document.querySelector('main') || document.body).innerText.match(/^#\\|.*$/mg) || []),
    width: document.documentElement.scrollWidth,
  };
})()"""


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')
    t0 = time.perf_counter()
    pages = docs.build_site(out, NBS)
    print(f'built {len(pages)} pages in {time.perf_counter() - t0:.1f} s: {out}')
    return out


@pytest.fixture(scope='module')
def shots(tmp_path_factory):
    d = Path(os.environ.get('VIDNB_SCREENSHOTS') or tmp_path_factory.mktemp('screenshots'))
    d.mkdir(parents=True, exist_ok=True)
    print(f'screenshots: {d}')
    return d


@pytest.fixture(scope='module')
def browser():
    if not CHROMIUM.exists(): pytest.skip(f'needs Chromium at {CHROMIUM} (Debian: apt-get install -y chromium; or set VIDNB_CHROMIUM)')
    b = Browser()
    yield b
    b.close()


@pytest.fixture(scope='module')
def server(site):
    srv = serve(site)
    yield srv
    srv.shutdown(); srv.server_close()


# ---------------------------------------------------------------- tests
def test_cli_builds_site(tmp_path, capsys):
    assert docs.cli(['--out', str(tmp_path / 'site'), '--nbs', str(NBS)]) == 0
    out = capsys.readouterr().out
    assert f'{len(PAGES)} pages: {tmp_path / "site" / "index.html"}' in out
    assert sorted(p.name for p in (tmp_path / 'site').glob('*.html')) == sorted(docs.page_name(nb) for nb in PAGES)
    assert set(LISTED) <= set(PAGES)


def test_links_resolve(site):
    "Every relative link of every page points at a page of the site, and at an anchor that page has."
    ids = {p.name: set(re.findall(r'\sid="([^"]+)"', p.read_text())) for p in site.glob('*.html')}
    bad, n = [], 0
    for p in site.glob('*.html'):
        for href in re.findall(r'<a [^>]*href="([^"]+)"', p.read_text()):
            if re.match(r'^(\w+:|//)', href): continue
            n += 1
            page, _, anchor = href.partition('#')
            page = page or p.name
            if (site / page).is_file() and page.endswith('.html') and (not anchor or anchor in ids.get(page, ())): continue
            if (site / page).is_file() and not page.endswith('.html') and not anchor: continue
            bad.append(f'{p.name}: {href}')
    assert n > 100, n
    assert not bad, bad[:20]


@pytest.mark.parametrize('nb', PAGES)
def test_page_in_browser(nb, site, server, browser, shots):
    name = docs.page_name(nb)
    browser.open(server.url + name)
    s = browser.js(PAGE_STATE)
    want = expected(NBS / nb)
    assert browser.problems() == []
    outside = [u for u in browser.requests() if not (u.startswith(server.url) or u.startswith('data:'))]
    assert outside == [], f'requests leaving the site: {outside}'
    assert server.failed == []
    # the frame: title, sidebar with every listed page and this one marked, no directive lines
    assert s['h1'] and s['title'].startswith(s['h1'].strip())
    assert sorted(set(s['sidebar'])) == sorted(docs.page_name(x) for x in LISTED)
    assert s['active'] == ([name] if nb in LISTED else [])
    assert {sec for sec, l in docs.read_sidebar(NBS) if sec and l} <= set(s['sections'])
    assert s['directives'] == []
    # the contents: figures, tables, animations, audio, maths
    assert s['img'] >= want['img'] and s['img_broken'] == [], (s['img'], want, s['img_broken'])
    assert s['table'] >= want['table'], (s['table'], want)
    assert (s['video'], s['audio']) == (want['video'], want['audio']) and s['video_bad'] == 0 and s['audio_bad'] == 0, s
    assert s['math'] >= want['math'] and s['math_not_mathml'] == 0 and s['math_empty'] == 0 and s['math_errors'] == 0, (s, want)
    assert s['width'] <= 1280 + 5, 'the page scrolls sideways'
    browser.screenshot(shots / f'{name[:-5]}.png')
    browser.screenshot(shots / f'{name[:-5]}-figure.png', 'main .cell-output-display img')
    browser.screenshot(shots / f'{name[:-5]}-math.png', 'main math[display=block]') or browser.screenshot(shots / f'{name[:-5]}-math.png', 'main p math')
    browser.screenshot(shots / f'{name[:-5]}-api.png', 'main .doc-card:has(table.docments)') or browser.screenshot(shots / f'{name[:-5]}-api.png', 'main .doc-card')


def test_core_page_api(site, server, browser):
    "The signature cards are there and backticked names link to them."
    browser.open(server.url + 'core.html#check_video')
    r = browser.js("""(() => ({card: !!document.querySelector('.doc-card h3#check_video'),
        sig: (document.querySelector('#check_video').parentElement.querySelector('.highlight') || {}).textContent || '',
        links: [...document.querySelectorAll('a.api')].map(a => a.getAttribute('href')), y: window.scrollY}))()""")
    assert r['card'] and 'def check_video(' in r['sig'] and "name='video'" in r['sig']
    assert 'core.html#check_video' in r['links'] and r['y'] > 0


def test_search(site, server, browser, shots):
    "The navbar's search box finds a function's card and a section, with no errors."
    browser.open(server.url + 'index.html')
    find = lambda q: browser.js(f"""(() => {{ const b = document.getElementById('search'); b.value = {json.dumps(q)};
        b.dispatchEvent(new Event('input')); return [...document.querySelectorAll('#search-results a')].map(a => a.getAttribute('href')); }})()""")
    assert 'core.html#check_video' in find('check_video')[:3]
    assert any(h.startswith('metrics.html') for h in find('frechet distance'))
    assert find('zzzz qqqq') == []
    find('video'); browser.screenshot(shots / 'search.png')
    assert browser.problems() == [] and server.failed == []


def _real_report(out):
    "A report from a real small computation: PSNR of a colour-wheel-like clip under noise, its frames, the clip, a sound."
    import numpy as np, torch
    from vidnb.core import show_frames
    from vidnb.report import Estimate, Report, write_reports
    t = torch.arange(8.)[:, None, None]; y = torch.linspace(0, 1, 32)[:, None]; x = torch.linspace(0, 1, 32)
    v = torch.stack([torch.sin(2 * np.pi * (x + y / 2) + t / 2 + 2.1 * c) for c in range(3)])[None] * 0.9  # (1,3,8,32,32)
    g = torch.Generator().manual_seed(0)
    rows = []
    for sigma in (0.01, 0.03, 0.1):
        noisy = (v + sigma * torch.randn(v.shape, generator=g)).clamp(-1, 1)
        mse = ((noisy - v) ** 2 / 4).mean().item()
        rows.append(dict(sigma=sigma, mse=mse, psnr=10 * np.log10(1 / mse)))
    r = Report('PSNR under noise', out / 'toy', 'cpu', module='tests', seconds=0.1)
    r.add_text('Noise of standard deviation sigma on a smooth clip.')
    r.add_table('PSNR', rows)
    draws = []
    for seed in range(3):                                             # a claim over 3 noise draws: 36.5 dB expected
        n = 0.03 * torch.randn(v.shape, generator=torch.Generator().manual_seed(seed))
        draws.append(10 * np.log10(4 / (n ** 2).mean().item()))
    r.add_claim('PSNR above 30 dB at sigma 0.03', Estimate(draws), 30., unit='dB', setting='3 noise draws')
    r.results = dict(rows=rows)
    r.add_figure(show_frames(v, n=4), 'frames.png', 'frames')
    r.add_video(v, 'clip.mp4', 'clip', fps=4)
    sr = 8000
    r.add_sound(0.3 * torch.sin(2 * np.pi * 440 * torch.arange(sr // 2) / sr)[None, None], 'tone.wav', 'tone', sr)
    return write_reports(dict(toy=r), out, dict(preset='smoke'))


def _open_report(browser, report, shot):
    "Open a report.html in the browser: no errors, no request leaving it, every figure decoded; its state."
    srv = serve(report.parent)
    try:
        browser.open(srv.url + report.name)
        s = browser.js(PAGE_STATE.replace("'main img'", "'img'").replace("'main table'", "'table'"))
        s['missing'] = browser.js("document.querySelectorAll('.missing, .error').length")
        s['figures'] = browser.js("document.querySelectorAll('figure').length")
        assert browser.js("!!document.querySelector('link[rel=icon]')")   # else Chromium asks for /favicon.ico
        assert browser.problems() == [] and srv.failed == []
        assert [u for u in browser.requests() if not (u.startswith(srv.url) or u.startswith('data:'))] == []
        assert s['img_broken'] == [] and s['video_bad'] == 0 and s['audio_bad'] == 0 and s['missing'] == 0, s
        browser.screenshot(shot)
        return s
    finally:
        srv.shutdown(); srv.server_close()


def test_report_in_browser(tmp_path, browser, shots):
    s = _open_report(browser, _real_report(tmp_path / 'rep'), shots / 'report.png')
    assert (s['img'], s['table'], s['video'], s['audio']) == (1, 5, 1, 1), s   # scorecard, settings, summary; the chapter's claims, its table
    first = browser.js("document.querySelector('table caption').textContent")
    assert first.startswith('Scorecard') and '1 reproduced' in first, first            # the scorecard comes first
    c = _open_report(browser, tmp_path / 'rep' / 'toy.html', shots / 'report-toy-page.png')  # the chapter's own page
    assert (c['img'], c['table'], c['video'], c['audio']) == (1, 2, 1, 1), c           # its claims and its table


def test_reproduce_core_report_in_browser(tmp_path, browser, shots):
    "The real `vidnb reproduce core` (about 20 s on 2 CPU cores), its report opened in the browser."
    import sys
    exe = Path(sys.executable).parent / 'vidnb'
    r = subprocess.run([str(exe), 'reproduce', 'core', '--out', str(tmp_path / 'rep')], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg'), timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    s = _open_report(browser, tmp_path / 'rep' / 'report.html', shots / 'report-core.png')
    assert s['figures'] >= 4 and s['img'] + s['video'] + s['audio'] == s['figures'] and s['table'] >= 4, s
    for page in ('data', 'physics', 'latent', 'learner'):                                # one page per chapter module
        c = _open_report(browser, tmp_path / 'rep' / f'{page}.html', shots / f'report-core-{page}.png')
        assert c['missing'] == 0 and c['table'] >= 1, (page, c)


def test_pages_on_a_phone(site, server, browser, shots):
    "At a phone's width (390 px) no page scrolls sideways: the sidebar sits above the page, wide tables and equations scroll in their own box."
    browser.send('Emulation.setDeviceMetricsOverride', width=390, height=844, deviceScaleFactor=1, mobile=True)
    try:
        for nb in PAGES:
            name = docs.page_name(nb)
            browser.open(server.url + name)
            r = browser.js("""(() => { const box = s => (document.querySelector(s) || document.body).getBoundingClientRect();
                return {W: document.documentElement.clientWidth, sw: document.documentElement.scrollWidth,
                        side: box('.sidebar').bottom, main: box('main').top, search: box('#search').right}; })()""")
            assert r['W'] == 390 and r['sw'] <= r['W'], f'{name} scrolls sideways on a phone: {r}'
            assert r['side'] <= r['main'] and r['search'] <= r['W'], (name, r)
            assert browser.problems() == [], (name, browser.problems())
        browser.screenshot(shots / f'phone-{name[:-5]}.png', 'main table')
    finally:
        browser.send('Emulation.clearDeviceMetricsOverride')
