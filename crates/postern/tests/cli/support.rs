//! Running the real `postern` binary: a sandbox per test (a temporary directory that is the
//! working directory, so the default `./postern-data` lands there), captured output, GitLab's
//! fixtures with their placeholders filled in, and the system `git` with no outside
//! configuration.

use std::cell::RefCell;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The built binary under test.
pub const POSTERN: &str = env!("CARGO_BIN_EXE_postern");

/// The configuration the README's walkthrough starts with.
pub const WALKTHROUGH_CONFIG: &str = "incoming_email:\n  enabled: true\n  address: \"incoming+%{key}@appmail.adventuretime.ooo\"\ninstance:\n  host: localhost\n";

/// The repository's `testdata/` directory.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A file in `testdata/gitlab-emails/`.
pub fn gitlab_email(name: &str) -> PathBuf {
    testdata().join("gitlab-emails").join(name)
}

/// The bytes of a file in `testdata/`.
pub fn read_testdata(relative: &str) -> Vec<u8> {
    let path = testdata().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A GitLab fixture with each placeholder replaced (see `postern_testkit::fixtures`).
pub fn fixture_with(name: &str, replacements: &[(&str, &str)]) -> Vec<u8> {
    postern_testkit::fixtures::gitlab_email_with(name, replacements)
}

pub use postern_testkit::fixtures::renamed;

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The command line, for failure messages.
    pub command: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, as bytes.
    pub stdout_bytes: Vec<u8>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Everything the run printed, for "never printed" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts exit code `code`; returns `self` for chaining.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts success and parses standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.expect_code(0);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("`{}` printed no JSON ({e}):\n{}", self.command, self.stdout)
        })
    }

    /// Asserts a failure with `code`, nothing on standard output, and exactly one line on
    /// standard error starting with `postern: `; returns that line.
    #[track_caller]
    pub fn one_line_error(&self, code: i32) -> &str {
        self.expect_code(code);
        assert!(
            self.stdout.is_empty(),
            "`{}` failed but printed on stdout:\n{}",
            self.command,
            self.stdout
        );
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !line.contains('\n') && line.starts_with("postern: "),
            "`{}`: expected one `postern: …` line on stderr, got:\n{}",
            self.command,
            self.stderr
        );
        line
    }
}

/// A temporary directory that is the binary's working directory, with an optional
/// configuration file passed as `POSTERN_CONFIG` (as the README's walkthrough does).
pub struct Sandbox {
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
    /// Everything every run of `postern` printed, for "never printed" checks.
    transcript: RefCell<String>,
    /// Whether runs verify senders as configured ([`Sandbox::verifying_senders`]).
    verify_senders: bool,
}

impl Sandbox {
    /// An empty sandbox without configuration (the embedded defaults apply).
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("postern-cli-")
                .tempdir()
                .expect("temporary directory for the sandbox"),
            config: None,
            transcript: RefCell::new(String::new()),
            verify_senders: false,
        }
    }

    /// A sandbox whose `postern.yml` is `yaml`, used by every run.
    pub fn with_config(yaml: &str) -> Sandbox {
        let mut sandbox = Sandbox::new();
        let path = sandbox.write("postern.yml", yaml.as_bytes());
        sandbox.config = Some(path);
        sandbox
    }

    /// Runs verify senders as the configuration says. Without this, sender authentication is
    /// off (`POSTERN_SENDER_AUTHENTICATION=off`): the default policy would ask the system's DNS
    /// about the test domains, and tests send nothing off loopback. The sender-authentication
    /// tests point `sender_authentication.dns` at a private DNS server instead.
    pub fn verifying_senders(mut self) -> Sandbox {
        self.verify_senders = true;
        self
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` in the sandbox; returns its absolute path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// The binary with the sandbox as working directory and no configuration from outside.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(POSTERN);
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("POSTERN_CONFIG")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        if let Some(config) = &self.config {
            command.env("POSTERN_CONFIG", config);
        }
        if self.verify_senders {
            command.env_remove("POSTERN_SENDER_AUTHENTICATION");
        } else {
            command.env("POSTERN_SENDER_AUTHENTICATION", "off");
        }
        command
    }

    /// Runs `postern args…` with empty standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, &[])
    }

    /// Runs `postern args…` with `stdin` as standard input.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        let command_line = format!("postern {}", args.join(" "));
        let run = run_command(self.command(args), &command_line, stdin);
        let mut transcript = self.transcript.borrow_mut();
        transcript.push_str(&run.all_output());
        transcript.push('\n');
        run
    }

    /// Everything the runs of `postern` in this sandbox printed so far.
    pub fn transcript(&self) -> String {
        self.transcript.borrow().clone()
    }

    /// `postern receive -` with `raw` on standard input; asserts exit 0 and returns the JSON.
    #[track_caller]
    pub fn receive(&self, raw: &[u8]) -> Value {
        self.run_with_stdin(&["receive", "-"], raw).json()
    }

    /// `postern admin args… --json`; asserts exit 0 and returns the JSON.
    #[track_caller]
    pub fn admin_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.push("--json");
        self.run(&all).json()
    }

    /// `postern admin args…` (human output); asserts exit 0 and returns standard output.
    #[track_caller]
    pub fn admin_text(&self, args: &[&str]) -> String {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        run.expect_code(0);
        run.stdout.clone()
    }

    /// `git args…` in `dir`, with no system or user configuration, `HOME` in the sandbox, a
    /// fixed identity and hooks off; panics unless it succeeds.
    #[track_caller]
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut command = Command::new("git");
        command
            .arg("-c")
            .arg("core.hooksPath=/dev/null")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("HOME", self.path())
            .env("GIT_AUTHOR_NAME", "Jake the Dog")
            .env("GIT_AUTHOR_EMAIL", "jake@adventuretime.ooo")
            .env("GIT_COMMITTER_NAME", "Jake the Dog")
            .env("GIT_COMMITTER_EMAIL", "jake@adventuretime.ooo")
            .env("GIT_TERMINAL_PROMPT", "0");
        let run = run_command(command, &format!("git {}", args.join(" ")), &[]);
        run.expect_code(0);
        run.stdout
    }
}

/// Spawns `command`, feeds `stdin` from a thread (so a large input cannot deadlock against a
/// full output pipe) and collects the output.
fn run_command(mut command: Command, command_line: &str, stdin: &[u8]) -> Run {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command_line}`: {e}"));
    let mut pipe = child.stdin.take().expect("stdin was piped");
    let input = stdin.to_vec();
    // A program that does not read its input closes the pipe early; that is not a failure here.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for `{command_line}`: {e}"));
    writer
        .join()
        .expect("the stdin writer thread does not panic");
    Run {
        command: command_line.to_owned(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stdout_bytes: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `value[key]` as a string, or a panic naming the key and showing the value.
#[track_caller]
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key:?} is not a string in {value:#}"))
}

/// `value[key]` as an integer, or a panic naming the key and showing the value.
#[track_caller]
pub fn int_field(value: &Value, key: &str) -> i64 {
    value[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key:?} is not an integer in {value:#}"))
}

/// Asserts that `value` is an object with exactly the keys `keys` (in any order).
#[track_caller]
pub fn assert_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value:#}"));
    let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
    actual.sort_unstable();
    let mut expected = keys.to_vec();
    expected.sort_unstable();
    assert_eq!(actual, expected, "keys of {value:#}");
}

/// Asserts that `value` has at least the keys `keys`.
#[track_caller]
pub fn assert_has_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value:#}"));
    let missing: Vec<&&str> = keys.iter().filter(|k| !object.contains_key(**k)).collect();
    assert!(missing.is_empty(), "missing {missing:?} in {value:#}");
}

/// Ruby's `String#strip` (the trimmer fixtures are compared the way the gem's tests compare
/// them).
pub fn ruby_strip(text: &str) -> &str {
    text.trim_matches(|c: char| matches!(c, '\0' | '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' '))
}

/// What the README's first steps create: jake (a developer with a verified address) and
/// `gitlabhq/gitlabhq` (default branch `master`, as GitLab's fixtures expect).
pub struct Walkthrough {
    /// Jake's incoming-email token.
    pub token: String,
    /// The project's id.
    pub project_id: i64,
}

impl Walkthrough {
    /// Runs the README's `admin user add`, `project add` and `project member add`.
    #[track_caller]
    pub fn set_up(sandbox: &Sandbox) -> Walkthrough {
        let jake = sandbox.admin_json(&[
            "user",
            "add",
            "jake",
            "--email",
            "jake@adventuretime.ooo",
            "--name",
            "Jake the Dog",
        ]);
        let project = sandbox.admin_json(&[
            "project",
            "add",
            "gitlabhq/gitlabhq",
            "--default-branch",
            "master",
        ]);
        sandbox.admin_json(&[
            "project",
            "member",
            "add",
            "gitlabhq/gitlabhq",
            "jake",
            "developer",
        ]);
        Walkthrough {
            token: str_field(&jake, "incoming_email_token").to_owned(),
            project_id: int_field(&project, "id"),
        }
    }

    /// A GitLab fixture for this project and jake's token.
    pub fn fixture(&self, name: &str) -> Vec<u8> {
        let id = self.project_id.to_string();
        fixture_with(name, &[("project_id", &id), ("auth_token", &self.token)])
    }
}

/// `postern serve` in `sandbox` with its standard error collected, logging at `level` (`None`:
/// the default level); returns once it wrote a line `ready` accepts (waiting at most `bound`,
/// else panicking with `what`), with that line.
#[track_caller]
pub fn serve_until(
    sandbox: &Sandbox,
    level: Option<&str>,
    what: &str,
    bound: std::time::Duration,
    ready: impl Fn(&str) -> bool,
) -> (std::process::Child, StderrLines, String) {
    let mut command = sandbox.command(&["serve"]);
    match level {
        Some(level) => command.env("POSTERN_LOG", level),
        None => command.env_remove("POSTERN_LOG"),
    };
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("postern serve starts");
    let stderr = StderrLines::collect(child.stderr.take().expect("stderr is piped"));
    let line = stderr.wait_for(what, bound, ready);
    (child, stderr, line)
}

/// Standard error of a running `postern serve`, collected line by line by a thread, so the
/// test can wait for a line while the process keeps writing.
pub struct StderrLines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrLines {
    /// Starts reading `stderr` until the process closes it.
    pub fn collect(stderr: std::process::ChildStderr) -> StderrLines {
        use std::io::BufRead as _;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines lock").push(line);
            }
        });
        StderrLines {
            lines,
            reader: Some(reader),
        }
    }

    /// Every line so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits at most `bound` for a line `wanted` accepts and returns it; panics naming `what`
    /// and showing everything written so far.
    #[track_caller]
    pub fn wait_for(
        &self,
        what: &str,
        bound: std::time::Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + bound;
        loop {
            if let Some(line) = self.snapshot().into_iter().find(|line| wanted(line)) {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {what} within {bound:?}; standard error so far:\n{}",
                self.snapshot().join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Waits for the process to close standard error (call after it exited); every line.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the stderr reader does not panic");
        }
        self.snapshot()
    }
}
