//! `fake-iam`: run the fake IAM token endpoint on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fake_iam::{parse_duration, parse_script, Config, FakeIam};

const USAGE: &str = "\
usage: fake-iam [options]

Serves POST /identity/token on 127.0.0.1 (only). Prints the URL
(http://127.0.0.1:PORT) as the first line of stdout, then serves until
killed or --max-seconds elapsed.

options:
  --port N                 port on 127.0.0.1 (default 0: any free port)
  --lifetime SECS          token lifetime, expires_in (default 3600)
  --apikey KEY             accept this API key (repeatable)
  --any-apikey             accept any non-empty API key
  --profile ID             with --trusts: a trusted profile (named ID-name) that
  --trusts SUBJECT         trusts compute-resource tokens of SUBJECT (pairs,
                           repeatable, matched in order)
  --script LIST            behaviours, one per request, e.g.
                           500,429:2,stall:3,delay:200ms,truncated,malformed,
                           ok,400:BXNIM0415E:message
  --port-file PATH         write the URL (no newline) to PATH, atomically,
                           once listening
  --log PATH               append one JSON line per request to PATH
  --read-timeout SECS      socket read timeout (default 3)
  --max-seconds N          exit after N seconds (default 3600)
  -h, --help               this help
";

struct Args {
    config: Config,
    port_file: Option<PathBuf>,
    max_seconds: u64,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut config = Config::new();
    let mut port_file = None;
    let mut max_seconds = 3600;
    let mut profiles = Vec::new();
    let mut cr_tokens = Vec::new();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" => {
                let v = value()?;
                config = config.port(v.parse().map_err(|_| format!("invalid port {v:?}"))?);
            }
            "--lifetime" => {
                let v = value()?;
                config = config.lifetime(v.parse().map_err(|_| format!("invalid lifetime {v:?}"))?);
            }
            "--apikey" => config = config.apikey(value()?),
            "--any-apikey" => config = config.any_apikey(true),
            "--profile" => profiles.push(value()?),
            "--trusts" => cr_tokens.push(value()?),
            "--script" => config = config.script(parse_script(&value()?)?),
            "--port-file" => port_file = Some(PathBuf::from(value()?)),
            "--log" => config = config.log_file(value()?),
            "--read-timeout" => config = config.read_timeout(parse_duration(&value()?)?),
            "--max-seconds" => {
                let v = value()?;
                max_seconds = v.parse().map_err(|_| format!("invalid --max-seconds {v:?}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if profiles.len() != cr_tokens.len() {
        return Err("--profile and --trusts must come in pairs".into());
    }
    for (p, t) in profiles.into_iter().zip(cr_tokens) {
        config = config.profile(p, t);
    }
    Ok(Some(Args { config, port_file, max_seconds }))
}

fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fake-iam: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let iam = match FakeIam::try_start(args.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-iam: cannot listen on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = iam.url();
    if let Some(p) = &args.port_file {
        if let Err(e) = write_atomically(p, &url) {
            eprintln!("fake-iam: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{url}");
        let _ = out.flush();
    }
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep((deadline - now).min(Duration::from_secs(1)));
    }
    drop(iam);
    ExitCode::SUCCESS
}
