//! Requests to stop: SIGINT, SIGTERM, and (run as a Docker CLI plugin) the CLI closing the plugin
//! socket, which is how `docker` passes on a signal it received when no terminal is attached.

use std::sync::{Arc, Mutex};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::model::signal::Signal;

pub struct Interrupts {
    pub receiver: mpsc::UnboundedReceiver<Signal>,
    first: First,
}

/// The first signal delivered, kept after the rollout consumed it: a stack must not start its next
/// service after one.
type First = Arc<Mutex<Option<Signal>>>;

/// Delivers a signal, remembering the first.
#[derive(Clone)]
struct Deliver {
    sender: mpsc::UnboundedSender<Signal>,
    first: First,
}

impl Deliver {
    fn send(&self, signal: Signal) -> bool {
        if let Ok(mut first) = self.first.lock() {
            first.get_or_insert(signal);
        }
        self.sender.send(signal).is_ok()
    }

    fn any_sent(&self) -> bool {
        self.first.lock().is_ok_and(|first| first.is_some())
    }
}

impl Interrupts {
    /// Installs the handlers; from here on a signal no longer kills the process but is delivered.
    pub fn install() -> std::io::Result<Interrupts> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let first = First::default();
        let deliver = Deliver {
            sender,
            first: first.clone(),
        };
        let mut kinds = vec![
            (SignalKind::interrupt(), Signal::Interrupt),
            (SignalKind::terminate(), Signal::Terminate),
        ];
        // Under `nohup` the user asked to outlive the terminal: a handler would undo that.
        if !hangup_ignored() {
            kinds.push((SignalKind::hangup(), Signal::HangUp));
        }
        for (kind, meaning) in kinds {
            let mut stream = signal(kind)?;
            let deliver = deliver.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if !deliver.send(meaning) {
                        break;
                    }
                }
            });
        }
        if let Some(socket) = std::env::var_os("DOCKER_CLI_PLUGIN_SOCKET") {
            watch_plugin_socket(socket.to_string_lossy().into_owned(), deliver);
        }
        Ok(Interrupts { receiver, first })
    }

    /// The first signal this run received, whether or not it was acted on yet.
    pub fn received(&self) -> Option<Signal> {
        self.first.lock().ok().and_then(|first| *first)
    }

    pub fn pending(&mut self) -> Option<Signal> {
        self.receiver.try_recv().ok()
    }
}

/// Whether this process was started with SIGHUP ignored (`nohup`), as Linux tells in
/// `/proc/self/status` (`SigIgn`, a hex mask whose lowest bit is signal 1). Elsewhere: no.
fn hangup_ignored() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| ignores_hangup(&status))
}

fn ignores_hangup(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 == 1)
}

/// The CLI holds the other end and closes it when it got SIGINT or SIGTERM without a terminal.
/// It does not say which: this counts as an interrupt (exit 130), the usual case being Ctrl-C or
/// a job runner's SIGINT passed on by `docker`.
fn watch_plugin_socket(name: String, deliver: Deliver) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    use tokio::io::AsyncReadExt;

    let address = match name.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&name),
    };
    let Ok(address) = address else { return };
    let Ok(stream) = UnixStream::connect_addr(&address) else {
        return;
    };
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mut stream) = tokio::net::UnixStream::from_std(stream) else {
        return;
    };
    let parent = std::os::unix::process::parent_id();
    tokio::spawn(async move {
        let mut buffer = [0u8; 64];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    // A signal to the whole process group reaches this process too, and names
                    // itself: give it a moment to arrive, and then the closed socket is no news.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    if std::os::unix::process::parent_id() != parent {
                        // The CLI died without a word (kill -9): die as hard as it did, as if
                        // the tool itself had been killed. The journal and the containers stay
                        // as they are; the next run converges from there, without waiting for
                        // this one to roll back under the lock.
                        std::process::exit(137);
                    }
                    if !deliver.any_sent() {
                        deliver.send(Signal::Interrupt);
                    }
                    break;
                }
                Ok(_) => continue,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::ignores_hangup;

    #[test]
    fn nohup_is_read_off_the_ignored_signal_mask() {
        let status = |mask: &str| {
            format!(
                "Name:\tdocker-reroll\nSigBlk:\t0000000000000000\nSigIgn:\t{mask}\nSigCgt:\t0\n"
            )
        };
        assert!(ignores_hangup(&status("0000000000000001")));
        assert!(ignores_hangup(&status("0000000000001001")));
        assert!(!ignores_hangup(&status("0000000000001000")));
        assert!(!ignores_hangup("Name:\tx\n"));
    }
}
