//! The figures of one run, the targets they are held to, and how they print.

use serde::Serialize;

/// The SQLite ingest path must reach this share of the raw insert limit.
const SQLITE_RATIO_TARGET: f64 = 0.40;
/// What that share means on the 2-core machines the targets were set for.
const SQLITE_EVENTS_TARGET: f64 = 200_000.0;
const POSTGRES_EVENTS_TARGET: f64 = 50_000.0;
const IDLE_RSS_TARGET_MB: f64 = 50.0;

#[derive(Debug, Serialize)]
pub struct Report {
    /// UTC, RFC 3339.
    pub date: String,
    pub machine: Machine,
    pub workload: WorkloadInfo,
    pub sqlite: Backend,
    pub postgres: Option<Backend>,
    pub idle_rss_mb: f64,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1-minute load average when the run started: other work on the machine.
    pub load_average: f64,
}

impl Machine {
    /// Facts from /proc (Linux); "unknown" where absent.
    pub fn probe() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let mem_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            memory_gib: mem_kib / (1024.0 * 1024.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WorkloadInfo {
    pub events: usize,
    pub mean_event_bytes: usize,
    pub batch_size: usize,
    pub mean_body_bytes: usize,
    pub clients: usize,
}

/// One backend's figures.
#[derive(Debug, Serialize)]
pub struct Backend {
    pub raw_rows_per_s: f64,
    pub raw_connections: usize,
    pub http_events_per_s: f64,
    pub http_p50_ms: f64,
    pub http_p99_ms: f64,
    pub http_requests: usize,
    pub ingest_writers: usize,
    /// Cores this process kept busy during the HTTP run (server and clients).
    pub http_cpu_cores: f64,
    /// HTTP ingest over the raw limit.
    pub ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: &'static str,
    pub measured: String,
    /// `None`: not measured in this run.
    pub pass: Option<bool>,
}

impl Report {
    /// Holds the figures to the targets.
    pub fn judge(&mut self) {
        let sqlite = &self.sqlite;
        let pg = self.postgres.as_ref();
        self.targets = vec![
            Target {
                name: "SQLite HTTP >= 40% of raw",
                measured: percent(sqlite.ratio),
                pass: Some(sqlite.ratio >= SQLITE_RATIO_TARGET),
            },
            Target {
                name: "SQLite HTTP >= 200k events/s",
                measured: rate(sqlite.http_events_per_s),
                pass: Some(sqlite.http_events_per_s >= SQLITE_EVENTS_TARGET),
            },
            Target {
                name: "PostgreSQL HTTP >= 50k events/s",
                measured: pg.map_or_else(|| "not run".into(), |p| rate(p.http_events_per_s)),
                pass: pg.map(|p| p.http_events_per_s >= POSTGRES_EVENTS_TARGET),
            },
            Target {
                name: "idle RSS < 50 MB",
                measured: format!("{:.1} MB", self.idle_rss_mb),
                pass: Some(self.idle_rss_mb < IDLE_RSS_TARGET_MB),
            },
        ];
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let w = &self.workload;
        let mut out = format!(
            "Seamline ingest benchmark, {}\n\
             machine:  {} x {}, {:.1} GiB RAM, Linux {}, load average {:.2} at start\n\
             (the load generator runs on the same cores as the server)\n\
             workload: {} events of ~{} B, {} per /v1/batch request (~{} KB), {} concurrent clients\n\n",
            self.date, m.nproc, m.cpu_model, m.memory_gib, m.kernel, m.load_average,
            w.events, w.mean_event_bytes, w.batch_size, w.mean_body_bytes / 1024, w.clients,
        );
        out += &format!(
            "{:<12} {:>16} {:>17} {:>9} {:>9} {:>9} {:>6}\n",
            "backend", "raw insert", "HTTP ingest", "HTTP/raw", "p50", "p99", "CPU"
        );
        out += &backend_line("SQLite", &self.sqlite);
        match &self.postgres {
            Some(pg) => out += &backend_line("PostgreSQL", pg),
            None => {
                out += "PostgreSQL   not run (give --postgres-url or SEAMLINE_BENCH_POSTGRES_URL)\n"
            }
        }
        out += &format!(
            "\nidle RSS of `seamline serve` (SQLite): {:.1} MB\n\n",
            self.idle_rss_mb
        );
        out += &targets_table(&self.targets);
        out
    }
}

/// The targets with PASS, MISS or `-` (not measured).
pub fn targets_table(targets: &[Target]) -> String {
    let mut out = format!("{:<34} {:>14}  result\n", "target", "measured");
    for t in targets {
        let result = match t.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "-",
        };
        out += &format!("{:<34} {:>14}  {result}\n", t.name, t.measured);
    }
    out
}

/// The value below which `q` (0..=1) of `sorted` (ascending) lies.
pub fn percentile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    let last = sorted.len().saturating_sub(1);
    let index = ((last as f64) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn backend_line(name: &str, b: &Backend) -> String {
    format!(
        "{:<12} {:>16} {:>17} {:>9} {:>6.1} ms {:>6.1} ms {:>6.2}\n",
        name,
        format!("{} rows/s", rate(b.raw_rows_per_s)),
        format!("{} events/s", rate(b.http_events_per_s)),
        percent(b.ratio),
        b.http_p50_ms,
        b.http_p99_ms,
        b.http_cpu_cores,
    )
}

/// `123456.7` → `123.5k`.
fn rate(per_second: f64) -> String {
    format!("{:.1}k", per_second / 1000.0)
}

fn percent(ratio: f64) -> String {
    format!("{:.0}%", ratio * 100.0)
}
