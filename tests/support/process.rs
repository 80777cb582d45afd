//! The `pos` binary as a child process: start it, wait for its `listening on` line, and
//! stop it with SIGTERM expecting a clean exit.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running `pos` process and the address it announced.
pub struct PosProcess {
    pub child: Child,
    pub addr: String,
}

/// A `pos` command built from this test crate's binary.
pub fn pos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pos"))
}

impl PosProcess {
    /// Spawns `command` (stdout piped) and waits until it prints `listening on ADDR`.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pos");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("pos exited before listening")
                .expect("read stdout");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    /// Sends SIGTERM and asserts the process exits 0 within ten seconds.
    pub fn stop_with_sigterm(mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                assert!(exit.success(), "pos exited with {exit}");
                return;
            }
            assert!(Instant::now() < deadline, "pos did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
