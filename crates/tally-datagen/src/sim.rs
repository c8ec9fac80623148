//! The simulated SaaS: its tenants, their load through the day, and the
//! cluster that serves them hour by hour.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use crate::prices::{M5_XLARGE_GIB, M5_XLARGE_VCPU};
use crate::{Params, TenantSpec};

const NAMED: &[(&str, &str)] = &[
    ("acme", "Acme Logistics"),
    ("globex", "Globex"),
    ("initech", "Initech"),
    ("umbrella", "Umbrella Health"),
    ("hooli", "Hooli"),
    ("stark", "Stark Industries"),
    ("wayne", "Wayne Enterprises"),
    ("wonka", "Wonka Foods"),
    ("soylent", "Soylent"),
    ("cyberdyne", "Cyberdyne Systems"),
    ("tyrell", "Tyrell Corp"),
    ("aperture", "Aperture Science"),
    ("black-mesa", "Black Mesa"),
    ("massive-dynamic", "Massive Dynamic"),
    ("oscorp", "Oscorp"),
    ("vandelay", "Vandelay Industries"),
    ("prestige", "Prestige Worldwide"),
    ("dunder", "Dunder Mifflin"),
    ("pied-piper", "Pied Piper"),
    ("gringotts", "Gringotts"),
    ("nakatomi", "Nakatomi Trading"),
    ("monarch", "Monarch Solutions"),
    ("sterling", "Sterling Cooper"),
    ("bluth", "Bluth Company"),
    ("krusty", "Krusty Krab"),
];

/// Plans by size rank: (plan, monthly price in USD).
fn plan(rank: usize, tenants: usize) -> (&'static str, Decimal) {
    let r = rank as f64 / tenants as f64;
    if rank < 2.max(tenants / 12) {
        ("enterprise", Decimal::from(900))
    } else if r < 0.28 {
        ("growth", Decimal::from(199))
    } else if r < 0.68 {
        ("starter", Decimal::from(49))
    } else {
        ("free", Decimal::ZERO)
    }
}

pub(crate) fn tenants(params: &Params) -> Vec<TenantSpec> {
    // Zipf-like sizes: a few large tenants, a long tail.
    let raw: Vec<f64> = (0..params.tenants).map(|i| 1.0 / ((i + 1) as f64).powf(1.1)).collect();
    let total: f64 = raw.iter().sum();
    raw.iter()
        .enumerate()
        .map(|(i, w)| {
            let (id, name) = match NAMED.get(i) {
                Some((id, name)) if params.tenants <= NAMED.len() * 4 => (id.to_string(), name.to_string()),
                _ => (format!("tenant-{:05}", i + 1), format!("Tenant {:05}", i + 1)),
            };
            let (plan, price) = plan(i, params.tenants);
            TenantSpec { id, name, plan, price, weight: w / total }
        })
        .collect()
}

/// The month (index into `params.months`) a tenant signed up: the last
/// eighth of the tail joins in the second month, so revenue grows.
pub(crate) fn joined_month(rank: usize, tenants: usize) -> usize {
    if tenants >= 8 && rank >= tenants - tenants / 8 { 1 } else { 0 }
}

/// Relative load of the SaaS at an hour: US business hours, quieter weekends.
pub(crate) fn load(hour: DateTime<Utc>) -> f64 {
    let h = hour.hour() as f64 + 0.5;
    let peak = (-(h - 17.5).powi(2) / (2.0 * 3.2f64.powi(2))).exp();
    let weekend = matches!(hour.weekday(), Weekday::Sat | Weekday::Sun);
    let day = 0.30 + 0.70 * peak;
    if weekend { day * 0.55 } else { day }
}

/// Multiplicative noise around 1.
pub(crate) fn noise(rng: &mut ChaCha8Rng, spread: f64) -> f64 {
    1.0 + spread * (rng.random::<f64>() * 2.0 - 1.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deployment {
    Api,
    Worker,
}

impl Deployment {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Worker => "worker",
        }
    }

    pub(crate) fn cpu_request(self) -> f64 {
        match self {
            Self::Api => 0.5,
            Self::Worker => 1.0,
        }
    }

    pub(crate) fn mem_request_gb(self) -> f64 {
        match self {
            Self::Api => 1.0,
            Self::Worker => 2.0,
        }
    }
}

/// A pod running in an hour, on the node at `node` (index into the hour's nodes).
#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub(crate) deployment: Deployment,
    pub(crate) ordinal: usize,
    pub(crate) node: usize,
}

/// The cluster in one hour.
#[derive(Debug, Clone)]
pub(crate) struct ClusterHour {
    /// Running nodes: the always-on ones first, then autoscaled ones, each
    /// with its EC2 instance id.
    pub(crate) nodes: Vec<String>,
    pub(crate) pods: Vec<Pod>,
    /// Utilisation of requested CPU in the hour.
    pub(crate) cpu_utilisation: f64,
}

/// kube-system pods on every node: requested but belonging to no tenant.
const SYSTEM_CPU_PER_NODE: f64 = 0.35;

pub(crate) fn cluster_hour(params: &Params, hour: DateTime<Utc>, day_index: u32) -> ClusterHour {
    let scale = params.base_nodes as f64 / 3.0;
    let l = load(hour);
    let api = ((2.0 + 8.0 * ((l - 0.25) / 0.75).clamp(0.0, 1.0)) * scale).round() as usize;
    let worker = ((2.0 + 6.0 * ((l - 0.35) / 0.65).clamp(0.0, 1.0)) * scale).round() as usize;
    let requested = api as f64 * Deployment::Api.cpu_request() + worker as f64 * Deployment::Worker.cpu_request();
    // The autoscaler keeps requested CPU under 80% of allocatable capacity.
    let mut n = params.base_nodes;
    while (requested + SYSTEM_CPU_PER_NODE * n as f64) > 0.8 * M5_XLARGE_VCPU * n as f64 && n < params.base_nodes + params.max_extra_nodes {
        n += 1;
    }
    let nodes = (0..n)
        .map(|i| {
            if i < params.base_nodes {
                format!("i-0{:07x}{:09x}", params.seed % 0xfff_ffff, i + 1)
            } else {
                // A scale-up launches fresh instances each day.
                format!("i-0{:07x}{:05x}{:04x}", params.seed % 0xfff_ffff, day_index + 1, i + 1)
            }
        })
        .collect::<Vec<_>>();
    let mut pods = Vec::with_capacity(api + worker);
    for k in 0..api {
        pods.push(Pod { deployment: Deployment::Api, ordinal: k, node: k % n });
    }
    for k in 0..worker {
        pods.push(Pod { deployment: Deployment::Worker, ordinal: k, node: (k + api) % n });
    }
    let _ = M5_XLARGE_GIB;
    ClusterHour { nodes, pods, cpu_utilisation: 0.35 + 0.45 * l }
}

/// Which pods of a deployment serve a tenant: the largest few tenants are
/// served by every pod, every other tenant by one pod chosen by its rank.
pub(crate) fn serving_pods(rank: usize, spread: usize, replicas: usize) -> std::ops::Range<usize> {
    if rank < spread {
        0..replicas
    } else {
        let k = (rank * 7919) % replicas.max(1);
        k..k + 1
    }
}
