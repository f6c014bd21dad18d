//! Running one go command: explicit environment, own process group, dies with Ferry, bounded output,
//! deadline.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, mpsc};
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
    /// It printed more than the limit on `stream`; the process group was killed and the process reaped.
    TooLarge { stream: &'static str, limit: usize },
}

/// `go args` in `cwd` as [`run`] does, a failure to run it (or its deadline) turned into the fetch error
/// that names the command: what every caller of the go command needs.
pub(crate) async fn run_go(
    go: &Path,
    args: &[&str],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    max_output: usize,
) -> Result<GoOutput, FetchError> {
    run(go, args, cwd, env, timeout, max_output)
        .await
        .map_err(|e| e.into_fetch_error(go, &format!("go {}", args.join(" ")), timeout))
}

/// Runs `program args` in `cwd` with exactly `env`, in a new process group, and waits at most
/// `timeout` for it to exit and close its output, reading at most `max_output` bytes of each of its
/// stdout and stderr.
///
/// On timeout, on too much output, and when the returned future is dropped before the command ends, the
/// whole process group (go and the git/ssh processes it started) is killed with SIGKILL. Should this
/// process die first (a crash, a SIGKILL), the kernel kills go (see [`spawn`]).
pub(crate) async fn run(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
    max_output: usize,
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
    die_with_this_process(&mut command);
    let mut child = spawn(command).await.map_err(RunError::Spawn)?;
    // Declared after `child`, so on drop it kills the group before the child handle goes away.
    let mut group = ProcessGroupKiller::for_child(&child);
    tracing::debug!(program = %program.display(), ?args, pid = ?child.id(), "started go command");

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outcome = tokio::time::timeout(timeout, collect(&mut child, stdout, stderr, max_output))
        .await
        .unwrap_or(Err(RunError::TimedOut));
    match outcome {
        Ok(output) => {
            // `collect` waited for the child: it is reaped and its id may be reused, so no more kills.
            group.disarm();
            Ok(output)
        }
        Err(error) => {
            tracing::warn!(program = %program.display(), ?args, ?error, "go command failed to complete; killing its process group");
            group.kill();
            // Should the group kill have failed, go itself must still die before we wait for it.
            let _ = child.start_kill();
            // Reap go so no zombie is left; the group kill already reached its children.
            let waited = child.wait().await;
            group.disarm();
            waited.map_err(RunError::Io)?;
            Err(error)
        }
    }
}

/// Reads go's stdout and stderr to their end (each at most `max_output` bytes), then waits for go.
async fn collect(
    child: &mut Child,
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    max_output: usize,
) -> Result<GoOutput, RunError> {
    let (stdout, stderr) = tokio::try_join!(
        read_capped(stdout, "stdout", max_output),
        read_capped(stderr, "stderr", max_output)
    )?;
    let status = child.wait().await.map_err(RunError::Io)?;
    Ok(GoOutput {
        status,
        stdout,
        stderr,
    })
}

/// The whole of `pipe`, or `TooLarge` as soon as it has given more than `limit` bytes: an upstream
/// `list` of a million versions makes go print tens of MiB, which must not all be held in memory (and then
/// parsed into as many strings) for one request.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    stream: &'static str,
    limit: usize,
) -> Result<Vec<u8>, RunError> {
    let mut buffer = Vec::new();
    if let Some(pipe) = pipe {
        // One byte more than the limit tells "exactly the limit" from "more".
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        pipe.take(cap)
            .read_to_end(&mut buffer)
            .await
            .map_err(RunError::Io)?;
    }
    if buffer.len() > limit {
        return Err(RunError::TooLarge { stream, limit });
    }
    Ok(buffer)
}

/// Makes the kernel send SIGKILL to the child when the thread that spawned it exits, which [`spawn`]
/// makes the same as "when this process exits": a crashed or SIGKILLed Ferry must not leave `go` running
/// under PID 1 (a restarted Ferry sweeps its work dir from under it).
///
/// Only go gets the signal; git or ssh processes it started are left to end on their own (go cannot be
/// asked to pass the setting on, and a process group cannot be signalled by the kernel on our death).
#[allow(unsafe_code)]
fn die_with_this_process(command: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe work is
    // allowed (another thread of ours may have held a lock, e.g. the allocator's, at the fork). It makes two
    // plain system calls through rustix, prctl(PR_SET_PDEATHSIG) and getppid, and builds an `io::Error`
    // from a raw errno, which does not allocate; it takes no lock, allocates nothing and touches no shared
    // state.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // The parent may have died between fork and prctl; then the signal would never come: the
            // child has been handed to another process (init or a subreaper) and must not run on.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from(rustix::io::Errno::SRCH));
            }
            Ok(())
        });
    }
}

/// A request to the spawner thread: the command, the runtime whose process driver reaps it, and where to
/// send the child.
struct SpawnRequest {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: tokio::sync::oneshot::Sender<io::Result<Child>>,
}

/// The spawner thread's queue, started on first use.
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

/// Spawns `command` on one long-lived thread of its own.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. The thread
/// polling a fetch is not guaranteed to live as long as the child: tokio's blocking-pool threads end after
/// 10 s idle, `block_in_place` hands a worker's core to a new thread and the old one later ends as a pool
/// thread, and a current-thread runtime may run on any thread (a test's, a short-lived one). So every go is
/// forked by one thread that is never ended (its queue is a static that is never dropped): go dies when
/// this process does, never earlier. The round trip costs a channel message and a thread wake-up per
/// command, nothing next to starting go.
async fn spawn(command: Command) -> io::Result<Child> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = SpawnRequest {
        command,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    spawner()?
        .send(request)
        .map_err(|_| io::Error::other("the go spawner thread has ended"))?;
    // If this future is dropped now, the child arriving in the channel is dropped and killed (kill_on_drop).
    answer
        .await
        .map_err(|_| io::Error::other("the go spawner thread has ended"))?
}

fn spawner() -> io::Result<mpsc::Sender<SpawnRequest>> {
    let mut spawner = SPAWNER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(sender) = spawner.as_ref() {
        return Ok(sender.clone());
    }
    let (sender, requests) = mpsc::channel::<SpawnRequest>();
    std::thread::Builder::new()
        .name("ferry-go-spawner".to_owned())
        .spawn(move || {
            for request in requests {
                // tokio's process driver (which reaps the child) is the caller's runtime's.
                let _runtime = request.runtime.enter();
                let mut command = request.command;
                let _ = request.reply.send(command.spawn());
            }
        })?;
    *spawner = Some(sender.clone());
    Ok(sender)
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
            RunError::TooLarge { stream, limit } => FetchError::OutputTooLarge {
                command: command.to_owned(),
                stream,
                limit,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const LIMIT: usize = 1 << 20;

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
            LIMIT,
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
            LIMIT,
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
            LIMIT,
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
            LIMIT,
        )
        .await;
        assert!(matches!(result, Err(RunError::Spawn(_))), "{result:?}");
    }

    #[tokio::test]
    async fn output_beyond_the_limit_stops_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        // 64 KiB on stdout, then it would run on for five minutes.
        let result = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 65536 /dev/zero; sleep 300"],
            dir.path(),
            &env(),
            Duration::from_secs(300),
            1000,
        )
        .await;
        assert!(
            matches!(
                result,
                Err(RunError::TooLarge {
                    stream: "stdout",
                    limit: 1000
                })
            ),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );

        let result = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 65536 /dev/zero >&2"],
            dir.path(),
            &env(),
            Duration::from_secs(300),
            1000,
        )
        .await;
        assert!(
            matches!(
                result,
                Err(RunError::TooLarge {
                    stream: "stderr",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn output_up_to_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let output = run(
            Path::new("/bin/sh"),
            &["-c", "head -c 1000 /dev/zero; head -c 1000 /dev/zero >&2"],
            dir.path(),
            &env(),
            Duration::from_secs(10),
            1000,
        )
        .await
        .unwrap();
        assert_eq!((output.stdout.len(), output.stderr.len()), (1000, 1000));
    }

    /// PR_SET_PDEATHSIG fires when the thread that forked the child ends: a child asked for by a thread
    /// that then ends must run on to its own end, not be killed with that thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_outlives_the_thread_that_started_it() {
        let runtime = tokio::runtime::Handle::current();
        let child = std::thread::spawn(move || {
            let mut command = Command::new("/bin/sh");
            command.args(["-c", "sleep 1"]).kill_on_drop(true);
            die_with_this_process(&mut command);
            runtime.block_on(spawn(command)).unwrap()
        })
        .join()
        .unwrap();
        // The thread that asked for the child has ended; the child must still end on its own, not by SIGKILL.
        let mut child = child;
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{status:?}");
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
