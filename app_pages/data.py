"""Data: datasets and table sizes; import catalogs and interactions; simulate shoppers."""

import io
from pathlib import Path

import streamlit as st

from recsys import config
from recsys.datasets import (extract_images, import_catalog, import_interactions, save_upload,
                             upload_dir)
from recsys.demo import build_demo
from recsys.errors import RecsysError
from recsys.simulate import SimulationConfig, simulate_into
from ui import components, resources

components.page_setup("Data", "What is in the database, and how to add to it. Every import is "
                              "one transaction: a refused or failed import changes nothing.")
store = resources.get_store()


def show_report(rep) -> None:
    """An import report: counts, then each kind of skipped row with examples."""
    if rep.refused:
        st.error(f"Refused: nothing was imported into '{rep.dataset}' ({rep.skipped:,} problem "
                 "rows). Fix them, or choose 'skip' to leave them out.")
    else:
        st.success(f"Imported {rep.imported:,} {rep.kind} into '{rep.dataset}' "
                   f"({rep.rows_read:,} rows read, {rep.skipped:,} skipped).")
    for reason, count in rep.problems.items():
        st.warning(f"{reason}: {count:,} rows, e.g. {'; '.join(rep.examples.get(reason, []))}")


def refresh() -> None:
    st.cache_data.clear()


def with_progress(label: str, step, *args, **kwargs):
    """Run a recsys step with a progress bar, then drop cached data that it may have changed."""
    panel = components.ProgressPanel(label)
    result = step(*args, progress=panel, **kwargs)
    panel.done(f"{label}: done")
    refresh()
    return result


# --- overview ----------------------------------------------------------------------------------
datasets = store.datasets()
st.subheader("Datasets")
if datasets.empty:
    st.info("The database is empty. Build the demo catalog below, or import your own.")
else:
    st.dataframe(datasets[["name", "kind", "n_items", "n_images", "n_users", "n_interactions",
                           "source", "created_at"]], hide_index=True,
                 column_config={"n_items": "items", "n_images": "photos", "n_users": "users",
                                "n_interactions": "interactions"})
    c1, c2 = st.columns([3, 1])
    c1.caption(f"Database: `{Path(store.path).resolve()}` · default dataset for new sessions "
               f"and the CLI: **{store.active_dataset()}**")
    if c2.button("Set as default", disabled=not components.current_dataset(),
                 help="Make the dataset chosen in the sidebar the default for new sessions and "
                      "for the command line."):
        store.set_setting("active_dataset", components.current_dataset())
        st.rerun()

tabs = st.tabs(["Import a catalog", "Import interactions", "Simulate shoppers", "Demo catalog",
                "Delete a dataset"])

# --- catalog -----------------------------------------------------------------------------------
with tabs[0]:
    st.markdown("A CSV or Parquet table with an id column, text columns (title, description, "
                "category, colour...) and an image file name or path column, plus the photos: a "
                "zip file or a folder on this machine. The Kaggle *Fashion Product Images "
                "(Small)* layout (`styles.csv` + `images/`) is the `myntra` format.")
    with st.form("catalog_form"):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Dataset name", value="my-catalog")
        fmt = c2.selectbox("Format", ["generic", "myntra"])
        on_error = c3.selectbox("Bad rows", ["skip", "refuse"],
                                help="skip: import the good rows and report the others; "
                                     "refuse: import nothing if any row is bad.")
        source = st.radio("Files", ["Upload", "Folder path on this machine"], horizontal=True)
        u1, u2 = st.columns(2)
        table_file = u1.file_uploader("Catalog table (CSV or Parquet)",
                                      type=["csv", "parquet", "tsv", "txt"])
        zip_file = u2.file_uploader("Photos (zip)", type=["zip"])
        p1, p2 = st.columns(2)
        table_path = p1.text_input("Table path", placeholder="/path/to/styles.csv")
        images_path = p2.text_input("Images folder", placeholder="/path/to/images")
        with st.expander("Column names (generic format; found automatically when they use "
                         "common names)"):
            m = st.columns(4)
            mapping = {"item_id": m[0].text_input("id column"),
                       "title": m[1].text_input("title column"),
                       "description": m[2].text_input("description column"),
                       "image_path": m[3].text_input("image column")}
        submitted = st.form_submit_button("Import catalog", type="primary")
    if submitted:
        try:
            if source == "Upload":
                if table_file is None:
                    raise RecsysError("Choose the catalog table to upload.")
                folder = upload_dir(store, name)
                table = save_upload(table_file.getvalue(), folder, table_file.name)
                images = None
                if zip_file is not None:
                    images = folder / "images"
                    n = extract_images(io.BytesIO(zip_file.getvalue()), images)
                    st.caption(f"Unpacked {n:,} photos.")
            else:
                if not table_path.strip():
                    raise RecsysError("Give the path of the catalog table.")
                upload_dir(store, name)  # validates the name
                table, images = Path(table_path.strip()), (Path(images_path.strip())
                                                           if images_path.strip() else None)
            rep = with_progress("Importing the catalog", import_catalog, store, table, images,
                                fmt=fmt, dataset=name, on_error=on_error,
                                columns={k: v for k, v in mapping.items() if v.strip()} or None)
            show_report(rep)
            if not rep.refused:
                components.open_dataset_button(name)
                st.info("Next: simulate shoppers for it (next tab), then align the encoder "
                        "(Visual search page) and train a model (Train page).")
        except RecsysError as exc:
            components.error_box(exc, "Import failed, nothing was changed")

# --- interactions ------------------------------------------------------------------------------
with tabs[1]:
    st.markdown("A log of who did what: CSV with user, item, event (view/cart/purchase), "
                "timestamp; or the MMRec `.inter` files / Baby `train/val/test.json` of "
                f"`{config.shared_datasets_dir() / 'amazon_mmrec'}` (their split is kept).")
    with st.form("inter_form"):
        c1, c2, c3 = st.columns(3)
        iname = c1.text_input("Dataset name", value=components.current_dataset() or "my-log",
                              help="An existing catalog dataset gets these shoppers; a new name "
                                   "creates an interaction-only dataset.")
        ifmt = c2.selectbox("Format", ["csv", "mmrec", "json"])
        ion_error = c3.selectbox("Bad rows", ["skip", "refuse"], key="inter_on_error")
        log_file = st.file_uploader("Interaction file", type=["csv", "inter", "json", "tsv",
                                                              "txt"])
        log_path = st.text_input("...or a path on this machine",
                                 placeholder="/path/to/baby.inter or /path/to/baby/train.json")
        append = st.checkbox("Add to the dataset's existing interactions (otherwise replace them)")
        isubmit = st.form_submit_button("Import interactions", type="primary")
    if isubmit:
        try:
            if log_file is not None:
                path = save_upload(log_file.getvalue(), upload_dir(store, iname), log_file.name)
            elif log_path.strip():
                path = Path(log_path.strip())
            else:
                raise RecsysError("Upload an interaction file or give its path.")
            rep = with_progress("Importing interactions", import_interactions, store, path,
                                ifmt, dataset=iname, on_error=ion_error, append=append)
            show_report(rep)
        except RecsysError as exc:
            components.error_box(exc, "Import failed, nothing was changed")

# --- simulate ----------------------------------------------------------------------------------
with tabs[2]:
    st.markdown("Shoppers for a catalog without any: each has tastes over categories, colours, "
                "brands and visual style; sessions of views lead to carts and purchases (see the "
                "README for the model). It replaces the dataset's shoppers and interactions.")
    sizes = store.datasets().set_index("name")      # fresh: an import above may have added one
    names = [n for n in sizes.index if int(sizes.loc[n, "n_items"]) > 0]
    if not names:
        st.caption("Import a catalog first.")
    else:
        c1, c2, c3 = st.columns(3)
        current = components.current_dataset()
        sname = c1.selectbox("Catalog", names,
                             index=names.index(current) if current in names else 0)
        users = c2.number_input("Shoppers", 10, 100_000, 2000, 100, key="sim_users")
        seed = c3.number_input("Seed", 0, 2**31 - 1, 0)
        has = int(sizes.loc[sname, "n_interactions"])
        ok = True
        if has:
            ok = st.checkbox(f"Replace the {has:,} interactions '{sname}' has now",
                             key="sim_replace")
        if st.button("Simulate", type="primary", disabled=not ok):
            try:
                info = with_progress("Simulating shoppers", simulate_into, store, sname,
                                     SimulationConfig(users=int(users), seed=int(seed)))
                st.success(f"{info['users']:,} shoppers with {info['interactions']:,} events "
                           f"({info['views']:,} views, {info['carts']:,} carts, "
                           f"{info['purchases']:,} purchases) on {info['items_touched']:,} "
                           "products.")
            except RecsysError as exc:
                components.error_box(exc, "Simulation failed")

# --- demo --------------------------------------------------------------------------------------
with tabs[3]:
    st.markdown("The built-in demo: a few hundred drawn products (clothes, shoes, bags, "
                "accessories) with titles, descriptions and simulated shoppers. Made from code, "
                "no download.")
    c1, c2 = st.columns(2)
    n_items = c1.number_input("Products", 24, 2000, 320, 8)
    n_users = c2.number_input("Shoppers", 10, 20_000, 600, 50)
    exists = "demo" in store.dataset_names()
    sure = st.checkbox("Rebuild it (replaces the demo's products, shoppers and runs)") \
        if exists else True
    if st.button("Build the demo catalog", disabled=not sure):
        try:
            with_progress("Building the demo", build_demo, store, int(n_items), int(n_users),
                          force=exists)
            components.open_dataset_button("demo")
        except RecsysError as exc:
            components.error_box(exc, "Demo failed")

# --- delete ------------------------------------------------------------------------------------
with tabs[4]:
    names = store.dataset_names()
    if not names:
        st.caption("Nothing to delete.")
    else:
        dname = st.selectbox("Dataset", names, key="del_name")
        typed = st.text_input(f"Type **{dname}** to confirm: its products, shoppers, "
                              "interactions, vectors and runs are deleted.", key="del_typed")
        if st.button("Delete dataset", type="primary", disabled=typed.strip() != dname):
            store.delete_dataset(dname)
            refresh()
            st.success(f"Deleted '{dname}'.")
            st.rerun()
