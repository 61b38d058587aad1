import pytest
import torch

from jersey_cls.errors import JerseyInputError
from jersey_cls.model import JerseyClassifier


def test_unknown_backbone_suggests_close_timm_names():
    with pytest.raises(JerseyInputError, match=r"--model.backbone 'resnet181' is not a timm model.*resnet18"):
        JerseyClassifier(class_names=["0", "00"], backbone="resnet181")


def test_unavailable_pretrained_weights_name_the_fix():
    # HF_HUB_OFFLINE=1 (set for every test) makes the hub answer at once that nothing is cached.
    with pytest.raises(JerseyInputError, match="--model.pretrained false"):
        JerseyClassifier(class_names=["0", "00"], backbone="test_resnet", pretrained=True)


def test_forward_takes_raw_uint8_crops_and_top5_is_clipped():
    model = JerseyClassifier(class_names=["0", "00", "7"], backbone="test_resnet")
    logits = model(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert logits.shape == (2, 3)
    assert model.val_metrics["acc_top5"].top_k == 3
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
