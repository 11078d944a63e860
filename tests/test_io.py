"""Saving and loading models: exact round trips, no code run on load, atomic writes."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from torch import nn

import transferkit as tk
import transferkit.io as tkio
from transferkit.baselines import SourceOnly
from transferkit.errors import LoadError, NotFittedError, TransferkitError
from transferkit.nn import MLPClassifier, MLPRegressor, TorchEstimator

EVENTS: list[str] = []  # side effects of classes that must never be created by load


class Evil(BaseEstimator):
    """A scikit-learn-style estimator outside the trusted packages."""

    def __init__(self, a: int = 1) -> None:
        self.a = a

    def __setstate__(self, state):  # what skops would call while loading it
        EVENTS.append("setstate")
        self.__dict__.update(state)


class TinyNet(nn.Module):
    """A user's own module: its forward is code, so load needs an instance."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 6), nn.Tanh())
        self.head = nn.Linear(6, 1)

    def forward(self, x):
        return self.head(self.body(x)) * 2.0


# ------------------------------------------------------------------------------ helpers
def assert_same(a, b, where: str = "") -> None:
    """Recursive equality: estimators by params, modules by weights, arrays exactly."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, nn.Module):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb), where
        for k in sa:
            assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), f"{where}.{k}"
        assert repr(a) == repr(b), where
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.kind == "O":
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same(x, y, f"{where}[{i}]")
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, BaseEstimator):
        assert_same(a.get_params(deep=False), b.get_params(deep=False), where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def roundtrip(model, path: Path, **load_kw):
    model.save(path) if hasattr(model, "save") else tkio.save(model, path)
    return tkio.load(path, **load_kw)


def assert_same_predictions(model, loaded, X) -> None:
    assert_same(model.get_params(deep=False), loaded.get_params(deep=False), "params")
    pred = model.predict(X)
    assert np.array_equal(pred, loaded.predict(X)), "predict differs"
    if getattr(model, "task_", None) == "classification":
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X),
                                   rtol=0, atol=1e-6)


def rewrite(path: Path, name: str, data: bytes) -> None:
    """Replace a file of a saved folder and fix its checksum, as an attacker would."""
    (path / name).write_bytes(data)
    config = json.loads((path / "config.json").read_text())
    config["files"][name] = hashlib.sha256(data).hexdigest()
    (path / "config.json").write_text(json.dumps(config))


def edit_config(path: Path, fn) -> None:
    config = json.loads((path / "config.json").read_text())
    fn(config)
    (path / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def moons():
    return tk.datasets.make_two_moons_shift()


@pytest.fixture(scope="module")
def fitted(moons):
    Xs, ys, Xt, _ = moons
    return SourceOnly().fit(Xs, ys, Xt)


# ------------------------------------------------------------------------------ round trips
def _torch_seq():
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))


CASES = {
    "logistic": lambda: SourceOnly(),
    "mlp": lambda: SourceOnly(estimator=MLPClassifier(hidden_layer_sizes=(10, 10), epochs=20,
                                                      random_state=0)),
    "torch-module": lambda: SourceOnly(estimator=_torch_seq(), random_state=0),
    "tree": lambda: SourceOnly(estimator=DecisionTreeClassifier(max_depth=3, random_state=0)),
    # a function reference (f_classif) inside a scikit-learn object
    "pipeline": lambda: SourceOnly(estimator=make_pipeline(SelectKBest(f_classif, k=1),
                                                           LogisticRegression())),
}


@pytest.mark.parametrize("case", list(CASES))
def test_roundtrip_classification(case, moons, tmp_path):
    Xs, ys, Xt, _ = moons
    model = CASES[case]().fit(Xs, ys, Xt)
    loaded = roundtrip(model, tmp_path / "m")
    assert_same_predictions(model, loaded, Xt)
    assert_same(vars(model), vars(loaded), "state")


def test_roundtrip_regression(tmp_path):
    Xs, ys, Xt, _ = tk.datasets.make_covariate_shift(200, 200, task="regression")
    model = SourceOnly().fit(Xs, ys, Xt)
    loaded = roundtrip(model, tmp_path / "m")
    assert loaded.task_ == "regression"
    assert_same_predictions(model, loaded, Xt)


def test_roundtrip_string_labels(moons, tmp_path):
    Xs, ys, Xt, _ = moons
    model = SourceOnly().fit(Xs, np.where(ys == 1, "b", "a"), Xt)
    loaded = roundtrip(model, tmp_path / "m")
    assert_same_predictions(model, loaded, Xt)
    assert loaded.classes_.dtype == model.classes_.dtype and set(loaded.predict(Xt)) <= {"a", "b"}


def test_roundtrip_unfitted(tmp_path):
    model = SourceOnly(estimator=MLPClassifier(hidden_layer_sizes=(4,), epochs=3), random_state=7)
    loaded = roundtrip(model, tmp_path / "m")
    assert_same(vars(model), vars(loaded))
    with pytest.raises(NotFittedError):
        loaded.predict(np.zeros((2, 2)))


def test_top_level_load_and_bare_torch_estimator(tmp_path):
    X, y, _, _ = tk.datasets.make_covariate_shift(100, 10, task="regression")
    est = MLPRegressor(hidden_layer_sizes=(5,), epochs=5, random_state=0).fit(X, y)
    tkio.save(est, tmp_path / "m")
    loaded = tk.load(str(tmp_path / "m"))
    assert isinstance(loaded, MLPRegressor)
    assert np.array_equal(est.predict(X), loaded.predict(X))
    assert_same(est.history_, loaded.history_)


def test_loaded_model_can_be_refitted(moons, tmp_path):
    Xs, ys, Xt, _ = moons
    loaded = roundtrip(CASES["mlp"]().fit(Xs, ys, Xt), tmp_path / "m")
    assert loaded.fit(Xs, ys, Xt).predict(Xt).shape == (len(Xt),)


def test_values_of_every_kind(tmp_path):
    shared = np.arange(4.0)
    model = SourceOnly()
    model.values_ = {
        "floats": [0.5, float("nan"), float("inf"), -float("inf")],
        "cv_scores": {0.1: 0.25, 1.0: np.float64(0.5)},
        "int_keys": {1: "a", (2, 3): None},
        "tuple": (1, (2, "x")), "set": {1, 2}, "frozenset": frozenset({"z"}),
        "bytes": b"\x00\xff", "complex": 1 + 2j,
        "scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.str_("s"),
                    np.float64("nan"), np.complex128(1j), np.datetime64("2020-01-02")],
        "arrays": [np.arange(6, dtype=np.int8).reshape(2, 3), np.array([True, False]),
                   np.array([1.5, 2], dtype=">f8"), np.array([1 + 1j, 2]),
                   np.array(["2020-01-01"], dtype="datetime64[D]"), np.array(3.0),
                   np.zeros((0, 3), np.float32), np.array([1.0, 2], dtype=np.float16),
                   np.array([1, "a", None, 2.5], dtype=object), np.array([["ab", "c"]])],
        "dtypes": [np.dtype("float32"), np.float64, int],
        "tensors": [torch.arange(3.0, dtype=torch.bfloat16),
                    nn.Parameter(torch.ones(2, dtype=torch.float64)),
                    torch.tensor([1, 2]), torch.float16, torch.device("cpu")],
        "rng": np.random.RandomState(3),
        "shared": [shared, shared],
    }
    model.myself_ = model  # a cycle through a transferkit object
    loaded = roundtrip(model, tmp_path / "m")
    v = loaded.values_
    rng = v.pop("rng")
    assert rng.randint(1000) == model.values_["rng"].randint(1000)
    expected = {k: x for k, x in model.values_.items() if k != "rng"}
    assert_same(expected, v)
    assert isinstance(v["tensors"][1], nn.Parameter) and v["tensors"][1].requires_grad
    assert v["arrays"][2].dtype == np.dtype(">f8")
    assert v["shared"][0] is v["shared"][1]  # shared objects stay shared
    assert loaded.myself_ is loaded
    assert v["arrays"][0].flags.writeable


def test_torch_layers_rebuilt_with_modes_and_frozen_weights(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, kernel_size=3, padding=1), nn.BatchNorm2d(3), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(12, 8), nn.LayerNorm(8), nn.GELU(approximate="tanh"),
        nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(8, 6),
        nn.BatchNorm1d(6), nn.ELU(alpha=0.5), nn.Tanh(),
        nn.ModuleList([nn.Sigmoid()]), nn.ModuleDict({"x": nn.Identity()}),
    )
    net[0].weight.requires_grad_(False)
    net[1].train()(torch.randn(5, 3, 4, 4))  # move the running statistics
    net.eval()
    net[8].train()
    loaded = roundtrip(net, tmp_path / "m")
    assert_same(net, loaded)
    assert [m.training for m in loaded.modules()] == [m.training for m in net.modules()]
    assert not loaded[0].weight.requires_grad and loaded[4].weight.requires_grad
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "custom" not in json.dumps(config["tree"])  # all rebuilt from torch.nn alone
    net.eval(), loaded.eval()
    x = torch.randn(2, 1, 4, 4)
    body = nn.Sequential(*list(net)[:13])
    assert torch.equal(body(x), nn.Sequential(*list(loaded)[:13])(x))


def test_float64_module_keeps_dtype(tmp_path):
    net = nn.Sequential(nn.Linear(2, 2)).double()
    loaded = roundtrip(net, tmp_path / "m")
    assert loaded[0].weight.dtype == torch.float64


def test_custom_module_needs_instances(moons, tmp_path):
    Xs, ys, Xt, _ = moons
    model = SourceOnly(estimator=TinyNet(), random_state=0).fit(Xs, ys, Xt, epochs=3)
    model.save(tmp_path / "m")
    with pytest.raises(LoadError) as err:
        tkio.load(tmp_path / "m")
    msg = str(err.value)
    assert "'estimator_.module_'" in msg and "'estimator'" in msg and "TinyNet" in msg
    by_class = tkio.load(tmp_path / "m", modules={"TinyNet": TinyNet()})
    assert_same_predictions(model, by_class, Xt)
    by_path = tkio.load(tmp_path / "m", modules={"estimator": TinyNet(),
                                                  "estimator_.module_": TinyNet()})
    assert_same_predictions(model, by_path, Xt)
    with pytest.raises(LoadError, match="do not fit"):
        tkio.load(tmp_path / "m", modules={"TinyNet": _torch_seq()})


# ------------------------------------------------------------------------------ security
def test_untrusted_skops_type_is_refused_without_running_it(tmp_path):
    model = SourceOnly(estimator=Evil())
    evil = f"{Evil.__module__}.Evil"
    with pytest.warns(UserWarning, match=evil):
        model.save(tmp_path / "m")
    EVENTS.clear()
    with pytest.raises(LoadError, match=evil) as err:
        tkio.load(tmp_path / "m")
    assert "trusted=" in str(err.value)
    assert EVENTS == []  # nothing was created
    loaded = tkio.load(tmp_path / "m", trusted=[evil])  # explicit opt-in
    assert isinstance(loaded.estimator, Evil) and EVENTS == ["setstate"]


def test_crafted_skops_call_is_refused(fitted, tmp_path):
    # A skops file that asks the loader to call builtins.exec(code).
    code = "import builtins; builtins._tk_pwned = True"
    schema = json.loads(zipfile.ZipFile(io.BytesIO(sio.dumps((code,)))).read("schema.json"))
    exploit = {"__class__": "exec", "__module__": "builtins",
               "__loader__": "ConstructorFromReduceNode", "content": schema,
               "protocol": schema["protocol"], "_skops_version": schema["_skops_version"]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps(exploit))
    data = buf.getvalue()
    sio.loads(data, trusted=["builtins.exec"])  # the file is live: skops would run it
    assert builtins.__dict__.pop("_tk_pwned")
    fitted.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["tree"]["state"]["estimator_"]["$type"] == "skops"
    rewrite(tmp_path / "m", "objects/000.skops", data)
    with pytest.raises(LoadError, match="builtins.exec"):
        tkio.load(tmp_path / "m")
    assert not hasattr(builtins, "_tk_pwned")


@pytest.mark.parametrize("name", ["os:system", "subprocess:Popen", "builtins:eval",
                                  "transferkit.io:os", "transferkit.io._codec:np.ndarray"])
def test_class_outside_transferkit_is_refused(name, fitted, tmp_path):
    fitted.save(tmp_path / "m")
    edit_config(tmp_path / "m", lambda c: c["tree"].update({"class": name}))
    with pytest.raises(LoadError, match="transferkit"):
        tkio.load(tmp_path / "m")


@pytest.mark.parametrize("fix_checksum", [False, True])
def test_corrupt_safetensors(fix_checksum, fitted, tmp_path):
    fitted.save(tmp_path / "m")
    data = bytearray((tmp_path / "m" / "tensors.safetensors").read_bytes())
    data[10:20] = b"garbage!!!"
    if fix_checksum:
        rewrite(tmp_path / "m", "tensors.safetensors", bytes(data))
    else:
        (tmp_path / "m" / "tensors.safetensors").write_bytes(bytes(data))
    with pytest.raises(LoadError, match="checksum" if not fix_checksum else "safetensors"):
        tkio.load(tmp_path / "m")


@pytest.mark.parametrize("damage", ["no-folder", "a-file", "no-config", "bad-json",
                                    "future-version", "no-tensors", "bad-file-name",
                                    "unknown-tag", "bad-ref"])
def test_broken_folders_raise_load_error(damage, fitted, tmp_path):
    path = tmp_path / "m"
    if damage == "a-file":
        path.write_text("x")
    elif damage != "no-folder":
        fitted.save(path)
    if damage == "no-config":
        (path / "config.json").unlink()
    elif damage == "bad-json":
        (path / "config.json").write_text("{not json")
    elif damage == "future-version":
        edit_config(path, lambda c: c.update(format_version=99))
    elif damage == "no-tensors":
        (path / "tensors.safetensors").unlink()
    elif damage == "bad-file-name":
        edit_config(path, lambda c: c["files"].update({"../../etc/passwd": "0"}))
    elif damage == "unknown-tag":
        edit_config(path, lambda c: c["tree"]["state"].update(x_={"$type": "pickle"}))
    elif damage == "bad-ref":
        edit_config(path, lambda c: c["tree"]["state"].update(x_={"$type": "ref", "path": "z"}))
    with pytest.raises(LoadError) as err:
        tkio.load(path)
    if damage == "future-version":
        assert "upgrade" in str(err.value)


def test_unfitted_torch_estimator_inside_pipeline_roundtrips(tmp_path):
    model = SourceOnly(estimator=make_pipeline(StandardScaler(), TorchEstimator(epochs=1)))
    assert_same(model.estimator, roundtrip(model, tmp_path / "m").estimator)


@pytest.mark.parametrize("name, loaders, ok", [
    ("sklearn.tree._tree.Tree", {"TreeNode"}, True),
    ("collections.Counter", {"ObjectNode"}, True),
    ("sklearn.feature_selection._univariate_selection.f_classif", {"FunctionNode"}, True),
    ("sklearn.feature_selection._univariate_selection.f_classif",
     {"ConstructorFromReduceNode"}, False),  # a trusted function, but called
    ("builtins.eval", {"FunctionNode"}, False),
    ("builtins.exec", {"ConstructorFromReduceNode"}, False),
    ("collections.namedtuple", {"FunctionNode"}, False),
    ("numpy.memmap", {"ConstructorFromReduceNode"}, False),  # creates files
    ("numpy.testing.assert_equal", {"FunctionNode"}, False),
    ("scipy.io.netcdf_file", {"ObjectNode"}, False),
    ("os.system", {"FunctionNode"}, False),
    (f"{Evil.__module__}.Evil", {"ObjectNode"}, False),
])
def test_trust_policy(name, loaders, ok):
    from transferkit.io._trust import _allowed

    assert _allowed(name, loaders) is ok


# ------------------------------------------------------------------------------ atomicity
def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("bad", ["lambda", "file", "torch-in-pipeline"])
def test_failed_save_writes_nothing_and_keeps_previous(bad, fitted, moons, tmp_path):
    Xs, ys, Xt, _ = moons
    broken = SourceOnly().fit(Xs, ys, Xt)
    if bad == "lambda":
        broken.hook_ = [lambda x: x]
    elif bad == "file":
        broken.hook_ = open(tmp_path / "f.txt", "w")  # noqa: SIM115
    else:
        broken.hook_ = make_pipeline(StandardScaler(), TorchEstimator(epochs=1)).fit(Xs, ys)
    with pytest.raises(TransferkitError, match="hook_") as err:
        broken.save(tmp_path / "new")
    assert bad != "torch-in-pipeline" or "torch network" in str(err.value)
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []
    fitted.save(tmp_path / "old")
    with pytest.raises(TransferkitError):
        broken.save(tmp_path / "old")
    assert _leftovers(tmp_path) == []
    assert_same_predictions(fitted, tkio.load(tmp_path / "old"), Xt)
    if bad == "file":
        broken.hook_.close()


def test_failure_while_replacing_restores_previous(fitted, moons, tmp_path, monkeypatch):
    Xs, ys, Xt, _ = moons
    fitted.save(tmp_path / "m")
    real_rename = tkio.os.rename

    def rename(src, dst):
        if str(src).endswith(".tmp"):  # the new folder moving into place
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr(tkio.os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        SourceOnly(estimator=DecisionTreeClassifier()).fit(Xs, ys, Xt).save(tmp_path / "m")
    monkeypatch.undo()
    assert _leftovers(tmp_path) == []
    assert_same_predictions(fitted, tkio.load(tmp_path / "m"), Xt)


def test_replaces_a_saved_model_but_not_other_folders(fitted, moons, tmp_path):
    Xs, ys, Xt, _ = moons
    fitted.save(tmp_path / "m")
    tree = SourceOnly(estimator=DecisionTreeClassifier(max_depth=2)).fit(Xs, ys, Xt)
    tree.save(tmp_path / "m")
    assert_same_predictions(tree, tkio.load(tmp_path / "m"), Xt)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    with pytest.raises(TransferkitError, match="not a saved transferkit model"):
        fitted.save(tmp_path / "docs")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------ all methods
def _registered_methods():
    """Every registered method (the registry imports every family)."""
    return list(tk.methods())


_FAST = {"n_estimators": 3, "n_steps": 3, "epochs": 3, "max_iter": 50}


@pytest.mark.parametrize("info", _registered_methods(), ids=lambda m: m.name)
def test_roundtrip_registered_methods(info, tmp_path):
    task = info.tasks[0]
    Xs, ys, Xt, yt = tk.datasets.make_covariate_shift(60, 40, n_features=3, task=task,
                                                     random_state=0)
    yt_few = np.full(len(yt), np.nan)
    yt_few[:12] = yt[:12]
    model = info.create()
    params = model.get_params(deep=False)
    model.set_params(**{k: v for k, v in _FAST.items() if k in params})
    if "random_state" in params:
        model.set_params(random_state=0)
    model.fit(Xs, ys, Xt, yt_few if info.needs_target_labels else None)
    loaded = roundtrip(model, tmp_path / "m")
    assert_same_predictions(model, loaded, Xt)
    assert_same(vars(model), vars(loaded), info.name)
    if hasattr(model, "predict_weights"):
        assert np.array_equal(model.predict_weights(Xt), loaded.predict_weights(Xt))
