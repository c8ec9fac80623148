//! One place that builds SDK configuration: the standard credential chain
//! and `AWS_ENDPOINT_URL` by default, both overridable for tests; rustls on
//! ring; the SDK's own retries off (ours are in [`crate::retry`]).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Overrides every service's endpoint (tests point it at emulators).
    pub endpoint_url: Option<String>,
    /// Default: the chain's region, else us-east-1 (where Cost Explorer lives).
    pub region: Option<String>,
    /// Static credentials, for emulators; the standard chain otherwise.
    pub static_credentials: Option<(String, String)>,
}

pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http).retry_config(RetryConfig::disabled());
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &settings.static_credentials {
        loader = loader.credentials_provider(aws_sdk_costexplorer::config::Credentials::new(id, secret, None, None, "tally-static"));
    }
    let config = loader.load().await;
    if config.region().is_none() {
        let mut b = config.to_builder();
        b.set_region(Some(Region::new("us-east-1")));
        return b.build();
    }
    config
}
