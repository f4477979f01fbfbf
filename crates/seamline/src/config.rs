//! Settings, declared once. Precedence: flags, then `SEAMLINE_*` environment
//! variables (clap merges those two), then the TOML file, then defaults.
//! `seamline.example.toml` at the repository root documents every key; a
//! test keeps it in step with [`FileConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::cli::{GlobalArgs, ServeArgs};

/// The keys a configuration file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub log_format: Option<String>,
    pub secure_cookies: Option<bool>,
    pub ingest_writers: Option<usize>,
    pub public_url: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

#[derive(Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// May hold a password: never log it, see [`Settings::database_label`].
    pub database_url: Option<String>,
    pub nats_url: Option<String>,
    pub listen: SocketAddr,
    pub json_logs: bool,
    pub secure_cookies: bool,
    pub ingest_writers: Option<usize>,
    /// Seals channel secrets (32 bytes, base64 or hex); the data dir's
    /// `secret.key` when absent. Never logged.
    pub secret_key: Option<String>,
    /// Where providers reach this server (webhook URLs).
    pub public_url: Option<String>,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs, serve: ServeArgs) -> anyhow::Result<Self> {
        let file = match &global.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let log_format = global
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let json_logs = match log_format.as_str() {
            "json" => true,
            "text" => false,
            other => anyhow::bail!("log_format: expected text or json, got {other:?}"),
        };
        Ok(Self {
            data_dir: global
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("seamline-data")),
            database_url: global
                .database_url
                .clone()
                .or(file.database_url)
                .filter(|u| !u.is_empty()),
            nats_url: global
                .nats_url
                .clone()
                .or(file.nats_url)
                .filter(|u| !u.is_empty()),
            listen: serve
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            json_logs,
            secure_cookies: serve
                .secure_cookies
                .or(file.secure_cookies)
                .unwrap_or(false),
            ingest_writers: file.ingest_writers,
            secret_key: serve.secret_key.filter(|k| !k.is_empty()),
            public_url: serve
                .public_url
                .or(file.public_url)
                .filter(|u| !u.is_empty()),
        })
    }

    /// The database, safe to print: credentials removed.
    pub fn database_label(&self) -> String {
        match &self.database_url {
            Some(url) => redact(url),
            None => format!("sqlite {}", self.data_dir.join("seamline.db").display()),
        }
    }

    pub fn bus_label(&self) -> String {
        self.nats_url
            .as_deref()
            .map_or_else(|| "in-process".to_owned(), redact)
    }
}

/// `scheme://user:secret@host/db` → `scheme://host/db`.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_matches_the_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../seamline.example.toml");
        let text = std::fs::read_to_string(&path).expect("example config exists");
        let uncommented: String = text
            .lines()
            .map(|line| {
                line.strip_prefix("# ")
                    .filter(|l| l.contains(" = "))
                    .unwrap_or(line)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: FileConfig =
            toml::from_str(&uncommented).expect("every documented key is a real setting");
        assert!(
            parsed.listen.is_some() && parsed.data_dir.is_some(),
            "examples are given"
        );
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("seamline.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nlisten = \"0.0.0.0:9000\"\nlog_format = \"json\"\n",
        )
        .expect("write config");
        let global = GlobalArgs {
            config: Some(file),
            data_dir: Some("/from/flag".into()),
            ..GlobalArgs::default()
        };
        let settings = Settings::resolve(&global, ServeArgs::default()).expect("resolve");
        assert_eq!(settings.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(settings.listen, "0.0.0.0:9000".parse().expect("addr"));
        assert!(settings.json_logs);
        let defaults =
            Settings::resolve(&GlobalArgs::default(), ServeArgs::default()).expect("resolve");
        assert_eq!(defaults.listen.port(), 8080);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "datadir = \"typo\"\n").expect("write");
        let global = GlobalArgs {
            config: Some(file),
            ..GlobalArgs::default()
        };
        assert!(Settings::resolve(&global, ServeArgs::default()).is_err());
    }

    #[test]
    fn credentials_never_reach_labels() {
        let label = redact("postgres://seamline:hunter2@db.internal:5432/seamline");
        assert!(
            !label.contains("hunter2") && !label.contains("seamline:"),
            "{label}"
        );
        assert!(label.contains("db.internal"));
    }
}
