"""Next season: a new run starts from a model you already have, or from a weights file on your own disk."""

from pathlib import Path

import pytest
import timm
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import save_file

from jersey_cls.cli import main
from jersey_cls.messages import JerseyInputError
from jersey_cls.model import JerseyClassifier
from jersey_cls.numbers import LEGAL_NUMBERS
from jersey_cls.training.start import load_start_weights

from .conftest import LABELS, fit_args, write_crop

OLD = ["0", "00", "3", "7", "10", "23", "31", "45", "88", "99"]
NEW = ["0", "00", "3", "7", "10", "23", "31", "45", "88", "12", "41", "77"]  # 99 dropped; 12, 41, 77 new


def save_model(model: JerseyClassifier, path: Path) -> None:
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)


def started(*args, **kwargs) -> JerseyClassifier:
    """A model as a new run builds it, with the weights it starts from loaded."""
    model = JerseyClassifier(*args, **kwargs)
    model.started_from = load_start_weights(model)
    return model


@pytest.mark.parametrize("head", ["classes", "digits"])
def test_classifier_rows_carry_over_by_label_and_new_numbers_start_fresh(head):
    classes = (lambda names: LEGAL_NUMBERS) if head == "digits" else (lambda names: names)
    old = JerseyClassifier(classes(OLD), backbone="test_resnet", head=head)
    save_model(old, Path("last_season.ckpt"))
    torch.manual_seed(1)
    new = started(classes(NEW), backbone="test_resnet", head=head, init_from="last_season.ckpt")
    torch.manual_seed(1)
    fresh = JerseyClassifier(classes(NEW), backbone="test_resnet", head=head)
    old_fc, new_fc, fresh_fc = (m.net.fc.weight.detach() for m in (old, new, fresh))
    old_names, new_names = classes(OLD), classes(NEW)
    for i, name in enumerate(new_names):
        if name in old_names:
            assert torch.equal(new_fc[i], old_fc[old_names.index(name)]), name
        else:
            assert torch.equal(new_fc[i], fresh_fc[i]), name  # seeded the same: the fresh init, untouched
    if head == "digits":  # all 101 numbers in both lists; the tens and units rows carry over whole
        assert torch.equal(new_fc[-21:], old_fc[-21:])
    else:
        assert "9 numbers carried over, 3 new, 1 dropped" in new.started_from
    conv = next(k for k in old.state_dict() if k.endswith("conv1.weight"))
    assert torch.equal(new.state_dict()[conv], old.state_dict()[conv])


def dataset(root: Path, labels: list[str]) -> Path:
    for split, count in (("train", 6), ("val", 2)):
        for label in labels:
            for i in range(count):
                write_crop(root / split / label / f"{i}.png", label, seed=f"{split}-{label}-{i}")
    return root


def test_a_new_season_fits_from_the_old_model_and_the_card_says_so(tmp_path):
    main(fit_args(dataset(tmp_path / "season1", OLD), "--trainer.default_root_dir", "season1"))
    main(fit_args(dataset(tmp_path / "season2", NEW), "--model.init_from", "season1/checkpoints/last.ckpt"))
    card = Path("runs/jersey/model_card.md").read_text()
    assert "season1/checkpoints/last.ckpt: 9 numbers carried over, 3 new, 1 dropped" in card


class FirstForward(Callback):
    """Records, as training starts, whether the backbone computes what the weights file's model computes."""

    matches: list[bool] = []

    def on_train_start(self, trainer, pl_module) -> None:
        reference = timm.create_model("test_resnet", pretrained=False, num_classes=0)
        reference.load_state_dict(torch.load("backbone.pt", weights_only=True), strict=False)
        crops = torch.randn(2, 3, 32, 32)
        net = pl_module.net
        was_training = net.training
        net.eval()
        reference.eval()
        with torch.no_grad():
            self.matches.append(torch.allclose(net.forward_features(crops), reference.forward_features(crops)))
        net.train(was_training)


def test_a_run_starts_from_a_weights_file_offline(jsonl_root):
    weights = timm.create_model("test_resnet", pretrained=False).state_dict()
    save_file(weights, "backbone.safetensors")
    torch.save(weights, "backbone.pt")
    FirstForward.matches.clear()
    callback = f"--trainer.callbacks+={__name__}.FirstForward"
    main(fit_args(jsonl_root, "--model.pretrained", "false", "--model.init_from", "backbone.safetensors", callback))
    assert FirstForward.matches == [True]
    assert "the weights file backbone.safetensors" in Path("runs/jersey/model_card.md").read_text()


class StartWeights(Callback):
    """The backbone's weights as training starts."""

    weights: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.weights.update({key: value.clone() for key, value in pl_module.net.state_dict().items()})


def cache_imagenet_weights(hub: Path, weights: dict[str, torch.Tensor]) -> None:
    """test_resnet's ImageNet weights where the Hugging Face Hub caches timm's: a snapshot that refs/main names."""
    repo = hub / "models--timm--test_resnet.r160_in1k"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    save_file(weights, repo / "snapshots" / commit / "model.safetensors")


def test_pretrained_weights_load_from_the_hub_cache_offline_and_a_resume_never_fetches_them(
    jsonl_root, tmp_path, monkeypatch
):
    torch.manual_seed(7)
    imagenet = timm.create_model("test_resnet", pretrained=False).state_dict()  # 1000 ImageNet classes
    cache_imagenet_weights(tmp_path / "hub", imagenet)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    StartWeights.weights.clear()
    with monkeypatch.context() as patch:
        patch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
        main(fit_args(jsonl_root, "--model.pretrained", "true", "--ckpt_path", "last",
                      f"--trainer.callbacks+={__name__}.StartWeights"))  # fmt: skip
    started = StartWeights.weights
    assert started.keys() == imagenet.keys()
    for key, value in imagenet.items():
        if key.startswith("fc."):  # ImageNet's 1000-way classifier is not ours: it starts fresh
            assert started[key].shape[0] == len(LABELS)
        else:
            assert torch.equal(started[key], value), key
    # An empty cache: loading ImageNet weights again would now fail (offline), so the resume must not.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    main(fit_args(jsonl_root, "--model.pretrained", "true", "--ckpt_path", "last", epochs=2))
    last = torch.load("runs/jersey/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["hyper_parameters"]["pretrained"] is True
    assert last["started_from"] == "timm's ImageNet weights for test_resnet"


def test_every_way_to_fail_has_its_own_message(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    resnet18 = timm.create_model("resnet18", pretrained=False).state_dict()
    save_file(resnet18, "resnet18.safetensors")
    Path("broken.pth").write_bytes(b"not a weights file")
    cases = [
        ({"pretrained": True}, "could not download ImageNet weights for 'test_resnet' and none are cached"),
        ({"backbone": "botnet50ts_256", "pretrained": True}, "timm has no pretrained weights for 'botnet50ts_256'"),
        ({"backbone": "resnet18.bogus"}, "--model.backbone resnet18.bogus: timm has no such pretrained tag"),
        ({"backbone": "hf-hub:timm/resnet18.a1_in1k"}, "its config could not be fetched from the Hugging Face Hub"),
        ({"init_from": "resnet18.safetensors"}, "--model.init_from resnet18.safetensors: its weights do not fit"),
        ({"init_from": "broken.pth"}, "--model.init_from broken.pth: cannot be read as a weights file"),
        ({"init_from": "nowhere.ckpt"}, "--model.init_from nowhere.ckpt: no such file"),
    ]
    for kwargs, message in cases:
        with pytest.raises(JerseyInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            started(["0", "00"], **{"backbone": "test_resnet", "head": "classes", **kwargs})
