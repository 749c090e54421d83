//! `bindery console [-s SOCKET|HOST:PORT] [--json] [COMMAND ...]`: Momentum's `ec_console`.
//!
//! With a command it runs it, prints the answer and exits 1 if the command failed. Without
//! one it is interactive: line editing, history (`~/.bindery_console_history`) and
//! completion of command words, binding, group and domain names. A TCP console asks for a
//! login: the user from `--user` (default `admin`), the password from
//! `BINDERY_CONSOLE_PASSWORD` or the first line of `--password-file`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bindery_control::auth::{ha1, respond};
use bindery_control::complete::{Names, candidates};
use bindery_control::frame::{Frame, FrameDecoder, Status};
use bindery_control::words::quote;

/// Where the embedded default configuration puts the console socket.
pub const DEFAULT_SOCKET: &str = "./bindery-spool/bindery.sock";

/// How to reach the console and log in: shared by `bindery console` and the subcommands
/// that run one console command (`bindery adaptive explain`).
#[derive(clap::Args)]
pub struct Connect {
    /// The console: a Unix socket path or HOST:PORT (default: $BINDERY_CONSOLE, else the
    /// embedded configuration's socket).
    #[arg(short = 's', long = "socket", value_name = "SOCKET|HOST:PORT")]
    pub socket: Option<String>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// The user to log in as on a TCP console.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// A file whose first line is the password (else $BINDERY_CONSOLE_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    pub connect: Connect,
    /// The command to run; without one, the console is interactive.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

struct Client {
    stream: Box<dyn Duplex>,
    frames: FrameDecoder,
}

impl Client {
    fn connect(target: &str) -> anyhow::Result<(Client, Frame)> {
        let stream: Box<dyn Duplex> = match target.parse::<SocketAddr>() {
            Ok(addr) => Box::new(
                std::net::TcpStream::connect(addr)
                    .with_context(|| format!("cannot connect to {addr}"))?,
            ),
            Err(_) => Box::new(
                UnixStream::connect(target)
                    .with_context(|| format!("cannot connect to {target}"))?,
            ),
        };
        let mut c = Client {
            stream,
            frames: FrameDecoder::default(),
        };
        let greeting = c.recv()?;
        Ok((c, greeting))
    }

    fn recv(&mut self) -> anyhow::Result<Frame> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(f) = self.frames.next_frame()? {
                return Ok(f);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                bail!("the daemon closed the connection");
            }
            self.frames.feed(&buf[..n]);
        }
    }

    fn request(&mut self, line: &str) -> anyhow::Result<Frame> {
        self.stream.write_all(format!("{line}\n").as_bytes())?;
        self.recv()
    }

    /// Answers the greeting's challenge, if there is one.
    fn login(&mut self, greeting: Frame, args: &Connect) -> anyhow::Result<()> {
        if greeting.status != Status::Auth {
            return Ok(());
        }
        let password = match (
            &args.password_file,
            std::env::var("BINDERY_CONSOLE_PASSWORD"),
        ) {
            (Some(f), _) => std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            (None, Ok(p)) => p,
            (None, Err(_)) => bail!(
                "this console requires a login: set BINDERY_CONSOLE_PASSWORD or --password-file"
            ),
        };
        let Some((realm, nonce)) = greeting.body.split_once(' ') else {
            bail!("malformed challenge from the daemon");
        };
        let answer = respond(&ha1(&args.user, realm, &password), nonce);
        let reply = self.request(&format!("auth {} {answer}", quote(&args.user)))?;
        if reply.status != Status::Ok {
            bail!("login refused for user {}", args.user);
        }
        Ok(())
    }
}

pub fn run(all: &ConsoleArgs) -> anyhow::Result<ExitCode> {
    let args = &all.connect;
    let target = args
        .socket
        .clone()
        .or_else(|| std::env::var("BINDERY_CONSOLE").ok())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
    let (mut client, greeting) = Client::connect(&target)?;
    client.login(greeting, args)?;
    if !all.command.is_empty() {
        let line: Vec<String> = all.command.iter().map(|w| quote(w)).collect();
        let line = line.join(" ");
        let frame = client.request(&if args.json {
            format!("json {line}")
        } else {
            line
        })?;
        return Ok(print(&frame));
    }
    interactive(client, &target, args.json)
}

/// Prints an answer: output to stdout, an error to stderr.
fn print(frame: &Frame) -> ExitCode {
    match frame.status {
        Status::Ok => {
            print!("{}", frame.body);
            if !frame.body.is_empty() && !frame.body.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{}", frame.body.trim_end());
            ExitCode::FAILURE
        }
    }
}

struct Helper {
    names: Names,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = rustyline::completion::Pair;

    /// Every candidate is a whole word, so choosing one also types the space after it.
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Self::Candidate>)> {
        let (start, words) = candidates(&line[..pos], &self.names);
        let pairs = words
            .into_iter()
            .map(|w| rustyline::completion::Pair {
                replacement: format!("{w} "),
                display: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

fn interactive(mut client: Client, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let names = match client.request("json names") {
        Ok(f) if f.status == Status::Ok => serde_json::from_str(&f.body).unwrap_or_default(),
        _ => Names::default(),
    };
    let mut editor: rustyline::Editor<Helper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    editor.set_helper(Some(Helper { names }));
    let history =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".bindery_console_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let prompt = format!("bindery({target})> ");
    loop {
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if matches!(trimmed, "quit" | "exit") {
            break;
        }
        let frame = client.request(&if json {
            format!("json {trimmed}")
        } else {
            trimmed.to_string()
        })?;
        print(&frame);
        if frame.status == Status::Bye {
            break;
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

/// `bindery passwd USER [--realm R]`: reads a password from stdin and prints the password
/// file line for it (`USER:REALM:HA1`, htdigest's format).
#[derive(clap::Args)]
pub struct PasswdArgs {
    pub user: String,
    #[arg(long, default_value = bindery_control::auth::DEFAULT_REALM)]
    pub realm: String,
}

pub fn passwd(args: &PasswdArgs) -> anyhow::Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on stdin");
    }
    println!(
        "{}",
        bindery_control::auth::passwd_line(&args.user, &args.realm, password)
    );
    Ok(ExitCode::SUCCESS)
}
