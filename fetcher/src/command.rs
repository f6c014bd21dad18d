//! Running one go command: explicit environment, own process group, deadline.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use crate::error::FetchError;

/// What a finished go command printed.
#[derive(Debug)]
pub(crate) struct GoOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl GoOutput {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a go command could not be run to completion.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The program could not be started (missing binary, not executable).
    Spawn(std::io::Error),
    /// Reading its output or waiting for it failed.
    Io(std::io::Error),
    /// The deadline passed; the process group was killed and the process reaped.
    TimedOut,
}

/// Runs `program args` in `cwd` with exactly `env`, in a new process group, and waits at most
/// `timeout` for it to exit and close its output.
///
/// On timeout, and when the returned future is dropped before the command ends, the whole process
/// group (go and the git/ssh processes it started) is killed with SIGKILL.
pub(crate) async fn run(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<GoOutput, RunError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Leader of a new group, so its children can be killed with it.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    // Declared after `child`, so on drop it kills the group before the child handle goes away.
    let mut group = ProcessGroupKiller::for_child(&child);
    tracing::debug!(program = %program.display(), ?args, pid = ?child.id(), "started go command");

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    match tokio::time::timeout(timeout, collect(&mut child, stdout, stderr)).await {
        Ok(result) => {
            // `collect` waited for the child: it is reaped and its id may be reused, so no more kills.
            group.disarm();
            result
        }
        Err(_elapsed) => {
            tracing::warn!(program = %program.display(), ?args, ?timeout, "go command timed out; killing its process group");
            group.kill();
            // Should the group kill have failed, go itself must still die before we wait for it.
            let _ = child.start_kill();
            // Reap go so no zombie is left; the group kill already reached its children.
            let waited = child.wait().await;
            group.disarm();
            waited.map_err(RunError::Io)?;
            Err(RunError::TimedOut)
        }
    }
}

async fn collect(
    child: &mut Child,
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
) -> Result<GoOutput, RunError> {
    let (stdout, stderr, status) = tokio::join!(read_all(stdout), read_all(stderr), child.wait());
    Ok(GoOutput {
        status: status.map_err(RunError::Io)?,
        stdout: stdout.map_err(RunError::Io)?,
        stderr: stderr.map_err(RunError::Io)?,
    })
}

async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buffer).await?;
    }
    Ok(buffer)
}

/// Kills a child's process group when dropped, unless disarmed once the child has been reaped
/// (after that the group id could belong to an unrelated process).
struct ProcessGroupKiller {
    group: Option<Pid>,
}

impl ProcessGroupKiller {
    fn for_child(child: &Child) -> ProcessGroupKiller {
        // The child was spawned with `process_group(0)`, so its group id is its pid.
        let group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        ProcessGroupKiller { group }
    }

    fn kill(&self) {
        if let Some(group) = self.group {
            // ESRCH (group already gone) is the expected outcome when go exited on its own.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.group = None;
    }
}

impl Drop for ProcessGroupKiller {
    fn drop(&mut self) {
        if self.group.is_some() {
            tracing::debug!(group = ?self.group, "go command abandoned; killing its process group");
        }
        self.kill();
    }
}

impl RunError {
    /// The fetcher's error for this failure of the command `command`.
    pub fn into_fetch_error(self, program: &Path, command: &str, timeout: Duration) -> FetchError {
        match self {
            RunError::Spawn(e) => FetchError::GoMissing {
                path: program.to_path_buf(),
                reason: e.to_string(),
            },
            RunError::Io(e) => FetchError::io(format!("running `{command}`"), e),
            RunError::TimedOut => FetchError::Timeout {
                command: command.to_owned(),
                timeout,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("FOO".to_owned(), "bar".to_owned()),
        ])
    }

    #[tokio::test]
    async fn runs_with_exactly_the_given_environment() {
        let dir = tempfile::tempdir().unwrap();
        let output = run(
            Path::new("/usr/bin/env"),
            &[],
            dir.path(),
            &env(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(output.status.success());
        let mut lines: Vec<&str> = std::str::from_utf8(&output.stdout)
            .unwrap()
            .lines()
            .collect();
        lines.sort();
        assert_eq!(lines, ["FOO=bar", "PATH=/usr/bin:/bin"]);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        // The shell starts a grandchild that would outlive it, and records the grandchild's pid.
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let started = Instant::now();
        let result = run(
            Path::new("/bin/sh"),
            &["-c", &script],
            dir.path(),
            &env(),
            Duration::from_millis(500),
        )
        .await;
        assert!(matches!(result, Err(RunError::TimedOut)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_process_gone(grandchild).await;
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let env = env();
        let args = ["-c", script.as_str()];
        let running = run(
            Path::new("/bin/sh"),
            &args,
            dir.path(),
            &env,
            Duration::from_secs(300),
        );
        let dropped = tokio::time::timeout(Duration::from_millis(500), running).await;
        assert!(dropped.is_err(), "the command must still have been running");
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_process_gone(grandchild).await;
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let result = run(
            Path::new("/nonexistent/go"),
            &["version"],
            dir.path(),
            &env(),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(result, Err(RunError::Spawn(_))), "{result:?}");
    }

    /// Waits (bounded) until `pid` no longer runs. The grandchild is reparented to init (or a
    /// subreaper), which reaps it; a zombie has no `/proc/PID/cwd`.
    async fn assert_process_gone(pid: i32) {
        let cwd = format!("/proc/{pid}/cwd");
        for _ in 0..100 {
            if std::fs::read_link(&cwd).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("process {pid} still runs");
    }
}
