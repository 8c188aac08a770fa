//! The agent's process in a live run: started from the adapter's command
//! in the run directory, its stdout and stderr written to files of their
//! own per incarnation (`agent.N.stdout.log`, `agent.N.stderr.log`), crashed
//! with SIGKILL, and restarted as a fresh process on the same state
//! directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde::Serialize;
use tokio::process::{Child, Command};

/// How to start the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments (expanded).
    pub command: Vec<String>,
    /// Extra environment (expanded).
    pub env: BTreeMap<String, String>,
    /// Working directory, and where the logs go.
    pub run_dir: PathBuf,
}

/// One incarnation's logs and end, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentLog {
    /// 1 for the first start, 2 after the first restart, …
    pub incarnation: u32,
    pub stdout: String,
    pub stderr: String,
    /// How it ended: `killed by simctl`, `exited with status 1`, … (`None`
    /// while running).
    pub end: Option<String>,
}

/// A running incarnation of the agent.
#[derive(Debug)]
pub struct AgentProcess {
    /// The child; `kill_on_drop`, so a run never leaves one behind.
    child: Child,
    pub log: AgentLog,
}

/// The agent could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the agent `{program}`: {source}")]
pub struct SpawnError {
    pub program: String,
    #[source]
    pub source: std::io::Error,
}

fn log_file(path: &Path, program: &str) -> Result<File, SpawnError> {
    File::create(path).map_err(|source| SpawnError {
        program: program.to_owned(),
        source,
    })
}

impl Launch {
    /// Starts incarnation `incarnation` (1-based).
    pub fn spawn(&self, incarnation: u32) -> Result<AgentProcess, SpawnError> {
        let program = self.command.first().cloned().unwrap_or_default();
        let stdout = self.run_dir.join(format!("agent.{incarnation}.stdout.log"));
        let stderr = self.run_dir.join(format!("agent.{incarnation}.stderr.log"));
        let child = Command::new(&program)
            .args(&self.command[1..])
            .envs(&self.env)
            .current_dir(&self.run_dir)
            .stdin(Stdio::null())
            .stdout(log_file(&stdout, &program)?)
            .stderr(log_file(&stderr, &program)?)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SpawnError { program, source })?;
        Ok(AgentProcess {
            child,
            log: AgentLog {
                incarnation,
                stdout: stdout.display().to_string(),
                stderr: stderr.display().to_string(),
                end: None,
            },
        })
    }
}

/// An exit status in words.
pub fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "exited".to_owned(),
    }
}

impl AgentProcess {
    /// The process id, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the process to end by itself and records how.
    pub async fn exited(&mut self) -> String {
        let end = match self.child.wait().await {
            Ok(status) => describe(status),
            Err(err) => format!("lost track of the process: {err}"),
        };
        self.log.end = Some(end.clone());
        end
    }

    /// Kills the process (SIGKILL) and waits for it: a crash, or the end of
    /// the run. A process that had already ended keeps its own end.
    pub async fn kill(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.log.end.get_or_insert_with(|| describe(status));
            return;
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.log
            .end
            .get_or_insert_with(|| "killed by simctl (SIGKILL)".to_owned());
    }
}
