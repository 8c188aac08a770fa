//! An in-process TCP proxy on one agent link (agent↔coordinator, or
//! agent↔one backend), as Toxiproxy is: the agent connects to the proxy,
//! the proxy to the mock, and bytes are pumped both ways. The link's
//! `[[faults]]` act on the pumps:
//!
//! - **hold**: the pumps stop reading (bytes wait in the socket buffers, so
//!   writers feel backpressure); a connection opened meanwhile is not
//!   carried to the mock until release. **release** resumes them all.
//! - **partition**: every connection open on the link is *wedged* for good:
//!   whatever either end writes is read and dropped, as a network that
//!   loses every packet would, and no FIN passes. A connection opened while
//!   partitioned is accepted but never carried to the mock. **repair** lets
//!   new connections through; wedged ones stay wedged.
//! - **crash** of the agent: the link's connections are wedged the same way,
//!   so the peers do not learn of the crash from a FIN (a power loss sends
//!   none). **restart** brings the link up again.
//!
//! A wedged connection passes its end on only once the link is up again (no
//! partition, agent not down): an end that closed is then closed at the
//! other end, as a peer learns of a dead connection when its packets get
//! through again. This mirrors the simulation's faults (`world::faults`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Bytes one pump reads and writes at a time: the most the proxy itself
/// holds per direction of a connection.
pub const PROXY_CHUNK_BYTES: usize = 4096;
/// Most connections one proxy carries at once; more wait in the backlog.
pub const PROXY_CONNECTIONS_MAX: usize = 64;
/// Listen backlog of the proxy's socket.
const LISTEN_BACKLOG: u32 = 128;

/// The state of one link, as its faults set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Held: nothing moves until release.
    pub held: bool,
    /// Partitioned: nothing gets through.
    pub partitioned: bool,
    /// The agent's end crashed and has not restarted.
    pub down: bool,
    /// Counts partitions and crashes: a connection opened before the
    /// latest one is wedged.
    pub cut_epoch: u64,
}

impl LinkState {
    /// Neither partitioned nor down.
    pub fn up(&self) -> bool {
        !self.partitioned && !self.down
    }
}

/// One link's fault state. Concurrency: the fault schedule writes it; every
/// pump of the link watches it (`watch` keeps only the latest state, which
/// is all a pump needs).
#[derive(Debug)]
pub struct Link {
    state: watch::Sender<LinkState>,
}

impl Link {
    pub fn new() -> Arc<Link> {
        Arc::new(Link {
            state: watch::Sender::new(LinkState::default()),
        })
    }

    pub fn state(&self) -> LinkState {
        *self.state.borrow()
    }

    pub fn partition(&self) {
        self.state.send_modify(|s| {
            s.partitioned = true;
            s.cut_epoch += 1;
        });
    }

    pub fn repair(&self) {
        self.state.send_modify(|s| s.partitioned = false);
    }

    pub fn hold(&self) {
        self.state.send_modify(|s| s.held = true);
    }

    pub fn release(&self) {
        self.state.send_modify(|s| s.held = false);
    }

    /// The agent's end lost power.
    pub fn crash(&self) {
        self.state.send_modify(|s| {
            s.down = true;
            s.cut_epoch += 1;
        });
    }

    /// The agent's end is back.
    pub fn restart(&self) {
        self.state.send_modify(|s| s.down = false);
    }

    fn subscribe(&self) -> watch::Receiver<LinkState> {
        self.state.subscribe()
    }
}

/// Socket buffer sizes of a proxy: `None` leaves the kernel's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffers {
    /// `SO_RCVBUF` of the sockets accepted from the agent.
    pub downstream_recv_bytes: Option<u32>,
    /// `SO_SNDBUF` of the socket to the mock.
    pub upstream_send_bytes: Option<u32>,
}

/// A running proxy; dropping it stops accepting (open connections end with
/// the runtime).
#[derive(Debug)]
pub struct Proxy {
    /// Where the agent connects.
    pub addr: SocketAddr,
    /// The accept loop. Aborted on drop.
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// MSS advertised by a listener with small buffers. Linux sizes a
/// sender's socket send buffer from its congestion window in segments, and
/// loopback's 64 KiB MTU makes that over 2 MiB: a writer whose reader
/// stopped reading wrote 2.75 MiB before blocking. With this MSS it blocks
/// after about 170 KiB (`tests/it/live.rs`, `small_buffers_make_a_read_pause_bite`),
/// most of it the writer's own send buffer, which simctl cannot reach;
/// smaller and larger MSS values measured worse.
pub const SMALL_MSS_BYTES: u32 = 1024;

/// A listener on an ephemeral loopback port. With `recv_bytes`, its
/// receive buffer is that small and it advertises [`SMALL_MSS_BYTES`]
/// (accepted sockets inherit both; they are set before `listen` so the TCP
/// window and MSS are negotiated with them).
pub fn loopback_listener(recv_bytes: Option<u32>) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = recv_bytes {
        socket.set_recv_buffer_size(bytes)?;
        socket2::SockRef::from(&socket).set_tcp_mss(SMALL_MSS_BYTES)?;
    }
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(LISTEN_BACKLOG)
}

/// Starts a proxy on an ephemeral loopback port that carries connections
/// to `upstream` through `link`.
pub fn start(upstream: SocketAddr, link: Arc<Link>, buffers: Buffers) -> io::Result<Proxy> {
    let listener = loopback_listener(buffers.downstream_recv_bytes)?;
    let addr = listener.local_addr()?;
    let accept = tokio::spawn(accept_loop(listener, upstream, link, buffers));
    Ok(Proxy { addr, accept })
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, link: Arc<Link>, buffers: Buffers) {
    // Bounds connections: each task holds a permit until both pumps end.
    let slots = Arc::new(Semaphore::new(PROXY_CONNECTIONS_MAX));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        let link = link.clone();
        // Detached: the connection's task ends when both directions have.
        tokio::spawn(async move {
            serve(stream, upstream, &link, buffers).await;
            drop(permit);
        });
    }
}

/// Whether a connection born in epoch `born` is wedged in state `s`.
fn wedged(s: &LinkState, born: u64) -> bool {
    s.cut_epoch != born
}

async fn serve(downstream: TcpStream, upstream: SocketAddr, link: &Link, buffers: Buffers) {
    let mut state = link.subscribe();
    let born = state.borrow_and_update().cut_epoch;
    let _ = downstream.set_nodelay(true);
    // Opening the connection to the mock is a message: it waits out a
    // hold, and gets nowhere across a partition or from a crashed agent.
    let Ok(now) = state
        .wait_for(|s| wedged(s, born) || !s.up() || !s.held)
        .await
        .map(|s| *s)
    else {
        return;
    };
    if wedged(&now, born) || !now.up() {
        let (from, _to) = downstream.into_split();
        discard(from).await;
        return;
    }
    let Ok(up) = connect(upstream, buffers.upstream_send_bytes).await else {
        // The mock refused: the agent sees its connection close.
        return;
    };
    let _ = up.set_nodelay(true);
    let (down_read, down_write) = downstream.into_split();
    let (up_read, up_write) = up.into_split();
    tokio::join!(
        pump(down_read, up_write, link.subscribe(), born),
        pump(up_read, down_write, link.subscribe(), born),
    );
}

async fn connect(addr: SocketAddr, send_bytes: Option<u32>) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = send_bytes {
        socket.set_send_buffer_size(bytes)?;
        socket2::SockRef::from(&socket).set_tcp_mss(SMALL_MSS_BYTES)?;
    }
    socket.connect(addr).await
}

/// Reads and drops everything until the end closes.
async fn discard(mut from: OwnedReadHalf) {
    let mut buf = vec![0_u8; PROXY_CHUNK_BYTES];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Carries bytes one way until `from` ends, obeying the link's state; then
/// passes the end on (at once, or once the link is up for a wedged one).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut state: watch::Receiver<LinkState>, born: u64) {
    let mut buf = vec![0_u8; PROXY_CHUNK_BYTES];
    loop {
        // A held link is not read: the bytes wait in the socket buffers.
        if state.wait_for(|s| wedged(s, born) || !s.held).await.is_err() {
            return;
        }
        let read = tokio::select! {
            biased;
            changed = state.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            read = from.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A hold that began while these bytes were in hand holds them too.
        let Ok(now) = state.wait_for(|s| wedged(s, born) || !s.held).await.map(|s| *s) else {
            return;
        };
        if wedged(&now, born) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if wedged(&state.borrow(), born) && state.wait_for(LinkState::up).await.is_err() {
        return;
    }
    // Dropping the write half sends FIN to the other end.
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link's faults set its state; a partition and a crash each start a new epoch.
    #[test]
    fn faults_set_the_link_state() {
        let link = Link::new();
        link.hold();
        assert!(link.state().held && link.state().up());
        link.release();
        link.partition();
        assert_eq!(link.state().cut_epoch, 1);
        assert!(!link.state().up());
        link.repair();
        link.crash();
        assert_eq!((link.state().cut_epoch, link.state().down), (2, true));
        link.restart();
        assert!(link.state().up());
    }
}
