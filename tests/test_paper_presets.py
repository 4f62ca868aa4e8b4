"""Every paper chapter's `paper` preset runs one training step on the CPU (issue 18), with the paper's networks, sizes
and sample counts, so the path a GPU user takes cannot rot although no GPU is here. What is cut to fit, and only that:
the batch (to 1), the number of steps (to 1), and where named below the inner loop of one step."""
from dataclasses import replace
import pytest
import torch

torch.set_num_threads(2)


def _finite(m): return all(torch.isfinite(p).all() for p in m.parameters())


@pytest.mark.parametrize('algorithm', ['code', 'paper'])
def test_gmlr_paper_step(algorithm):
    import vidnb.gmlr as g
    p = g.PRESETS['paper']
    assert p.steps == 2000 and p.steps_for('color_wheel') == 2000
    for seq, op, rl, rj, _ in (g.TABLE2[4], g.TABLE2[6]):                 # rotating MNIST and colour wheel, 80 % missing
        x = g.sequence(seq)                                               # the paper's full length (32 and 64 frames)
        cfg = g.column_config('joint + low rank', rl, rj, steps=1, algorithm=algorithm)
        r = g.reconstruct(x, op, cfg)
        assert r['steps'] == 1 and r['x_hat'].shape == x.shape and _finite(r['model'])


def test_dvae_paper_step():
    import vidnb.dvae as d
    p = d.PRESETS['paper']
    assert (p.width, p.n_mc, p.bs) == (128, 128, 1) and p.mask_size is None
    one = replace(p, texture_budget=d.Budget(steps=1), dvae_budget=d.Budget(steps=1))
    video = d.texture_video(128, 'foliage')[:, :, :4]                     # the paper's 128x128 texture network
    learn = d.train_texture(video, one, progress=False)
    assert learn.train_iter == 1 and learn.model.cfg.size == 128 and learn.model.cfg.width == 128 and _finite(learn.model)
    v = d.texture_video(64, 'foliage')[:, :, :4]                          # masked training at table 1's 64x64
    learn = d.train_texture(v, one, mask=d.make_mask('salt_pepper:0.5', v), progress=False)
    assert learn.train_iter == 1 and learn.model.cfg.mask_channels == 3 and _finite(learn.model)
    # (the rectangle mask differs only in its one mask channel: tests/test_dvae.py trains it end to end)


def test_stgconvnet_paper_step():
    import vidnb.stgconvnet as stg
    p = stg.PRESETS['paper']
    for cfg in (p.st, p.sound):
        cfg = replace(cfg, iters=1, langevin_steps=2)                    # one iteration; 2 of its L Langevin steps
        x = torch.rand(1, cfg.channels, *cfg.shape) * 2 - 1
        learn = stg.train(x, cfg, progress=False)
        assert learn.train_iter == 1 and _finite(learn.model)


def test_styleganv_paper_step():
    import vidnb.styleganv as sgv
    p = sgv.PRESETS['paper']
    assert p.model.size == 256 and p.model.dt_embed == 256 and p.train.ema_kimg == 20
    videos = torch.rand(1, 3, 33, 256, 256) * 2 - 1                    # batch 1: the networks are the paper's
    learn = sgv.train_gan(videos, p.model, replace(p.train, steps=1, bs=1), progress=False)
    assert learn.train_iter == 1 and hasattr(learn, 'last_r1') and _finite(learn.model)      # the step had its R1
