-- Tenant margins and unit costs are amortized (effective) cost, as the API's
-- tenant reports are by default (docs/allocation.md, "Which of the two a
-- figure uses"): a tenant whose node a Reserved Instance covers is not free.
-- `cost` is now amortized; `cost_unblended` is the invoiced figure.
DROP VIEW report_tenant_unit_costs;

CREATE VIEW report_tenant_unit_costs AS
WITH cost AS (
    SELECT month, allocatee AS tenant_id,
           SUM(amortized) AS cost,
           SUM(unblended) AS cost_unblended,
           SUM(amortized) AS cost_amortized,
           SUM(amortized) FILTER (WHERE pool = 'transfer') AS transfer_cost,
           SUM(amortized) FILTER (WHERE pool = 'rds_storage') AS rds_storage_cost,
           SUM(amortized) FILTER (WHERE pool = 'eks_compute') AS eks_compute_cost
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
           c.cost, c.cost_unblended, c.cost_amortized,
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
       cost, cost_unblended, cost_amortized, revenue,
       revenue - cost AS gross_margin,
       CASE WHEN revenue = 0 THEN NULL ELSE ROUND((revenue - cost) * 100 / revenue, 1) END AS gross_margin_percent,
       requests, egress_gb, db_gb_months, vcpu_hours,
       CASE WHEN requests > 0 THEN ROUND(cost * 1000 / requests::NUMERIC, 4) END AS cost_per_1000_requests,
       CASE WHEN egress_gb > 0 THEN ROUND(COALESCE(transfer_cost, 0) / egress_gb::NUMERIC, 4) END AS transfer_per_gb_egress,
       CASE WHEN db_gb_months > 0 THEN ROUND(COALESCE(rds_storage_cost, 0) / db_gb_months::NUMERIC, 4) END AS db_storage_per_gb_month,
       CASE WHEN vcpu_hours > 0 THEN ROUND(COALESCE(eks_compute_cost, 0) / vcpu_hours::NUMERIC, 4) END AS eks_per_vcpu_hour
FROM joined;
