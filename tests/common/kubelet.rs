//! The kubelet's side of the exec-plugin API, as strict as the kubelet is, and a little stricter:
//! requests shaped as the kubelet encodes them, a node to run the plugin on, and a decoder for
//! every response ([`decode`]), which [`kubelet`] applies to each one the tests produce.
//!
//! What the kubelet (Kubernetes 1.36, `pkg/credentialprovider/plugin/plugin.go`) does with the
//! plugin's stdout: it reads the `apiVersion` and refuses one other than the provider's
//! configured `apiVersion`; it decodes with `serializer.NewCodecFactory(scheme,
//! serializer.EnableStrict)`, which refuses an unknown field at any depth, a field named in
//! another case (`CacheKeyType`), and a field given twice (also a key given twice in `auth`);
//! `cacheDuration` is a `metav1.Duration`, a JSON string read by Go's `time.ParseDuration`, which
//! refuses anything outside `time.Duration` (±2^63 − 1 ns); a `cacheKeyType` other than `Image`,
//! `Registry` or `Global` makes it drop the response; with a service account token in the request
//! and a `cacheType` other than `Token`, a password equal to that token is refused.
//!
//! The types below are `k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go` of that release,
//! field for field. Where the kubelet would accept something sloppy, this decoder refuses it,
//! because the plugin has no reason to send it: a missing or `null` `username`/`password`, a
//! missing `cacheDuration` (the plugin always says how long), a negative duration.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Output, Scenario};

pub const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
pub const V1BETA1: &str = "credentialprovider.kubelet.k8s.io/v1beta1";

/// A node: a fresh HOME, and the config file and token cache where the shipped
/// `CredentialProviderConfig` puts them (its `env`), with `config` in that file.
pub fn node(config: &Value, iam: Option<&fake_iam::FakeIam>) -> Scenario {
    let mut s = match iam {
        Some(iam) => Scenario::with_iam(iam),
        None => Scenario::new(),
    };
    let path = s.root().join("etc/docker-credential-icr/config.json");
    super::write_file(&path, &serde_json::to_string_pretty(config).unwrap());
    let cache = s.root().join("var/cache/docker-credential-icr");
    s.set("DOCKER_CREDENTIAL_ICR_CONFIG", &path).set("DOCKER_CREDENTIAL_ICR_CACHE_DIR", cache);
    s
}

/// A scenario as a node's kubelet runs the plugin.
pub trait Node {
    /// Runs `docker-credential-icr kubelet` with `request` on stdin, and reads what it printed
    /// as the kubelet does: a failure is a non-zero exit with nothing to decode; a success is a
    /// response its strict decoder takes, in the version the request was made in.
    fn kubelet(&self, request: &str) -> Output;
}

impl Node for Scenario {
    #[track_caller]
    fn kubelet(&self, request: &str) -> Output {
        kubelet(self, request)
    }
}

#[track_caller]
fn kubelet(s: &Scenario, request: &str) -> Output {
    let out = s.run(&["kubelet"], request);
    if out.status != Some(0) {
        assert!(out.stdout.is_empty(), "a failed request printed a response\n{out}");
        return out;
    }
    let sent: Value = serde_json::from_str(request).expect("the tests send JSON requests");
    let version = sent["apiVersion"].as_str().expect("the tests' requests name their apiVersion");
    if let Err(why) = decode(&out.stdout(), version, sent["serviceAccountToken"].as_str()) {
        panic!("the kubelet would refuse this response: {why}\n{out}");
    }
    out
}

/// A request as the kubelet encodes it: `kind`, `apiVersion`, `image`, then the service account
/// fields only when set (`omitempty`).
pub fn request(version: &str, image: &str, token: Option<&str>, annotations: &[(&str, &str)]) -> String {
    let mut r = json!({ "kind": "CredentialProviderRequest", "apiVersion": version, "image": image });
    if let Some(token) = token {
        r["serviceAccountToken"] = json!(token);
    }
    if !annotations.is_empty() {
        r["serviceAccountAnnotations"] = annotations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    }
    r.to_string()
}

/// A service account token shaped as the API server issues it to the kubelet for a pod.
pub fn sa_token(namespace: &str, name: &str, pod: &str, exp: u64) -> String {
    let claims = json!({
        "aud": ["iam"],
        "exp": exp,
        "iat": exp.saturating_sub(3600),
        "iss": fake_iam::CLUSTER_ISSUER,
        "jti": format!("jti-{pod}"),
        "kubernetes.io": {
            "namespace": namespace,
            "node": { "name": "worker-1", "uid": "node-uid-1" },
            "pod": { "name": pod, "uid": format!("pod-uid-{pod}") },
            "serviceaccount": { "name": name, "uid": format!("sa-uid-{namespace}-{name}") }
        },
        "nbf": exp.saturating_sub(3600),
        "sub": format!("system:serviceaccount:{namespace}:{name}")
    });
    fake_iam::compute_resource_token(&claims.to_string())
}

/// A response the kubelet would use.
#[derive(Debug)]
pub struct Decoded {
    pub api_version: String,
    pub cache_key_type: String,
    /// `cacheDuration`, in nanoseconds as Go holds it.
    pub cache_duration_ns: i64,
    /// Match key → (username, password).
    pub auth: BTreeMap<String, (String, String)>,
}

impl Decoded {
    /// `cacheDuration` in whole seconds.
    pub fn cache_seconds(&self) -> u64 {
        (self.cache_duration_ns / 1_000_000_000) as u64
    }
}

/// `CredentialProviderResponse` (`metav1.TypeMeta` inline).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    #[serde(rename = "apiVersion")]
    api_version: Text,
    kind: Text,
    #[serde(rename = "cacheKeyType")]
    cache_key_type: Text,
    #[serde(rename = "cacheDuration")]
    cache_duration: Text,
    #[serde(default)]
    auth: Option<UniqueMap<AuthConfig>>,
}

/// `AuthConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    username: Text,
    password: Text,
}

/// A JSON string and nothing else (not `null`).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Text)
    }
}

/// A JSON object whose keys are all different, as the kubelet's strict decoder demands.
struct UniqueMap<T>(BTreeMap<String, T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for UniqueMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = UniqueMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, T>()? {
                    if out.insert(key.clone(), value).is_some() {
                        return Err(de::Error::custom(format!("duplicate field {key:?}")));
                    }
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Decodes `stdout` as the kubelet configured with `api_version` does, or says why it would not
/// use it. `service_account_token` is the token the request carried, if any.
pub fn decode(stdout: &str, api_version: &str, service_account_token: Option<&str>) -> Result<Decoded, String> {
    let line = stdout.strip_suffix('\n').ok_or("the response does not end with a newline")?;
    if line.contains('\n') {
        return Err("the response is more than one line".into());
    }
    let response: Response = serde_json::from_str(line).map_err(|e| format!("strict decoding error: {e}"))?;
    if response.api_version.0 != api_version {
        return Err(format!("apiVersion {:?} is not the configured {api_version:?}", response.api_version.0));
    }
    if response.kind.0 != "CredentialProviderResponse" {
        return Err(format!("kind {:?} is not CredentialProviderResponse", response.kind.0));
    }
    if !matches!(response.cache_key_type.0.as_str(), "Image" | "Registry" | "Global") {
        return Err(format!("cacheKeyType {:?} is not Image, Registry or Global", response.cache_key_type.0));
    }
    let cache_duration_ns = parse_go_duration(&response.cache_duration.0)?;
    if cache_duration_ns < 0 {
        return Err(format!("cacheDuration {:?} is negative", response.cache_duration.0));
    }
    let auth: BTreeMap<String, (String, String)> = response
        .auth
        .map(|m| m.0.into_iter().map(|(k, v)| (k, (v.username.0, v.password.0))).collect())
        .unwrap_or_default();
    if let Some(token) = service_account_token {
        if auth.values().any(|(_, password)| password == token) {
            return Err("the password is the service account token itself".into());
        }
    }
    Ok(Decoded {
        api_version: response.api_version.0,
        cache_key_type: response.cache_key_type.0,
        cache_duration_ns,
        auth,
    })
}

/// Go's `time.ParseDuration` (go/src/time/format.go), to the nanosecond and with its overflow
/// checks: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let mut s = text;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        // leadingInt
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut v: u64 = 0;
        for b in s[..digits].bytes() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        let pre = digits > 0;
        s = &s[digits..];
        // leadingFraction
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in rest[..n].bytes() {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(b - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = n > 0;
            s = &rest[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let unit: u64 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(format!("time: unknown unit {other:?} in duration {text:?}")),
        };
        s = &s[unit_len..];
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}
