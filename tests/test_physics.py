"pytest twin of the physics chapter's parametrised operator test: adjointness and the Moore-Penrose conditions."
import pytest, torch
from vidnb.physics import operator_zoo, operator_errors, MaskOperator, GaussianCS, MissingPixels

C, T, SIZE = 3, 4, (8, 12)
NAMES = list(operator_zoo(C, T, SIZE))

@pytest.mark.parametrize('dtype,tol', [(torch.float64, 1e-10), (torch.float32, 1e-4)])
@pytest.mark.parametrize('name', NAMES)
def test_adjoint_and_pseudo_inverse(name, dtype, tol):
    op = operator_zoo(C, T, SIZE)[name].to(dtype)
    x = torch.randn(2, C, T, *SIZE, dtype=dtype)
    errs = operator_errors(op, x)
    assert max(errs.values()) < tol, errs
    if isinstance(op, MaskOperator):  # A+ y for masks is the masked y
        y = op(x)
        torch.testing.assert_close(op.A_dagger(y), y * op.mask, rtol=0, atol=0)

@pytest.mark.parametrize('name', NAMES)
def test_state_dict_round_trip(name):
    op = operator_zoo(C, T, SIZE, seed=1)[name]
    other = operator_zoo(C, T, SIZE, seed=2)[name]
    other.load_state_dict(op.state_dict())
    x = torch.randn(1, C, T, *SIZE)
    torch.testing.assert_close(other(x), op(x), rtol=0, atol=0)

def test_seeded_and_independent_of_global_rng():
    torch.manual_seed(0); a = GaussianCS(10, 2, 4, seed=3).matrix
    torch.manual_seed(1); b = GaussianCS(10, 2, 4, seed=3).matrix
    assert torch.equal(a, b)
    torch.manual_seed(0); m1 = MissingPixels(0.5, frames=2, size=4, seed=3).mask
    torch.manual_seed(5); m2 = MissingPixels(0.5, frames=2, size=4, seed=3).mask
    assert torch.equal(m1, m2)

def test_pinv_cache_follows_load_state_dict():
    op, other = GaussianCS(20, 2, 6, seed=0), GaussianCS(20, 2, 6, seed=1)
    y = torch.randn(1, 2, 20)
    op.A_dagger(y)                                   # fills the cache
    op.load_state_dict(other.state_dict())           # in-place copy: the cache must be invalidated
    torch.testing.assert_close(op.A_dagger(y), other.A_dagger(y))
