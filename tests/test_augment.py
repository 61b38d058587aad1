import os
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torchvision.transforms import v2

from jersey_cls.cli import main
from jersey_cls.data.augment import Augment, RandomGaussianNoise, batch_augmentation, train_transform
from jersey_cls.data.datamodule import JerseyDataModule

from .conftest import fit_args

SIZE, DRAWS = 224, 3000  # 224 px: torchvision draws perspective corners in whole pixels


def close(a, b, tolerance: float, slack: float = 0.0) -> bool:
    """Two samples span the same range: their minima and maxima within ``tolerance`` of the range's width, or
    within ``slack``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    allowed = max(tolerance * (max(a.max(), b.max()) - min(a.min(), b.min())), slack)
    return abs(a.min() - b.min()) <= allowed and abs(a.max() - b.max()) <= allowed


def worker_draws(transform) -> dict[str, list]:
    """torchvision's parameters for DRAWS crops, by the name kornia gives the same quantity."""
    image = torch.zeros(3, SIZE, SIZE, dtype=torch.uint8)
    draws = [transform.make_params([image]) for _ in range(DRAWS)]
    if isinstance(transform, v2.RandomResizedCrop):
        return {"area": [d["height"] * d["width"] / SIZE**2 for d in draws],
                "ratio": [d["width"] / d["height"] for d in draws]}  # fmt: skip
    if isinstance(transform, v2.RandomAffine):
        return {"angle": [d["angle"] for d in draws], "scale": [d["scale"] for d in draws],
                "shear_x": [d["shear"][0] for d in draws],
                "translations": [abs(t) / SIZE for d in draws for t in d["translate"]]}  # fmt: skip
    if isinstance(transform, v2.RandomPerspective):
        return {"corner": [max(top_left_corner(d["coefficients"])) / SIZE for d in draws]}
    if isinstance(transform, v2.ColorJitter):
        return {name: [d[name] for d in draws] for name in draws[0] if name.endswith("_factor")}
    if isinstance(transform, v2.RandomErasing):
        return {"area": [d["h"] * d["w"] / SIZE**2 for d in draws]}
    return {"sigma": [d["sigma"][0] for d in draws]}  # GaussianBlur


def top_left_corner(coefficients: list[float]) -> np.ndarray:
    """Where the input's top-left corner lands: the coefficients map each output pixel to the input pixel it
    samples, so it is the output pixel they map to (0, 0)."""
    a, b, c, d, e, f, _, _ = coefficients
    return np.linalg.solve([[a, b], [d, e]], [-c, -f])


def device_draws(module) -> tuple[float, dict[str, list]]:
    """kornia's share of crops transformed and its parameters for the transformed ones, DRAWS crops at once."""
    params = module.forward_parameters(torch.Size((DRAWS, 3, SIZE, SIZE)))
    applied = params["batch_prob"] > 0.5
    chosen = {name: value[applied] if len(value) == DRAWS else value for name, value in params.items()}
    name = type(module).__name__
    if name == "RandomResizedCrop":
        sides = chosen["src"][:, 2] - chosen["src"][:, 0] + 1  # bottom-right minus top-left corner
        draws = {"area": sides.prod(1) / SIZE**2, "ratio": sides[:, 0] / sides[:, 1]}
    elif name == "RandomAffine":
        draws = {"angle": chosen["angle"], "scale": chosen["scale"][:, 0], "shear_x": chosen["shear_x"],
                 "translations": chosen["translations"].abs().flatten() / SIZE}  # fmt: skip
    elif name == "RandomPerspective":
        moved = (chosen["end_points"] - chosen["start_points"])[:, 0].abs()
        draws = {"corner": moved.max(1).values / SIZE}
    elif name == "RandomErasing":
        draws = {"area": chosen["widths"] * chosen["heights"] / SIZE**2}
    else:
        draws = {key: chosen[key] for key in ("sigma", "brightness_factor", "contrast_factor", "saturation_factor",
                                              "hue_factor") if key in chosen}  # fmt: skip
    return applied.float().mean().item(), {key: value.tolist() for key, value in draws.items()}


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_the_device_path_draws_what_the_worker_path_draws_transform_by_transform(strength):
    augment = Augment(strength=strength)
    damage = train_transform((SIZE, SIZE), augment, batched=True).transforms  # what the workers keep on the device path
    workers = train_transform((SIZE, SIZE), augment).transforms
    assert [type(t) for t in damage] == [type(t) for t in workers[:3]] + [v2.Resize]  # PIL to tensor, JPEG, noise
    assert [type(t.transforms[0]) for t in damage[1:3]] == [v2.JPEG, RandomGaussianNoise]
    workers, device = workers[3:], list(batch_augmentation((SIZE, SIZE), augment).children())
    order = ["RandomResizedCrop", "RandomAffine", "RandomPerspective", "ColorJitter", "GaussianBlur", "RandomErasing"]
    assert [type(t.transforms[0] if isinstance(t, v2.RandomApply) else t).__name__ for t in workers] == order
    assert [type(m).__name__ for m in device] == [name.replace("Gaussian", "RandomGaussian") for name in order]
    torch.manual_seed(0)
    for worker, module in zip(workers, device, strict=True):
        inner = worker.transforms[0] if isinstance(worker, v2.RandomApply) else worker
        p = worker.p if isinstance(worker, (v2.RandomApply, v2.RandomPerspective, v2.RandomErasing)) else 1.0
        share, drawn = device_draws(module)
        assert abs(share - p) < 0.04, (type(module).__name__, share, p)  # the standard error is under 0.01
        expected = worker_draws(inner)
        assert drawn.keys() == expected.keys(), type(module).__name__
        for name, values in expected.items():
            # torchvision moves by whole pixels, kornia by fractions of one
            slack = 1 / SIZE if name in ("translations", "corner") else 0.0
            assert close(values, drawn[name], 0.05, slack), (type(module).__name__, name, min(values), max(values),
                                                      min(drawn[name]), max(drawn[name]))  # fmt: skip
            assert abs(np.mean(values) - np.mean(drawn[name])) < 0.05 * (max(values) - min(values)), name


def test_augmentation_off_leaves_the_device_path_empty():
    assert batch_augmentation((64, 64), Augment(strength=0)) is None


def test_a_train_batch_is_augmented_by_its_place_in_the_epoch_and_nothing_else_is(jsonl_root, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "42")  # seed_everything's, as in a fit
    data = JerseyDataModule(data_root=str(jsonl_root), image_size=32, num_workers=0, augment_on="device")
    data.trainer = SimpleNamespace(current_epoch=0)
    data.batch_augment = batch_augmentation((32, 32), Augment(strength=0.5))
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)

    def through_hooks(**batch):
        return data.on_after_batch_transfer(data.on_before_batch_transfer({"image": images.clone(), **batch}, 0), 0)

    first = through_hooks(position=torch.arange(8))["image"]
    torch.rand(1000)  # draws in between: the model's, Lightning's
    assert torch.equal(through_hooks(position=torch.arange(8))["image"], first)
    assert not torch.equal(through_hooks(position=torch.arange(8, 16))["image"], first)  # the next batch
    assert not torch.equal(through_hooks(position=torch.arange(1, 9))["image"], first)  # another DDP rank's
    assert "augment_seed" not in through_hooks(position=torch.arange(8))
    assert torch.equal(through_hooks(index=torch.arange(8))["image"], images)  # evaluation: no positions
    assert torch.equal(data.on_after_batch_transfer(images, 0), images)  # the model summary's example input


class KeepFirstBatch(Callback):
    """Saves the first training batch as the model receives it, after the transfer hooks."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if not Path("first_batch.pt").exists():
            torch.save(batch, "first_batch.pt")


class SigtermMidEpoch(Callback):
    """Preempts the run after epoch 1's third step, once."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 2 and Path("preempt").exists():
            Path("preempt").unlink()
            os.kill(os.getpid(), signal.SIGTERM)


def test_device_augmentation_changes_each_crop_says_where_it_runs_and_resumes_bit_for_bit(jsonl_root, capsys):
    def fit(run: str) -> None:
        callbacks = [f"--trainer.callbacks+={__name__}.{name}" for name in ("KeepFirstBatch", "SigtermMidEpoch")]
        main(fit_args(jsonl_root, "--ckpt_path", "last", "--trainer.default_root_dir", run, "--data.augment_on",
                      "device", "--data.num_workers", "1", *callbacks, epochs=2))  # fmt: skip

    fit("straight")
    assert "jersey-cls: training augmentation batched on cpu" in capsys.readouterr().out
    # What the model trains on: every crop of the batch augmented, as uint8, unlike its plain resized pixels.
    batch = torch.load("first_batch.pt", weights_only=True)
    plain = JerseyDataModule(data_root=str(jsonl_root), image_size=32, num_workers=0, augment=Augment(strength=0))
    dataset = plain.train_dataloader().dataset
    resized = torch.stack([dataset[int(index)]["image"] for index in batch["index"]])
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == resized.shape
    assert (batch["image"] != resized).flatten(1).any(1).all()

    Path("preempt").touch()
    with pytest.raises(SystemExit) as stop:
        fit("interrupted")
    assert stop.value.code == 143
    state = torch.load("interrupted/checkpoints/last.ckpt", weights_only=True)["JerseyDataModule"]
    assert (state["epoch"], state["batches_done"]) == (1, 3)  # stopped mid-epoch
    fit("interrupted")
    straight, resumed = (torch.load(f"{run}/checkpoints/last.ckpt", weights_only=True) for run in
                         ("straight", "interrupted"))  # fmt: skip
    assert resumed["global_step"] == straight["global_step"] == 10
    for key in ("state_dict", "current_model_state"):  # the EMA weights and the raw weights
        for name, tensor in straight[key].items():
            assert torch.equal(tensor, resumed[key][name]), f"{key}.{name}"

    # Another place would draw other augmentations: a resume there is refused, naming the flag.
    with pytest.raises(SystemExit):
        main([*fit_args(jsonl_root, "--ckpt_path", "last", "--trainer.default_root_dir", "interrupted", epochs=3),
              "--data.augment_on", "workers"])  # fmt: skip
    assert "--data.augment_on" in capsys.readouterr().err
