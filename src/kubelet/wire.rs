//! The kubelet's exec-plugin API on the wire: `CredentialProviderRequest` in, and
//! `CredentialProviderResponse` out, with the field names and casing of the published
//! `k8s.io/kubelet/pkg/apis/credentialprovider/{v1,v1beta1}` types.
//!
//! The request is read the way the kubelet's own decoder reads JSON: exact field names, unknown
//! fields ignored (a newer kubelet may send more). Errors name the field, never its value, since
//! the value may be the service account token.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

pub const GROUP: &str = "credentialprovider.kubelet.k8s.io";
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// The API versions the plugin speaks; it answers in the one it was asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V1Beta1,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "credentialprovider.kubelet.k8s.io/v1",
            ApiVersion::V1Beta1 => "credentialprovider.kubelet.k8s.io/v1beta1",
        }
    }

    fn parse(text: &str) -> Option<ApiVersion> {
        [ApiVersion::V1, ApiVersion::V1Beta1].into_iter().find(|v| v.as_str() == text)
    }
}

/// A `CredentialProviderRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: ApiVersion,
    /// The image being pulled, as the pod spec names it: `us.icr.io/ns/img:tag`.
    pub image: String,
    /// The pod's service account token, when the kubelet's `tokenAttributes` ask for one.
    pub service_account_token: Option<Secret>,
    /// The service account's annotations that the kubelet's config lists, and only those.
    pub service_account_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawRequest {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    image: Option<String>,
    #[serde(rename = "serviceAccountToken")]
    service_account_token: Option<Secret>,
    #[serde(rename = "serviceAccountAnnotations")]
    service_account_annotations: Option<BTreeMap<String, String>>,
}

/// Parses a request, or says in one line what is wrong with it.
pub fn parse_request(input: &str) -> Result<Request> {
    let mut json = serde_json::Deserializer::from_str(input);
    let raw: RawRequest =
        serde_path_to_error::deserialize(&mut json).map_err(|e| invalid(&e.path().to_string(), e.inner()))?;
    json.end().map_err(|e| invalid(".", &e))?;
    let api_version = raw.api_version.unwrap_or_default();
    let version = ApiVersion::parse(&api_version).ok_or_else(|| {
        Error::input(format!(
            "apiVersion `{}` is not one this plugin speaks: expected {} or {}",
            printable(&api_version),
            ApiVersion::V1.as_str(),
            ApiVersion::V1Beta1.as_str()
        ))
    })?;
    let kind = raw.kind.unwrap_or_default();
    if kind != REQUEST_KIND {
        return Err(Error::input(format!("kind `{}` is not {REQUEST_KIND}", printable(&kind))));
    }
    let image = raw.image.unwrap_or_default();
    if image.trim().is_empty() {
        return Err(Error::input("the request names no image"));
    }
    Ok(Request {
        version,
        image,
        service_account_token: raw.service_account_token.filter(|t| !t.expose().trim().is_empty()),
        service_account_annotations: raw.service_account_annotations.unwrap_or_default(),
    })
}

/// Says what is wrong with a request that does not decode: the field's path for a type error,
/// the position for a syntax error; never the offending value.
fn invalid(path: &str, error: &serde_json::Error) -> Error {
    match error.classify() {
        serde_json::error::Category::Data if path != "." => {
            Error::input(format!("the request's `{path}` has the wrong type"))
        }
        serde_json::error::Category::Data => {
            Error::input(format!("the request is not a JSON object: expected a {REQUEST_KIND}"))
        }
        _ => Error::input(format!(
            "the request is not valid JSON (line {}, column {}): expected a {REQUEST_KIND}",
            error.line(),
            error.column()
        )),
    }
}

/// A value echoed in an error line: printable and short.
pub fn printable(text: &str) -> String {
    let mut s: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
    if text.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// The `cacheKeyType` this plugin answers with (`RegistryPluginCacheKeyType`): credentials are
/// per registry host.
pub const CACHE_KEY_TYPE: &str = "Registry";

/// One `auth` entry: `AuthConfig`, with exactly its two fields.
#[derive(Serialize)]
pub struct AuthConfig<'a> {
    /// ``Username string `json:"username"` ``
    pub username: &'a str,
    /// ``Password string `json:"password"` ``
    pub password: &'a str,
}

/// A `CredentialProviderResponse` as `k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go`
/// defines it in Kubernetes 1.36 (`v1beta1/types.go` is the same shape), with its fields in the
/// order the Go type declares them and nothing else: the kubelet decodes the response strictly
/// (`serializer.EnableStrict`), so a field that is not in that file makes it drop the whole
/// answer. What the kubelet caches a service-account answer under is the node's business
/// (`tokenAttributes.cacheType` in its `CredentialProviderConfig`), not the response's.
#[derive(Serialize)]
pub struct Response<'a> {
    /// `metav1.TypeMeta` inline: ``APIVersion string `json:"apiVersion,omitempty"` ``.
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// `metav1.TypeMeta` inline: ``Kind string `json:"kind,omitempty"` ``.
    pub kind: &'static str,
    /// ``CacheKeyType PluginCacheKeyType `json:"cacheKeyType"` ``.
    #[serde(rename = "cacheKeyType")]
    pub cache_key_type: &'static str,
    /// ``CacheDuration *metav1.Duration `json:"cacheDuration,omitempty"` ``, in Go duration syntax
    /// (`"30m0s"`); `"0s"` tells the kubelet not to cache.
    #[serde(rename = "cacheDuration", skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<String>,
    /// ``Auth map[string]AuthConfig `json:"auth,omitempty"` ``.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub auth: BTreeMap<&'a str, AuthConfig<'a>>,
}

impl Response<'_> {
    /// The response as one JSON line.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a response always serializes");
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_as_the_kubelet_encodes_it_parses() {
        let r = parse_request(
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"us.icr.io/ns/img:1","serviceAccountToken":"tok","serviceAccountAnnotations":{"icr.ibm.com/trusted-profile-id":"Profile-1"},"futureField":1}"#,
        )
        .unwrap();
        assert_eq!(r.version, ApiVersion::V1);
        assert_eq!(r.image, "us.icr.io/ns/img:1");
        assert_eq!(r.service_account_token, Some(Secret::new("tok")));
        assert_eq!(r.service_account_annotations["icr.ibm.com/trusted-profile-id"], "Profile-1");
    }

    #[test]
    fn errors_name_the_field_but_never_echo_a_token() {
        let err = parse_request(
            r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x","serviceAccountAnnotations":"secret-token-value"}"#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "the request's `serviceAccountAnnotations` has the wrong type");
        let err = parse_request(r#"{"serviceAccountToken": "secret-token-value""#).unwrap_err().to_string();
        assert!(!err.contains("secret-token-value") && err.starts_with("the request is not valid JSON"), "{err}");
    }

    #[test]
    fn field_names_are_exact() {
        let err = parse_request(
            r#"{"APIVERSION":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("apiVersion `` is not one"), "{err}");
    }

    #[test]
    fn the_response_has_the_published_field_names_in_order() {
        let mut auth = BTreeMap::new();
        auth.insert("us.icr.io", AuthConfig { username: "iamapikey", password: "k" });
        let r = Response {
            api_version: ApiVersion::V1Beta1.as_str(),
            kind: RESPONSE_KIND,
            cache_key_type: CACHE_KEY_TYPE,
            cache_duration: Some("1h0m0s".into()),
            auth,
        };
        assert_eq!(
            r.to_line(),
            "{\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1beta1\",\"kind\":\"CredentialProviderResponse\",\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"1h0m0s\",\"auth\":{\"us.icr.io\":{\"username\":\"iamapikey\",\"password\":\"k\"}}}\n"
        );
    }
}
