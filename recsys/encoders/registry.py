"""The encoder registry: spec strings -> encoders.

`get_encoder(spec)` builds an encoder from a spec string:

- ``catalog-clip`` / ``catalog-clip@VERSION``: the CLIP aligned on a catalog (the default;
  needs the store to find the checkpoint, and the dataset for "latest"),
- ``catalog-clip:PATH``: the catalog-clip checkpoint file at PATH, without the store (what a
  Ray worker loads: `portable_spec` turns the other forms into this one),
- ``frozen``: the same pretrained towers without alignment, random projections,
- ``conse``: the same towers, untrained: a photo is the MiniLM vector of its top-10 ImageNet
  class names (the baseline `eval-encoder` reports),
- ``openclip:ARCH/PRETRAINED`` or ``openclip:ARCH/path/to/open_clip_pytorch_model.bin``:
  a pretrained OpenCLIP model (``openclip:ARCH@VERSION`` reloads one recorded in the store).

Kinds register a factory with `register_encoder_kind`; nothing heavy is imported or loaded
until a factory runs. This module sits above the concrete encoders (it imports them lazily in
its factories) and nothing below it imports it, so there is no import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .base import Encoder, EncoderError, EncoderSpec

if TYPE_CHECKING:
    from recsys.store import Store

DEFAULT_ENCODER = "catalog-clip"

EncoderFactory = Callable[[EncoderSpec, "Store | None", "str | None"], Encoder]
_KINDS: dict[str, EncoderFactory] = {}


def register_encoder_kind(kind: str, factory: EncoderFactory) -> None:
    """Make `get_encoder` accept specs of `kind` (`kind`, `kind@VERSION` or `kind:ARG`)."""
    _KINDS[kind] = factory


def encoder_kinds() -> list[str]:
    _register_builtin_kinds()
    return sorted(_KINDS)


def parse_spec(spec: str | None) -> EncoderSpec:
    """`catalog-clip@v1` -> EncoderSpec("catalog-clip", None, "v1");
    `openclip:ViT-B-32/laion2b_s34b_b79k` -> EncoderSpec("openclip", "ViT-B-32/laion2b_s34b_b79k")."""
    _register_builtin_kinds()
    text = (spec or DEFAULT_ENCODER).strip()
    kind, sep, rest = text.partition(":")
    argument = None
    version = None
    if sep:
        # openclip:ARCH/TAG_OR_PATH or openclip:ARCH@VERSION (a path may itself hold an '@')
        head, at, tail = rest.partition("@")
        if at and "/" not in head and "/" not in tail and "\\" not in tail:
            argument, version = head, tail
        else:
            argument = rest
    else:
        kind, at, version = text.partition("@")
        if at and not version.strip():
            raise EncoderError(f"Incomplete encoder spec {text!r}: give a version after '@'.")
        version = version.strip() or None
    kind = kind.strip()
    if kind not in _KINDS:
        raise EncoderError(f"Unknown encoder {text!r}. Use catalog-clip, catalog-clip@VERSION, "
                           "frozen, conse, or openclip:ARCH/PRETRAINED_OR_CHECKPOINT_PATH "
                           "(for example openclip:ViT-B-32/laion2b_s34b_b79k).")
    if (argument is not None and not argument.strip()) or (version is not None and not version):
        raise EncoderError(f"Incomplete encoder spec {text!r}.")
    return EncoderSpec(kind, argument, version)


def get_encoder(spec: str | EncoderSpec | None = None, store: "Store | None" = None,
                dataset: str | None = None) -> Encoder:
    """Build (load) the encoder a spec names; see the module docstring for the spec syntax.

    Loading reads weights from disk, so callers that encode often (the app) should keep the
    result, e.g. in `st.cache_resource`.
    """
    parsed = spec if isinstance(spec, EncoderSpec) else parse_spec(spec)
    return _KINDS[parsed.kind](parsed, store, dataset)


def portable_spec(spec: str | EncoderSpec | None, store: "Store | None" = None,
                  dataset: str | None = None) -> str:
    """The spec of the same encoder that loads without the database, from files only: what a
    process that must not open the DuckDB file (a Ray worker) passes to `get_encoder`.

    ``catalog-clip[@VERSION]`` becomes ``catalog-clip:<checkpoint path>``,
    ``openclip:ARCH@VERSION`` becomes ``openclip:ARCH/<checkpoint path>``; the other specs
    already need no store and come back unchanged. No weights are loaded.
    """
    parsed = spec if isinstance(spec, EncoderSpec) else parse_spec(spec)
    if parsed.kind == "catalog-clip" and not parsed.argument:
        from .catalog_clip import resolve_checkpoint
        return f"catalog-clip:{resolve_checkpoint(store, dataset, parsed.version)['path']}"
    if parsed.kind == "openclip":
        from .openclip_pretrained import resolve
        source = resolve(parsed, store)
        if source.path is not None:
            return f"openclip:{source.arch}/{source.path}"
        return f"openclip:{source.arch}/{source.tag}"
    return str(parsed)


def _catalog_clip_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .checkpoints import load_catalog_clip, load_checkpoint
    if spec.argument:
        if spec.version:
            raise EncoderError(f"Give catalog-clip a checkpoint path or a version, not both: "
                               f"{spec}.")
        return load_checkpoint(spec.argument)
    return load_catalog_clip(store, dataset, spec.version)


def _frozen_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .checkpoints import frozen_encoder
    return frozen_encoder(spec.version)


def _conse_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .conse import conse_encoder
    if spec.argument:
        raise EncoderError(f"conse takes no argument, not {spec}.")
    return conse_encoder(spec.version)


def _openclip_factory(spec: EncoderSpec, store, dataset) -> Encoder:
    from .openclip_pretrained import load_openclip
    return load_openclip(spec, store)


def _register_builtin_kinds() -> None:
    if "catalog-clip" not in _KINDS:
        register_encoder_kind("catalog-clip", _catalog_clip_factory)
        register_encoder_kind("frozen", _frozen_factory)
        register_encoder_kind("conse", _conse_factory)
        register_encoder_kind("openclip", _openclip_factory)
