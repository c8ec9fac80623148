//! Which files of an AWS Data Exports (or legacy CUR) delivery to import.
//!
//! AWS writes a complete snapshot of a billing period into a new folder on
//! every delivery; importing every snapshot multiplies the bill. Only the
//! latest snapshot of each period counts: the one its manifest names, else
//! the newest delivery folder. This module decides that from a listing of
//! paths, so the same rules serve a local folder and an S3 prefix.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// One object in a listing, with its path relative to the listed root
/// (`/`-separated) and, if known, when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub path: String,
    pub modified: Option<DateTime<Utc>>,
}

/// The files chosen for import, and what was left out and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliverySelection {
    pub files: Vec<String>,
    pub notes: Vec<String>,
}

fn is_data_file(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    !is_manifest(path) && (p.ends_with(".parquet") || p.ends_with(".csv") || p.ends_with(".csv.gz") || p.ends_with(".gz") || p.ends_with(".txt"))
}

fn is_manifest(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|name| name.to_ascii_lowercase().ends_with("manifest.json"))
}

/// The billing-period folder a path lies under: `BILLING_PERIOD=2026-10`
/// (Data Exports) or `20261001-20261101` (legacy CUR).
fn period_segment(path: &str) -> Option<(usize, &str)> {
    path.split('/').enumerate().find(|(_, seg)| {
        seg.starts_with("BILLING_PERIOD=")
            || (seg.len() == 17 && seg.as_bytes()[8] == b'-' && seg.bytes().enumerate().all(|(i, b)| i == 8 || b.is_ascii_digit()))
    })
}

/// The part of a path from its period folder on, for matching manifest keys.
fn from_period(path: &str) -> Option<String> {
    let (i, _) = period_segment(path)?;
    Some(path.split('/').skip(i).collect::<Vec<_>>().join("/"))
}

/// Files a manifest names: `dataFiles` (Data Exports) or `reportKeys` (legacy CUR).
fn manifest_keys(body: &str) -> Result<Vec<String>, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let list =
        json.get("dataFiles").or_else(|| json.get("reportKeys")).and_then(serde_json::Value::as_array).ok_or("it has neither dataFiles nor reportKeys")?;
    list.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(|| "a file entry that is not a string".to_string())).collect()
}

/// Chooses the files to import from a listing. `read` returns a manifest's text.
pub fn select_latest(objects: &[ListedObject], read: impl Fn(&str) -> Result<String, String>) -> Result<DeliverySelection, String> {
    let mut selection = DeliverySelection::default();
    let mut periods: BTreeMap<String, (Vec<&ListedObject>, Vec<&ListedObject>)> = BTreeMap::new();
    for o in objects {
        match period_segment(&o.path) {
            Some((_, period)) => {
                let entry = periods.entry(period.to_owned()).or_default();
                if is_manifest(&o.path) {
                    entry.1.push(o);
                } else if is_data_file(&o.path) {
                    entry.0.push(o);
                }
            }
            None if is_data_file(&o.path) => selection.files.push(o.path.clone()),
            None => {}
        }
    }
    for (period, (data, manifests)) in periods {
        if data.is_empty() {
            continue;
        }
        // The period-level manifest (legacy: beside the assembly folders) wins;
        // otherwise the newest.
        let depth = |m: &ListedObject| m.path.split('/').count() - period_segment(&m.path).map_or(0, |(i, _)| i);
        let manifest = manifests.iter().min_by(|a, b| depth(a).cmp(&depth(b)).then(b.modified.cmp(&a.modified)).then(b.path.cmp(&a.path)));
        if let Some(m) = manifest {
            let body = read(&m.path).map_err(|e| format!("cannot read manifest {}: {e}", m.path))?;
            let keys = manifest_keys(&body).map_err(|e| format!("manifest {} is not a CUR manifest: {e}", m.path))?;
            let mut chosen = Vec::new();
            for key in &keys {
                let want = from_period(key).unwrap_or_else(|| key.rsplit('/').next().unwrap_or(key).to_owned());
                let found = data.iter().find(|d| from_period(&d.path).is_some_and(|p| p == want || p.ends_with(&format!("/{want}"))));
                match found {
                    Some(d) => chosen.push(d.path.clone()),
                    None => return Err(format!("manifest {} names {key}, which is not in the delivery", m.path)),
                }
            }
            let ignored = data.len() - chosen.len();
            selection.notes.push(format!("{period}: {} file(s) named by {}{}", chosen.len(), m.path, ignored_note(ignored)));
            selection.files.extend(chosen);
            continue;
        }
        // No manifest: the newest delivery folder (the segment after the period).
        let mut deliveries: BTreeMap<String, Vec<&ListedObject>> = BTreeMap::new();
        for d in &data {
            let (i, _) = period_segment(&d.path).expect("grouped by period");
            let segs: Vec<&str> = d.path.split('/').collect();
            let delivery = if segs.len() > i + 2 { segs[i + 1].to_owned() } else { String::new() };
            deliveries.entry(delivery).or_default().push(d);
        }
        let newest = deliveries
            .iter()
            .max_by(|(na, a), (nb, b)| {
                let ta = a.iter().filter_map(|o| o.modified).max();
                let tb = b.iter().filter_map(|o| o.modified).max();
                ta.cmp(&tb).then(na.cmp(nb))
            })
            .expect("at least one delivery");
        let ignored = data.len() - newest.1.len();
        let name = if newest.0.is_empty() { "the period folder".to_owned() } else { format!("delivery {}", newest.0) };
        selection.notes.push(format!("{period}: no manifest; newest {name}{}", ignored_note(ignored)));
        selection.files.extend(newest.1.iter().map(|o| o.path.clone()));
    }
    selection.files.sort();
    Ok(selection)
}

fn ignored_note(ignored: usize) -> String {
    if ignored == 0 { String::new() } else { format!(" ({ignored} file(s) of older snapshots ignored)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(path: &str, minute: u32) -> ListedObject {
        ListedObject { path: path.to_owned(), modified: Some(format!("2026-11-02T00:{minute:02}:00Z").parse().unwrap()) }
    }

    #[test]
    fn only_the_newest_snapshot_of_a_period_is_chosen_without_a_manifest() {
        let listing = vec![
            obj("exp/data/BILLING_PERIOD=2026-10/20261101T010000Z/exp-00001.snappy.parquet", 1),
            obj("exp/data/BILLING_PERIOD=2026-10/20261102T010000Z/exp-00001.snappy.parquet", 5),
            obj("exp/data/BILLING_PERIOD=2026-10/20261102T010000Z/exp-00002.snappy.parquet", 6),
            obj("exp/data/BILLING_PERIOD=2026-09/20261001T010000Z/exp-00001.snappy.parquet", 0),
        ];
        let s = select_latest(&listing, |_| Err("no manifests".into())).unwrap();
        assert_eq!(
            s.files,
            vec![
                "exp/data/BILLING_PERIOD=2026-09/20261001T010000Z/exp-00001.snappy.parquet",
                "exp/data/BILLING_PERIOD=2026-10/20261102T010000Z/exp-00001.snappy.parquet",
                "exp/data/BILLING_PERIOD=2026-10/20261102T010000Z/exp-00002.snappy.parquet",
            ]
        );
        assert!(s.notes.iter().any(|n| n.contains("1 file(s) of older snapshots ignored")), "{:?}", s.notes);
    }

    #[test]
    fn a_manifest_names_the_files_of_its_period() {
        let listing = vec![
            obj("exp/data/BILLING_PERIOD=2026-10/a/exp-00001.snappy.parquet", 9),
            obj("exp/data/BILLING_PERIOD=2026-10/b/exp-00001.snappy.parquet", 1),
            obj("exp/metadata/BILLING_PERIOD=2026-10/exp-Manifest.json", 2),
        ];
        let manifest = r#"{"dataFiles": ["s3://bucket/exp/data/BILLING_PERIOD=2026-10/b/exp-00001.snappy.parquet"]}"#;
        let s = select_latest(&listing, |p| {
            assert!(p.ends_with("Manifest.json"));
            Ok(manifest.to_owned())
        })
        .unwrap();
        assert_eq!(s.files, vec!["exp/data/BILLING_PERIOD=2026-10/b/exp-00001.snappy.parquet"]);
    }

    #[test]
    fn the_legacy_period_manifest_wins_over_assembly_manifests() {
        let listing = vec![
            obj("cur/rep/20261001-20261101/aaa/rep-1.csv.gz", 1),
            obj("cur/rep/20261001-20261101/aaa/rep-Manifest.json", 1),
            obj("cur/rep/20261001-20261101/bbb/rep-1.csv.gz", 2),
            obj("cur/rep/20261001-20261101/rep-Manifest.json", 3),
        ];
        let s = select_latest(&listing, |p| {
            Ok(if p == "cur/rep/20261001-20261101/rep-Manifest.json" {
                r#"{"reportKeys": ["cur/rep/20261001-20261101/bbb/rep-1.csv.gz"]}"#.to_owned()
            } else {
                r#"{"reportKeys": ["cur/rep/20261001-20261101/aaa/rep-1.csv.gz"]}"#.to_owned()
            })
        })
        .unwrap();
        assert_eq!(s.files, vec!["cur/rep/20261001-20261101/bbb/rep-1.csv.gz"]);
    }

    #[test]
    fn a_manifest_naming_a_missing_file_is_an_error() {
        let listing = vec![obj("exp/data/BILLING_PERIOD=2026-10/a/x.parquet", 1), obj("exp/metadata/BILLING_PERIOD=2026-10/exp-Manifest.json", 1)];
        let err = select_latest(&listing, |_| Ok(r#"{"dataFiles": ["exp/data/BILLING_PERIOD=2026-10/a/y.parquet"]}"#.into())).unwrap_err();
        assert!(err.contains("not in the delivery"), "{err}");
    }

    #[test]
    fn files_outside_any_period_folder_are_all_imported() {
        let listing = vec![obj("a.parquet", 1), obj("b.csv.gz", 1), obj("notes.md", 1)];
        assert_eq!(select_latest(&listing, |_| unreachable!()).unwrap().files, vec!["a.parquet", "b.csv.gz"]);
    }
}
