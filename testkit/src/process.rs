//! A program under test as an operator runs it: spawned with a clean environment, its log collected, sent
//! signals, and killed if the test fails before stopping it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// `program` with an empty environment but for `PATH`; each test adds what it needs.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

/// A running process whose stderr is collected line by line; killed when dropped.
pub struct Process {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Spawns `command` and waits (at most 60 s) for a stderr line containing `ready`; returns the process
    /// and that line. Panics with the log when the process exits first.
    pub fn start(mut command: Command, ready: &str) -> (Process, String) {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the program under test");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let collected = log.clone();
        let ready = ready.to_string();
        // Reading the whole log keeps the pipe from filling up, and lets the test look for lines later.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains(&ready) {
                    let _ = ready_tx.send(line.clone());
                }
                let mut log = collected.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut process = Process { child, log };
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => (process, line),
            Err(_) => {
                let status = process.child.try_wait();
                panic!("not ready ({status:?}); log:\n{}", process.log())
            }
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` (`-HUP`, `-TERM`, `-KILL`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// SIGTERM, then its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        self.child.wait().unwrap()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits (at most 30 s) until `check` holds, failing with `what` and the log.
    pub fn wait_for(&self, what: &str, mut check: impl FnMut() -> bool) {
        let started = Instant::now();
        while !check() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what} did not happen within 30 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
