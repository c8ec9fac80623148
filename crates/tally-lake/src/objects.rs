//! Where the store's files live: a folder on local disk, or an S3 bucket
//! and prefix through `object_store`. Polars reads local files; files in S3
//! are downloaded once into a local cache (they never change: every import
//! writes new names).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::LakeError;

/// One object of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) rel: String,
    pub(crate) modified: DateTime<Utc>,
    pub(crate) bytes: u64,
}

#[derive(Debug)]
pub(crate) enum Objects {
    Local { root: PathBuf },
    Remote { store: Arc<dyn ObjectStore>, url: String, cache: PathBuf },
}

/// A path the store generated: relative, `/`-separated, without `..`.
pub(crate) fn check_rel(rel: &str) -> Result<(), LakeError> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel.split('/').all(|c| !c.is_empty() && c != ".." && c != "." && !c.contains('\\'))
        && rel.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(LakeError::Store(format!("{rel:?} is not a path inside the store"))) }
}

impl Objects {
    /// `url`: `s3://bucket/prefix`, or `None` for `<data_dir>/lake`.
    pub(crate) fn open(url: Option<&str>, data_dir: &Path) -> Result<Self, LakeError> {
        match url {
            None => Ok(Self::Local { root: data_dir.join("lake") }),
            Some(u) if u.starts_with("s3://") => {
                let rest = &u["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(LakeError::Store(format!("storage.lake = {u:?}: expected s3://BUCKET/PREFIX")));
                }
                // The AWS SDK's variables (AWS_REGION, AWS_ENDPOINT_URL, credentials, web identity).
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                // A local emulator (AWS_ENDPOINT_URL=http://...) speaks plain HTTP.
                let endpoint = [AmazonS3ConfigKey::S3Endpoint, AmazonS3ConfigKey::Endpoint].into_iter().find_map(|k| builder.get_config_value(&k));
                if endpoint.is_some_and(|e| e.starts_with("http://")) {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder.build().map_err(|e| LakeError::Store(format!("storage.lake = {u:?}: {e}")))?;
                let prefix = prefix.trim_matches('/');
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, ObjectPath::from(prefix))) };
                let cache = data_dir.join("lake-cache").join(bucket).join(prefix);
                Ok(Self::Remote { store, url: u.trim_end_matches('/').to_owned(), cache })
            }
            Some(u) => {
                let path = u.strip_prefix("file://").unwrap_or(u);
                if path.contains("://") {
                    return Err(LakeError::Store(format!("storage.lake = {u:?}: expected s3://BUCKET/PREFIX or a folder")));
                }
                Ok(Self::Local { root: PathBuf::from(path) })
            }
        }
    }

    /// Where the store is, for people.
    pub(crate) fn location(&self) -> String {
        match self {
            Self::Local { root } => root.display().to_string(),
            Self::Remote { url, .. } => url.clone(),
        }
    }

    /// Puts a copy of a finished local file at `rel` (the local file stays,
    /// for a retry; the caller deletes it).
    pub(crate) async fn publish(&self, local: &Path, rel: &str) -> Result<(), LakeError> {
        check_rel(rel)?;
        match self {
            Self::Local { root } => {
                let target = root.join(rel);
                let io = |e: std::io::Error| LakeError::Store(format!("writing {}: {e}", target.display()));
                if let Some(dir) = target.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(io)?;
                }
                // Same file system (the staging folder is inside the store): a hard link, atomic and free.
                match tokio::fs::hard_link(local, &target).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(io(e)),
                    Err(_) => {
                        let tmp = target.with_extension("parquet.copying");
                        tokio::fs::copy(local, &tmp).await.map_err(io)?;
                        tokio::fs::rename(&tmp, &target).await.map_err(io)
                    }
                }
            }
            Self::Remote { store, url, .. } => {
                let upload = store.put_multipart(&ObjectPath::from(rel)).await.map_err(|e| LakeError::Store(format!("writing {url}/{rel}: {e}")))?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
                let mut file = tokio::fs::File::open(local).await.map_err(|e| LakeError::Store(format!("{}: {e}", local.display())))?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file.read(&mut buf).await.map_err(|e| LakeError::Store(format!("{}: {e}", local.display())))?;
                    if n == 0 {
                        break;
                    }
                    writer.wait_for_capacity(4).await.map_err(|e| LakeError::Store(format!("writing {url}/{rel}: {e}")))?;
                    writer.write(&buf[..n]);
                }
                writer.finish().await.map_err(|e| LakeError::Store(format!("writing {url}/{rel}: {e}")))?;
                Ok(())
            }
        }
    }

    /// A local path to read `rel` from: the file itself, or its cached copy.
    pub(crate) async fn localise(&self, rel: &str) -> Result<PathBuf, LakeError> {
        check_rel(rel)?;
        match self {
            Self::Local { root } => {
                let p = root.join(rel);
                if tokio::fs::metadata(&p).await.is_err() {
                    return Err(LakeError::Missing(p.display().to_string()));
                }
                Ok(p)
            }
            Self::Remote { store, url, cache } => {
                let p = cache.join(rel);
                if tokio::fs::metadata(&p).await.is_ok() {
                    return Ok(p);
                }
                let got = store.get(&ObjectPath::from(rel)).await.map_err(|e| match e {
                    object_store::Error::NotFound { .. } => LakeError::Missing(format!("{url}/{rel}")),
                    e => LakeError::Store(format!("reading {url}/{rel}: {e}")),
                })?;
                let dir = p.parent().expect("a file in a folder");
                tokio::fs::create_dir_all(dir).await.map_err(|e| LakeError::Store(format!("{}: {e}", dir.display())))?;
                let tmp = dir.join(format!(".{}.download", p.file_name().and_then(|n| n.to_str()).unwrap_or("part")));
                let mut out = tokio::fs::File::create(&tmp).await.map_err(|e| LakeError::Store(format!("{}: {e}", tmp.display())))?;
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.try_next().await.map_err(|e| LakeError::Store(format!("reading {url}/{rel}: {e}")))? {
                    tokio::io::AsyncWriteExt::write_all(&mut out, &chunk).await.map_err(|e| LakeError::Store(format!("{}: {e}", tmp.display())))?;
                }
                tokio::io::AsyncWriteExt::flush(&mut out).await.map_err(|e| LakeError::Store(format!("{}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &p).await.map_err(|e| LakeError::Store(format!("{}: {e}", p.display())))?;
                Ok(p)
            }
        }
    }

    /// Deletes `rel`; an object already gone is fine.
    pub(crate) async fn delete(&self, rel: &str) -> Result<(), LakeError> {
        check_rel(rel)?;
        match self {
            Self::Local { root } => match tokio::fs::remove_file(root.join(rel)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(LakeError::Store(format!("deleting {}: {e}", root.join(rel).display()))),
            },
            Self::Remote { store, url, cache } => {
                let _ = tokio::fs::remove_file(cache.join(rel)).await;
                match store.delete(&ObjectPath::from(rel)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(LakeError::Store(format!("deleting {url}/{rel}: {e}"))),
                }
            }
        }
    }

    /// Every data file under the store's `billing/` and `usage/` folders.
    pub(crate) async fn list(&self) -> Result<Vec<Listed>, LakeError> {
        let mut out = Vec::new();
        match self {
            Self::Local { root } => {
                let mut stack = vec![root.join("billing"), root.join("usage")];
                while let Some(dir) = stack.pop() {
                    let mut entries = match tokio::fs::read_dir(&dir).await {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(LakeError::Store(format!("listing {}: {e}", dir.display()))),
                    };
                    while let Some(entry) = entries.next_entry().await.map_err(|e| LakeError::Store(format!("listing {}: {e}", dir.display())))? {
                        let meta = entry.metadata().await.map_err(|e| LakeError::Store(format!("{}: {e}", entry.path().display())))?;
                        if meta.is_dir() {
                            stack.push(entry.path());
                        } else {
                            let rel = entry.path().strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
                            let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
                            out.push(Listed { rel, modified, bytes: meta.len() });
                        }
                    }
                }
            }
            Self::Remote { store, url, .. } => {
                for folder in ["billing", "usage"] {
                    let mut stream = store.list(Some(&ObjectPath::from(folder)));
                    while let Some(meta) = stream.try_next().await.map_err(|e| LakeError::Store(format!("listing {url}/{folder}: {e}")))? {
                        out.push(Listed { rel: meta.location.to_string(), modified: meta.last_modified, bytes: meta.size });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// Where files are written before they are published: inside the
    /// store's folder when it is local (so publishing is a rename), else
    /// under the data dir.
    pub(crate) fn staging(&self, data_dir: &Path) -> PathBuf {
        match self {
            Self::Local { root } => root.join("_staging"),
            Self::Remote { .. } => data_dir.join("lake-staging"),
        }
    }

    /// Removes cached copies of files no longer in `keep` (remote stores).
    pub(crate) async fn prune_cache(&self, keep: &std::collections::BTreeSet<String>) -> usize {
        let Self::Remote { cache, .. } = self else { return 0 };
        let mut removed = 0;
        let mut stack = vec![cache.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(mut entries) = tokio::fs::read_dir(&dir).await else { continue };
            while let Ok(Some(entry)) = entries.next_entry().await {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(cache) {
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    if !keep.contains(&rel) && tokio::fs::remove_file(&path).await.is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }
}
