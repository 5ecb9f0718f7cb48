"""Use cases of item vector modalities: list what a dataset has, bring your own features.

`import_features` is the Data page's "Import features" section and `python -m recsys
import-features`; `list_modalities` feeds the Train page's modality picker and `python -m
recsys modalities`. The importer itself (reading, validation, the report) is
`recsys.vectors.features`; the loader the models read modalities with is `recsys.vectors.modalities`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys.core.paths import PathPolicy, policy_or_any
from recsys.core.progress import ProgressCallback
from recsys.store import Store

from .data import Upload

if TYPE_CHECKING:
    from recsys.data.report import ImportReport


def list_modalities(store: Store, dataset: str | None = None) -> list[dict[str, Any]]:
    """The vector modalities of a dataset (the set models use by default for each): modality,
    encoder, version, spec, dim, items, imported; image, text, video first."""
    from recsys.vectors.modalities import dataset_modalities

    dataset = store.resolve_dataset(dataset)
    return [m.to_dict() for m in dataset_modalities(store, dataset)]


def import_features(store: Store, source: str | Path | Upload, modality: str,
                    dataset: str | None = None, *, ids: str | Path | Upload | None = None,
                    columns: dict[str, str] | None = None, on_error: str = "skip",
                    progress: ProgressCallback | None = None,
                    path_policy: PathPolicy | None = None) -> ImportReport:
    """Import precomputed item vectors of `dataset` as the modality `modality`.

    `source`: a `.npy` matrix (rows are items; `ids` is its id mapping, by default MMRec's
    `i_id_mapping.csv` beside it, else row r is item "r"), or a Parquet / CSV table with an id
    column and a vector column (`columns` names them when they are not called item_id /
    vector); or an `Upload` of one (with `ids` an `Upload` too), whose copy is deleted after
    the import. Validated first, written in one transaction; the report counts problem rows by
    reason and the dataset's items left without a vector. Re-importing a modality replaces it.
    `path_policy`: the folders a `source` or `ids` path (and the default mapping beside a
    `.npy`) may lie in, checked before anything is read (`PathNotAllowed`); None: any path.
    """
    from recsys.data.report import DataImportError
    from recsys.data.uploads import discard_upload, new_upload_dir, save_upload
    from recsys.vectors.features import import_features as run

    dataset = store.resolve_dataset(dataset)
    if isinstance(ids, Upload) and not isinstance(source, Upload):
        raise DataImportError("Upload the feature file with its id mapping, or give both as "
                              "paths on this machine.")
    if not isinstance(source, Upload):
        policy = policy_or_any(path_policy)
        source = policy.check(source, "The feature file path")
        if ids is None and source.suffix.lower() == ".npy" and policy.restricted:
            from recsys.vectors.feature_readers import MMREC_MAPPING

            policy.check(source.parent / MMREC_MAPPING, "The id mapping beside it")
        ids = policy.check_optional(ids, "The id mapping path")
        return run(store, source, modality, dataset, ids=ids, columns=columns,
                   on_error=on_error, progress=progress)
    folder = new_upload_dir(store, dataset)
    try:
        path = save_upload(source.data, folder, source.name)
        mapping = None
        if isinstance(ids, Upload):
            mapping = save_upload(ids.data, folder, "ids-" + Path(ids.name).name)
        return run(store, path, modality, dataset, ids=mapping, columns=columns,
                   on_error=on_error, progress=progress)
    finally:
        discard_upload(store, folder)
