"""Weight and bias initialisation by name: the empirical mean, spread and range of each scheme on a
large layer, the aliases, the values of the names used before (same seed, same weights), and
models saved with the old names."""
import json
import math

import numpy as np
import pytest

import fastbp as fb
from fastbp.nn.initializers import WEIGHT_INIT_ALIASES, WEIGHT_INITS, weight_init_scheme

FAN_IN, FAN_OUT = 600, 400           # 240 000 weights: the mean and std are within ~0.3% / 0.2%
N = FAN_IN * FAN_OUT

# scheme -> (distribution, expected standard deviation, uniform bound or None); torch.nn.init
SCHEMES = {
    "xavier_uniform": ("uniform", math.sqrt(2.0 / (FAN_IN + FAN_OUT)),
                       math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
    "xavier_normal": ("normal", math.sqrt(2.0 / (FAN_IN + FAN_OUT)), None),
    "he_uniform": ("uniform", math.sqrt(2.0 / FAN_IN), math.sqrt(6.0 / FAN_IN)),
    "he_normal": ("normal", math.sqrt(2.0 / FAN_IN), None),
    "lecun_normal": ("normal", math.sqrt(1.0 / FAN_IN), None),
}


def weights(init, seed=0, **kwargs):
    layer = fb.Dense(FAN_IN, FAN_OUT, init=init, **kwargs)
    net = fb.Sequential(layer, dtype="float64", seed=seed)
    return layer.params["weight"], layer.params.get("bias"), net


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_weight_statistics(scheme):
    kind, std, bound = SCHEMES[scheme]
    W, b, _ = weights(scheme)
    assert W.shape == (FAN_OUT, FAN_IN)
    assert abs(W.mean()) < 5 * std / math.sqrt(N)
    assert W.std() == pytest.approx(std, rel=0.01)
    inside_one_std = np.mean(np.abs(W) < std)
    if kind == "uniform":
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.999 * bound
        assert inside_one_std == pytest.approx(1 / math.sqrt(3), abs=0.01)        # 0.577
        counts = np.histogram(W, bins=8, range=(-bound, bound))[0] / N
        np.testing.assert_allclose(counts, 1 / 8, atol=0.005)
    else:
        assert inside_one_std == pytest.approx(0.6827, abs=0.01)
        assert np.abs(W).max() > 4 * std                                          # tails
    assert not b.any()


def test_pytorch_torch_init_agrees_on_the_spread():
    """torch.nn.init draws from the same distributions (gain 1 xavier, sqrt(2) he)."""
    torch = pytest.importorskip("torch")
    init = torch.nn.init
    t = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)
    torch.manual_seed(0)
    torch_draws = {
        "xavier_uniform": init.xavier_uniform_(t.clone()),
        "xavier_normal": init.xavier_normal_(t.clone()),
        "he_uniform": init.kaiming_uniform_(t.clone(), nonlinearity="relu"),
        "he_normal": init.kaiming_normal_(t.clone(), nonlinearity="relu"),
    }
    for scheme, drawn in torch_draws.items():
        W, _, _ = weights(scheme)
        assert W.std() == pytest.approx(drawn.std().item(), rel=0.02), scheme
        assert np.abs(W).max() == pytest.approx(drawn.abs().max().item(), rel=0.1), scheme


def test_zeros():
    W, b, _ = weights("zeros")
    assert not W.any() and not b.any()


@pytest.mark.parametrize("alias,scheme", sorted(WEIGHT_INIT_ALIASES.items()))
def test_aliases_draw_the_same_weights(alias, scheme):
    assert weight_init_scheme(alias) == scheme
    np.testing.assert_array_equal(weights(alias, seed=3)[0], weights(scheme, seed=3)[0])


def test_required_aliases():
    assert {name: weight_init_scheme(name) for name in (
        "xavier", "glorot", "glorot_uniform", "glorot_normal", "he", "kaiming", "lecun")} == {
        "xavier": "xavier_uniform", "glorot": "xavier_uniform",
        "glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal",
        "he": "he_normal", "kaiming": "he_normal", "lecun": "lecun_normal"}
    assert set(WEIGHT_INITS) == {*SCHEMES, "zeros"}


def test_old_names_keep_their_values():
    """"he", "xavier", "lecun" draw what they drew before (a seed still gives the same net)."""
    shapes = [(5, 8), (8, 3)]
    for name in ("he", "xavier", "lecun"):
        net = fb.Sequential(fb.Dense(5, 8, init=name), fb.Tanh(), fb.Dense(8, 3, init=name),
                            dtype="float64", seed=11)
        rng = np.random.default_rng(11)
        for (fan_in, fan_out), dense in zip(shapes, net.layers[::2], strict=True):
            if name == "he":
                expected = rng.normal(0.0, math.sqrt(2.0 / fan_in), (fan_out, fan_in))
            elif name == "xavier":
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                expected = rng.uniform(-bound, bound, (fan_out, fan_in))
            else:
                expected = rng.normal(0.0, math.sqrt(1.0 / fan_in), (fan_out, fan_in))
            np.testing.assert_array_equal(dense.params["weight"], expected)


def test_init_keeps_the_name_given():
    layer = fb.Dense(3, 4, init="kaiming")
    assert layer.init == "kaiming" and layer.config()["init"] == "kaiming"
    assert fb.Dense(3, 4).init == "xavier" and fb.Dense(3, 4).bias_init == "zeros"


# ------------------------------------------------------------------------------------ bias
def test_uniform_bias_init():
    W, b, _ = weights("he_normal", bias_init="uniform")
    bound = 1.0 / math.sqrt(FAN_IN)
    assert b.shape == (FAN_OUT,)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert b.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    # the bias is drawn after the weight: the weight is the one of the default bias_init
    np.testing.assert_array_equal(W, weights("he_normal")[0])


def test_bias_init_errors():
    with pytest.raises(ValueError, match=r"bias_init: expected one of \['uniform', 'zeros'\], "
                                         r"got 'ones'"):
        fb.Dense(3, 4, bias_init="ones")
    with pytest.raises(ValueError, match="bias_init: a layer with bias=False has no bias"):
        fb.Dense(3, 4, bias=False, bias_init="uniform")
    assert fb.Dense(3, 4, bias=False).parameter_shapes() == [("weight", (4, 3))]


def test_unknown_init_lists_every_name():
    with pytest.raises(ValueError, match="init: expected one of") as info:
        fb.Dense(3, 4, init="orthogonal")
    for name in (*WEIGHT_INITS, *WEIGHT_INIT_ALIASES):
        assert f"'{name}'" in str(info.value)
    with pytest.raises(ValueError, match="init"):
        fb.Dense(3, 4, init=None)


# ---------------------------------------------------------------------------------- mlp
@pytest.mark.parametrize("activation,init", [
    ("relu", "he"), ("leaky_relu", "he"), ("elu", "he"), ("gelu", "he"), ("softplus", "he"),
    ("tanh", "xavier"), ("sigmoid", "xavier"), ("identity", "xavier")])
def test_mlp_default_init(activation, init):
    net = fb.mlp([4, 6, 2], activation=activation)
    assert [d.init for d in net.layers[::2]] == [init, init]


def test_mlp_accepts_every_name():
    net = fb.mlp([FAN_IN, FAN_OUT, 2], init="he_uniform", dtype="float64")
    W = net.layers[0].params["weight"]
    assert np.abs(W).max() <= math.sqrt(6.0 / FAN_IN)
    assert W.std() == pytest.approx(math.sqrt(2.0 / FAN_IN), rel=0.01)


# ---------------------------------------------------------------------------- save and load
def test_save_load_keeps_init_names(tmp_path):
    net = fb.Sequential(fb.Dense(3, 5, init="glorot_normal", bias_init="uniform"), fb.ReLU(),
                        fb.Dense(5, 2, init="he_uniform"), seed=2)
    net.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert loaded.config() == net.config()
    assert loaded.layers[0].bias_init == "uniform" and loaded.layers[2].init == "he_uniform"
    np.testing.assert_array_equal(loaded.params, net.params)


def test_model_saved_with_the_old_layer_format_loads(tmp_path):
    """A file written before bias_init existed, with init "he"/"xavier"/"lecun", still loads."""
    layers = [{"type": "Dense", "in_features": 3, "out_features": 4, "init": "he", "bias": True},
              {"type": "ReLU"},
              {"type": "Dense", "in_features": 4, "out_features": 4, "init": "lecun",
               "bias": False},
              {"type": "Tanh"},
              {"type": "Dense", "in_features": 4, "out_features": 2, "init": "xavier",
               "bias": True}]
    description = {"format": "fastbp", "version": 1, "layers": layers, "dtype": "float32",
                   "seed": 0, "metadata": {"note": "old"}}
    params = np.arange(12 + 4 + 16 + 8 + 2, dtype=np.float32) / 10
    with open(tmp_path / "old.npz", "wb") as f:
        np.savez(f, fastbp=np.array(json.dumps(description)), params=params)
    net = fb.load(tmp_path / "old.npz")
    assert [d.init for d in net.layers[::2]] == ["he", "lecun", "xavier"]
    assert all(d.bias_init == "zeros" for d in net.layers[::2])
    np.testing.assert_array_equal(net.params, params)
    assert net.metadata == {"note": "old"}
    assert net.predict(np.ones((1, 3))).shape == (1, 2)
