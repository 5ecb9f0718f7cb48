"""The database schema: its tables, their columns, the columns added since, the table names.

`SCHEMA` runs at every open for writing (`ConnectionPart.__init__`): it creates what is missing
and adds the columns a database made by an older version lacks, so there is no separate
migration step. A new column of an existing table goes into `ADD_COLUMNS`: written into its
CREATE TABLE only, a database made before would never get it.
"""

from __future__ import annotations

SCHEMA_VERSION = "1"

CREATE_TABLES = """
CREATE TABLE IF NOT EXISTS settings (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE IF NOT EXISTS datasets (
    name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,              -- catalog | interactions | demo
    source VARCHAR,
    attribution VARCHAR,
    description VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS items (
    dataset VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    title VARCHAR,
    description VARCHAR,
    gender VARCHAR,
    master_category VARCHAR,
    sub_category VARCHAR,
    article_type VARCHAR,
    base_colour VARCHAR,
    season VARCHAR,
    usage VARCHAR,
    year INTEGER,
    brand VARCHAR,
    price DOUBLE,
    image_path VARCHAR,
    content_hash VARCHAR,
    extra JSON,
    PRIMARY KEY (dataset, item_id)
);

CREATE TABLE IF NOT EXISTS users (
    dataset VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    name VARCHAR,
    segment VARCHAR,
    profile JSON,
    PRIMARY KEY (dataset, user_id)
);

CREATE TABLE IF NOT EXISTS interactions (
    dataset VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    event VARCHAR NOT NULL,             -- view | cart | purchase | rating | interaction
    ts TIMESTAMP,
    weight DOUBLE NOT NULL DEFAULT 1.0,
    split VARCHAR                       -- train | valid | test when the data came with a split
);

CREATE TABLE IF NOT EXISTS embeddings (
    dataset VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    encoder VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    modality VARCHAR NOT NULL,          -- image | text
    content_hash VARCHAR,
    vector FLOAT[] NOT NULL,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (dataset, item_id, encoder, version, modality)
);

CREATE TABLE IF NOT EXISTS encoders (
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    dataset VARCHAR,
    path VARCHAR,
    config JSON,
    metrics JSON,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (name, version)
);

CREATE SEQUENCE IF NOT EXISTS run_ids START 1;

CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY DEFAULT nextval('run_ids'),
    dataset VARCHAR,
    kind VARCHAR NOT NULL,              -- model | encoder | evaluation
    model VARCHAR NOT NULL,
    config JSON,
    status VARCHAR NOT NULL,            -- running | finished | failed | interrupted
    started_at TIMESTAMP DEFAULT current_timestamp,
    finished_at TIMESTAMP,
    seconds DOUBLE,
    artifact_path VARCHAR,
    message VARCHAR
);

CREATE SEQUENCE IF NOT EXISTS job_ids START 1;

CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY DEFAULT nextval('job_ids'),
    kind VARCHAR NOT NULL,              -- embed | train | evaluate | map | ab_test | import ...
    dataset VARCHAR,
    params JSON,
    status VARCHAR NOT NULL,            -- queued | running | finished | failed | stopped |
                                        -- interrupted
    done DOUBLE DEFAULT 0,
    total DOUBLE DEFAULT 1,
    message VARCHAR,
    stage VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    seconds DOUBLE,
    result JSON,
    error VARCHAR
);

CREATE TABLE IF NOT EXISTS run_epochs (
    run_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss DOUBLE,
    val_loss DOUBLE,
    metrics JSON,
    seconds DOUBLE,
    PRIMARY KEY (run_id, epoch)
);

CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,          -- the split protocol the numbers come from
    slice VARCHAR NOT NULL,             -- all | cold_items | short_history ...
    metric VARCHAR NOT NULL,
    k INTEGER,                          -- NULL for metrics without a cut-off (auc, coverage)
    value DOUBLE
);

CREATE TABLE IF NOT EXISTS rerank_metrics (
    run_id INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,
    diversity DOUBLE NOT NULL,          -- MMR level (recsys.recommend.rerank); 0: model's order
    slice VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    k INTEGER,
    value DOUBLE,
    users INTEGER,
    ci_low DOUBLE,
    ci_high DOUBLE,
    baseline VARCHAR,                   -- e.g. "diversity 0": the same model unre-ranked
    gain DOUBLE,
    gain_low DOUBLE,
    gain_high DOUBLE,
    p_value DOUBLE
);
"""

ADD_COLUMNS = """
-- a metric's uncertainty: users measured, bootstrap interval, spread over folds, the gain over
-- a baseline model and the paired test's p-value
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS users INTEGER;     -- users measured
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS ci_low DOUBLE;     -- 95% bootstrap interval
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS ci_high DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS std DOUBLE;        -- over cross-validation folds
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS baseline VARCHAR;  -- the model compared with
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain DOUBLE;       -- value / baseline's - 1
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain_low DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain_high DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS p_value DOUBLE;    -- paired test vs baseline
-- an explicit rating (e.g. 1-5 stars) kept beside the event weight
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS rating DOUBLE;
ALTER TABLE datasets ADD COLUMN IF NOT EXISTS items_rev BIGINT DEFAULT 0;  -- item writes so far
"""
"""Columns added after their table was first created (`ADD COLUMN IF NOT EXISTS`: a no-op on a
database that has them)."""

SCHEMA = CREATE_TABLES + ADD_COLUMNS
"""Everything run at open: the tables, then the added columns."""

TABLES = ("settings", "datasets", "items", "users", "interactions", "embeddings", "encoders",
          "runs", "run_epochs", "metrics", "rerank_metrics", "jobs")
"""The tables `insert_frame` accepts."""

ACTIVE_DATASET = "active_dataset"
"""The settings key naming the active dataset (written only by `Store.set_active_dataset`)."""
