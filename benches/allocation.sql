-- Tally's allocation method (default configuration) in SQL, for DuckDB:
-- the comparison baseline of the benchmark. Reads a CUR 2.0 Parquet file
-- ({cur}) and a usage Parquet file ({usage}); leaves the tenant x pool
-- totals before rounding in the table `totals`.

CREATE OR REPLACE TEMP TABLE lines AS
WITH raw AS (
    SELECT
        epoch_ms(line_item_usage_start_date) AS start_ms,
        epoch_ms(line_item_usage_end_date) AS end_ms,
        line_item_product_code AS service,
        coalesce(line_item_usage_type, '') AS usage_type,
        CASE line_item_line_item_type
            WHEN 'Usage' THEN 'usage' WHEN 'DiscountedUsage' THEN 'discounted_usage'
            WHEN 'SavingsPlanCoveredUsage' THEN 'savings_plan_covered_usage' WHEN 'SavingsPlanNegation' THEN 'savings_plan_negation'
            WHEN 'RIFee' THEN 'ri_fee' WHEN 'SavingsPlanRecurringFee' THEN 'savings_plan_recurring_fee'
            WHEN 'SavingsPlanUpfrontFee' THEN 'savings_plan_upfront_fee' WHEN 'Fee' THEN 'fee'
            WHEN 'Credit' THEN 'credit' WHEN 'Refund' THEN 'refund' WHEN 'Tax' THEN 'tax' ELSE 'other' END AS line_type,
        line_item_resource_id AS resource_id,
        product_instance_type AS instance_type,
        resource_tags['user_tenant'] AS tenant,
        coalesce(line_item_unblended_cost, 0) AS unblended,
        CASE line_item_line_item_type
            WHEN 'DiscountedUsage' THEN coalesce(reservation_effective_cost, 0)
            WHEN 'SavingsPlanCoveredUsage' THEN coalesce(savings_plan_savings_plan_effective_cost, 0)
            WHEN 'RIFee' THEN coalesce(reservation_unused_amortized_upfront_fee_for_billing_period, 0) + coalesce(reservation_unused_recurring_fee, 0)
            WHEN 'SavingsPlanRecurringFee' THEN coalesce(savings_plan_total_commitment_to_date, 0) - coalesce(savings_plan_used_commitment, 0)
            WHEN 'SavingsPlanNegation' THEN 0 WHEN 'SavingsPlanUpfrontFee' THEN 0
            ELSE coalesce(line_item_unblended_cost, 0) END AS amortized
    FROM read_parquet('{cur}')
),
nodes AS (
    SELECT DISTINCT resource_id FROM read_parquet('{usage}')
    WHERE metric IN ('cpu_request_vcpu_hours', 'cpu_used_vcpu_hours', 'mem_request_gb_hours', 'mem_used_gb_hours') AND resource_id IS NOT NULL
),
periods AS (
    SELECT *,
        CASE WHEN start_ms // 3600000 = (end_ms - 1) // 3600000 THEN 0
             WHEN start_ms // 86400000 = (end_ms - 1) // 86400000 THEN 1 ELSE 2 END AS gran,
        start_ms // 3600000 AS hour,
        CAST(start_ms // 86400000 AS INTEGER) AS day,
        (end_ms - start_ms) / 3600000.0 AS period_hours
    FROM raw
)
SELECT p.*,
    CASE gran WHEN 0 THEN hour WHEN 1 THEN day ELSE 0 END AS key,
    CASE
        WHEN tenant IS NOT NULL THEN 'direct'
        WHEN line_type = 'tax' THEN 'tax'
        WHEN line_type IN ('credit', 'refund') THEN 'credits'
        WHEN line_type IN ('ri_fee', 'savings_plan_recurring_fee') THEN 'unused_commitment'
        WHEN service = 'AmazonEC2' AND (contains(usage_type, 'BoxUsage') OR contains(usage_type, 'SpotUsage') OR contains(usage_type, 'DedicatedUsage'))
             AND resource_id IN (SELECT resource_id FROM nodes) THEN 'eks_compute'
        WHEN service = 'AmazonEKS' THEN 'eks_control_plane'
        WHEN service = 'AmazonRDS' AND (contains(usage_type, 'InstanceUsage') OR contains(usage_type, 'Multi-AZUsage')) THEN 'rds_compute'
        WHEN service = 'AmazonRDS' AND (contains(usage_type, 'Storage') OR contains(usage_type, 'IOUsage') OR contains(usage_type, 'IOPS')
             OR contains(usage_type, 'Backup') OR contains(usage_type, 'Throughput')) THEN 'rds_storage'
        WHEN service = 'AmazonElastiCache' AND contains(usage_type, 'NodeUsage') THEN 'cache'
        WHEN contains(usage_type, 'DataTransfer-Out') OR contains(usage_type, 'Out-Bytes') THEN 'transfer'
        WHEN service IN ('AWSELB', 'AmazonELB', 'ElasticLoadBalancing') THEN 'load_balancer'
        ELSE 'shared' END AS pool
FROM periods p;

CREATE OR REPLACE TEMP TABLE usage AS
SELECT epoch_ms("timestamp") // 3600000 AS hour, CAST(epoch_ms("timestamp") // 86400000 AS INTEGER) AS day, tenant, metric, value, resource_id, workload
FROM read_parquet('{usage}');

-- Driver pools: each line's period split by the tenants' driver usage in that period.
CREATE OR REPLACE TEMP TABLE drivers(pool VARCHAR, d VARCHAR, f VARCHAR);
INSERT INTO drivers VALUES ('rds_compute', 'db_exec_seconds', 'db_storage_gb'), ('rds_storage', 'db_storage_gb', NULL),
    ('cache', 'cache_memory_gb', NULL), ('transfer', 'egress_gb', NULL), ('load_balancer', 'requests', NULL);

CREATE OR REPLACE TEMP TABLE q AS
SELECT 0 AS gran, hour AS key, metric, tenant, sum(value) AS q FROM usage WHERE metric IN (SELECT d FROM drivers UNION SELECT f FROM drivers) GROUP BY ALL
UNION ALL
SELECT 1, day, metric, tenant, sum(value) FROM usage WHERE metric IN (SELECT d FROM drivers UNION SELECT f FROM drivers) GROUP BY ALL
UNION ALL
SELECT 2, 0, metric, tenant, sum(value) FROM usage WHERE metric IN (SELECT d FROM drivers UNION SELECT f FROM drivers) GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE driver_parts AS
WITH costs AS (
    SELECT pool, gran, key, day, service, sum(unblended) AS u, sum(amortized) AS a
    FROM lines WHERE pool IN (SELECT pool FROM drivers) GROUP BY ALL
),
tot AS (SELECT gran, key, metric, sum(q) AS t FROM q GROUP BY ALL),
chosen AS (
    SELECT c.*,
        CASE WHEN coalesce(td.t, 0) > 0 THEN dr.d WHEN coalesce(tf.t, 0) > 0 THEN dr.f END AS driver,
        CASE WHEN coalesce(td.t, 0) > 0 THEN td.t ELSE tf.t END AS t
    FROM costs c JOIN drivers dr USING (pool)
    LEFT JOIN tot td ON td.gran = c.gran AND td.key = c.key AND td.metric = dr.d
    LEFT JOIN tot tf ON tf.gran = c.gran AND tf.key = c.key AND tf.metric = dr.f
)
SELECT q.tenant AS allocatee, c.pool, c.service, c.u * q.q / c.t AS unblended, c.a * q.q / c.t AS amortized
FROM chosen c JOIN q ON q.gran = c.gran AND q.key = c.key AND q.metric = c.driver
UNION ALL
SELECT '__unallocated__', pool, service, u, a FROM chosen WHERE driver IS NULL;

-- EKS node split, idle capacity shared over the node-hour's pods.
CREATE OR REPLACE TEMP TABLE caps(itype VARCHAR, vcpu DOUBLE, mem DOUBLE);
INSERT INTO caps VALUES ('m5.large', 2, 8), ('m5.xlarge', 4, 16), ('m5.2xlarge', 8, 32), ('m5.4xlarge', 16, 64);

CREATE OR REPLACE TEMP TABLE node_parts AS
WITH nl AS (
    SELECT resource_id, gran, key, day, service, coalesce(instance_type, split_part(usage_type, ':', -1)) AS itype, period_hours,
        sum(unblended) AS u, sum(amortized) AS a
    FROM lines WHERE pool = 'eks_compute' GROUP BY ALL
),
pods AS (
    SELECT resource_id, 0 AS gran, hour AS key, tenant, workload,
        greatest(sum(value) FILTER (WHERE metric = 'cpu_request_vcpu_hours'), sum(value) FILTER (WHERE metric = 'cpu_used_vcpu_hours')) AS a_cpu,
        greatest(sum(value) FILTER (WHERE metric = 'mem_request_gb_hours'), sum(value) FILTER (WHERE metric = 'mem_used_gb_hours')) AS a_mem
    FROM usage WHERE metric IN ('cpu_request_vcpu_hours', 'cpu_used_vcpu_hours', 'mem_request_gb_hours', 'mem_used_gb_hours') AND resource_id IS NOT NULL
    GROUP BY resource_id, hour, tenant, workload
),
sums AS (SELECT resource_id, gran, key, sum(a_cpu) AS s_cpu, sum(a_mem) AS s_mem FROM pods GROUP BY ALL),
n AS (
    SELECT nl.*, caps.vcpu, caps.mem, 9 * vcpu / (9 * vcpu + 1 * mem) AS f_cpu,
        coalesce(s.s_cpu, 0) AS s_cpu, coalesce(s.s_mem, 0) AS s_mem
    FROM nl LEFT JOIN caps USING (itype) LEFT JOIN sums s USING (resource_id, gran, key)
)
SELECT p.tenant AS allocatee, 'eks_compute' AS pool, n.service,
    n.u * n.f_cpu * p.a_cpu * (CASE WHEN n.s_cpu > 0 THEN 1 / n.s_cpu ELSE 0 END) + n.u * (1 - n.f_cpu) * p.a_mem * (CASE WHEN n.s_mem > 0 THEN 1 / n.s_mem ELSE 0 END) AS unblended,
    n.a * n.f_cpu * p.a_cpu * (CASE WHEN n.s_cpu > 0 THEN 1 / n.s_cpu ELSE 0 END) + n.a * (1 - n.f_cpu) * p.a_mem * (CASE WHEN n.s_mem > 0 THEN 1 / n.s_mem ELSE 0 END) AS amortized,
    n.day
FROM n JOIN pods p USING (resource_id, gran, key) WHERE n.vcpu IS NOT NULL
UNION ALL
SELECT '__idle__', 'eks_compute', n.service,
    n.u * n.f_cpu * (CASE WHEN n.s_cpu > 0 THEN 0 ELSE 1 END) + n.u * (1 - n.f_cpu) * (CASE WHEN n.s_mem > 0 THEN 0 ELSE 1 END),
    n.a * n.f_cpu * (CASE WHEN n.s_cpu > 0 THEN 0 ELSE 1 END) + n.a * (1 - n.f_cpu) * (CASE WHEN n.s_mem > 0 THEN 0 ELSE 1 END),
    n.day
FROM n WHERE n.vcpu IS NOT NULL
UNION ALL
SELECT '__unallocated__', 'eks_compute', n.service, n.u, n.a, n.day FROM n WHERE n.vcpu IS NULL;

-- The control plane follows each tenant's EKS compute cost of the day.
CREATE OR REPLACE TEMP TABLE follow_parts AS
WITH base AS (
    SELECT allocatee, day, greatest(sum(amortized), 0) AS b FROM node_parts WHERE allocatee NOT LIKE '\_\_%' ESCAPE '\' GROUP BY ALL
),
cp AS (SELECT day, service, sum(unblended) AS u, sum(amortized) AS a FROM lines WHERE pool = 'eks_control_plane' AND gran <> 2 GROUP BY ALL),
tot AS (SELECT day, sum(b) AS t FROM base GROUP BY ALL)
SELECT base.allocatee, 'eks_control_plane' AS pool, cp.service, cp.u * base.b / tot.t AS unblended, cp.a * base.b / tot.t AS amortized
FROM cp JOIN tot USING (day) JOIN base USING (day) WHERE tot.t > 0 AND base.b > 0
UNION ALL
SELECT '__unallocated__', 'eks_control_plane', cp.service, cp.u, cp.a FROM cp LEFT JOIN tot USING (day) WHERE coalesce(tot.t, 0) <= 0;

CREATE OR REPLACE TEMP TABLE base_parts AS
SELECT tenant AS allocatee, 'direct' AS pool, service, unblended, amortized FROM lines WHERE pool = 'direct'
UNION ALL SELECT allocatee, pool, service, unblended, amortized FROM driver_parts
UNION ALL SELECT allocatee, pool, service, unblended, amortized FROM node_parts
UNION ALL SELECT allocatee, pool, service, unblended, amortized FROM follow_parts;

-- Shared costs in proportion to each tenant's cost of the other pools.
CREATE OR REPLACE TEMP TABLE shared_parts AS
WITH w AS (
    SELECT allocatee, greatest(sum(amortized), 0) AS w FROM base_parts WHERE allocatee NOT LIKE '\_\_%' ESCAPE '\' GROUP BY ALL
),
s AS (SELECT service, sum(unblended) AS u, sum(amortized) AS a FROM lines WHERE pool = 'shared' GROUP BY ALL),
t AS (SELECT sum(w) AS t FROM w)
SELECT w.allocatee, 'shared' AS pool, s.service, s.u * w.w / t.t AS unblended, s.a * w.w / t.t AS amortized FROM w, s, t WHERE t.t > 0 AND w.w > 0 AND s.u IS NOT NULL;

-- Tax follows every allocatee's pre-tax cost of the service it is billed
-- for, else of the whole month.
CREATE OR REPLACE TEMP TABLE pre_tax AS
SELECT allocatee, pool, service, unblended, amortized FROM base_parts UNION ALL SELECT * FROM shared_parts;

CREATE OR REPLACE TEMP TABLE tax_parts AS
WITH ws AS (SELECT service, allocatee, greatest(sum(unblended), 0) AS w FROM pre_tax GROUP BY ALL),
ts AS (SELECT service, sum(w) AS t FROM ws GROUP BY ALL),
wm AS (SELECT allocatee, greatest(sum(unblended), 0) AS w FROM pre_tax GROUP BY ALL),
tm AS (SELECT sum(w) AS t FROM wm),
s AS (SELECT service, sum(unblended) AS u, sum(amortized) AS a FROM lines WHERE pool = 'tax' GROUP BY ALL)
SELECT ws.allocatee, 'tax' AS pool, s.service, s.u * ws.w / ts.t AS unblended, s.a * ws.w / ts.t AS amortized
FROM s JOIN ts USING (service) JOIN ws USING (service) WHERE ts.t > 0 AND ws.w > 0
UNION ALL
SELECT wm.allocatee, 'tax', s.service, s.u * wm.w / tm.t, s.a * wm.w / tm.t
FROM s LEFT JOIN ts USING (service) CROSS JOIN wm CROSS JOIN tm WHERE coalesce(ts.t, 0) <= 0 AND tm.t > 0 AND wm.w > 0;

CREATE OR REPLACE TEMP TABLE totals AS
SELECT allocatee, pool, sum(unblended) AS unblended, sum(amortized) AS amortized
FROM (SELECT * FROM pre_tax UNION ALL SELECT * FROM tax_parts)
GROUP BY ALL ORDER BY allocatee, pool;
