//! `explain <server URL> [--check]`: what `get` would do for a server URL, and why — the host,
//! the region, each source in order with the reason it did not apply, the mode, and the state of
//! the cached IAM token. Secrets appear as a fingerprint (their last four characters) only.
//!
//! It walks the same [`source::sources`] and the same context (`mode`, `iam_endpoint`) as
//! `resolve`, so what it says is what `get` does. Exit status 1 where `get` would not answer
//! with credentials. `--check` goes one step further and makes the IAM exchange.

use std::fmt::Write as _;
use std::io::Write;

use super::{print, shown, wants_help};
use crate::cli::token_cache;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::iam::{cache, Grant, Token};
use crate::jwt;
use crate::mode::Mode;
use crate::protocol;
use crate::registry::{self, Registry};
use crate::resolve;
use crate::source::{self, Credential, Found, Lookup};

const USAGE: &str = "\
Usage: docker-credential-icr explain <server URL> [--check]

Shows what `get` would answer for the server URL and why: the host, its region, each
credential source in order with the reason it did not apply, the mode, and the cached IAM
token. Secrets are shown as their last four characters only. Exits 1 when `get` would find no
credentials.

Options:
  --check    also make the IAM exchange and report IAM's answer
";

pub fn run(ctx: &Context, args: &[String], stdout: &mut dyn Write) -> Result<i32> {
    if wants_help(args) {
        print(stdout, USAGE)?;
        return Ok(0);
    }
    let mut server_url = None;
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            other if other.starts_with('-') => {
                return Err(Error::input(format!("unknown argument `{}`", shown(other))))
            }
            other if server_url.is_none() => server_url = Some(other),
            other => return Err(Error::input(format!("one server URL only, not also `{}`", shown(other)))),
        }
    }
    let server_url = server_url.ok_or_else(|| Error::input("no server URL given"))?;
    let mut report = Report::default();
    let status = explain(ctx, server_url, check, &mut report);
    print(stdout, &report.0)?;
    Ok(status)
}

#[derive(Default)]
struct Report(String);

impl Report {
    fn line(&mut self, label: &str, text: impl std::fmt::Display) {
        let _ = writeln!(self.0, "{:<13}{text}", format!("{label}:"));
    }

    /// The last line when `get` has no credentials to give.
    fn not_found(&mut self) -> i32 {
        self.line("get answers", format_args!("{} (docker then pulls anonymously)", protocol::ERR_NOT_FOUND));
        1
    }

    fn failed(&mut self, error: &Error) -> i32 {
        self.line("get fails", error);
        1
    }
}

fn explain(ctx: &Context, server_url: &str, check: bool, report: &mut Report) -> i32 {
    let registry = match registry::parse_server_url(server_url) {
        Ok(registry) => registry,
        Err(e) => {
            report.line("registry", format_args!("none: `{}`: {e}", shown(server_url)));
            return report.not_found();
        }
    };
    report.line("registry", &registry);
    match registry.icr() {
        Some((region, kind)) => {
            report.line("ICR", format_args!("yes, {kind} domain of region {}", region.id));
        }
        None => match ctx.is_ours(&registry) {
            Ok(true) => report.line("ICR", format_args!("no, but named in the config file {}", config_path(ctx))),
            Ok(false) => {
                report.line(
                    "ICR",
                    format_args!(
                        "no: not an IBM Cloud Container Registry host, and not named in the config file {}",
                        config_path(ctx)
                    ),
                );
                return report.not_found();
            }
            Err(e) => return report.failed(&e),
        },
    }
    let mode = match ctx.mode(&registry) {
        Ok(mode) => mode,
        Err(e) => return report.failed(&e),
    };
    report.line("mode", mode);
    let found = match sources(ctx, &registry, report) {
        Ok(Some(found)) => found,
        Ok(None) => return report.not_found(),
        Err(e) => return report.failed(&e),
    };
    match answer(ctx, mode, &found, report) {
        Ok(()) if check => self::check(ctx, mode, found, report),
        Ok(()) => 0,
        Err(e) => report.failed(&e),
    }
}

/// Lists the sources `get` consults, up to the one that has a credential.
fn sources(ctx: &Context, registry: &Registry, report: &mut Report) -> Result<Option<Found>> {
    report.line("sources", "in the order get consults them");
    for (n, source) in source::sources().iter().enumerate() {
        match source.find(ctx, registry) {
            Ok(Lookup::Missed(why)) => {
                let _ = writeln!(report.0, "  {}. {}: {why}", n + 1, source.name());
            }
            Ok(Lookup::Found(found)) => {
                let _ = writeln!(
                    report.0,
                    "  {}. {}: found {} {} in {}",
                    n + 1,
                    source.name(),
                    found.credential.kind(),
                    fingerprint(&found.credential),
                    found.origin
                );
                return Ok(Some(found));
            }
            Err(e) => {
                let _ = writeln!(report.0, "  {}. {}: error", n + 1, source.name());
                return Err(e);
            }
        }
    }
    Ok(None)
}

fn fingerprint(credential: &Credential) -> String {
    match credential {
        Credential::ApiKey(s) | Credential::Bearer(s) | Credential::Refresh(s) => s.fingerprint(),
        Credential::TrustedProfile { profile, cr_token } => format!("({profile}, token {})", cr_token.fingerprint()),
        Credential::Login { username, secret } => format!("(user {username}, secret {})", secret.fingerprint()),
    }
}

/// What `get` answers with, and the cached token it would reuse.
fn answer(ctx: &Context, mode: Mode, found: &Found, report: &mut Report) -> Result<()> {
    let now = ctx.clock.now();
    let Some(grant) = resolve::grant(mode, &found.credential) else {
        let username = match &found.credential {
            Credential::ApiKey(_) => Mode::ApiKey.username(),
            Credential::Bearer(_) => Mode::Bearer.username(),
            Credential::Refresh(_) => Mode::Refresh.username(),
            Credential::Login { username, .. } => username,
            Credential::TrustedProfile { .. } => unreachable!("a trusted profile is always exchanged"),
        };
        report
            .line("answer", format_args!("username {username}, the {} as it is; no IAM call", found.credential.kind()));
        if let Credential::Bearer(token) = &found.credential {
            match jwt::expiry(token.expose()) {
                Some(exp) if exp > now => report.line("token", format_args!("expires in {} s", exp - now)),
                Some(exp) => report.line("token", format_args!("expired {} s ago", now - exp)),
                None => report.line("token", "not a JWT: its expiry is unknown"),
            }
        }
        return Ok(());
    };
    let endpoint = ctx.iam_endpoint()?;
    let username = if mode == Mode::Refresh && matches!(grant, Grant::ApiKey { .. }) {
        Mode::Refresh.username()
    } else {
        Mode::Bearer.username()
    };
    if mode == Mode::Refresh && matches!(grant, Grant::CrToken { .. }) {
        report.line("note", "a trusted profile yields bearer tokens only, not refresh tokens");
    }
    let what = if username == Mode::Refresh.username() { "refresh token" } else { "access token" };
    report.line("answer", format_args!("username {username}, an IAM {what} from {}", endpoint.token_url()));
    let Some(cache) = token_cache(ctx.env) else {
        report.line("token cache", "off: every get asks IAM");
        return Ok(());
    };
    match cache.peek(&endpoint, &grant, ctx.log) {
        None => report.line("token cache", format_args!("empty: get asks IAM (cache in {})", cache.dir().display())),
        Some(token) => report.line("token cache", describe_token(&token, now)),
    }
    Ok(())
}

fn describe_token(token: &Token, now: u64) -> String {
    let age = now.saturating_sub(token.issued_at);
    let state = if cache::is_fresh(token, now) {
        "fresh, get reuses it".to_owned()
    } else if cache::is_usable(token, now) {
        "past 80 % of its lifetime: get asks IAM again and falls back to it if IAM fails".to_owned()
    } else {
        "expired: get asks IAM again".to_owned()
    };
    let expiry = if token.expires_at > now {
        format!("expires in {} s", token.expires_at - now)
    } else {
        format!("expired {} s ago", now - token.expires_at)
    };
    format!("access token {}, issued {age} s ago, {expiry}; {state}", token.access.fingerprint())
}

/// `--check`: the exchange `get` makes, through the token cache as `get` does; for an API key
/// that `get` hands out as it is, an exchange that proves IAM accepts it.
fn check(ctx: &Context, mode: Mode, found: Found, report: &mut Report) -> i32 {
    let grant = match (resolve::grant(mode, &found.credential), &found.credential) {
        (Some(grant), _) => grant,
        (None, Credential::ApiKey(key)) => Grant::ApiKey { apikey: key.clone(), refresh: false },
        (None, credential) => {
            report.line(
                "check",
                format_args!("nothing to exchange: the {} goes to the registry as it is", credential.kind()),
            );
            return 0;
        }
    };
    match ctx.iam_endpoint().and_then(|endpoint| ctx.exchange.exchange(&endpoint, &grant)) {
        Ok(token) => {
            let expiry = token.expires_at.saturating_sub(ctx.clock.now());
            let refresh = match (&grant, &token.refresh) {
                (Grant::ApiKey { refresh: true, .. }, Some(refresh)) => {
                    format!(", refresh token {}", refresh.fingerprint())
                }
                (Grant::ApiKey { refresh: true, .. }, None) => {
                    report.line("check", "IAM issued no refresh token for client bx, so get fails: use mode iambearer");
                    return 1;
                }
                _ => String::new(),
            };
            report.line(
                "check",
                format_args!("IAM issued access token {}, expires in {expiry} s{refresh}", token.access.fingerprint()),
            );
            0
        }
        Err(e) => {
            report.line("check", format_args!("the IAM exchange failed: {e}"));
            1
        }
    }
}

fn config_path(ctx: &Context) -> String {
    ctx.config_path().map(|p| p.display().to_string()).unwrap_or_else(|| "(no config directory)".to_owned())
}
