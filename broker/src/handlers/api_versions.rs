//! ApiVersions: what this broker serves, from the one table the codec also checks.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use super::{RequestContext, SUPPORTED};

/// Every API and version range served.
pub(crate) fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub(crate) fn handle(ctx: &RequestContext, req: &ApiVersionsRequest) -> ApiVersionsResponse {
    if ctx.api_version >= 3 {
        tracing::debug!(
            client_id = %ctx.client_id,
            software = %req.client_software_name,
            software_version = %req.client_software_version,
            "client connected"
        );
    }
    ApiVersionsResponse::default().with_api_keys(api_keys())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiKey;

    #[test]
    fn every_advertised_version_is_one_the_codec_knows() {
        for v in api_keys() {
            let key = ApiKey::try_from(v.api_key).expect("known key");
            let valid = key.valid_versions();
            assert!(
                v.min_version >= valid.min && v.max_version <= valid.max,
                "{key:?}"
            );
        }
    }
}
