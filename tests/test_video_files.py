"Corrupt, truncated and missing video files: a clear error naming the file, and nothing written."
import torch, pytest
from pathlib import Path
from vidnb.core import read_video, write_video, video_info

def _clip(t=10, h=32, w=32):
    tt = torch.arange(t).view(1, 1, t, 1, 1); xx = torch.arange(w).view(1, 1, 1, 1, w)
    return (torch.sin((xx + 3 * tt) / 5.) * .8).expand(1, 3, t, h, w).contiguous()

@pytest.fixture
def good(tmp_path): return write_video(_clip(), tmp_path / 'good.mp4', fps=5)

def test_corrupt_file(tmp_path):
    p = tmp_path / 'corrupt.mp4'; p.write_bytes(b'not a video' * 100)
    with pytest.raises(ValueError, match='corrupt.mp4'): read_video(p)
    with pytest.raises(ValueError, match='corrupt.mp4'): video_info(p)

@pytest.mark.parametrize('keep', [0.1, 0.5, 0.9])
def test_truncated_file(good, tmp_path, keep):
    data = good.read_bytes(); p = tmp_path / 'cut.mp4'; p.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match='cut.mp4'): read_video(p)

def test_garbage_in_the_middle_of_a_gif(tmp_path):
    p = write_video(_clip(), tmp_path / 'a.gif', fps=5); b = bytearray(p.read_bytes())
    b[len(b) // 3: len(b) // 3 + 200] = b'\xff' * 200; p.write_bytes(bytes(b))
    try: v = read_video(p)
    except ValueError as e: assert 'a.gif' in str(e)
    else: assert torch.isfinite(v).all() and v.shape[2] >= 1  # ffmpeg may conceal the damage; never NaN

def test_failed_write_leaves_existing_file_and_no_temp(good, tmp_path):
    before = good.read_bytes()
    with pytest.raises(ValueError, match='video must be'): write_video(_clip() * 5, good)
    with pytest.raises(ValueError, match='video must be'): write_video(_clip()[0], good)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['good.mp4']

def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(ValueError, match='not found'): read_video(tmp_path / 'nope.mp4')
    with pytest.raises(ValueError, match=r'a \.mp4 or \.gif'): write_video(_clip(), tmp_path / 'a.avi')
    assert list(tmp_path.iterdir()) == []

def _numbered_folder(d, sizes):
    "Frames `frame1.png, frame2.png, ...` with value 20*i, of the given (H, W) or (H, W, 3) shapes."
    from PIL import Image
    import numpy as np
    d.mkdir()
    for i, s in enumerate(sizes, 1): Image.fromarray(np.full(s, 20 * i, np.uint8)).save(d / f'frame{i}.png')
    return d

def test_image_folder_in_numbered_order(tmp_path):
    d = _numbered_folder(tmp_path / 'frames', [(8, 8, 3)] * 12)
    v = read_video(d)                                              # a string sort would read 1, 10, 11, 12, 2, ...
    vals = ((v[0, 0, :, 0, 0] + 1) * 127.5).round().tolist()
    assert vals == [20. * i for i in range(1, 13)]

def test_image_folder_of_mixed_sizes_and_modes(tmp_path):
    d = _numbered_folder(tmp_path / 'frames', [(10, 12, 3), (5, 6), (20, 24, 3), (10, 12)])
    v = read_video(d, size=8)
    assert v.shape == (1, 3, 4, 8, 8)
    assert torch.allclose(v[0, :, :, 4, 4], ((torch.tensor([20., 40, 60, 80]) / 127.5) - 1).expand(3, 4), atol=1e-2)

def test_file_that_is_not_an_image(tmp_path):
    d = _numbered_folder(tmp_path / 'frames', [(8, 8, 3)] * 2)
    (d / 'frame3.png').write_text('a text file with an image suffix')
    with pytest.raises(ValueError, match='frame3.png, which is not a readable image'): read_video(d)

def test_truncated_file_says_what_it_declares(tmp_path):
    "A cut mp4 that still decodes some frames: asking for all of them names the count the file declares."
    import warnings
    import av, numpy as np
    p = tmp_path / 'long.mp4'                                          # 'faststart': the index first, as streamed mp4s
    with av.open(str(p), mode='w', options={'movflags': 'faststart'}) as c:
        s = c.add_stream('libx264', rate=10); s.width = s.height = 64; s.pix_fmt = 'yuv420p'
        for f in ((_clip(t=40, h=64, w=64)[0].permute(1, 2, 3, 0) + 1) * 127.5).round().byte().numpy():
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format='rgb24')))
        c.mux(s.encode())
    declared = video_info(p)['frames']
    assert declared == 40
    data = p.read_bytes(); cut = tmp_path / 'cut.mp4'
    for keep in (0.5, 0.6, 0.7, 0.8, 0.9):
        cut.write_bytes(data[:int(len(data) * keep)])
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always')
                v = read_video(cut)
        except ValueError: continue                                   # this cut decodes nothing: a clear error
        if v.shape[2] < declared: break
    else: pytest.skip('no cut of this file decoded part of its frames')
    assert any(f'declares {declared} frames: it may be truncated' in str(x.message) for x in w)
    with pytest.raises(ValueError, match=f'declares {declared} frames: it may be truncated'): read_video(cut, frames=declared)
    assert read_video(cut, at_most=3).shape[2] == 3
