"""Tower surgery: the catalog CLIP split into a frozen bottom and a trained top.

Alignment runs the frozen bottoms of both towers once over the catalog and trains only the tops;
these functions make the split at any depth (0 = only the projection trains) and guarantee that
top(bottom(x)) is exactly what the whole model computes (tested in
tests/encoders/test_catalog_clip.py).
"""

from __future__ import annotations

N_IMAGE_STAGES = 7        # EfficientNet-Lite0 has 7 block stages
N_TEXT_LAYERS = 6         # MiniLM-L6


def image_bottom(visual, x, trainable: int):
    """Frozen part of the image tower: photo batch -> the activation the top starts from."""
    trunk = visual.trunk
    if trainable <= 0:
        return visual.trunk(x)                               # pooled 1280-d features
    h = trunk.bn1(trunk.conv_stem(x))
    for block in trunk.blocks[:N_IMAGE_STAGES + 1 - trainable]:
        h = block(h)
    return h


def image_top(visual, h, trainable: int):
    """Trained part of the image tower (ends with the projection)."""
    if trainable > 0:
        trunk = visual.trunk
        for block in trunk.blocks[N_IMAGE_STAGES + 1 - trainable:]:
            h = block(h)
        h = trunk.forward_head(trunk.bn2(trunk.conv_head(h)))
    return visual.head(h)


def image_top_modules(visual, trainable: int) -> list:
    trunk = visual.trunk
    mods = [visual.head]
    if trainable > 0:
        mods += [trunk.conv_head, trunk.bn2] + list(trunk.blocks[N_IMAGE_STAGES + 1 - trainable:])
    return mods


def _attention_bias(mask):
    import torch
    bias = torch.zeros(mask.shape, dtype=torch.float32)
    return bias.masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None, :]


def _run_layers(layers, h, mask):
    bias = _attention_bias(mask)
    for layer in layers:
        out = layer(h, attention_mask=bias)
        h = out[0] if isinstance(out, tuple) else out
    return h


def _mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1)


def text_bottom(text, ids, trainable: int):
    """Frozen part of the text tower: token ids -> (hidden states or pooled vector, mask)."""
    tr = text.transformer
    mask = ids != text.config.pad_token_id
    h = tr.embeddings(input_ids=ids)
    h = _run_layers(tr.encoder.layer[:N_TEXT_LAYERS - trainable], h, mask)
    if trainable <= 0:
        return _mean_pool(h, mask), mask
    return h, mask


def text_top(text, h, mask, trainable: int):
    """Trained part of the text tower (ends with the projection)."""
    if trainable > 0:
        h = _run_layers(text.transformer.encoder.layer[N_TEXT_LAYERS - trainable:], h, mask)
        h = _mean_pool(h, mask)
    return text.proj(h)


def text_top_modules(text, trainable: int) -> list:
    layers = list(text.transformer.encoder.layer[N_TEXT_LAYERS - trainable:]) if trainable > 0 \
        else []
    return [text.proj] + layers
