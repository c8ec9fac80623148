-- Tally's schema on SQLite. Money is decimal TEXT (exact, never REAL); times are RFC 3339 UTC TEXT.

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    plan          TEXT,
    discovered    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

-- One row per import: a file, a folder snapshot, a Cost Explorer window.
CREATE TABLE import_batches (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,            -- billing | usage | revenue
    source       TEXT NOT NULL,            -- cur | focus | cost_explorer | demo | usage source
    label        TEXT NOT NULL,            -- file path or window, for people
    scope        TEXT NOT NULL,            -- what it replaced, e.g. months 2026-10
    rows         BIGINT NOT NULL,
    replaced     BIGINT NOT NULL,
    imported_at  TEXT NOT NULL
);

CREATE TABLE cost_lines (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id           BIGINT NOT NULL REFERENCES import_batches(id),
    source             TEXT NOT NULL,
    billing_month      TEXT NOT NULL,      -- YYYY-MM
    usage_start        TEXT NOT NULL,
    usage_end          TEXT NOT NULL,
    payer_account      TEXT NOT NULL,
    usage_account      TEXT NOT NULL,
    service            TEXT NOT NULL CHECK (service <> ''),
    usage_type         TEXT NOT NULL,
    operation          TEXT NOT NULL,
    resource_id        TEXT,
    region             TEXT,
    availability_zone  TEXT,
    line_type          TEXT NOT NULL,
    description        TEXT,
    currency           TEXT NOT NULL,
    unblended          TEXT NOT NULL,
    net_unblended      TEXT NOT NULL,
    amortized          TEXT NOT NULL,
    list_cost          TEXT,
    usage_amount       TEXT NOT NULL,
    usage_unit         TEXT,
    instance_type      TEXT,
    commitment_id      TEXT,
    tags               TEXT NOT NULL,      -- JSON object
    tenant_id          TEXT,
    estimated          INTEGER NOT NULL
);
CREATE INDEX cost_lines_source_month ON cost_lines (source, billing_month);
CREATE INDEX cost_lines_source_start ON cost_lines (source, usage_start);
CREATE INDEX cost_lines_batch ON cost_lines (batch_id);

CREATE TABLE usage_samples (
    batch_id     BIGINT NOT NULL REFERENCES import_batches(id),
    source       TEXT NOT NULL,
    hour         TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        REAL NOT NULL,
    unit         TEXT,
    resource_id  TEXT,
    workload     TEXT
);
CREATE INDEX usage_samples_source_metric_hour ON usage_samples (source, metric, hour);
CREATE INDEX usage_samples_hour ON usage_samples (hour);

CREATE TABLE revenue (
    month       TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    amount      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (month, tenant_id)
);

CREATE TABLE cash_balances (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    as_of       TEXT NOT NULL,
    amount      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    note        TEXT,
    created_at  TEXT NOT NULL
);

-- The result of the latest allocation of each month.
CREATE TABLE allocation_runs (
    month          TEXT PRIMARY KEY,
    source         TEXT NOT NULL,          -- which billing source was allocated
    billed_lines   BIGINT NOT NULL,
    usage_rows     BIGINT NOT NULL,
    rows           BIGINT NOT NULL,
    created_at     TEXT NOT NULL
);

-- Monthly rows (day IS NULL) reconcile to the month's bill per service;
-- daily rows reconcile to each day's bill per service.
CREATE TABLE allocations (
    month            TEXT NOT NULL,
    day              TEXT,
    allocatee        TEXT NOT NULL,        -- tenant id, __idle__, __shared__, __unallocated__
    pool             TEXT NOT NULL,
    service          TEXT NOT NULL,
    currency         TEXT NOT NULL,
    unblended        TEXT NOT NULL,
    amortized        TEXT NOT NULL,
    driver           TEXT,
    driver_quantity  REAL,
    reason           TEXT
);
CREATE INDEX allocations_month_day ON allocations (month, day);
CREATE INDEX allocations_allocatee ON allocations (allocatee, month);

CREATE TABLE allocation_billed (
    month      TEXT NOT NULL,
    service    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  TEXT NOT NULL,
    amortized  TEXT NOT NULL,
    lines      BIGINT NOT NULL,
    PRIMARY KEY (month, service)
);

CREATE TABLE allocation_explanations (
    month                 TEXT NOT NULL,
    allocatee             TEXT NOT NULL,
    pool                  TEXT NOT NULL,
    method                TEXT NOT NULL,
    driver                TEXT,
    driver_quantity       REAL,
    pool_driver_quantity  REAL,
    share                 REAL NOT NULL,
    pool_unblended        TEXT NOT NULL,
    allocated_unblended   TEXT NOT NULL,
    pool_amortized        TEXT NOT NULL,
    allocated_amortized   TEXT NOT NULL,
    PRIMARY KEY (month, allocatee, pool)
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT NOT NULL UNIQUE,     -- SHA-256 of the token; the token itself is never stored
    role         TEXT NOT NULL,
    tenant_id    TEXT,
    label        TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT
);

CREATE TABLE job_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job            TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    outcome        TEXT NOT NULL,
    rows_written   BIGINT NOT NULL DEFAULT 0,
    api_requests   BIGINT NOT NULL DEFAULT 0,
    error          TEXT,
    detail         TEXT,
    holder         TEXT
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);

-- One replica at a time runs a job: the lease holder, until it expires.
CREATE TABLE job_leases (
    job          TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

-- Paid API requests per source and calendar month (Cost Explorer: $0.01 each).
CREATE TABLE api_request_counts (
    source    TEXT NOT NULL,
    month     TEXT NOT NULL,
    requests  BIGINT NOT NULL,
    PRIMARY KEY (source, month)
);

-- Key-value documents: the price catalogue snapshot, collected recommendations.
CREATE TABLE documents (
    name        TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
