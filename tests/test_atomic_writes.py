"Atomic writes killed outright (SIGKILL) leave a temporary file; the next write to the path removes it."
import os, signal, subprocess, sys, textwrap, time
from vidnb.core import atomic_path

KILLED_WRITE = textwrap.dedent('''
    import os, signal, sys
    from vidnb.core import atomic_path
    with atomic_path(sys.argv[1]) as t:
        t.write_bytes(b'x' * 1_000_000)
        os.kill(os.getpid(), signal.SIGKILL)                 # no finally, no cleanup: as a lost machine
''')

def _temps(d): return sorted(p.name for p in d.iterdir() if p.name.startswith('.'))

def test_the_next_write_clears_what_killed_writes_left(tmp_path):
    target = tmp_path / 'checkpoint.pt'
    for _ in range(3):
        r = subprocess.run([sys.executable, '-c', KILLED_WRITE, str(target)])
        assert r.returncode == -signal.SIGKILL
    left = _temps(tmp_path)
    assert len(left) == 3 and all(n.startswith('.checkpoint.') and n.endswith('.pt') for n in left)
    time.sleep(0.05)
    other = tmp_path / '.checkpoint.notmine.txt'; other.write_text('a different pattern')   # not this path's
    with atomic_path(target) as t: t.write_bytes(b'good')
    assert target.read_bytes() == b'good'
    assert _temps(tmp_path) == ['.checkpoint.notmine.txt']
