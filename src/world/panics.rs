//! Panics inside simulated hosts. turmoil builds every host's runtime to
//! shut down on a task's unhandled panic: tokio then panics again, out of
//! the host's tick and out of `Sim::step`, with a message that names
//! neither the host nor the cause ("a spawned task panicked and the
//! LocalSet is configured to shutdown on unhandled panic"). So the messages
//! of panics on a simulation thread are captured instead of printed, each
//! with the host whose runtime it happened on: every host's software
//! names its runtime with [`name_runtime`] when it starts.

use std::cell::RefCell;
use std::sync::Once;

use tokio::runtime::{Handle, Id};

/// One captured panic.
#[derive(Clone, Debug, PartialEq)]
pub struct Captured {
    /// The simulated host whose runtime panicked (`None`: outside any
    /// host, or a runtime no host named).
    pub host: Option<String>,
    /// The panic's message, with its location (`panicked at file:line:col:`).
    pub message: String,
}

thread_local! {
    /// Panics captured on this thread while a simulation runs on it
    /// (`None`: not capturing, print as usual).
    static CAPTURED: RefCell<Option<Vec<Captured>>> = const { RefCell::new(None) };
    /// The host each runtime of this thread's simulation belongs to. A host
    /// restarted gets a new entry; entries are few (one per incarnation)
    /// and cleared with every [`start_capture`].
    static RUNTIMES: RefCell<Vec<(Id, String)>> = const { RefCell::new(Vec::new()) };
}

/// The host whose runtime the current thread is in, if one was named.
fn current_host() -> Option<String> {
    let id = Handle::try_current().ok()?.id();
    RUNTIMES.with(|cell| {
        cell.borrow()
            .iter()
            .rev()
            .find(|(known, _)| *known == id)
            .map(|(_, host)| host.clone())
    })
}

/// Installs the capturing hook once per process; it defers to the previous
/// hook on threads that are not capturing.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let captured = CAPTURED.with(|cell| match cell.borrow_mut().as_mut() {
                Some(list) => {
                    list.push(Captured {
                        host: current_host(),
                        message: info.to_string(),
                    });
                    true
                }
                None => false,
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// Names the runtime the caller runs on as `host`'s, so that a panic on it
/// is attributed to `host`. Called first thing by every host's software.
pub fn name_runtime(host: &str) {
    let Ok(handle) = Handle::try_current() else {
        return;
    };
    let id = handle.id();
    RUNTIMES.with(|cell| cell.borrow_mut().push((id, host.to_owned())));
}

/// Starts capturing panic messages on this thread.
pub fn start_capture() {
    install_hook();
    RUNTIMES.with(|cell| cell.borrow_mut().clear());
    CAPTURED.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
}

/// Panics captured since the last call (capturing continues).
pub fn take_captured_panics() -> Vec<Captured> {
    CAPTURED.with(|cell| cell.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default())
}

/// Messages of the panics captured since the last call, each prefixed with
/// its host when known (capturing continues).
pub fn take_captured() -> Vec<String> {
    take_captured_panics()
        .into_iter()
        .map(|c| match c.host {
            Some(host) => format!("on {host}: {}", c.message),
            None => c.message,
        })
        .collect()
}

/// Stops capturing on this thread.
pub fn stop_capture() {
    CAPTURED.with(|cell| *cell.borrow_mut() = None);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic on a named runtime is captured with its host; one outside
    /// any runtime is captured without.
    #[test]
    fn panics_are_captured_with_their_host() {
        start_capture();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            name_runtime("vllm-1");
            let _ = std::panic::catch_unwind(|| panic!("inside"));
        });
        let _ = std::panic::catch_unwind(|| panic!("outside"));
        let captured = take_captured_panics();
        stop_capture();
        assert_eq!(captured.len(), 2, "{captured:?}");
        assert_eq!(captured[0].host.as_deref(), Some("vllm-1"));
        assert!(captured[0].message.contains("inside"));
        assert_eq!(captured[1].host, None);
    }
}
