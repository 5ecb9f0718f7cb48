"""Data: datasets and table sizes; import catalogs and interactions; simulate shoppers."""

from pathlib import Path

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core import config
from recsys.core.errors import RecsysError
from ui import components, jobs, resources, state
from ui.words import plural

APPEND_LABEL = "'Add to the dataset's existing interactions'"
REPLACE_LABEL = "'Replace even if this removes interactions'"


def show_report(rep) -> None:
    """An import report: counts, then each kind of skipped row with examples."""
    if rep.refused and rep.reason:
        reason = rep.reason.replace("--replace", REPLACE_LABEL).replace("--append", APPEND_LABEL)
        st.error(f"Refused: nothing was imported into '{rep.dataset}' and nothing changed: "
                 f"{reason}")
    elif rep.refused:
        st.error(f"Refused: nothing was imported into '{rep.dataset}' ({rep.skipped:,} problem "
                 "rows). Fix them, or choose 'skip' to leave them out.")
    else:
        st.success(f"Imported {rep.imported:,} {rep.kind} into '{rep.dataset}' "
                   f"({rep.rows_read:,} rows read, {rep.skipped:,} skipped).")
    for reason, count in rep.problems.items():
        st.warning(f"{reason}: {count:,} rows, e.g. {'; '.join(rep.examples.get(reason, []))}")
    for note in rep.notes:
        st.warning(note, icon=":material/info:")


FLASH = "data_flash"   # messages of a step that reran the page (so its tables show the new data)


def with_progress(label: str, kind: str, *args, dataset: str | None = None, **kwargs):
    """Run a use case as a background job (`ui.jobs`, kind `kind`) and follow its progress,
    then drop cached data that it may have changed; returns its result. A job that failed or
    was stopped raises `RecsysError` with its reason; one still running when the page stops
    following it goes on in the background (the sidebar shows it) and the page stops here."""
    job = jobs.follow(jobs.start(kind, *args, dataset=dataset, **kwargs), label)
    st.cache_data.clear()
    if job is None or job.active:
        st.stop()
    if job.status != "finished":
        raise RecsysError(job.error or f"the job was {job.status}")
    return job.result


def overview(info: dict) -> None:
    """The datasets with their sizes, and the default dataset for new sessions and the CLI."""
    st.subheader("Datasets")
    if not info["datasets"]:
        st.info("The database is empty. Build the demo catalog below, or import your own.")
        return
    table = pd.DataFrame(info["datasets"])
    st.dataframe(table[["name", "kind", "items", "items_with_images", "users", "interactions",
                        "source", "created_at"]], hide_index=True,
                 column_config={"items_with_images": "photos"})
    c1, c2 = st.columns([3, 1])
    c1.caption(f"Database: `{Path(info['database']).resolve()}` · default dataset for new "
               f"sessions and the CLI: **{info['active_dataset']}**")
    if c2.button("Set as default", disabled=not state.current_dataset(),
                 help="Make the dataset chosen in the sidebar the default for new sessions and "
                      "for the command line."):
        usecases.use_dataset(store, state.current_dataset())
        st.rerun()


def disk_block() -> None:
    """Disk use of the database and its files, and deleting old model files."""
    from recsys.recommend.housekeeping import (
        DEFAULT_KEEP,
        format_bytes,
        keep_models_default,
    )

    def prune() -> None:           # a callback: the numbers below are read after it ran
        report = usecases.prune_models(store, keep=int(st.session_state["disk_keep"]),
                                       all_datasets=True)
        st.session_state["disk_pruned"] = report.summary()

    try:
        default_keep = max(1, keep_models_default())
    except RecsysError:                  # a bad $RECSYS_KEEP_MODELS: say so, offer the default
        default_keep = DEFAULT_KEEP
    usage = usecases.disk_usage(store)
    with st.expander(f"Disk use: {format_bytes(usage.total)}", icon=":material/hard_drive:"):
        left, right = st.columns([3, 2])
        left.dataframe(pd.DataFrame([{"files": label, "size": format_bytes(size),
                                      "count": count} for label, size, count in usage.rows()]),
                       hide_index=True)
        left.caption(f"Beside the database, in `{usage.artifacts_dir}`.")
        right.number_input("Model files kept per model", 1, 1000, default_keep, key="disk_keep",
                           help="Older files are deleted; their runs and metrics stay. The "
                                "newest run of each model and split keeps its file.")
        right.button("Delete older model files", key="disk_prune", on_click=prune,
                     disabled=usage.model_files == 0)
        if "disk_pruned" in st.session_state:
            right.success(st.session_state.pop("disk_pruned"))


def paths_note() -> None:
    """Where paths typed on this page may point (the app reads only under its data folders)."""
    roots = usecases.app_path_policy().roots or ()
    st.caption("Paths on this machine are read only inside "
               + (", ".join(f"`{r}`" for r in roots) or "no folder (none is configured)")
               + " (the `RECSYS_DATA_ROOTS` setting); upload files from elsewhere.")


CATALOG_FORMATS = ["auto", "merchant", "shopify", "generic", "myntra"]
FORMAT_LABELS = {"auto": "detect from the file", "merchant": "Google Merchant Center feed",
                 "shopify": "Shopify products export", "generic": "generic table",
                 "myntra": "Myntra styles.csv"}


def show_catalog_preview(preview) -> None:
    """The detected format of a catalog file and its first products."""
    st.info(f"**{preview.description}**: {preview.products:,} products from "
            f"{preview.entries:,} {'entries' if preview.format == 'merchant' else 'rows'}"
            + (f"; {preview.photo_urls:,} photos by URL will be downloaded (or taken from the "
               "cache)" if preview.photo_urls else "") + ".", icon=":material/preview:")
    for key, value in preview.details.items():
        if key not in ("feed entries", "CSV rows"):
            st.caption(f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value}")
    st.dataframe(preview.rows, hide_index=True)


def show_download_summary(rep) -> None:
    """How the photos by URL went: downloaded now, from the cache, failed (per row above)."""
    if "photos downloaded" not in rep.details:
        return
    d = rep.details
    text = (f"Photos by URL: {d['photos downloaded']:,} downloaded, "
            f"{d['photos already in the cache']:,} already in the cache, "
            f"{d['photo downloads failed']:,} failed")
    if d.get("download photos/s"):
        text += f" ({d['download MB']} MB at {d['download photos/s']} photos/s)"
    st.caption(text + ".")


def import_catalog_tab() -> None:
    """A catalog table and its photos, uploaded or from folders on this machine."""
    st.markdown("A CSV or Parquet table with an id column, text columns (title, description, "
                "category, colour...) and an image file name or path column, plus the photos: a "
                "zip file or a folder on this machine. The Kaggle *Fashion Product Images "
                "(Small)* layout (`styles.csv` + `images/`) is the `myntra` format. A Google "
                "Merchant Center feed (TSV or XML), a Shopify products export or any table "
                "whose image column holds URLs needs no photos: they are downloaded (public "
                "addresses only) and kept in a cache, so a re-import downloads nothing new.")
    source = st.radio("Files", ["Upload", "Folder path on this machine"], horizontal=True,
                      key="cat_source")
    if source != "Upload":
        paths_note()
    with st.form("catalog_form"):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Dataset name", value="my-catalog")
        fmt = c2.selectbox("Format", CATALOG_FORMATS, format_func=FORMAT_LABELS.get,
                           help="Detected from the file unless you choose one; "
                                "'Preview' shows what was detected.")
        on_error = c3.selectbox("Bad rows", ["skip", "refuse"],
                                help="skip: import the good rows and report the others; "
                                     "refuse: import nothing if any row is bad.")
        table_file = zip_file = None
        table_path = images_path = ""
        u1, u2 = st.columns(2)
        if source == "Upload":
            table_file = u1.file_uploader("Catalog table or feed (CSV, TSV, Parquet, XML)",
                                          type=["csv", "parquet", "tsv", "txt", "xml"])
            zip_file = u2.file_uploader("Photos (zip)", type=["zip"])
        else:
            table_path = u1.text_input("Table path", placeholder="/path/to/styles.csv")
            images_path = u2.text_input("Images folder", placeholder="/path/to/images")
        with st.expander("Column names (generic format; found automatically when they use "
                         "common names)"):
            m = st.columns(4)
            mapping = {"item_id": m[0].text_input("id column"),
                       "title": m[1].text_input("title column"),
                       "description": m[2].text_input("description column"),
                       "image_path": m[3].text_input("image column")}
        b1, b2 = st.columns([1, 5])
        previewed = b1.form_submit_button("Preview")
        submitted = b2.form_submit_button("Import catalog", type="primary")
    if not submitted and not previewed:
        return
    try:
        if source == "Upload":
            if table_file is None:
                raise RecsysError("Choose the catalog table to upload.")
            table = usecases.Upload(table_file.name, table_file.getvalue())
            images = None if zip_file is None else \
                usecases.Upload(zip_file.name, zip_file.getvalue())
        else:
            if not table_path.strip():
                raise RecsysError("Give the path of the catalog table.")
            table = Path(table_path.strip())
            images = Path(images_path.strip()) if images_path.strip() else None
        if previewed:
            show_catalog_preview(usecases.preview_catalog(
                table, fmt, path_policy=usecases.app_path_policy()))
            return
        rep = with_progress("Importing the catalog", "import_catalog", table,
                            images, fmt=fmt, dataset=name, on_error=on_error,
                            columns={k: v for k, v in mapping.items() if v.strip()} or None,
                            path_policy=usecases.app_path_policy())
        if "photos unpacked" in rep.details:
            st.caption(f"Unpacked {rep.details['photos unpacked']:,} photos.")
        show_download_summary(rep)
        show_report(rep)
        if not rep.refused:
            components.open_dataset_button(name)
            st.info("Next: simulate shoppers for it (next tab), then align the encoder "
                    "(Visual search page) and train a model (Train page).")
    except RecsysError as exc:
        components.error_box(exc, "Import failed, nothing was changed")


def embed_section() -> None:
    """Embed the chosen dataset's photos and texts, here or on a Ray cluster (the resumable
    shards of `embed --engine ray`: a stopped run goes on where it stopped)."""
    dataset = state.current_dataset()
    with st.expander("Embed the catalog (photos and texts), here or on a Ray cluster"):
        st.caption("Photos by URL are downloaded by the import above; embedding is the slow "
                   "step for a big catalog, and a Ray cluster spreads it over its machines. "
                   f"Dataset: **{dataset or '(none)'}**.")
        use_ray = st.toggle("Run on a Ray cluster", key="emb_ray",
                            help="Off: on this machine. On: Ray Data encoder actors; empty "
                                 "address = a local Ray instance.")
        address = st.text_input("Ray address (HOST:PORT, ray://HOST:PORT or auto)",
                                key="emb_ray_address", disabled=not use_ray,
                                placeholder="head-node:6379")
        force = st.checkbox("Embed every item again (not only new or changed ones)",
                            key="emb_force")
        if not st.button("Embed", key="emb_go", disabled=not dataset):
            return
        try:
            rep = with_progress("Embedding", "embed", align=True, force=force,
                                engine="ray" if use_ray else "local",
                                ray_address=(address.strip() or None) if use_ray else None,
                                dataset=dataset)
            st.success(f"Embedded {rep.embedded.get('image', 0):,} photos and "
                       f"{rep.embedded.get('text', 0):,} texts of '{dataset}' "
                       f"({sum(rep.unchanged.values()):,} vectors unchanged) in "
                       f"{rep.seconds:,.1f} s.")
        except RecsysError as exc:
            components.error_box(exc, "Embedding stopped")


def import_interactions_tab() -> None:
    """An interaction log, uploaded or from a path on this machine."""
    st.markdown("A log of who did what: CSV with user, item, event (view/cart/purchase), "
                "timestamp; or the MMRec `.inter` files / Baby `train/val/test.json` of "
                f"`{config.shared_datasets_dir() / 'amazon_mmrec'}` (their split is kept).")
    paths_note()
    source = st.radio("File", ["Upload", "Path on this machine"], horizontal=True,
                      key="inter_source")
    with st.form("inter_form"):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Dataset name", value=state.current_dataset() or "my-log",
                             help="An existing catalog dataset gets these shoppers; a new name "
                                  "creates an interaction-only dataset.")
        fmt = c2.selectbox("Format", ["csv", "mmrec", "json", "ga4", "shopify-orders"],
                           help="ga4: a GA4 BigQuery export (NDJSON or Parquet); "
                                "shopify-orders: a Shopify orders CSV export (customer e-mails "
                                "are kept only as salted hashes).")
        on_error = c3.selectbox("Bad rows", ["skip", "refuse"], key="inter_on_error")
        log_file, log_path = None, ""
        if source == "Upload":
            log_file = st.file_uploader("Interaction file", type=["csv", "inter", "json", "tsv",
                                                                  "txt", "ndjson", "jsonl",
                                                                  "parquet"])
        else:
            log_path = st.text_input("Path", placeholder="/path/to/baby.inter or "
                                                         "/path/to/baby/train.json")
        append = st.checkbox("Add to the dataset's existing interactions (otherwise replace them)")
        replace = st.checkbox(
            "Replace even if this removes interactions", key="inter_replace",
            help="Without this, an import that would leave the dataset with fewer interactions "
                 "than it has (a shorter file, a file of unknown items) is refused and nothing "
                 "changes. Tick it to confirm that the dataset's interactions are to be replaced "
                 "by this file's.")
        submitted = st.form_submit_button("Import interactions", type="primary")
    if not submitted:
        return
    try:
        if log_file is not None:
            source = usecases.Upload(log_file.name, log_file.getvalue())
        elif log_path.strip():
            source = Path(log_path.strip())
        else:
            raise RecsysError("Upload an interaction file or give its path.")
        rep = with_progress("Importing interactions", "import_interactions",
                            source, fmt=fmt, dataset=name, on_error=on_error, append=append,
                            replace=replace, path_policy=usecases.app_path_policy())
        show_report(rep)
    except RecsysError as exc:
        components.error_box(exc, "Import failed, nothing was changed")


def simulate_tab() -> None:
    """Simulated shoppers for a catalog (replacing its interactions, after a confirmation)."""
    st.markdown("Shoppers for a catalog without any: each has tastes over categories, colours, "
                "brands and visual style; sessions of views lead to carts and purchases (see the "
                "README for the model). It replaces the dataset's shoppers and interactions.")
    sizes = {d["name"]: d for d in usecases.status(store)["datasets"]}   # fresh after imports
    names = [n for n, d in sizes.items() if d["items"] > 0]
    if not names:
        st.caption("Import a catalog first.")
        return
    c1, c2, c3 = st.columns(3)
    current = state.current_dataset()
    name = c1.selectbox("Catalog", names, index=names.index(current) if current in names else 0)
    users = c2.number_input("Shoppers", 10, 100_000, 2000, 100, key="sim_users")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 0)
    has = sizes[name]["interactions"]
    ok = st.checkbox(f"Replace the {has:,} interactions '{name}' has now",
                     key="sim_replace") if has else True
    if st.button("Simulate", type="primary", disabled=not ok):
        try:
            info = with_progress("Simulating shoppers", "simulate", int(users), int(seed),
                                 dataset=name)
            st.success(f"{info['users']:,} shoppers with {info['interactions']:,} events "
                       f"({plural(info['views'], 'view')}, {plural(info['carts'], 'cart')}, "
                       f"{plural(info['purchases'], 'purchase')}) on {info['items_touched']:,} "
                       "products.")
        except RecsysError as exc:
            components.error_box(exc, "Simulation failed")


def demo_tab(names: list[str]) -> None:
    """The built-in demo catalog, built or rebuilt."""
    st.markdown("The built-in demo: a few hundred drawn products (clothes, shoes, bags, "
                "accessories) with titles, descriptions and simulated shoppers. Made from code, "
                "no download.")
    c1, c2 = st.columns(2)
    n_items = c1.number_input("Products", 24, 2000, 320, 8)
    n_users = c2.number_input("Shoppers", 10, 20_000, 600, 50)
    exists = "demo" in names
    sure = st.checkbox("Rebuild it (replaces the demo's products, shoppers and runs)") \
        if exists else True
    if st.button("Build the demo catalog", disabled=not sure):
        try:
            with_progress("Building the demo", "init_demo", int(n_items),
                          int(n_users), force=exists)
            components.open_dataset_button("demo")
        except RecsysError as exc:
            components.error_box(exc, "Demo failed")


def myntra_offer(names: list[str]) -> None:
    """One click to a real catalog, when the Myntra sample sits in the shared datasets folder
    and is not loaded yet."""
    found = usecases.find_myntra_sample()
    if found is None or "myntra" in names:
        return
    with st.container(border=True):
        st.markdown(f"**The Myntra sample is here**: 9,583 real products with photos (Kaggle "
                    f"*Fashion Product Images (Small)*), in `{found}`. Load it with 2,000 "
                    "simulated shoppers, in one click.")
        if st.button("Load the Myntra sample", type="primary", key="myntra_one_click",
                     icon=":material/download:"):
            load_myntra(None, 2000)


def load_myntra(folder: str | None, users: int) -> None:
    """Run the loader with progress, then offer the next steps."""
    try:
        info = with_progress("Loading the Myntra sample", "myntra", folder, users=int(users),
                             path_policy=usecases.app_path_policy())
    except RecsysError as exc:
        components.error_box(exc, "Nothing was loaded")
        return
    state.set_dataset(info["dataset"])
    # the datasets table above was drawn before the load: show it again with the new dataset,
    # the messages kept for the rerun
    st.session_state[FLASH] = [
        ("success", f"Loaded '{info['dataset']}': {info['items']:,} products and "
                    f"{info['users']:,} simulated shoppers ({info['interactions']:,} events) in "
                    f"{info['seconds']:.0f} s."),
        ("info", "Next: Visual search and the fusion models need item vectors. Open Visual "
                 "search (a button there aligns the encoder and embeds the photos, a few "
                 "minutes), or train a model on the Train page, which does it first.")]
    st.rerun()


def samples_tab() -> None:
    """The Myntra sample from a folder the user names (styles.csv + images/)."""
    st.markdown("The Kaggle *Fashion Product Images (Small)* sample by Param Aggarwal (products "
                "scraped from myntra.com): a folder with `styles.csv` and `images/`. Its products "
                "with a photo are imported as the dataset `myntra`, and shoppers are simulated "
                "for them (they replace that dataset's shoppers if it exists).")
    paths_note()
    default = usecases.find_myntra_sample()
    c1, c2 = st.columns([3, 1])
    folder = c1.text_input("Folder", value=str(default) if default else "",
                           placeholder="/path/to/myntra_fashion", key="myntra_folder")
    users = c2.number_input("Shoppers", 10, 100_000, 2000, 100, key="myntra_users")
    if st.button("Load the Myntra sample", key="myntra_load", disabled=not folder.strip()):
        typed = folder.strip()         # the server's own default is not a typed path
        load_myntra(None if default and typed == str(default) else typed, int(users))


def delete_tab(names: list[str]) -> None:
    """Delete a dataset after typing its name."""
    if not names:
        st.caption("Nothing to delete.")
        return
    name = st.selectbox("Dataset", names, key="del_name")
    typed = st.text_input(f"Type **{name}** to confirm: its products, shoppers, "
                          "interactions, vectors, runs and their files (models, search indexes) are "
                          "deleted.", key="del_typed")
    if st.button("Delete dataset", type="primary", disabled=typed.strip() != name):
        usecases.delete_dataset(store, name, confirm=True)
        st.cache_data.clear()
        st.success(f"Deleted '{name}'.")
        st.rerun()


def import_features_section() -> None:
    """Bring your own item vectors (issue-modal): a .npy with its id mapping, or a table."""
    dataset = state.current_dataset()
    st.subheader("Item features you bring")
    if not dataset:
        st.caption("Choose or import a dataset first.")
        return
    current = usecases.list_modalities(store, dataset)
    if current:
        st.dataframe(pd.DataFrame(current)[["modality", "dim", "items", "spec", "imported"]],
                     hide_index=True)
    st.markdown(f"Precomputed vectors for the items of **{dataset}**, as a modality the "
                "content and fusion models use by name: a `.npy` matrix with its id mapping "
                "(MMRec's `image_feat.npy` / `text_feat.npy` with `i_id_mapping.csv`; without "
                "a mapping, row *r* is item *r*), or a Parquet / CSV table with an id column "
                "and a vector column. Re-importing a modality replaces it.")
    paths_note()
    with st.form("features_form"):
        c1, c2 = st.columns(2)
        modality = c1.text_input("Modality name", key="feat_modality",
                                 placeholder="e.g. image, text, style",
                                 help="Lower-case letters, digits, - and _. A name the dataset "
                                      "has already (image, text...) replaces those vectors "
                                      "for the models; search keeps its encoder's.")
        on_error = c2.selectbox("Bad rows", ["skip", "refuse"], key="feat_on_error")
        u1, u2 = st.columns(2)
        upload = u1.file_uploader("Features (.npy, .parquet, .csv)",
                                  type=["npy", "parquet", "csv", "tsv"], key="feat_file")
        ids_upload = u2.file_uploader("Id mapping of a .npy (optional)",
                                      type=["csv", "tsv", "txt"], key="feat_ids")
        p1, p2 = st.columns(2)
        path = p1.text_input("...or a path on this machine", key="feat_path",
                             placeholder="/path/to/baby/image_feat.npy")
        ids_path = p2.text_input("Id mapping path (optional)", key="feat_ids_path",
                                 placeholder="default: i_id_mapping.csv beside the file")
        submitted = st.form_submit_button("Import features", type="primary")
    if not submitted:
        return
    try:
        if upload is not None:
            source = usecases.Upload(upload.name, upload.getvalue())
            ids = None if ids_upload is None else \
                usecases.Upload(ids_upload.name, ids_upload.getvalue())
        elif path.strip():
            source = Path(path.strip())
            ids = Path(ids_path.strip()) if ids_path.strip() else None
        else:
            raise RecsysError("Upload a feature file or give its path.")
        rep = with_progress("Importing features", "import_features", source,
                            modality.strip(), dataset=dataset, ids=ids, on_error=on_error,
                            path_policy=usecases.app_path_policy())
        show_report(rep)
        if not rep.refused:
            st.caption(f"{rep.details.get('dimensions')} dimensions; items without a vector: "
                       f"{rep.details.get('items without a vector', 0):,}.")
    except RecsysError as exc:
        components.error_box(exc, "Import failed, nothing was changed")


components.page_setup("Data", "What is in the database, and how to add to it. Every import is "
                              "one transaction: a refused or failed import changes nothing.")
store = resources.get_store()
info = usecases.status(store)
for kind, message in st.session_state.pop(FLASH, []):
    getattr(st, kind)(message)
overview(info)
myntra_offer([d["name"] for d in info["datasets"]])
disk_block()
tabs = st.tabs(["Import a catalog", "Import interactions", "Simulate shoppers", "Demo catalog",
                "Myntra sample", "Delete a dataset"])
with tabs[0]:
    import_catalog_tab()
    embed_section()
with tabs[1]:
    import_interactions_tab()
with tabs[2]:
    simulate_tab()
with tabs[3]:
    demo_tab([d["name"] for d in usecases.status(store)["datasets"]])
with tabs[4]:
    samples_tab()
with tabs[5]:
    delete_tab([d["name"] for d in usecases.status(store)["datasets"]])
import_features_section()
