//! The user-written config file (SPEC section 5), parsed strictly.
//!
//! Every key is known; an unknown one, a wrong type, two credentials in one entry or a key of
//! `registries` that is neither a host nor a region id is an error that names the file, the key
//! and the line, because a silently ignored typo (`apikeyFile`) would send the wrong credentials.
//! serde checks syntax, types and unknown keys and knows the position; the values are validated
//! after, and an error names the key path and looks its position up in the text. No error line
//! repeats a value of the file, nor a key that does not read as a name (`messages`).

mod messages;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::files;
use crate::iam::{Endpoint, Profile};
use crate::mode::Mode;
use crate::registry::{self, Region, Registry};
use crate::secret::Secret;

/// Where an entry's credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `apiKey`: the key itself, in the file.
    Inline(Secret),
    /// `apiKeyFile`: a file that holds the key.
    File(PathBuf),
    /// `apiKeyEnv`: an environment variable that holds the key.
    Env(String),
    /// `trustedProfile`: a compute-resource token exchanged for a trusted profile.
    TrustedProfile(TrustedProfile),
    /// `vpcInstance`: the VPC instance's own identity, from the metadata service, for the
    /// trusted profile named (an id or a CRN), or the instance's default profile.
    VpcInstance(Option<Profile>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProfile {
    pub profile: Profile,
    /// `crTokenFile`; when absent the environment and the default token paths are used.
    pub cr_token_file: Option<PathBuf>,
}

/// One entry: the file's top level (the default) or a value of `registries`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub mode: Option<Mode>,
    pub credential: Option<KeySource>,
    /// For a host entry: the region a mirror or future domain belongs to, whose entry it inherits.
    pub region: Option<&'static Region>,
}

/// A config file is small; anything larger is not one.
const MAX_FILE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub default: Entry,
    pub iam_endpoint: Option<Endpoint>,
    /// `iamCaFile`: a CA to trust for IAM beside the system's roots.
    pub iam_ca_file: Option<PathBuf>,
    /// `kubeletCacheDuration`, in seconds: how long the kubelet may keep a credential that does
    /// not expire by itself (an API key, a stored login). `None`: the plugin's default.
    pub kubelet_cache_duration: Option<u64>,
    pub hosts: BTreeMap<Registry, Entry>,
    pub regions: Vec<(&'static Region, Entry)>,
}

/// What the config file says about one registry, host entry over region entry over default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved<'a> {
    /// The entry's key and its credential, when a host or region entry holds one.
    pub credential: Option<(String, &'a KeySource)>,
    pub mode: Option<Mode>,
}

impl Config {
    /// Reads the config file at `path` (a regular file of at most 1 MiB); `Ok(None)` when
    /// there is none.
    pub fn load(path: &Path) -> Result<Option<Config>> {
        let fail = |why: String| Error::failed(format!("cannot read config file {}: {why}", path.display()));
        let Some(bytes) = files::read_limited(path, MAX_FILE, true).map_err(|e| fail(e.to_string()))? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".to_owned()))?;
        Config::parse(path, &text).map(Some)
    }

    /// Parses in two steps: serde checks syntax, types and unknown keys (and knows the line);
    /// then the values are validated here, and an error names the key path, whose line is found
    /// by looking the path up in the text.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let fail = |e: String| Error::failed(format!("config file {}: {e}", path.display()));
        // serde_path_to_error names the key of a type error, which serde_json alone does not.
        let mut json = serde_json::Deserializer::from_str(text);
        let Object(raw): Object<RawTop> = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            let mut keys: Vec<String> = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    _ => None,
                })
                .collect();
            let at = messages::at(Some((e.inner().line(), e.inner().column())));
            let message = messages::describe(e.inner());
            if message.starts_with("unknown key") {
                keys.pop(); // the message names it
            }
            match keys.is_empty() {
                true => fail(format!("{message}{at}")),
                false => fail(format!("{}: {message}{at}", messages::shown_path(keys.iter().map(String::as_str)))),
            }
        })?;
        json.end()
            .map_err(|e| fail(format!("{}{}", messages::describe(&e), messages::at(Some((e.line(), e.column()))))))?;
        let located = |keys: &[&str], message: String| {
            let at = messages::at(messages::position_of(text, keys));
            fail(format!("{}: {message}{at}", messages::shown_path(keys.iter().copied())))
        };
        let iam_endpoint = match raw.iam_endpoint {
            Some(text) => Some(Endpoint::parse(&text).map_err(|e| located(&["iamEndpoint"], e))?),
            None => None,
        };
        let kubelet_cache_duration = match raw.kubelet_cache_duration {
            Some(text) => Some(crate::duration::parse(&text).map_err(|e| located(&["kubeletCacheDuration"], e))?),
            None => None,
        };
        let credential = credential(raw_credential!(raw)).map_err(|(key, e)| located(&[key], e))?;
        let mut hosts = BTreeMap::new();
        let mut regions: Vec<(&'static Region, Entry)> = Vec::new();
        for (key, Object(raw_entry)) in raw.registries {
            let entry = entry(raw_entry).map_err(|(field, e)| located(&["registries", &key, field], e))?;
            if let Some(region) = registry::region_named(&key) {
                if regions.iter().any(|(r, _)| std::ptr::eq(*r, region)) {
                    return Err(located(&["registries", &key], format!("region {} is named twice", region.id)));
                }
                regions.push((region, entry));
                continue;
            }
            let bare = !key.contains(['/', '@']) && !key.trim().is_empty() && key.trim() == key;
            let host = registry::parse_server_url(&key).ok().filter(|_| bare).ok_or_else(|| {
                located(
                    &["registries", &key],
                    "neither a region id (such as `eu-de`) nor a host[:port] (such as `mirror.example.com:5000`)"
                        .to_owned(),
                )
            })?;
            if hosts.insert(host, entry).is_some() {
                return Err(located(&["registries", &key], "this host is named twice".to_owned()));
            }
        }
        Ok(Config {
            path: path.to_owned(),
            default: Entry { mode: raw.mode, credential, region: None },
            iam_endpoint,
            iam_ca_file: raw.iam_ca_file,
            kubelet_cache_duration,
            hosts,
            regions,
        })
    }

    /// The variables `apiKeyEnv` names, anywhere in the file.
    pub fn key_variables(&self) -> impl Iterator<Item = &str> {
        let entries =
            std::iter::once(&self.default).chain(self.hosts.values()).chain(self.regions.iter().map(|(_, e)| e));
        entries.filter_map(|e| match &e.credential {
            Some(KeySource::Env(name)) => Some(name.as_str()),
            _ => None,
        })
    }

    /// Whether the file names this registry as a host (which makes a non-ICR host ours).
    pub fn names(&self, registry: &Registry) -> bool {
        self.hosts.contains_key(registry)
    }

    /// The entries that apply to `registry`: its host entry, then its region's entry (the
    /// region of the table, or the `region` a host entry declares), then the default's mode.
    /// The default's credential is a later, separate source (SPEC section 4), so it is not here.
    pub fn resolve(&self, registry: &Registry) -> Resolved<'_> {
        let host = self.hosts.get(registry);
        let region = host.and_then(|h| h.region).or_else(|| registry.icr().map(|(r, _)| r));
        let region_entry = region.and_then(|r| self.regions.iter().find(|(er, _)| std::ptr::eq(*er, r)));
        let credential = host
            .and_then(|h| h.credential.as_ref().map(|c| (registry.to_string(), c)))
            .or_else(|| region_entry.and_then(|(r, e)| e.credential.as_ref().map(|c| (r.id.to_owned(), c))));
        let mode = host.and_then(|h| h.mode).or_else(|| region_entry.and_then(|(_, e)| e.mode)).or(self.default.mode);
        Resolved { credential, mode }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTop {
    mode: Option<Mode>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    trusted_profile: Option<Object<RawTrustedProfile>>,
    vpc_instance: Option<Object<RawVpcInstance>>,
    iam_endpoint: Option<String>,
    iam_ca_file: Option<PathBuf>,
    kubelet_cache_duration: Option<String>,
    #[serde(default)]
    registries: BTreeMap<String, Object<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTrustedProfile {
    profile_id: Option<String>,
    profile_name: Option<String>,
    profile_crn: Option<String>,
    cr_token_file: Option<PathBuf>,
}

/// `vpcInstance`: `{}`, `{"profileId": …}` or `{"profileCrn": …}`; the metadata service takes
/// no profile names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawVpcInstance {
    profile_id: Option<String>,
    profile_crn: Option<String>,
}

/// The credential keys of the top level or of an entry (two types, the same keys), moved out.
macro_rules! raw_credential {
    ($raw:expr) => {
        RawCredential {
            api_key: $raw.api_key,
            api_key_file: $raw.api_key_file,
            api_key_env: $raw.api_key_env,
            trusted_profile: $raw.trusted_profile.map(|Object(tp)| tp),
            vpc_instance: $raw.vpc_instance.map(|Object(v)| v),
        }
    };
}
use raw_credential;

/// The credential keys of an entry, as the file has them.
struct RawCredential {
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    trusted_profile: Option<RawTrustedProfile>,
    vpc_instance: Option<RawVpcInstance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEntry {
    mode: Option<Mode>,
    region: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_env: Option<String>,
    trusted_profile: Option<Object<RawTrustedProfile>>,
    vpc_instance: Option<Object<RawVpcInstance>>,
}

/// A JSON object and nothing else. A derived struct also accepts an array of its fields in
/// declaration order, which would make `[null, "key", …]` a valid config file with no key
/// named at all; the file is keyed, so only its object form is taken.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(Visitor(PhantomData))
    }
}

/// A validation error: the offending key and what is wrong with it.
type Invalid = (&'static str, String);

fn entry(raw: RawEntry) -> Result<Entry, Invalid> {
    let region = match raw.region {
        Some(name) => Some(
            registry::region_named(&name)
                .ok_or_else(|| ("region", "not a region id of the registry table (such as `us-south`)".to_owned()))?,
        ),
        None => None,
    };
    let credential = credential(raw_credential!(raw))?;
    Ok(Entry { mode: raw.mode, credential, region })
}

fn credential(raw: RawCredential) -> Result<Option<KeySource>, Invalid> {
    let RawCredential { api_key, api_key_file, api_key_env, trusted_profile, vpc_instance } = raw;
    let mut found: Vec<(&'static str, KeySource)> = Vec::new();
    if let Some(key) = api_key {
        if key.trim().is_empty() {
            return Err(("apiKey", "is empty".to_owned()));
        }
        found.push(("apiKey", KeySource::Inline(Secret::new(key.trim()))));
    }
    if let Some(path) = api_key_file {
        if path.as_os_str().is_empty() {
            return Err(("apiKeyFile", "is empty".to_owned()));
        }
        found.push(("apiKeyFile", KeySource::File(path)));
    }
    if let Some(name) = api_key_env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(("apiKeyEnv", "not the name of an environment variable".to_owned()));
        }
        found.push(("apiKeyEnv", KeySource::Env(name)));
    }
    if let Some(tp) = trusted_profile {
        let profile = match one_profile(tp.profile_id, tp.profile_name, tp.profile_crn) {
            Ok(Some(profile)) => profile,
            _ => {
                return Err((
                    "trustedProfile",
                    "needs exactly one of `profileId`, `profileName` and `profileCrn`".to_owned(),
                ))
            }
        };
        found.push((
            "trustedProfile",
            KeySource::TrustedProfile(TrustedProfile { profile, cr_token_file: tp.cr_token_file }),
        ));
    }
    if let Some(vpc) = vpc_instance {
        let profile = one_profile(vpc.profile_id, None, vpc.profile_crn)
            .map_err(|()| ("vpcInstance", "takes at most one of `profileId` and `profileCrn`".to_owned()))?;
        found.push(("vpcInstance", KeySource::VpcInstance(profile)));
    }
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|(n, _)| *n).collect();
        return Err((found[1].0, format!("an entry takes one credential, but this one has {}", names.join(" and "))));
    }
    Ok(found.pop().map(|(_, c)| c))
}

/// At most one of a profile's id, name and CRN, none of them empty; `Err` for two or an empty
/// one. An id must read as one (`Profile-…`) and a CRN as one (`crn:…`), so that a value in the
/// wrong key is not sent as what it is not.
fn one_profile(id: Option<String>, name: Option<String>, crn: Option<String>) -> Result<Option<Profile>, ()> {
    let given: Vec<Profile> = [
        id.map(|v| Profile::Id(v.trim().to_owned())),
        name.map(|v| Profile::Name(v.trim().to_owned())),
        crn.map(|v| Profile::Crn(v.trim().to_owned())),
    ]
    .into_iter()
    .flatten()
    .collect();
    match given.as_slice() {
        [] => Ok(None),
        [Profile::Id(v)] if v.starts_with("Profile-") => Ok(given.into_iter().next()),
        [Profile::Crn(v)] if v.starts_with("crn:") => Ok(given.into_iter().next()),
        [Profile::Name(v)] if !v.is_empty() => Ok(given.into_iter().next()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse_server_url;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/icr/config.json"), text)
    }

    fn reg(s: &str) -> Registry {
        parse_server_url(s).unwrap()
    }

    const EXAMPLE: &str = r#"{
  "mode": "iamapikey",
  "apiKeyFile": "/run/secrets/icr-apikey",
  "iamEndpoint": "https://private.iam.cloud.ibm.com",
  "registries": {
    "de.icr.io": { "mode": "iambearer", "apiKeyEnv": "DE_ICR_KEY" },
    "mirror.example.com:5000": { "region": "us-south", "apiKeyFile": "/etc/icr/mirror-key" },
    "jp.icr.io": { "trustedProfile": { "profileId": "Profile-1", "crTokenFile": "/var/run/secrets/tokens/sa-token" } },
    "eu-gb": { "apiKey": "uk-key" },
    "us-south": { "mode": "iamrefresh" }
  }
}"#;

    #[test]
    fn the_specs_example_parses() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.default.mode, Some(Mode::ApiKey));
        assert_eq!(c.default.credential, Some(KeySource::File("/run/secrets/icr-apikey".into())));
        assert_eq!(c.iam_endpoint.as_ref().unwrap().as_str(), "https://private.iam.cloud.ibm.com");
        assert!(c.names(&reg("mirror.example.com:5000")));
        assert!(c.names(&reg("https://MIRROR.example.com.:5000/v2/")));
        assert!(!c.names(&reg("mirror.example.com")));
        assert_eq!(c.hosts.len(), 3);
        assert_eq!(c.regions.len(), 2);
    }

    #[test]
    fn a_host_entry_beats_its_region_and_a_region_covers_all_three_domains() {
        let c = parse(EXAMPLE).unwrap();
        let de = c.resolve(&reg("de.icr.io"));
        assert_eq!(de.mode, Some(Mode::Bearer));
        assert_eq!(de.credential.unwrap().1, &KeySource::Env("DE_ICR_KEY".into()));
        for host in ["uk.icr.io", "private.uk.icr.io", "registry.eu-gb.bluemix.net"] {
            let r = c.resolve(&reg(host));
            assert_eq!(r.credential, Some(("eu-gb".to_owned(), &KeySource::Inline(Secret::new("uk-key")))), "{host}");
            assert_eq!(r.mode, Some(Mode::ApiKey), "default mode applies");
        }
        // A mirror inherits its declared region's mode but keeps its own key.
        let m = c.resolve(&reg("mirror.example.com:5000"));
        assert_eq!(m.mode, Some(Mode::Refresh));
        assert_eq!(m.credential.unwrap().1, &KeySource::File("/etc/icr/mirror-key".into()));
        // Nothing for a region without an entry, apart from the default mode.
        assert_eq!(c.resolve(&reg("au.icr.io")), Resolved { credential: None, mode: Some(Mode::ApiKey) });
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_line() {
        let cases = [
            ("{\n  \"apikeyFile\": \"/x\"\n}", "apikeyFile", 2),
            ("{\n \"registries\": {\n  \"de.icr.io\": {\"apiKey\": \"k\", \"mdoe\": \"x\"}\n }\n}", "mdoe", 3),
            ("{\n \"mode\": \"bearer\"\n}", "mode: not a value this key takes", 2),
            ("{\n \"registries\": {\n  \"https://de.icr.io/v2\": {}\n }\n}", "https://de.icr.io/v2", 3),
            (
                "{\n \"registries\": {\n  \"x.example\": {\"apiKey\": \"k\", \"apiKeyEnv\": \"E\"}\n }\n}",
                "apiKey and apiKeyEnv",
                3,
            ),
            (
                "{\n \"registries\": {\n  \"x.example\": {\"region\": \"mars\"}\n }\n}",
                "x.example.region: not a region id",
                3,
            ),
            ("{\n \"iamEndpoint\": \"http://iam.cloud.ibm.com\"\n}", "iamEndpoint", 2),
            ("{\n \"trustedProfile\": {\"profileId\": \"a\", \"profileName\": \"b\"}\n}", "trustedProfile", 2),
            ("{\n \"mode\": 3\n}", "mode", 2),
            ("{\n \"registries\": []\n}", "registries", 2),
            ("{\n \"apiKey\": \"\"\n}", "apiKey", 2),
            ("{\n \"kubeletCacheDuration\": \"1.5h\"\n}", "kubeletCacheDuration", 2),
            ("{\n \"kubeletCacheDuration\": 3600\n}", "kubeletCacheDuration", 2),
            ("{", "EOF", 1),
            ("{}\n{}", "trailing characters", 2),
            ("", "EOF", 1),
        ];
        for (text, key, line) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with("config file /etc/icr/config.json: "), "{err}");
            assert!(err.contains(key), "{err} should name {key}");
            assert!(err.contains(&format!("line {line}")), "{err} should name line {line}");
        }
    }

    #[test]
    fn a_trusted_profile_is_named_by_id_name_or_crn_and_a_vpc_instance_by_id_crn_or_nothing() {
        let crn = "crn:v1:bluemix:public:iam-identity::a/abc::profile:Profile-9";
        let c = parse(&format!(
            r#"{{"trustedProfile": {{"profileCrn": "{crn}"}}, "registries": {{
                "de.icr.io": {{"vpcInstance": {{}}}},
                "jp.icr.io": {{"vpcInstance": {{"profileId": "Profile-7"}}}},
                "uk.icr.io": {{"vpcInstance": {{"profileCrn": "{crn}"}}}} }}}}"#
        ))
        .unwrap();
        let tp = TrustedProfile { profile: Profile::Crn(crn.into()), cr_token_file: None };
        assert_eq!(c.default.credential, Some(KeySource::TrustedProfile(tp)));
        let vpc = |host: &str| c.resolve(&reg(host)).credential.map(|(_, k)| k.clone());
        assert_eq!(vpc("de.icr.io"), Some(KeySource::VpcInstance(None)));
        assert_eq!(vpc("jp.icr.io"), Some(KeySource::VpcInstance(Some(Profile::Id("Profile-7".into())))));
        assert_eq!(vpc("uk.icr.io"), Some(KeySource::VpcInstance(Some(Profile::Crn(crn.into())))));
        for bad in [
            r#"{"vpcInstance": {"profileName": "x"}}"#,
            r#"{"vpcInstance": {"profileId": "Profile-1", "profileCrn": "crn:x"}}"#,
            r#"{"vpcInstance": {"profileId": "not-an-id"}}"#,
            r#"{"trustedProfile": {"profileCrn": "Profile-1"}}"#,
            r#"{"trustedProfile": {"profileId": "Profile-1", "profileCrn": "crn:x"}}"#,
            r#"{"vpcInstance": {}, "apiKey": "k"}"#,
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("vpcInstance") || err.contains("trustedProfile"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_the_object_form_of_an_entry_is_taken() {
        for (text, line) in [
            ("[null, \"key\", null, null, null, null, {}]", 1),
            ("{\n \"registries\": {\n  \"de.icr.io\": [null, null, \"key\", null, null, null]\n }\n}", 3),
            ("{\n \"trustedProfile\": [\"Profile-1\", null, null]\n}", 2),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("expected an object, found an array"), "{err}");
            assert!(err.contains(&format!("line {line}")), "{err}");
        }
    }

    #[test]
    fn an_error_where_the_input_ends_names_no_placeholder_key() {
        assert_eq!(
            parse("{").unwrap_err().to_string(),
            "config file /etc/icr/config.json: EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            parse("{\n \"registries\": {\n  \"de.icr.io\": {").unwrap_err().to_string(),
            "config file /etc/icr/config.json: registries.de.icr.io: EOF while parsing an object at line 3 column 16"
        );
    }

    #[test]
    fn an_inline_key_never_appears_in_an_error() {
        let err = parse(r#"{"apiKey": "hunter2-key", "apiKeyFile": "/x"}"#).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_kubelet_cache_duration_is_read_in_go_syntax() {
        assert_eq!(parse(r#"{"kubeletCacheDuration": "1h30m"}"#).unwrap().kubelet_cache_duration, Some(5400));
        assert_eq!(parse("{}").unwrap().kubelet_cache_duration, None);
    }

    #[test]
    fn a_missing_file_is_no_config() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&tmp.path().join("config.json")).unwrap(), None);
    }
}
