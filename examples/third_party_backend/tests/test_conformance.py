"""Run sega's conformance suite on this backend, as any backend's own test suite should."""

from sega_core.testing import parametrize_with_backend_checks


# List here the checks you know to fail (a check id, a check name or a hook name -> reason),
# e.g. {"rnn_backward": "BPTT not written yet"}; they are reported as xfail.
@parametrize_with_backend_checks("example", expected_failures={})
def test_sega_conformance(check_id, check):
    check()


def test_backend_uses_its_own_kernels():
    """The kernels written here are this backend's; the rest fall back to numpy."""
    from sega_core import get_backend

    sources = get_backend("example").kernels.sources
    own = {k for k, v in sources.items() if v == "example"}
    assert own == {"relu_forward", "relu_backward", "sgd_update"}
    assert all(v == "numpy" for k, v in sources.items() if k not in own)
