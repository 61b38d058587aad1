import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jersey_cls.cli import main
from jersey_cls.cli.app import JerseyCLI
from jersey_cls.data.datamodule import JerseyDataModule
from jersey_cls.messages import JerseyInputError, JerseyWarning
from jersey_cls.model import JerseyClassifier
from jersey_cls.numbers import LEGAL_NUMBERS
from jersey_cls.training.checkpoints import load_model
from jersey_cls.training.start import load_start_weights

from .conftest import CONFIGS, LABELS, fit_args


def test_unknown_backbone_suggests_close_timm_names():
    with pytest.raises(JerseyInputError, match=r"--model.backbone 'resnet181' is not a timm model.*resnet18"):
        JerseyClassifier(class_names=["0", "00"], backbone="resnet181")


def test_unavailable_pretrained_weights_name_the_fix(monkeypatch):
    # Offline, the hub answers at once that nothing is cached. The hub reads HF_HUB_OFFLINE (set for every
    # test) when first imported, which may be before this test: without this line it waits on the network.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(JerseyInputError, match="--model.pretrained false"):
        load_start_weights(JerseyClassifier(class_names=["0", "00"], backbone="test_resnet", pretrained=True))


def test_forward_takes_raw_uint8_crops_and_top5_is_clipped():
    model = JerseyClassifier(class_names=["0", "00", "7"], backbone="test_resnet")
    probabilities = model(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert probabilities.shape == (2, 3) and torch.allclose(probabilities.sum(1), torch.ones(2))
    assert model.val_metrics["val/acc_top5"].top_k == 3
    assert model.hparams.class_names == ["0", "00", "7"]


def test_channels_last_changes_the_memory_layout_not_the_logits():
    plain = JerseyClassifier(["0", "00", "7"], backbone="test_resnet").eval()
    nhwc = JerseyClassifier(["0", "00", "7"], backbone="test_resnet", channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    first_conv = next(p for p in nhwc.net.parameters() if p.dim() == 4)
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    crops = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(plain(crops), nhwc(crops), atol=1e-5)


def digits_model_answering(tens: int, units: int) -> JerseyClassifier:
    """A digits-head model whose network always outputs these digits and the whole-number head's class "7"."""
    model = JerseyClassifier(LEGAL_NUMBERS, backbone="test_resnet", head="digits").eval()
    classes, no_tens = len(LEGAL_NUMBERS), 10

    def fixed_logits(images: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(images), classes + no_tens + 1 + 10)
        logits[:, LEGAL_NUMBERS.index("7")] = 20.0
        logits[:, classes + tens] = 10.0
        logits[:, classes + no_tens + 1 + units] = 10.0
        return logits

    model.net.forward = fixed_logits
    return model


@pytest.mark.parametrize(("tens", "units", "number"), [(10, 0, "0"), (0, 0, "00"), (10, 7, "7"), (4, 7, "47")])
def test_digits_head_reads_numbers_from_their_digits_and_keeps_0_and_00_apart(tens, units, number):
    model = digits_model_answering(tens, units)
    probabilities = model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert probabilities.shape == (2, len(LEGAL_NUMBERS))
    assert [LEGAL_NUMBERS[i] for i in probabilities.argmax(1)] == [number, number]
    assert torch.allclose(probabilities.sum(1), torch.ones(2))  # over the legal numbers only


def test_digits_head_loss_counts_the_whole_number_and_both_digits():
    model = digits_model_answering(4, 7)  # whole-number head says "7" by 20 logits, digit heads 4 and 7 by 10
    model.hparams.label_smoothing = 0.0
    model.log = model.log_dict = lambda *args, **kwargs: None

    def loss_for(label: str) -> float:
        target = torch.tensor([LEGAL_NUMBERS.index(label)])
        batch = {"image": torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "target": target}
        return float(model.shared_step(batch, "val")[0])

    assert loss_for("7") == pytest.approx(10, abs=0.5)  # the tens head is wrong ("4", not none)
    assert loss_for("47") == pytest.approx(20, abs=0.5)  # the whole-number head is wrong
    assert loss_for("17") == pytest.approx(30, abs=0.5)  # both are


def test_digits_head_refuses_labels_that_are_not_numbers():
    with pytest.raises(JerseyInputError, match=r"--model.head digits .* \['A'\]"):
        JerseyClassifier(["7", "A"], backbone="test_resnet", head="digits")


def test_class_weighted_loss_weighs_each_crop_by_its_class_inverse_frequency_in_train(imagefolder_root):
    for extra in sorted((imagefolder_root / "train" / "7").iterdir())[3:]:
        extra.unlink()  # train: 10 crops of 0, 00 and 23, 3 of 7
    main(fit_args(imagefolder_root, "--model.class_weighted_loss", "true", "--model.label_smoothing", "0"))
    checkpoint = Path("runs/jersey/checkpoints/last.ckpt")
    counts = np.array([10, 10, 3, 10])  # 0, 00, 7, 23
    weights = counts.sum() / (len(counts) * counts)
    assert torch.load(checkpoint, weights_only=True)["hyper_parameters"]["class_weights"] == pytest.approx(weights)

    model = load_model(checkpoint).eval()
    model.log = model.log_dict = lambda *args, **kwargs: None
    torch.manual_seed(0)
    images, targets = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8), torch.tensor([0, 1, 2, 3, 2, 2])
    with torch.no_grad():
        loss = float(model.shared_step({"image": images, "target": targets}, "val").loss)
        log_p = torch.log_softmax(model.logits(images), dim=1).double().numpy()
    nll = -log_p[np.arange(6), targets.numpy()]
    assert loss == pytest.approx(float((weights[targets] * nll).sum() / weights[targets].sum()), rel=1e-5)
    unweighted = JerseyClassifier(**{**model.hparams, "class_weighted_loss": False}).eval()  # the flag off
    unweighted.load_state_dict(model.state_dict())
    unweighted.log = unweighted.log_dict = model.log
    with torch.no_grad():
        loss = float(unweighted.shared_step({"image": images, "target": targets}, "val").loss)
    assert loss == pytest.approx(float(nll.mean()), rel=1e-5)  # every crop counts the same


def instantiate(data_root: Path, *flags: str) -> JerseyCLI:
    """The fit command's model and data, as the CLI links them, without training."""
    return JerseyCLI(JerseyClassifier, JerseyDataModule, run=False, parser_kwargs={"parser_mode": "omegaconf+"},
                     args=["--config", str(CONFIGS / "base.yaml"), "--data.data_root", str(data_root),
                           "--model.backbone", "test_resnet", *flags])  # fmt: skip


def test_head_auto_reads_digits_for_jersey_numbers_and_classes_for_other_labels(jsonl_root, capsys):
    numbers = instantiate(jsonl_root)
    assert numbers.model.hparams.head == "digits" and numbers.datamodule.class_names == LEGAL_NUMBERS
    with_illegible = instantiate(jsonl_root, "--data.illegible", "true")
    assert with_illegible.model.hparams.head == "digits"
    assert with_illegible.datamodule.class_names == [*LEGAL_NUMBERS, "illegible"]
    assert "the digits head: --model.head auto, as every label is a jersey number" in capsys.readouterr().out
    annotations = jsonl_root / "train" / "annotations.jsonl"
    annotations.write_text(annotations.read_text().replace('"suffix": "23"', '"suffix": "coach"'))
    with pytest.warns(JerseyWarning, match=r"the classes head.*as some labels are not jersey numbers: \['coach'\]"):
        others = instantiate(jsonl_root)
    assert others.model.hparams.head == "classes" and others.datamodule.class_names == ["0", "00", "7", "coach"]
    explicit = instantiate(jsonl_root, "--model.head", "classes", "--data.illegible", "true")
    assert explicit.model.hparams.head == "classes"


def test_an_auto_run_stores_its_head_and_every_command_reads_it(jsonl_root):
    main(fit_args(jsonl_root, "--model.head", "auto", onnx=True))
    last = torch.load("runs/jersey/checkpoints/last.ckpt", weights_only=True)
    assert last["hyper_parameters"]["head"] == "digits"
    assert json.loads(Path("runs/jersey/export/labels.json").read_text())["head"] == "digits"
    assert (
        "| head | digits (--model.head auto, as every label is a jersey number"
        in Path("runs/jersey/model_card.md").read_text()
    )
    main(["predict", "--ckpt_path", "last", "--data.predict_path", str(jsonl_root / "test"), "--data.num_workers", "0"])
    main(["export", "--ckpt_path", "last", "--data.num_workers", "0"])
    assert json.loads(Path("runs/jersey/exports/last/labels.json").read_text())["class_names"] == LEGAL_NUMBERS
    main(fit_args(jsonl_root, "--model.head", "auto", "--ckpt_path", "last", epochs=2))  # the resume keeps it
    assert torch.load("runs/jersey/checkpoints/last.ckpt", weights_only=True)["epoch"] == 1


def test_a_classes_head_model_starts_an_auto_run_of_numbers_with_its_rows_by_label(jsonl_root):
    main(fit_args(jsonl_root, "--trainer.default_root_dir", "season1"))  # the classes head, 4 classes
    old = torch.load("season1/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    main(fit_args(jsonl_root, "--model.head", "auto", "--model.init_from", "season1/checkpoints/last.ckpt",
                  "--model.lr", "0", "--ema.enabled", "false"))  # fmt: skip
    new = torch.load("runs/jersey/checkpoints/last.ckpt", weights_only=True)
    assert new["hyper_parameters"]["head"] == "digits"
    for i, label in enumerate(LABELS):  # lr 0: the weights are the ones the run started from
        row = LEGAL_NUMBERS.index(label)
        assert torch.equal(new["state_dict"]["net.fc.weight"][row], old["net.fc.weight"][i]), label
    assert "4 numbers carried over, 97 new, 0 dropped" in new["started_from"]
