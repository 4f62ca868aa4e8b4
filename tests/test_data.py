"""vidnb.data beyond the notebook: downloads, archives and dataset loaders against local fixtures served from
127.0.0.1 (the network is blocked for the whole module), `prepare` with a fake Debian package, worker-independent
clip sampling, and property tests of `clip_starts`."""
import json, gzip, hashlib, http.server, io, os, pickle, socket, sys, tarfile, threading, zipfile, functools
from pathlib import Path
import numpy as np, pytest, torch
from hypothesis import given, settings, strategies as st
import vidnb.data as D

# ---------------------------------------------------------------- no network, local server
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    "Any connection to a host other than 127.0.0.1 fails the test."
    real = socket.socket.connect
    def connect(self, addr, *a):
        if isinstance(addr, tuple) and addr[0] not in ('127.0.0.1', 'localhost', '::1'):
            raise AssertionError(f"test tried to reach the network: {addr}")
        return real(self, addr, *a)
    monkeypatch.setattr(socket.socket, 'connect', connect)

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

class _Truncating(_Quiet):
    "Announces more bytes than it sends, then closes: an interrupted download."
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '100000'); self.end_headers()
        self.wfile.write(b'x' * 1000); self.wfile.flush(); self.close_connection = True

def _serve(directory, handler=_Quiet):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}/'

@pytest.fixture
def server(tmp_path):
    d = tmp_path / 'www'; d.mkdir()
    srv, url = _serve(d)
    yield d, url
    srv.shutdown(); srv.server_close()

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('VIDNB_DATA', str(tmp_path / 'cache'))
    return tmp_path / 'cache'

def _md5(p): return hashlib.md5(Path(p).read_bytes()).hexdigest()
def _sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()

# ---------------------------------------------------------------- download
def test_download_http_checksums_and_reuse(server, tmp_path):
    www, url = server
    (www / 'a.bin').write_bytes(os.urandom(3_000_000))
    dest = tmp_path / 'out' / 'a.bin'
    p = D.download(url + 'a.bin', dest, sha256=_sha(www / 'a.bin'), md5=_md5(www / 'a.bin'), verbose=False)
    assert p.read_bytes() == (www / 'a.bin').read_bytes()
    (www / 'a.bin').unlink()                      # a present file with the right checksum is not fetched again
    assert D.download(url + 'a.bin', dest, sha256=_sha(dest), verbose=False) == dest

def test_download_bad_checksum_keeps_nothing(server, tmp_path):
    www, url = server
    (www / 'a.bin').write_bytes(b'abc' * 1000)
    with pytest.raises(ValueError, match='md5 of .* must be'):
        D.download(url + 'a.bin', tmp_path / 'o' / 'a.bin', md5='0' * 32, verbose=False)
    assert list((tmp_path / 'o').iterdir()) == []

def test_download_wrong_existing_file_is_replaced(server, tmp_path):
    www, url = server
    (www / 'a.bin').write_bytes(b'good')
    (tmp_path / 'a.bin').write_bytes(b'stale')
    D.download(url + 'a.bin', tmp_path / 'a.bin', sha256=_sha(www / 'a.bin'), verbose=False)
    assert (tmp_path / 'a.bin').read_bytes() == b'good'

def test_download_interrupted_keeps_nothing(tmp_path):
    srv, url = _serve(tmp_path, _Truncating)
    try:
        with pytest.raises(OSError, match='could not download'):
            D.download(url + 'big.bin', tmp_path / 'o' / 'big.bin', verbose=False)
    finally: srv.shutdown(); srv.server_close()
    assert list((tmp_path / 'o').iterdir()) == []

def test_download_missing_url_and_file_uri(server, tmp_path):
    www, url = server
    with pytest.raises(OSError, match='404'): D.download(url + 'nope.bin', tmp_path / 'x.bin', verbose=False)
    assert not (tmp_path / 'x.bin').exists()
    (www / 'f.txt').write_text('local')
    assert D.download((www / 'f.txt').as_uri(), tmp_path / 'f.txt', verbose=False).read_text() == 'local'

# ---------------------------------------------------------------- extract
def test_extract_formats(tmp_path):
    src = tmp_path / 'src'; (src / 'd').mkdir(parents=True); (src / 'd' / 'x.txt').write_text('x')
    with zipfile.ZipFile(tmp_path / 'a.zip', 'w') as z: z.write(src / 'd' / 'x.txt', 'd/x.txt')
    with tarfile.open(tmp_path / 'a.tar.gz', 'w:gz') as t: t.add(src / 'd', 'd')
    with tarfile.open(tmp_path / 'a.tar.xz', 'w:xz') as t: t.add(src / 'd', 'd')
    with gzip.open(tmp_path / 'y.txt.gz', 'wb') as f: f.write(b'y')
    for a in ('a.zip', 'a.tar.gz', 'a.tar.xz'):
        out = D.extract(tmp_path / a, tmp_path / a.replace('.', '_'))
        assert (out / 'd' / 'x.txt').read_text() == 'x'
        assert [p.name for p in out.iterdir()] == ['d']               # no temporary folder left
    assert (D.extract(tmp_path / 'y.txt.gz', tmp_path / 'g') / 'y.txt').read_bytes() == b'y'

def test_extract_refuses_escaping_members_and_corrupt_archives(tmp_path):
    with zipfile.ZipFile(tmp_path / 'evil.zip', 'w') as z: z.writestr('../evil.txt', 'x')
    with pytest.raises(ValueError, match='outside its folder'): D.extract(tmp_path / 'evil.zip', tmp_path / 'o')
    assert not (tmp_path / 'evil.txt').exists() and list((tmp_path / 'o').iterdir()) == []
    (tmp_path / 'bad.zip').write_bytes(b'PK not really')
    with pytest.raises(ValueError, match='valid zip'): D.extract(tmp_path / 'bad.zip', tmp_path / 'o')
    (tmp_path / 'bad.tar.gz').write_bytes(b'\x1f\x8b broken')
    with pytest.raises(ValueError, match='valid tar'): D.extract(tmp_path / 'bad.tar.gz', tmp_path / 'o')
    with pytest.raises(ValueError, match='must end with one of'): D.extract(tmp_path / 'x.7zz', tmp_path / 'o')

def test_rar_without_a_tool_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / 'UCF101.rar').write_bytes(b'Rar!\x1a\x07\x00')
    monkeypatch.setattr(D.shutil, 'which', lambda name: None)
    with pytest.raises(ValueError, match='unar'): D.extract(tmp_path / 'UCF101.rar', tmp_path / 'o')

# ---------------------------------------------------------------- dataset fixtures
def _idx(a):
    return b'\0\0\x08' + bytes([a.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in a.shape) + a.astype(np.uint8).tobytes()

def _avi(path, frames=6, h=24, w=32):
    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), 'w', format='avi') as c:
        s = c.add_stream('mpeg4', rate=25); s.width, s.height, s.pix_fmt = w, h, 'yuv420p'
        for t in range(frames):
            a = np.full((h, w, 3), 20 * t + 10, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(a, format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    return path

def _remote(monkeypatch, name, url, f, **kw):
    monkeypatch.setitem(D.REMOTES, name, [D.Remote(url + f.name, md5=_md5(f), **kw)])

def test_mnist_idx(server, tmp_path, monkeypatch):
    www, url = server
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 10, 5)
    rem = []
    for name, a in [('train-images-idx3-ubyte.gz', x), ('train-labels-idx1-ubyte.gz', y)]:
        (www / name).write_bytes(gzip.compress(_idx(a))); rem.append(D.Remote(url + name, md5=_md5(www / name)))
    monkeypatch.setitem(D.REMOTES, 'mnist', rem)
    root = tmp_path / 'mnist'
    with pytest.raises(FileNotFoundError, match='download=True'): D.load_mnist_idx(root=root)
    xs, ys = D.load_mnist_idx('train', root=root, download=True)
    assert xs.shape == (5, 1, 28, 28) and torch.equal(ys, torch.from_numpy(y))
    assert torch.equal(((xs[:, 0] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(x.astype(np.uint8)))

def test_cifar10(server, tmp_path, monkeypatch):
    www, url = server
    rng = np.random.default_rng(0)
    with tarfile.open(www / 'cifar-10-python.tar.gz', 'w:gz') as t:
        for n in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
            b = pickle.dumps({b'data': rng.integers(0, 256, (3, 3072)).astype(np.uint8), b'labels': [1, 2, 3]})
            ti = tarfile.TarInfo(f'cifar-10-batches-py/{n}'); ti.size = len(b); t.addfile(ti, io.BytesIO(b))
    _remote(monkeypatch, 'cifar10', url, www / 'cifar-10-python.tar.gz', unpack=True)
    root = tmp_path / 'c'
    with pytest.raises(FileNotFoundError, match='download=True'): D.load_cifar10(root=root)
    x, y = D.load_cifar10('train', root=root, download=True)
    assert x.shape == (15, 3, 32, 32) and y.tolist() == [1, 2, 3] * 5 and -1 <= x.min() and x.max() <= 1
    assert D.load_cifar10('test', root=root)[0].shape == (3, 3, 32, 32)
    assert not (root / 'cifar-10-python.tar.gz').exists() and (root / '.cifar-10-python.tar.gz.unpacked').exists()

def test_moving_mnist_npy(server, tmp_path, monkeypatch):
    www, url = server
    a = np.random.default_rng(0).integers(0, 256, (20, 4, 64, 64)).astype(np.uint8)
    np.save(www / 'mnist_test_seq.npy', a)
    _remote(monkeypatch, 'moving_mnist', url, www / 'mnist_test_seq.npy')
    with pytest.raises(FileNotFoundError, match='mnist_test_seq.npy not found'): D.load_moving_mnist(root=tmp_path / 'm')
    v = D.load_moving_mnist(n=3, root=tmp_path / 'm', download=True)
    assert v.shape == (3, 1, 20, 64, 64)
    assert torch.equal(((v[1, 0, 5] + 1) * 127.5).round().to(torch.uint8), torch.from_numpy(a[5, 1]))

def test_kth(server, tmp_path, monkeypatch):
    www, url = server
    rem = []
    for act in ('walking', 'boxing'):
        avis = [_avi(tmp_path / 'k' / f'person{p:02d}_{act}_d{d}_uncomp.avi') for p, d in [(1, 1), (2, 3)]]
        with zipfile.ZipFile(www / f'{act}.zip', 'w') as z:
            for a in avis: z.write(a, a.name)
        rem.append(D.Remote(url + f'{act}.zip', md5=_md5(www / f'{act}.zip'), unpack=True, into=act))
    monkeypatch.setitem(D.REMOTES, 'kth', rem)
    root = tmp_path / 'kth'
    with pytest.raises(FileNotFoundError, match='walking.zip'): D.load_kth('walking', root=root)
    recs = D.load_kth('walking', root=root, download=True)
    assert [(r['person'], r['action'], r['scenario']) for r in recs] == [(1, 'walking', 'd1'), (2, 'walking', 'd3')]
    assert not (root / 'boxing').exists()                        # only the asked action was fetched
    v = D.read_frames(recs[0]['path'], size=16)
    assert v.shape == (1, 3, 6, 16, 16)
    assert len(D.load_kth(('walking', 'boxing'), root=root, download=True)) == 4

def test_ucf101_layout_through_a_zip_mirror(server, tmp_path, monkeypatch):
    www, url = server
    a = _avi(tmp_path / 'u' / 'v_ApplyEyeMakeup_g01_c02.avi')
    with zipfile.ZipFile(www / 'UCF101.zip', 'w') as z: z.write(a, 'UCF-101/ApplyEyeMakeup/' + a.name)
    _remote(monkeypatch, 'ucf101', url, www / 'UCF101.zip', unpack=True)
    with pytest.raises(FileNotFoundError, match='download=True'): D.load_ucf101(root=tmp_path / 'ucf')
    recs = D.load_ucf101(root=tmp_path / 'ucf', download=True)
    assert [(r['label'], r['group'], r['clip']) for r in recs] == [('ApplyEyeMakeup', 1, 2)]

def test_dyntex_needs_a_url(server, tmp_path):
    www, url = server
    a = _avi(tmp_path / 'd' / '648ea10.avi')
    with zipfile.ZipFile(www / 'dyntex_part.zip', 'w') as z: z.write(a, 'dyntex/' + a.name)
    with pytest.raises(FileNotFoundError, match='registration'): D.load_dyntex(root=tmp_path / 'dt', download=True)
    recs = D.load_dyntex(root=tmp_path / 'dt', url=url + 'dyntex_part.zip', download=True)
    assert [r['label'] for r in recs] == ['648ea10']

def test_placed_by_hand_needs_no_download(tmp_path, monkeypatch):
    monkeypatch.setattr(D, '_download', lambda *a, **k: pytest.fail('must not download'))
    _avi(tmp_path / 'kth' / 'x' / 'person07_running_d2_uncomp.avi')
    assert D.load_kth('running', root=tmp_path / 'kth')[0]['person'] == 7
    with pytest.raises(ValueError, match='actions must be among'): D.load_kth('dancing', root=tmp_path / 'kth')

def test_default_root_is_the_cache(cache):
    with pytest.raises(FileNotFoundError, match=str(cache / 'datasets' / 'cifar10')): D.load_cifar10()

# ---------------------------------------------------------------- prepare with a fake Debian package
def _ar_member(name, data):
    h = f'{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}'.encode() + b'`\n'
    return h + data + (b'\n' if len(data) % 2 else b'')

def _fake_deb(path, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:xz') as t:
        for name, data in files.items():
            ti = tarfile.TarInfo('./' + name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    path.write_bytes(b'!<arch>\n' + _ar_member('debian-binary', b'2.0\n') + _ar_member('control.tar.xz', b'')
                     + _ar_member('data.tar.xz', buf.getvalue()))
    return path

@pytest.mark.parametrize('dpkg', [True, False])
def test_prepare_extracts_only_registered_paths(tmp_path, cache, monkeypatch, dpkg):
    import shutil
    if dpkg and not shutil.which('dpkg-deb'): pytest.skip('dpkg-deb not installed')
    if not dpkg:
        real = shutil.which
        monkeypatch.setattr(D.shutil, 'which', lambda n: None if n == 'dpkg-deb' else real(n))
    _fake_deb(tmp_path / 'vidnb-fake_1.0_all.deb', {'usr/share/fake/clip.avi': b'AVI' * 10,
                                                    'usr/share/fake/sounds/a.wav': b'RIFF', 'usr/share/doc/big.html': b'x' * 5000})
    for s in [D.Source('_fake_clip', 'deb', 'vidnb-fake', 'usr/share/fake/clip.avi'),
              D.Source('_fake_sounds', 'deb', 'vidnb-fake', 'usr/share/fake/sounds')]:
        monkeypatch.setitem(D.SOURCES, s.name, s)
    with pytest.raises(FileNotFoundError, match='vidnb data prepare'): D.locate('_fake_clip')
    st = D.prepare(['_fake_clip', '_fake_sounds'], verbose=False, deb_dir=tmp_path)
    assert all(v['present'] and v['action'] == 'extracted' for v in st.values()), st
    assert D.locate('_fake_clip').read_bytes() == b'AVI' * 10
    assert (D.locate('_fake_sounds') / 'a.wav').read_bytes() == b'RIFF'
    assert not (cache / 'debian' / 'vidnb-fake' / 'usr' / 'share' / 'doc').exists()   # only what is registered
    assert D.prepare(['_fake_clip'], verbose=False)['_fake_clip']['action'] == 'present'
    assert (tmp_path / 'vidnb-fake_1.0_all.deb').exists()         # a .deb we were given is not deleted

def test_prepare_reports_failures(cache, monkeypatch):
    calls = []
    class R: returncode, stderr, stdout = 1, 'ERROR: no network', ''
    monkeypatch.setattr(D.subprocess, 'run', lambda cmd, **k: calls.append(cmd) or R())
    monkeypatch.setitem(D.SOURCES, '_fake_pypi', D.Source('_fake_pypi', 'pypi', 'vidnb-nonexistent==1.0', 'x.bin', 'vidnb_nonexistent_mod'))
    monkeypatch.setitem(D.SOURCES, '_fake_deb', D.Source('_fake_deb', 'deb', 'vidnb-nonexistent', 'usr/x.bin'))
    st = D.prepare(['_fake_pypi', '_fake_deb'], verbose=False)
    assert calls[0][:3] == [sys.executable, '-m', 'pip'] and '--no-deps' in calls[0] and calls[0][-1] == 'vidnb-nonexistent==1.0'
    assert calls[1][:2] == ['apt-get', 'download'] or not D.shutil.which('apt-get')
    assert not st['_fake_pypi']['present'] and st['_fake_pypi']['action'].startswith('failed') and 'no network' in st['_fake_pypi']['action']
    assert st['_fake_deb']['action'].startswith('failed')
    assert "pip install --no-deps 'vidnb-nonexistent==1.0'" in st['_fake_pypi']['get']

def test_prepare_shows_progress_and_whole_failure_reasons(cache, monkeypatch, capsys):
    why = 'ERROR: could not find a version that satisfies the requirement vidnb-nonexistent==1.0 (from versions: none)'
    class R: returncode, stderr, stdout = 1, why, ''
    monkeypatch.setattr(D.subprocess, 'run', lambda cmd, **k: R())
    monkeypatch.setitem(D.SOURCES, '_fake_pypi', D.Source('_fake_pypi', 'pypi', 'vidnb-nonexistent==1.0', 'x.bin', 'vidnb_nonexistent_mod'))
    D.prepare(['_fake_pypi'])
    out = capsys.readouterr()
    assert out.out == ''                                                          # stdout stays machine-readable
    assert '[1/1] pip install vidnb-nonexistent==1.0 (for _fake_pypi) ...' in out.err
    assert why in out.err                                                         # the whole reason, not 60 characters

def test_data_status_only(capsys):
    from vidnb.cli import main
    assert main(['data', 'status', '--only', 'vtest']) == 0
    assert list(json.loads(capsys.readouterr().out)) == ['vtest']

def test_status_lists_every_source():
    st = D.status()
    assert set(st) == set(D.SOURCES) and {'present', 'path', 'group', 'get'} <= set(st['vtest'])
    assert {v['group'] for v in st.values()} == {'data', 'weights'}

# ---------------------------------------------------------------- sampling and datasets
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=6), st.integers(1, 40), st.integers(1, 4),
       st.sampled_from(['random', 'first', 'all']), st.one_of(st.none(), st.integers(1, 50)), st.integers(0, 3))
def test_clip_starts_properties(lengths, clip_len, step, mode, stride, seed):
    span = (clip_len - 1) * step + 1
    out = D.clip_starts(lengths, clip_len, mode, stride, step, seed, skip_short=True)
    assert all(0 <= s and s + span <= lengths[i] for i, s in out)
    long_enough = [i for i, n in enumerate(lengths) if n >= span]
    if mode != 'all': assert [i for i, _ in out] == long_enough
    else: assert len(out) == sum(len(range(0, lengths[i] - span + 1, stride or span)) for i in long_enough)
    assert out == D.clip_starts(lengths, clip_len, mode, stride, step, seed, skip_short=True)
    if len(long_enough) < len(lengths):
        with pytest.raises(ValueError, match='clip_len must fit every video'): D.clip_starts(lengths, clip_len, mode, stride, step, seed)

def test_random_offsets_do_not_depend_on_workers():
    vids = [torch.rand(1, 1, n, 8, 8) * 2 - 1 for n in (20, 30, 40, 50)]
    batches = lambda w: torch.cat(list(D.video_loader(vids, clip_len=5, batch_size=2, random_offset=True, num_workers=w)))
    assert torch.equal(batches(0), batches(2))

def test_moving_mnist_chunking_and_sizes():
    assert torch.equal(D.moving_mnist(7, chunk=3), D.moving_mnist(7))
    v = D.moving_mnist(2, frames=5, size=40, digits=3)
    assert v.shape == (2, 1, 5, 40, 40) and v.min() == -1 and v.max() <= 1
    with pytest.raises(ValueError, match='size must be >= 28'): D.moving_mnist(1, size=20)

def test_read_frames_errors(tmp_path):
    p = tmp_path / 'bad.avi'; p.write_bytes(b'not a video' * 100)
    with pytest.raises(ValueError, match='bad.avi'): D.read_frames(p)
    with pytest.raises(ValueError, match='not found'): D.read_frames(tmp_path / 'none.avi')
    good = _avi(tmp_path / 'g.avi', frames=6)
    with pytest.raises(ValueError, match='no decodable frames'): D.read_frames(good, start=10)
    v = D.read_frames(good, step=2, gray=True)
    assert v.shape == (1, 1, 3, 24, 32)
    test = ((v[0, 0, :, 5, 5] + 1) * 127.5).round()
    assert torch.allclose(test, torch.tensor([10., 50., 90.]), atol=3)

def test_sound_window_and_errors():
    s = D.sound('splash', sr=8000)
    assert s.shape[:2] == (1, 1) and abs(s.shape[-1] / 8000 - 0.415) < 2e-3
    with pytest.raises(ValueError, match='offset must be <'): D.sound('splash', offset=5)

# ---------------------------------------------------------------- the chapter contract
def test_chapter_contract_and_presets():
    from vidnb.report import check_chapter
    check_chapter(D)
    assert D.PRESETS['smoke'].moving == 10 and D.PRESETS['paper'].moving == 10_000 and D.PRESETS['paper'].mnist64
    with pytest.raises(ValueError, match="preset must be one of 'smoke', 'paper', 'main', got 'huge'"): D.reproduce('huge')

def test_report_parts_at_a_tiny_preset(tmp_path):
    from vidnb.report import Report, pick_preset, results_json
    p = pick_preset(D.PRESETS, 'smoke', rotating=2, moving=2, digit_frames=10, clips=('carphone',), patches=4)
    seqs, secs = D._make_sequences(p)
    assert list(seqs) == ['Rotating MNIST', 'Moving MNIST (generated from MNIST)', 'Color Wheel',
                          'MNIST digits 0-4 (DVAE)', 'carphone (real clip)', 'natural patches']
    r = Report('data', tmp_path / 'data', 'smoke')
    D._add_sequences(r, seqs, secs)
    D._add_sources(r)
    D._add_pictures(r, seqs, p)
    assert [t.caption for t in r.tables] == ['Sequences (smoke preset)', 'Offline sources']
    assert [m.path.name for m in r.media] == ['synthetic.png', 'clips.png', 'moving_mnist.mp4']
    assert r.results['sequences']['Moving MNIST (generated from MNIST)']['shape'] == '(2, 1, 20, 64, 64)'
    j = results_json({'data': r}, {}, tmp_path)['chapters']['data']       # validated when jsonschema is installed
    assert j['media'][0]['path'] == 'data/synthetic.png' and j['results']['sources_total'] == len(D.SOURCES)
