-- Raw billing lines and usage samples move to the columnar store (Parquet
-- files under the data dir or in S3); SQL keeps their catalog. Allocation
-- results are kept as the rollups the reports read.
--
-- Amounts are NUMERIC (exact); on SQLite the rollups keep INTEGER
-- ten-thousandths of the currency unit.

-- Every Parquet file of the store: which partition it belongs to, the import
-- that wrote it, and, once a later import replaced it, when. A partition's
-- current snapshot is its files that are not superseded.
CREATE TABLE lake_files (
    id             BIGSERIAL PRIMARY KEY,
    kind           TEXT NOT NULL,           -- billing | usage
    source         TEXT NOT NULL,           -- cur | focus | cost_explorer | demo | a usage source
    month          TEXT NOT NULL,           -- YYYY-MM: billing month, or the month of the usage hours
    path           TEXT NOT NULL UNIQUE,    -- relative to the store's root
    rows           BIGINT NOT NULL,
    bytes          BIGINT NOT NULL,
    batch_id       BIGINT NOT NULL REFERENCES import_batches(id),
    created_at     TIMESTAMPTZ NOT NULL,
    superseded_at  TIMESTAMPTZ
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
    first_at    TIMESTAMPTZ,
    last_at     TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL,
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
    unblended        NUMERIC NOT NULL,
    amortized        NUMERIC NOT NULL,
    driver           TEXT,
    driver_quantity  DOUBLE PRECISION,
    reason           TEXT
);
CREATE INDEX cost_monthly_month ON cost_monthly (month, allocatee, pool, service);
CREATE INDEX cost_monthly_allocatee ON cost_monthly (allocatee, month);

CREATE TABLE cost_tenant_monthly (
    month      TEXT NOT NULL,
    allocatee  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  NUMERIC NOT NULL,
    amortized  NUMERIC NOT NULL,
    PRIMARY KEY (month, allocatee)
);
CREATE INDEX cost_tenant_monthly_allocatee ON cost_tenant_monthly (allocatee, month);

CREATE TABLE cost_service_monthly (
    month      TEXT NOT NULL,
    service    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  NUMERIC NOT NULL,
    amortized  NUMERIC NOT NULL,
    PRIMARY KEY (month, service)
);

-- Per day and service they add up to the day's bill.
CREATE TABLE cost_service_daily (
    day        DATE NOT NULL,
    month      TEXT NOT NULL,
    service    TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  NUMERIC NOT NULL,
    amortized  NUMERIC NOT NULL,
    PRIMARY KEY (day, service)
);
CREATE INDEX cost_service_daily_month ON cost_service_daily (month);

CREATE TABLE cost_tenant_daily (
    day        DATE NOT NULL,
    month      TEXT NOT NULL,
    allocatee  TEXT NOT NULL,
    currency   TEXT NOT NULL,
    unblended  NUMERIC NOT NULL,
    amortized  NUMERIC NOT NULL,
    PRIMARY KEY (day, allocatee)
);
CREATE INDEX cost_tenant_daily_allocatee ON cost_tenant_daily (allocatee, day);
CREATE INDEX cost_tenant_daily_month ON cost_tenant_daily (month);

-- Each tenant's usage of each metric in the month, as the allocation read it.
CREATE TABLE usage_monthly (
    month      TEXT NOT NULL,
    tenant_id  TEXT NOT NULL,
    metric     TEXT NOT NULL,
    value      DOUBLE PRECISION NOT NULL,
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
SELECT month, allocatee, pool, service, currency, unblended, amortized, driver, driver_quantity, reason
FROM allocations WHERE day IS NULL;

INSERT INTO cost_tenant_monthly (month, allocatee, currency, unblended, amortized)
SELECT month, allocatee, MIN(currency), SUM(unblended), SUM(amortized) FROM cost_monthly GROUP BY month, allocatee;

INSERT INTO cost_service_monthly (month, service, currency, unblended, amortized)
SELECT month, service, MIN(currency), SUM(unblended), SUM(amortized) FROM cost_monthly GROUP BY month, service;

INSERT INTO cost_service_daily (day, month, service, currency, unblended, amortized)
SELECT day, month, service, MIN(currency), SUM(unblended), SUM(amortized)
FROM allocations WHERE day IS NOT NULL GROUP BY day, month, service;

INSERT INTO cost_tenant_daily (day, month, allocatee, currency, unblended, amortized)
SELECT day, month, allocatee, MIN(currency), SUM(unblended), SUM(amortized)
FROM allocations WHERE day IS NOT NULL GROUP BY day, month, allocatee;

INSERT INTO usage_monthly (month, tenant_id, metric, value)
SELECT TO_CHAR(hour AT TIME ZONE 'UTC', 'YYYY-MM'), tenant_id, metric, SUM(value) FROM usage_samples GROUP BY 1, 2, 3;

-- The reporting views move to the rollups (same names and columns).
DROP VIEW report_daily_cost_by_service;
DROP VIEW report_unassigned;
DROP VIEW report_reconciliation;
DROP VIEW report_reconciliation_by_service;
DROP VIEW report_tenant_unit_costs;
DROP VIEW report_cost_by_tenant_pool;
DROP VIEW report_runway;
DROP VIEW report_monthly_burn;
DROP TABLE allocations;

CREATE VIEW report_monthly_burn AS
WITH aws AS (
    SELECT month, MIN(currency) AS currency, SUM(unblended) AS aws_cost, SUM(amortized) AS aws_cost_amortized
    FROM cost_service_monthly
    GROUP BY month
), rev AS (
    SELECT month, SUM(amount) AS revenue FROM revenue GROUP BY month
), other AS (
    SELECT COALESCE(SUM((e ->> 'amount')::NUMERIC), 0) AS amount
    FROM documents d, jsonb_array_elements(d.body::JSONB) e
    WHERE d.name = 'finance:monthly_costs'
), m AS (
    SELECT aws.*,
           (aws.month || '-01')::DATE AS first_day,
           ((aws.month || '-01')::DATE + INTERVAL '1 month')::DATE AS end_day
    FROM aws
), costed AS (
    SELECT m.*,
           m.end_day <= CURRENT_DATE AS complete,
           -- The month in progress carries the other costs of the days elapsed.
           CASE WHEN m.end_day <= CURRENT_DATE THEN other.amount
                ELSE ROUND(other.amount * LEAST(GREATEST(CURRENT_DATE - m.first_day, 0), m.end_day - m.first_day)
                           / (m.end_day - m.first_day), 2)
           END AS other_costs,
           COALESCE(rev.revenue, 0) AS revenue
    FROM m CROSS JOIN other LEFT JOIN rev ON rev.month = m.month
)
SELECT month,
       (first_day::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       complete,
       currency,
       aws_cost,
       aws_cost_amortized,
       other_costs,
       aws_cost + other_costs AS total_costs,
       revenue,
       aws_cost + other_costs - revenue AS net_burn,
       CASE WHEN revenue = 0 THEN NULL ELSE ROUND((revenue - aws_cost) * 100 / revenue, 1) END AS gross_margin_percent
FROM costed;

CREATE VIEW report_runway AS
WITH bal AS (
    SELECT as_of, amount, currency FROM cash_balances ORDER BY as_of DESC, id DESC LIMIT 1
), complete AS (
    SELECT * FROM report_monthly_burn WHERE complete
), recent AS (
    SELECT net_burn FROM complete ORDER BY month DESC LIMIT 3
), avg AS (
    SELECT COUNT(*) AS months, COALESCE(ROUND(AVG(net_burn), 2), 0) AS monthly_net_burn FROM recent
), spent AS (
    SELECT COALESCE(SUM(c.net_burn), 0) AS amount FROM complete c, bal WHERE c.time::DATE >= bal.as_of
), run AS (
    SELECT bal.as_of, bal.amount AS balance, bal.currency, bal.amount - spent.amount AS cash_now, avg.monthly_net_burn, avg.months
    FROM bal, spent, avg
)
SELECT as_of AS balance_date,
       balance,
       currency,
       cash_now,
       monthly_net_burn,
       CASE WHEN monthly_net_burn > 0 THEN ROUND(GREATEST(cash_now, 0) / monthly_net_burn, 1) END AS runway_months,
       CASE WHEN monthly_net_burn > 0
            THEN CURRENT_DATE + ROUND(ROUND(GREATEST(cash_now, 0) / monthly_net_burn, 1) * 30.4375)::INTEGER
       END AS runs_out_on,
       months > 0 AND monthly_net_burn <= 0 AS profitable
FROM run;

CREATE VIEW report_cost_by_tenant_pool AS
SELECT a.month,
       ((a.month || '-01')::DATE::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       a.allocatee,
       COALESCE(t.display_name, a.allocatee) AS name,
       t.id IS NOT NULL AS is_tenant,
       a.pool,
       MIN(a.currency) AS currency,
       SUM(a.unblended) AS unblended,
       SUM(a.amortized) AS amortized
FROM cost_monthly a
LEFT JOIN tenants t ON t.id = a.allocatee
GROUP BY a.month, a.allocatee, t.id, t.display_name, a.pool;

CREATE VIEW report_tenant_unit_costs AS
WITH cost AS (
    SELECT month, allocatee AS tenant_id,
           SUM(unblended) AS cost,
           SUM(amortized) AS cost_amortized,
           SUM(unblended) FILTER (WHERE pool = 'transfer') AS transfer_cost,
           SUM(unblended) FILTER (WHERE pool = 'rds_storage') AS rds_storage_cost,
           SUM(unblended) FILTER (WHERE pool = 'eks_compute') AS eks_compute_cost
    FROM cost_monthly
    GROUP BY month, allocatee
), usage AS (
    SELECT month, tenant_id,
           SUM(value) FILTER (WHERE metric = 'requests') AS requests,
           SUM(value) FILTER (WHERE metric = 'egress_gb') AS egress_gb,
           SUM(value) FILTER (WHERE metric = 'db_storage_gb') AS db_gb_hours
    FROM usage_monthly
    GROUP BY 1, 2
), vcpu AS (
    SELECT month, allocatee AS tenant_id, driver_quantity AS vcpu_hours
    FROM allocation_explanations
    WHERE pool = 'eks_compute'
), joined AS (
    SELECT t.id AS tenant_id, t.display_name AS name, t.plan, c.month,
           c.cost, c.cost_amortized,
           COALESCE(r.amount, 0) AS revenue,
           c.transfer_cost, c.rds_storage_cost, c.eks_compute_cost,
           COALESCE(u.requests, 0) AS requests,
           COALESCE(u.egress_gb, 0) AS egress_gb,
           COALESCE(u.db_gb_hours, 0)
               / (EXTRACT(EPOCH FROM (((c.month || '-01')::DATE + INTERVAL '1 month') - (c.month || '-01')::DATE)) / 3600) AS db_gb_months,
           COALESCE(v.vcpu_hours, 0) AS vcpu_hours
    FROM cost c
    JOIN tenants t ON t.id = c.tenant_id
    LEFT JOIN revenue r ON r.month = c.month AND r.tenant_id = c.tenant_id
    LEFT JOIN usage u ON u.month = c.month AND u.tenant_id = c.tenant_id
    LEFT JOIN vcpu v ON v.month = c.month AND v.tenant_id = c.tenant_id
)
SELECT month,
       ((month || '-01')::DATE::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       tenant_id, name, plan,
       cost, cost_amortized, revenue,
       revenue - cost AS gross_margin,
       CASE WHEN revenue = 0 THEN NULL ELSE ROUND((revenue - cost) * 100 / revenue, 1) END AS gross_margin_percent,
       requests, egress_gb, db_gb_months, vcpu_hours,
       CASE WHEN requests > 0 THEN ROUND(cost * 1000 / requests::NUMERIC, 4) END AS cost_per_1000_requests,
       CASE WHEN egress_gb > 0 THEN ROUND(COALESCE(transfer_cost, 0) / egress_gb::NUMERIC, 4) END AS transfer_per_gb_egress,
       CASE WHEN db_gb_months > 0 THEN ROUND(COALESCE(rds_storage_cost, 0) / db_gb_months::NUMERIC, 4) END AS db_storage_per_gb_month,
       CASE WHEN vcpu_hours > 0 THEN ROUND(COALESCE(eks_compute_cost, 0) / vcpu_hours::NUMERIC, 4) END AS eks_per_vcpu_hour
FROM joined;

-- Per service, as the API reconciles: the bill rounded to the cent against
-- the sum of the allocated rows (which are in cents).
CREATE VIEW report_reconciliation_by_service AS
WITH allocated AS (
    SELECT month, service, SUM(unblended) AS allocated, SUM(amortized) AS allocated_amortized
    FROM cost_service_monthly
    GROUP BY month, service
)
SELECT b.month,
       ((b.month || '-01')::DATE::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       b.service,
       b.currency,
       b.lines AS billed_lines,
       ROUND(b.unblended, 2) AS billed,
       COALESCE(a.allocated, 0) AS allocated,
       COALESCE(a.allocated, 0) - ROUND(b.unblended, 2) AS difference,
       ROUND(b.amortized, 2) AS billed_amortized,
       COALESCE(a.allocated_amortized, 0) AS allocated_amortized,
       COALESCE(a.allocated_amortized, 0) - ROUND(b.amortized, 2) AS difference_amortized
FROM allocation_billed b
LEFT JOIN allocated a ON a.month = b.month AND a.service = b.service;

CREATE VIEW report_reconciliation AS
WITH billed AS (
    SELECT month, MIN(currency) AS currency, SUM(billed_lines) AS billed_lines,
           SUM(billed) AS billed, SUM(allocated) AS allocated,
           SUM(billed_amortized) AS billed_amortized, SUM(allocated_amortized) AS allocated_amortized,
           BOOL_AND(difference = 0 AND difference_amortized = 0) AS reconciled
    FROM report_reconciliation_by_service
    GROUP BY month
), split AS (
    SELECT month,
           COALESCE(SUM(unblended) FILTER (WHERE allocatee NOT LIKE '\_\_%'), 0) AS to_tenants,
           COALESCE(SUM(unblended) FILTER (WHERE allocatee = '__idle__'), 0) AS idle,
           COALESCE(SUM(unblended) FILTER (WHERE allocatee = '__shared__'), 0) AS shared,
           COALESCE(SUM(unblended) FILTER (WHERE allocatee = '__unallocated__'), 0) AS unallocated
    FROM cost_tenant_monthly
    GROUP BY month
)
SELECT b.month,
       ((b.month || '-01')::DATE::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       b.currency,
       r.source,
       b.billed_lines,
       b.billed,
       b.allocated,
       b.allocated - b.billed AS difference,
       b.billed_amortized,
       b.allocated_amortized,
       b.allocated_amortized - b.billed_amortized AS difference_amortized,
       COALESCE(s.to_tenants, 0) AS to_tenants,
       COALESCE(s.idle, 0) AS idle,
       COALESCE(s.shared, 0) AS shared,
       COALESCE(s.unallocated, 0) AS unallocated,
       b.reconciled,
       r.created_at AS allocated_at
FROM billed b
LEFT JOIN split s ON s.month = b.month
LEFT JOIN allocation_runs r ON r.month = b.month;

-- What did not go to a tenant, and why: idle capacity and shared costs kept
-- by policy, and what could not be allocated (with the allocation's reason).
CREATE VIEW report_unassigned AS
SELECT month,
       ((month || '-01')::DATE::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       allocatee,
       pool, service,
       COALESCE(reason, CASE allocatee
           WHEN '__idle__' THEN 'idle capacity, kept as idle by the pool''s idle policy'
           WHEN '__shared__' THEN 'shared cost, kept unallocated by the shared or commitment policy'
           ELSE 'no reason recorded' END) AS reason,
       MIN(currency) AS currency,
       SUM(unblended) AS unblended,
       SUM(amortized) AS amortized
FROM cost_monthly
WHERE allocatee IN ('__idle__', '__shared__', '__unallocated__')
GROUP BY month, allocatee, pool, service, reason;

CREATE VIEW report_daily_cost_by_service AS
SELECT day,
       (day::TIMESTAMP AT TIME ZONE 'UTC') AS time,
       month,
       service,
       currency,
       unblended,
       amortized
FROM cost_service_daily;
