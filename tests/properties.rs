//! Property tests of the two parsers that see untrusted input: the server URL (`get`, `erase`,
//! `store`) and the `store` request. proptest generates the inputs and, when a property fails,
//! shrinks the case to a minimal one.

use docker_credential_icr::error::Error;
use docker_credential_icr::protocol::parse_store;
use docker_credential_icr::registry::{parse_server_url, REGIONS};
use proptest::prelude::*;

fn table_hosts() -> Vec<&'static str> {
    REGIONS.iter().flat_map(|r| r.domains()).collect()
}

fn is_table_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    table_hosts().contains(&host)
}

/// A host built from DNS-ish ASCII labels, sometimes glued around a real ICR name.
fn hostish() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9-]{1,12}";
    let icr = proptest::sample::select(table_hosts());
    prop_oneof![
        proptest::collection::vec(label, 1..5).prop_map(|labels| labels.join(".")),
        (label, icr.clone()).prop_map(|(l, h)| format!("{l}{h}")),
        (label, icr.clone()).prop_map(|(l, h)| format!("{l}.{h}")),
        (icr.clone(), label).prop_map(|(h, l)| format!("{h}{l}")),
        (icr.clone(), label).prop_map(|(h, l)| format!("{h}.{l}")),
        (icr, "[-_.]{1,2}", label).prop_map(|(h, sep, l)| format!("{h}{sep}{l}")),
    ]
}

/// Decorations a client may add around a host: scheme, port, path.
fn url_around(host: String) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec!["", "https://", "HTTPS://", "http://"]),
        proptest::option::of(proptest::sample::select(vec![443u16, 80, 5000, 8443])),
        proptest::sample::select(vec!["", "/", "/v2/", "/v1/", "/ns/image", "/ns/image:tag", "/ns/i@sha256:00"]),
    )
        .prop_map(move |(scheme, port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}{host}{port}{path}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn server_url_parsing_never_panics(input in any::<String>()) {
        let _ = parse_server_url(&input);
    }

    #[test]
    fn url_shaped_noise_never_panics(input in "[a-zA-Z0-9:/@.\\[\\]%#?\\\\ _-]{0,40}") {
        if let Ok(registry) = parse_server_url(&input) {
            // Whatever is accepted prints as a registry that parses back to itself.
            prop_assert_eq!(parse_server_url(&registry.to_string()), Ok(registry));
        }
    }

    #[test]
    fn a_host_that_is_not_in_the_table_is_never_icr(url in hostish().prop_flat_map(url_around)) {
        let host = url.split("://").last().unwrap().split(['/', ':']).next().unwrap().to_owned();
        prop_assume!(!is_table_host(&host));
        let parsed = parse_server_url(&url);
        prop_assert!(parsed.as_ref().map_or(true, |r| r.icr().is_none()), "{url:?} → {parsed:?}");
    }

    #[test]
    fn a_userinfo_never_makes_a_url_icr(
        user in proptest::sample::select(table_hosts()),
        host in hostish(),
    ) {
        let url = format!("https://{user}@{host}/v2/");
        prop_assert!(parse_server_url(&url).map_or(true, |r| r.icr().is_none()), "{url:?}");
    }

    #[test]
    fn every_table_host_resolves_in_any_case_with_dot_port_443_and_path(
        index in 0..table_hosts().len(),
        upper in proptest::collection::vec(any::<bool>(), 32),
        dot in any::<bool>(),
        scheme in proptest::sample::select(vec!["", "https://", "HTTPS://", "hTTpS://"]),
        port in any::<bool>(),
        path in "(/[a-zA-Z0-9._-]{1,8}){0,3}/?",
    ) {
        let host = table_hosts()[index];
        let cased: String = host
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
            .collect();
        let url = format!("{scheme}{cased}{}{}{path}", if dot { "." } else { "" }, if port { ":443" } else { "" });
        let registry = parse_server_url(&url);
        prop_assert!(registry.is_ok(), "{url:?}: {registry:?}");
        let registry = registry.unwrap();
        prop_assert_eq!(registry.host(), host);
        let region = REGIONS.iter().find(|r| r.domains().any(|d| d == host)).unwrap();
        prop_assert_eq!(registry.icr().map(|(r, _)| r.id), Some(region.id), "{:?}", url);
    }

    #[test]
    fn store_parsing_never_panics(input in any::<String>()) {
        if let Err(error) = parse_store(&input) {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }

    #[test]
    fn store_errors_never_echo_the_secret(
        secret in "S3CRET[a-zA-Z0-9]{8,24}",
        server in proptest::option::of(prop_oneof![
            Just(serde_json::json!("us.icr.io")),
            Just(serde_json::json!("")),
            Just(serde_json::json!(null)),
            Just(serde_json::json!(5)),
            Just(serde_json::json!(["us.icr.io"])),
        ]),
        username in proptest::option::of(prop_oneof![
            Just(serde_json::json!("iamapikey")),
            Just(serde_json::json!("")),
            Just(serde_json::json!({"a": 1})),
        ]),
        secret_key in proptest::sample::select(vec!["Secret", "secret", "SECRET", "sEcReT"]),
        twice in any::<bool>(),
        cut in proptest::option::of(0usize..200),
    ) {
        let mut object = serde_json::Map::new();
        if let Some(server) = server {
            object.insert("ServerURL".into(), server);
        }
        if let Some(username) = username {
            object.insert("Username".into(), username);
        }
        object.insert(secret_key.into(), serde_json::json!(secret));
        if twice {
            // The same field again in another case: docker's decoder could not tell which one.
            let other = if secret_key == "Secret" { "secret" } else { "Secret" };
            object.insert(other.into(), serde_json::json!(format!("{secret}2")));
        }
        let mut text = serde_json::Value::Object(object).to_string();
        if let Some(cut) = cut {
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
        }
        match parse_store(&text) {
            Ok(request) => prop_assert_eq!(request.secret.expose(), secret.as_str()),
            Err(error) => {
                let line = error.to_string();
                prop_assert!(!line.contains(&secret[6..]), "{line:?} echoes the secret of {text:?}");
                prop_assert!(!matches!(error, Error::NotFound));
            }
        }
    }
}
