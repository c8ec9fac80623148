-- Raw billing lines and usage samples move to the columnar store (Parquet
-- files under the data dir or in S3); SQL keeps their catalog. Allocation
-- results are kept as the rollups the reports read.
--
-- Rollup amounts on SQLite are INTEGER ten-thousandths of the currency unit
-- (every ISO 4217 currency has at most four minor digits), so that SUM adds
-- them exactly; the largest amount they hold is 922 trillion. PostgreSQL
-- keeps them as NUMERIC.

-- Every Parquet file of the store: which partition it belongs to, the import
-- that wrote it, and, once a later import replaced it, when. A partition's
-- current snapshot is its files that are not superseded.
CREATE TABLE lake_files (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,           -- billing | usage
    source         TEXT NOT NULL,           -- cur | focus | cost_explorer | demo | a usage source
    month          TEXT NOT NULL,           -- YYYY-MM: billing month, or the month of the usage hours
    path           TEXT NOT NULL UNIQUE,    -- relative to the store's root
    rows           BIGINT NOT NULL,
    bytes          BIGINT NOT NULL,
    batch_id       BIGINT NOT NULL REFERENCES import_batches(id),
    created_at     TEXT NOT NULL,
    superseded_at  TEXT
);
CREATE INDEX lake_files_current ON lake_files (kind, source, month) WHERE superseded_at IS NULL;
CREATE INDEX lake_files_superseded ON lake_files (superseded_at) WHERE superseded_at IS NOT NULL;

-- One row per partition: its version (bumped by every switch, so that a
-- merge that read an older snapshot is refused), its size, and the span of
-- time its rows cover.
CREATE TABLE lake_partitions (
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    month       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    rows        BIGINT NOT NULL,
    first_at    TEXT,
    last_at     TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (kind, source, month)
);

-- One row per allocatee, pool, service (and reason) and month; per service
-- they add up to the month's bill.
CREATE TABLE cost_monthly (
    month            TEXT NOT NULL,
    allocatee        TEXT NOT NULL,
    pool             TEXT NOT NULL,
    service          TEXT NOT NULL,
    currency         TEXT NOT NULL,
    unblended        INTEGER NOT NULL,
    amortized        INTEGER NOT NULL,
    driver           TEXT,
    driver_quantity  REAL,
    reason           TEXT
);
CREATE INDEX cost_monthly_month ON cost_monthly (month, allocatee, pool, service);
CREATE INDEX cost_monthly_allocatee ON cost_monthly (allocatee, month);

CREATE TABLE cost_tenant_monthly (
    month      TEXT NOT NULL,
    allocatee  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  INTEGER NOT NULL,
    amortized  INTEGER NOT NULL,
    PRIMARY KEY (month, allocatee)
);
CREATE INDEX cost_tenant_monthly_allocatee ON cost_tenant_monthly (allocatee, month);

CREATE TABLE cost_service_monthly (
    month      TEXT NOT NULL,
    service    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  INTEGER NOT NULL,
    amortized  INTEGER NOT NULL,
    PRIMARY KEY (month, service)
);

-- Per day and service they add up to the day's bill.
CREATE TABLE cost_service_daily (
    day        TEXT NOT NULL,
    month      TEXT NOT NULL,
    service    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  INTEGER NOT NULL,
    amortized  INTEGER NOT NULL,
    PRIMARY KEY (day, service)
);
CREATE INDEX cost_service_daily_month ON cost_service_daily (month);

CREATE TABLE cost_tenant_daily (
    day        TEXT NOT NULL,
    month      TEXT NOT NULL,
    allocatee  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  INTEGER NOT NULL,
    amortized  INTEGER NOT NULL,
    PRIMARY KEY (day, allocatee)
);
CREATE INDEX cost_tenant_daily_allocatee ON cost_tenant_daily (allocatee, day);
CREATE INDEX cost_tenant_daily_month ON cost_tenant_daily (month);

-- Each tenant's usage of each metric in the month, as the allocation read it.
CREATE TABLE usage_monthly (
    month      TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    metric     TEXT NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (month, tenant_id, metric)
);

-- Bumped by every write that changes what a report shows (results, revenue,
-- cash, tenants, tokens, documents): servers keep answers and token checks
-- in memory while it stays the same.
CREATE TABLE data_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO data_version (id, version) VALUES (1, 0);

-- What an allocation read: the files of its snapshot and the configuration,
-- so that an unchanged month is not allocated again by the scheduler.
ALTER TABLE allocation_runs ADD COLUMN inputs TEXT;

-- Results already stored move to the rollups.
INSERT INTO cost_monthly (month, allocatee, pool, service, currency, unblended, amortized, driver, driver_quantity, reason)
SELECT month, allocatee, pool, service, currency,
       CAST(ROUND(CAST(unblended AS REAL) * 10000) AS INTEGER), CAST(ROUND(CAST(amortized AS REAL) * 10000) AS INTEGER),
       driver, driver_quantity, reason
FROM allocations WHERE day IS NULL;

INSERT INTO cost_tenant_monthly (month, allocatee, currency, unblended, amortized)
SELECT month, allocatee, MIN(currency), SUM(unblended), SUM(amortized) FROM cost_monthly GROUP BY month, allocatee;

INSERT INTO cost_service_monthly (month, service, currency, unblended, amortized)
SELECT month, service, MIN(currency), SUM(unblended), SUM(amortized) FROM cost_monthly GROUP BY month, service;

INSERT INTO cost_service_daily (day, month, service, currency, unblended, amortized)
SELECT day, month, service, MIN(currency),
       SUM(CAST(ROUND(CAST(unblended AS REAL) * 10000) AS INTEGER)), SUM(CAST(ROUND(CAST(amortized AS REAL) * 10000) AS INTEGER))
FROM allocations WHERE day IS NOT NULL GROUP BY day, month, service;

INSERT INTO cost_tenant_daily (day, month, allocatee, currency, unblended, amortized)
SELECT day, month, allocatee, MIN(currency),
       SUM(CAST(ROUND(CAST(unblended AS REAL) * 10000) AS INTEGER)), SUM(CAST(ROUND(CAST(amortized AS REAL) * 10000) AS INTEGER))
FROM allocations WHERE day IS NOT NULL GROUP BY day, month, allocatee;

INSERT INTO usage_monthly (month, tenant_id, metric, value)
SELECT substr(hour, 1, 7), tenant_id, metric, SUM(value) FROM usage_samples GROUP BY substr(hour, 1, 7), tenant_id, metric;

DROP TABLE allocations;
