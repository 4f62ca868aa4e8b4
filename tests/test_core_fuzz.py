"Hypothesis fuzzing of the core validators: any shape, dtype, or non-finite value gets a ValueError naming the argument."
import math
import numpy as np, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from vidnb.core import check_video, check_sound, fold_time, unfold_time, video_from_uint8, video_to_uint8
import pytest

dims = st.lists(st.integers(1, 4), min_size=0, max_size=7)
dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool])
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@fuzz
@given(shape=dims, dtype=dtypes, scale=st.floats(0, 3), name=st.sampled_from(['video', 'target', 'x_hat']))
def test_check_video_accepts_exactly_valid_videos(shape, dtype, scale, name):
    x = (torch.rand(shape, dtype=torch.float64) * 2 - 1) * scale
    x = x.to(dtype) if dtype.is_floating_point else x.round().to(dtype)
    valid = len(shape) == 5 and dtype.is_floating_point and (x.abs().max().item() <= 1 + 1e-3 if x.numel() else False)
    if valid: assert check_video(x, name) is x
    else:
        with pytest.raises(ValueError, match=name): check_video(x, name)

@fuzz
@given(shape=st.tuples(*[st.integers(1, 3)] * 5), n_bad=st.integers(1, 3), bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_values_are_named(shape, n_bad, bad):
    x = torch.zeros(shape)
    x.view(-1)[torch.randperm(x.numel())[:n_bad]] = bad
    with pytest.raises(ValueError, match='x_hat must be finite'): check_video(x, 'x_hat')

@fuzz
@given(shape=st.tuples(*[st.integers(1, 4)] * 5))
def test_fold_unfold_and_uint8_round_trip(shape):
    x = torch.rand(shape) * 2 - 1
    assert torch.equal(unfold_time(fold_time(x), shape[2]), x)
    u = video_to_uint8(x)
    assert u.shape == (shape[0], shape[2], shape[3], shape[4], shape[1]) and u.dtype == np.uint8
    assert torch.equal(video_from_uint8(u[0]), video_from_uint8(video_to_uint8(video_from_uint8(u[0]))[0]))

@fuzz
@given(shape=dims)
def test_check_sound_needs_three_dims(shape):
    x = torch.zeros(shape)
    if len(shape) == 3: assert check_sound(x) is x
    else:
        with pytest.raises(ValueError, match='sound must be a sound of shape'): check_sound(x)
