//! SIGINT and SIGTERM during a call: the first stops the call and lets the command print
//! what it knows (exit 130 or 143); a second one exits at once.

/// A signal that stops a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (a process manager): exit 143.
    Terminate,
}

impl Signal {
    /// 128 + the signal's number, as shells report it.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// The signal handlers of one call; installed only while a call runs, so the process
/// keeps the default behaviour (die at once) everywhere else.
pub(crate) struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub(crate) fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal; never resolves when none can be received.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let int = async {
                match self.int.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let term = async {
                match self.term.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = int => Signal::Interrupt,
                _ = term => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }

    /// After the first signal: the next one exits the process at once, with its own code.
    pub(crate) fn exit_on_next(mut self, _first: Signal) {
        tokio::spawn(async move {
            let second = self.recv().await;
            std::process::exit(i32::from(second.exit_code()));
        });
    }
}
