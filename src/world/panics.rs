//! Panics inside simulated hosts: tokio turns a panicking task into a
//! runtime shutdown, which turmoil reports as a host that simply stopped. To
//! name the panic in the report, the messages of panics on a simulation
//! thread are captured instead of printed.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    /// Panic messages captured on this thread while a simulation runs on it
    /// (`None`: not capturing, print as usual).
    static CAPTURED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
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
                    list.push(info.to_string());
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

/// Starts capturing panic messages on this thread.
pub fn start_capture() {
    install_hook();
    CAPTURED.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
}

/// Messages captured since the last call (capturing continues).
pub fn take_captured() -> Vec<String> {
    CAPTURED.with(|cell| cell.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default())
}

/// Stops capturing on this thread.
pub fn stop_capture() {
    CAPTURED.with(|cell| *cell.borrow_mut() = None);
}
