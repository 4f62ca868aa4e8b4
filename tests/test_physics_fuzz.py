"Hypothesis fuzzing of the measurement operators: random shapes and dtypes work or fail with a clear ValueError, never a silent NaN."
import math, pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from vidnb.physics import (Identity, GaussianCS, MissingPixels, RectangularMask, SaltPepperMask, GaussianNoise,
                           MaskOperator, measure, operator_errors)

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ['Identity', 'GaussianCS', 'MissingPixels', 'RectangularMask', 'SaltPepperMask']
FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]

@st.composite
def op_and_shape(draw):
    kind = draw(st.sampled_from(KINDS))
    C, T, H, W = (draw(st.integers(1, n)) for n in (3, 4, 9, 9))
    frac, seed = draw(st.floats(0, 0.99)), draw(st.integers(0, 2**31))
    if kind == 'Identity': op = Identity()
    elif kind == 'GaussianCS': op = GaussianCS(draw(st.integers(1, C * H * W)), T, (H, W), C, seed=seed)
    elif kind == 'MissingPixels': op = MissingPixels(frac, frames=T, size=(H, W), seed=seed)
    elif kind == 'RectangularMask': op = RectangularMask(frac, T, (H, W), seed=seed)
    else: op = SaltPepperMask(frac, T, (H, W), C, seed=seed)
    return op, (draw(st.integers(1, 3)), C, T, H, W)

@FUZZ
@given(op_and_shape(), st.sampled_from(FLOATS))
def test_random_shapes_and_dtypes(os_, dtype):
    op, shape = os_
    x = torch.rand(shape).mul(2).sub(1).to(dtype)
    y = op(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    for f in (op.A_adjoint, op.A_dagger):
        z = f(y)
        assert z.shape == x.shape and z.dtype == dtype and torch.isfinite(z).all()
    if dtype == torch.float64:
        assert max(operator_errors(op, x).values()) < 1e-8

@FUZZ
@given(op_and_shape(), st.sampled_from([float('nan'), float('inf'), -float('inf')]), st.data())
def test_non_finite_inputs_raise(os_, bad, data):
    op, shape = os_
    x = torch.rand(shape) * 2 - 1
    i = data.draw(st.integers(0, x.numel() - 1))
    x.view(-1)[i] = bad
    with pytest.raises(ValueError, match='x must be finite'): op(x)
    y = op(torch.rand(shape) * 2 - 1).contiguous()
    y.view(-1)[data.draw(st.integers(0, y.numel() - 1))] = bad
    for f in (op.A_adjoint, op.A_dagger):
        with pytest.raises(ValueError, match='y must be finite'): f(y)
    with pytest.raises(ValueError, match='y must be finite'): GaussianNoise(0.1)(y)

@FUZZ
@given(op_and_shape(), st.data())
def test_wrong_shapes_raise(os_, data):
    op, shape = os_
    if isinstance(op, Identity): shape = shape[1:]               # Identity takes any video: drop the batch dim
    else:
        d = data.draw(st.integers(1, 4))
        if isinstance(op, MaskOperator) and op.mask.shape[0] == 1 and d == 1: d = 2   # masks shared by channels accept any C
        shape = tuple(s + 1 if j == d else s for j, s in enumerate(shape))
    with pytest.raises(ValueError, match=r'^x must be'): op(torch.zeros(shape))

@FUZZ
@given(op_and_shape(), st.sampled_from([torch.uint8, torch.int32, torch.int64, torch.bool]))
def test_integer_inputs_raise(os_, dtype):
    op, shape = os_
    with pytest.raises(ValueError, match='floating point'): op(torch.zeros(shape, dtype=dtype))

@FUZZ
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not 0 <= f < 1),
                 st.sampled_from([None, 'half', [0.5], 1])))
def test_bad_fractions_raise(f):
    for make in (lambda: MissingPixels(f, frames=2, size=4), lambda: RectangularMask(f, 2, 4), lambda: SaltPepperMask(f, 2, 4)):
        with pytest.raises(ValueError, match='fraction|exactly one'): make()

@FUZZ
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 50))
def test_gaussian_cs_m_bounds(C, s, extra):
    n = C * s * s
    with pytest.raises(ValueError, match=f'm must be at most n = C\\*H\\*W = {n}'): GaussianCS(n + extra, 2, s, C)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='m must be a positive int'): GaussianCS(bad, 2, s, C)

@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not (f >= 0 and math.isfinite(f))))
def test_bad_sigma_raises(sigma):
    with pytest.raises(ValueError, match='sigma must be'): GaussianNoise(sigma)

@FUZZ
@given(op_and_shape(), st.floats(0, 2))
def test_measure_is_finite(os_, sigma):
    op, shape = os_
    y = measure(op, GaussianNoise(sigma, seed=1), torch.rand(shape) * 2 - 1)
    assert torch.isfinite(y).all()
