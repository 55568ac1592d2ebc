//! Which connections the SSH endpoint holds. Every accepted connection takes a [`Slot`] in one
//! table; an unauthenticated flood is bounded per address and globally, and when a new
//! connection arrives over a cap the oldest unauthenticated one of the address holding the
//! most makes room (OpenSSH's MaxStartups idea, oldest-first): a real client, which
//! authenticates within moments, is not the one dropped. Authenticated connections are only
//! bounded: at the cap a new connection is refused.
//!
//! A connection is closed by severing its socket ([`Severable`]): reads and writes fail at
//! once, whatever the SSH session is waiting for.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::SshSettings;

pub struct ConnectionLimits {
    settings: SshSettings,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// By id, which is also the order of arrival.
    entries: BTreeMap<u64, Entry>,
}

struct Entry {
    address: IpAddr,
    authenticated: bool,
    cutoff: Arc<Cutoff>,
}

/// Why a connection was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many SSH connections")]
    Global,
    #[error("too many SSH connections from this address")]
    PerAddress,
}

impl ConnectionLimits {
    pub fn new(settings: SshSettings) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            settings,
            table: Mutex::default(),
        })
    }

    /// Takes a slot for a connection from `address`, closing older unauthenticated ones to
    /// make room when a cap is reached.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refusal> {
        let settings = &self.settings;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.count(|e| e.address == address) >= settings.max_connections_per_address.get()
            && !table.evict_oldest_unauthenticated_of(address)
        {
            return Err(Refusal::PerAddress);
        }
        if table.count(|e| e.address == address && !e.authenticated)
            >= settings.max_unauthenticated_per_address.get()
        {
            table.evict_oldest_unauthenticated_of(address);
        }
        if table.count(|e| !e.authenticated) >= settings.max_unauthenticated.get() {
            table.evict_from_the_largest_holder();
        }
        if table.entries.len() >= settings.max_connections.get()
            && !table.evict_from_the_largest_holder()
        {
            return Err(Refusal::Global);
        }
        let id = table.next_id;
        table.next_id += 1;
        let cutoff = Arc::new(Cutoff::default());
        table.entries.insert(
            id,
            Entry {
                address,
                authenticated: false,
                cutoff: cutoff.clone(),
            },
        );
        Ok(Slot {
            limits: self.clone(),
            id,
            cutoff,
        })
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let table = self.table.lock().unwrap();
        (table.entries.len(), table.count(|e| !e.authenticated))
    }
}

impl Table {
    fn count(&self, wanted: impl Fn(&Entry) -> bool) -> usize {
        self.entries.values().filter(|e| wanted(e)).count()
    }

    fn evict_oldest_unauthenticated_of(&mut self, address: IpAddr) -> bool {
        let oldest = self
            .entries
            .iter()
            .find(|(_, e)| e.address == address && !e.authenticated)
            .map(|(id, _)| *id);
        match oldest {
            Some(id) => {
                self.evict(id);
                true
            }
            None => false,
        }
    }

    /// Closes the oldest unauthenticated connection of the address with the most of them.
    fn evict_from_the_largest_holder(&mut self) -> bool {
        let mut per_address: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for entry in self.entries.values().filter(|e| !e.authenticated) {
            *per_address.entry(entry.address).or_default() += 1;
        }
        match per_address.into_iter().max_by_key(|(_, count)| *count) {
            Some((address, _)) => self.evict_oldest_unauthenticated_of(address),
            None => false,
        }
    }

    fn evict(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            tracing::info!(peer = %entry.address, "SSH connection closed to make room");
            entry.cutoff.sever();
        }
    }
}

/// One held connection; dropping it frees the place.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    id: u64,
    cutoff: Arc<Cutoff>,
}

impl Slot {
    /// From now on the connection counts as authenticated: never closed to make room.
    pub fn authenticated(&self) {
        let mut table = self.limits.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = table.entries.get_mut(&self.id) {
            entry.authenticated = true;
        }
    }

    pub fn cutoff(&self) -> Arc<Cutoff> {
        self.cutoff.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.limits.table.lock().unwrap_or_else(|p| p.into_inner());
        table.entries.remove(&self.id);
    }
}

/// The switch that severs one connection's socket.
#[derive(Default)]
pub struct Cutoff {
    severed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl Cutoff {
    pub fn sever(&self) {
        self.severed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    /// Whether the socket is severed, registering `cx` to be woken when it is.
    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> bool {
        waker.register(cx.waker());
        self.severed.load(Ordering::Acquire)
    }
}

/// A stream whose reads and writes fail once its [`Cutoff`] is severed.
pub struct Severable<S> {
    inner: S,
    cutoff: Arc<Cutoff>,
}

impl<S> Severable<S> {
    pub fn new(inner: S, cutoff: Arc<Cutoff>) -> Self {
        Severable { inner, cutoff }
    }
}

fn severed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection closed by paas-gitd",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Severable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.cutoff.check(&self.cutoff.reader, cx) {
            return Poll::Ready(Err(severed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Severable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.cutoff.check(&self.cutoff.writer, cx) {
            return Poll::Ready(Err(severed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cutoff.check(&self.cutoff.writer, cx) {
            return Poll::Ready(Err(severed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.cutoff.severed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn limits(
        total: usize,
        per_address: usize,
        unauth: usize,
        unauth_per_address: usize,
    ) -> Arc<ConnectionLimits> {
        let n = |n| NonZeroUsize::new(n).unwrap();
        ConnectionLimits::new(SshSettings {
            max_connections: n(total),
            max_connections_per_address: n(per_address),
            max_unauthenticated: n(unauth),
            max_unauthenticated_per_address: n(unauth_per_address),
            ..SshSettings::default()
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn severed(slot: &Slot) -> bool {
        slot.cutoff.severed.load(Ordering::Acquire)
    }

    #[test]
    fn a_flood_from_one_address_evicts_its_own_oldest_first() {
        let limits = limits(100, 100, 100, 3);
        let flood: Vec<Slot> = (0..5).map(|_| limits.admit(A).unwrap()).collect();
        assert!(severed(&flood[0]) && severed(&flood[1]));
        assert!(!flood[2..].iter().any(severed));
        assert_eq!(limits.held(), (3, 3));
        let newest = limits.admit(A).unwrap();
        assert!(severed(&flood[2]) && !severed(&newest));
    }

    #[test]
    fn authenticated_connections_are_never_evicted() {
        let limits = limits(3, 3, 3, 3);
        let user = limits.admit(A).unwrap();
        user.authenticated();
        let flood: Vec<Slot> = (0..10).map(|_| limits.admit(A).unwrap()).collect();
        assert!(!severed(&user));
        assert_eq!(flood.iter().filter(|s| !severed(s)).count(), 2);
        // All authenticated: a new connection is refused rather than dropping one.
        drop(flood);
        let others: Vec<Slot> = (0..2).map(|_| limits.admit(B).unwrap()).collect();
        for slot in &others {
            slot.authenticated();
        }
        assert_eq!(limits.admit(B).err(), Some(Refusal::Global));
        drop(user);
        assert!(limits.admit(B).is_ok());
    }

    #[test]
    fn the_global_unauthenticated_cap_takes_from_the_largest_holder() {
        let limits = limits(100, 100, 4, 100);
        let flood: Vec<Slot> = (0..3).map(|_| limits.admit(A).unwrap()).collect();
        let other = limits.admit(B).unwrap();
        let newcomer = limits.admit(B).unwrap();
        assert!(severed(&flood[0]) && !severed(&other) && !severed(&newcomer));
    }

    #[test]
    fn the_per_address_cap_refuses_when_all_are_authenticated() {
        let limits = limits(100, 2, 100, 100);
        let slots: Vec<Slot> = (0..2).map(|_| limits.admit(A).unwrap()).collect();
        slots.iter().for_each(Slot::authenticated);
        assert_eq!(limits.admit(A).err(), Some(Refusal::PerAddress));
        assert!(limits.admit(B).is_ok());
    }

    #[tokio::test]
    async fn a_severed_stream_fails_pending_reads_and_writes() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let cutoff = Arc::new(Cutoff::default());
        let mut stream = Severable::new(ours, cutoff.clone());
        stream.write_all(b"hi").await.unwrap();
        let mut two = [0u8; 2];
        theirs.read_exact(&mut two).await.unwrap();
        let pending = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            stream.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        cutoff.sever();
        let result = pending.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }
}
