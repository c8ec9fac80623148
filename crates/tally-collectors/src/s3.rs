//! Reading billing exports from `s3://bucket/prefix`: the same snapshot
//! rules as a local folder, decided from the listing, so only the chosen
//! files (and the manifests needed to choose) are downloaded.

use std::path::{Path, PathBuf};

use tally_domain::delivery::{DeliverySelection, ListedObject, select_latest};

use crate::retry::{Failure, RetryPolicy, with_retries};

/// Reads billing exports from S3.
#[derive(Debug, Clone)]
pub struct S3Reader {
    client: aws_sdk_s3::Client,
}

impl S3Reader {
    /// A reader on the credential chain (or `settings`); an overridden
    /// endpoint (an emulator, `AWS_ENDPOINT_URL`) gets path-style addressing.
    pub async fn new(settings: &crate::aws::AwsSettings, path_style: bool) -> Self {
        let config = crate::aws::sdk_config(settings).await;
        let path_style = path_style || settings.endpoint_url.is_some();
        Self { client: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style).build()) }
    }

    /// See [`fetch_delivery`].
    pub async fn fetch_delivery(&self, location: &S3Location, into: &Path, policy: &RetryPolicy) -> Result<(Vec<PathBuf>, DeliverySelection), String> {
        fetch_delivery(&self.client, location, into, policy).await
    }
}

/// A bucket and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        Ok(Self { bucket: bucket.to_owned(), prefix: prefix.trim_start_matches('/').to_owned() })
    }
}

fn classify<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(e: aws_sdk_s3::error::SdkError<E, R>) -> Failure {
    use aws_sdk_s3::error::SdkError;
    match &e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let msg = format!("{code}: {}", se.err().message().unwrap_or(""));
            match code {
                "SlowDown" | "Throttling" | "RequestLimitExceeded" => Failure::Throttled(msg),
                "InternalError" | "ServiceUnavailable" | "" => Failure::Transient(msg),
                _ => Failure::Permanent(msg),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Transient(format!("{e:?}")),
        _ => Failure::Permanent(format!("{e:?}")),
    }
}

/// Lists `location`, chooses the latest snapshot of each billing period and
/// downloads the chosen files into `into`, keeping their relative paths.
async fn fetch_delivery(
    client: &aws_sdk_s3::Client,
    location: &S3Location,
    into: &Path,
    policy: &RetryPolicy,
) -> Result<(Vec<PathBuf>, DeliverySelection), String> {
    let mut listing = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let t = token.clone();
        let page = with_retries(policy, "ListObjectsV2", || {
            let t = t.clone();
            async move { client.list_objects_v2().bucket(&location.bucket).prefix(&location.prefix).set_continuation_token(t).send().await.map_err(classify) }
        })
        .await
        .value
        .map_err(|e| format!("listing s3://{}/{}: {e}", location.bucket, location.prefix))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            let rel = key.strip_prefix(&location.prefix).unwrap_or(key).trim_start_matches('/').to_owned();
            let modified = o.last_modified().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
            listing.push(ListedObject { path: rel, modified });
        }
        token = page.next_continuation_token().map(str::to_owned);
        if !page.is_truncated().unwrap_or(false) || token.is_none() {
            break;
        }
    }
    if listing.is_empty() {
        return Err(format!("s3://{}/{} holds no objects", location.bucket, location.prefix));
    }
    let key_of = |rel: &str| if location.prefix.is_empty() { rel.to_owned() } else { format!("{}/{rel}", location.prefix.trim_end_matches('/')) };
    // Manifests are small: fetch the ones the rules ask for, synchronously from the listing's point of view.
    let mut manifests = std::collections::BTreeMap::new();
    for o in listing.iter().filter(|o| o.path.to_ascii_lowercase().ends_with("manifest.json")) {
        let bytes = download(client, &location.bucket, &key_of(&o.path), policy).await?;
        manifests.insert(o.path.clone(), String::from_utf8_lossy(&bytes).into_owned());
    }
    let selection = select_latest(&listing, |rel| manifests.get(rel).cloned().ok_or_else(|| format!("{rel} was not downloaded")))?;
    let mut files = Vec::new();
    for rel in &selection.files {
        let target = local_path(into, rel)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let bytes = download(client, &location.bucket, &key_of(rel), policy).await?;
        std::fs::write(&target, bytes).map_err(|e| format!("{}: {e}", target.display()))?;
        files.push(target);
    }
    Ok((files, selection))
}

/// Where an object's key (relative to the prefix) is written under `into`:
/// a key whose path would leave `into` (`..`, an absolute path) is an error,
/// not a write elsewhere on the disk.
fn local_path(into: &std::path::Path, rel: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::Path::new(rel);
    let inside = !rel.is_empty() && !rel.contains('\\') && path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(format!("the object key {rel:?} does not name a file inside the delivery folder; refused"));
    }
    Ok(into.join(path))
}

async fn download(client: &aws_sdk_s3::Client, bucket: &str, key: &str, policy: &RetryPolicy) -> Result<Vec<u8>, String> {
    with_retries(policy, "GetObject", || async move {
        let out = client.get_object().bucket(bucket).key(key).send().await.map_err(classify)?;
        out.body.collect().await.map(|b| b.into_bytes().to_vec()).map_err(|e| Failure::Transient(e.to_string()))
    })
    .await
    .value
    .map_err(|e| format!("downloading s3://{bucket}/{key}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_key_cannot_write_outside_the_download_folder() {
        let into = std::path::Path::new("/data/in");
        assert_eq!(local_path(into, "cur/2026-10/part-1.parquet").unwrap(), into.join("cur/2026-10/part-1.parquet"));
        for bad in ["../../etc/cron.d/x", "cur/../../x.csv", "/etc/passwd", "", "..\\x"] {
            assert!(local_path(into, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(S3Location::parse("s3://billing/cur/exp").unwrap(), S3Location { bucket: "billing".into(), prefix: "cur/exp".into() });
        assert_eq!(S3Location::parse("s3://billing").unwrap().prefix, "");
        assert!(S3Location::parse("https://x").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
    }
}
