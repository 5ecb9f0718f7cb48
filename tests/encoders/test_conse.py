"""The ConSE head, the residual catalog-clip head that starts as ConSE, and the distillation
towards the photo vectors of ImageNet classes."""

from __future__ import annotations

import torch


def test_conse_head_is_the_weighted_mean_of_its_top_class_names():
    from recsys.encoders.conse import N_IMAGENET, ConseHead

    torch.manual_seed(0)
    names = torch.randn(N_IMAGENET, 6)
    head = ConseHead(4, 6, top_k=2).fill(torch.zeros(N_IMAGENET, 4), torch.zeros(N_IMAGENET),
                                         names)
    with torch.no_grad():
        head.fc_bias[7] = 5.0                          # class 7 dominates, class 3 second
        head.fc_bias[3] = 4.0
    out = head(torch.zeros(1, 4))[0]
    p = torch.softmax(head.fc_bias, 0)
    unit = torch.nn.functional.normalize(names, dim=-1)
    expected = torch.nn.functional.normalize(p[7] * unit[7] + p[3] * unit[3], dim=0)
    assert torch.allclose(out, expected, atol=1e-5)


def test_residual_head_starts_as_conse_and_instance_block_keeps_cross_modal_scores():
    from recsys.encoders.conse import N_IMAGENET, ConseHead
    from recsys.encoders.hybrid import InstanceBlockHead, PadText, ResidualConseHead

    torch.manual_seed(0)
    conse = ConseHead(5, 3).fill(torch.randn(N_IMAGENET, 5), torch.randn(N_IMAGENET),
                                 torch.randn(N_IMAGENET, 3))
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.GELU(), torch.nn.Linear(4, 3))
    head = ResidualConseHead(mlp, conse)
    x = torch.randn(8, 5)
    assert torch.allclose(head(x), conse(x))           # the correction starts at zero
    block = InstanceBlockHead(head, 5, 2, 0.36).fit(torch.randn(50, 5))
    img = block(x)
    txt = PadText(torch.nn.Identity(), 2)(torch.randn(8, 3))
    assert img.shape == (8, 5) and txt.shape == (8, 5)
    assert torch.allclose(img.norm(dim=1), torch.ones(8), atol=1e-5)
    aligned = torch.nn.functional.normalize(head(x), dim=-1)
    assert torch.allclose(img @ txt.T, 0.8 * aligned @ txt[:, :3].T, atol=1e-5)


def test_distillation_prefers_the_photo_vector_of_its_imagenet_classes():
    from recsys.encoders.conse import N_IMAGENET, ConseHead
    from recsys.encoders.loss import distillation_loss

    torch.manual_seed(0)
    head = ConseHead(4, 8).fill(torch.zeros(N_IMAGENET, 4), torch.zeros(N_IMAGENET),
                                torch.randn(N_IMAGENET, 8))
    with torch.no_grad():
        head.fc_bias[11] = 8.0
    features = torch.zeros(1, 4)
    right = head.names[11:12]
    wrong = head.names[500:501]
    assert distillation_loss(right, features, head, 0.05) < \
        distillation_loss(wrong, features, head, 0.05)
