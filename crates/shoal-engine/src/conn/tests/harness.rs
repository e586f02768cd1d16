//! In-memory test harness: connections over the engine's real torrent state, bytes
//! passed by hand, time advanced by the test. No sockets, no sleeps.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_proto::metainfo::Metainfo;
use shoal_proto::wire::{self, decode_message, BlockRef, Message};
use shoal_proto::PeerId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::conn::{ConnConfig, Connection, PeerCmd, PeerError, PeerStats, Transmit};
use crate::create::{create_torrent, CreateOptions};
use crate::picker::PeerKey;
use crate::session::Limits;
use crate::storage::{MemoryStorage, Storage};
use crate::torrent::{PeerSource, Shared};

pub(super) const PIECE: u64 = 32 * 1024;

/// A file of `len` pseudo-random bytes in `dir`, and its torrent (32 KiB pieces).
pub(super) fn torrent(dir: &Path, len: usize) -> (Vec<u8>, Arc<Metainfo>) {
    let mut rng = SmallRng::seed_from_u64(len as u64);
    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let path = dir.join("data.bin");
    std::fs::write(&path, &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(PIECE),
        ..CreateOptions::default()
    };
    let meta = create_torrent(&path, &opts, &|_, _| {}).unwrap();
    (data, Arc::new(meta))
}

/// A message as the other side saw it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Msg {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request(BlockRef),
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel(BlockRef),
    Reject(BlockRef),
    HaveAll,
    HaveNone,
    Extended(u8, Vec<u8>),
    Other,
}

impl From<Message<'_>> for Msg {
    fn from(m: Message<'_>) -> Msg {
        match m {
            Message::KeepAlive => Msg::KeepAlive,
            Message::Choke => Msg::Choke,
            Message::Unchoke => Msg::Unchoke,
            Message::Interested => Msg::Interested,
            Message::NotInterested => Msg::NotInterested,
            Message::Have(i) => Msg::Have(i),
            Message::Bitfield(b) => Msg::Bitfield(b.to_vec()),
            Message::Request(r) => Msg::Request(r),
            Message::Piece { index, begin, data } => Msg::Piece {
                index,
                begin,
                data: data.to_vec(),
            },
            Message::Cancel(r) => Msg::Cancel(r),
            Message::RejectRequest(r) => Msg::Reject(r),
            Message::HaveAll => Msg::HaveAll,
            Message::HaveNone => Msg::HaveNone,
            Message::Extended { id, payload } => Msg::Extended(id, payload.to_vec()),
            _ => Msg::Other,
        }
    }
}

/// One end of a connection: our torrent state and the connection to one peer.
pub(super) struct Side {
    pub shared: Arc<Shared>,
    pub storage: Arc<MemoryStorage>,
    pub conn: Connection,
    pub cmds: mpsc::UnboundedReceiver<PeerCmd>,
    pub stats: Arc<PeerStats>,
    pub key: PeerKey,
    rbuf: BytesMut,
    max_len: u32,
}

/// How a side starts.
pub(super) struct SideOpts<'a> {
    pub meta: Arc<Metainfo>,
    /// The torrent's data, for a seeder; a leecher starts with empty storage.
    pub seed: Option<&'a [u8]>,
    /// The peer's address and ID as this side sees them.
    pub peer: (SocketAddr, u8),
    pub fast: bool,
    pub extended: bool,
}

impl Side {
    pub(super) fn new(o: SideOpts<'_>, now: Instant) -> Side {
        let num_pieces = o.meta.info.num_pieces();
        let storage = Arc::new(match o.seed {
            Some(data) => MemoryStorage::with_data(&o.meta.info, data).unwrap(),
            None => MemoryStorage::new(&o.meta.info).unwrap(),
        });
        let shared = Shared::new(
            o.meta,
            PeerId(*b"-SH0000-ourselves000"),
            6881,
            Arc::new(Limits::new(0, 0)),
            CancellationToken::new(),
        );
        shared.set_storage(storage.clone());
        if o.seed.is_some() {
            shared.load_pieces(&vec![true; num_pieces as usize]);
        }
        let (key, stats, cmds) = shared
            .register_peer(o.peer.0, peer_id(o.peer.1), PeerSource::Manual, false)
            .unwrap();
        let cfg = ConnConfig {
            key,
            addr: o.peer.0,
            num_pieces,
            fast: o.fast,
            extended: o.extended,
            rng: SmallRng::seed_from_u64(7),
        };
        let mut conn = Connection::new(cfg, stats.clone(), now);
        conn.start(&shared);
        Side {
            shared,
            storage,
            conn,
            cmds,
            stats,
            key,
            rbuf: BytesMut::new(),
            max_len: wire::max_message_len(num_pieces),
        }
    }

    /// Bytes from the peer.
    pub(super) fn input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), PeerError> {
        self.rbuf.extend_from_slice(bytes);
        self.conn
            .handle_input(now, &mut self.rbuf, self.max_len, &self.shared)
    }

    /// Messages from the peer.
    pub(super) fn feed(&mut self, now: Instant, msgs: &[Message<'_>]) -> Result<(), PeerError> {
        let mut bytes = Vec::new();
        for m in msgs {
            m.encode(&mut bytes);
        }
        self.input(now, &bytes)
    }

    /// Everything the connection has to send, as bytes.
    pub(super) fn take_bytes(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(t) = self.conn.poll_transmit() {
            match t {
                Transmit::Msgs(m) => out.extend_from_slice(&m),
                Transmit::Block { header, data } => {
                    out.extend_from_slice(&header);
                    out.extend_from_slice(&data);
                }
            }
        }
        out
    }

    /// Everything the connection has to send, decoded.
    pub(super) fn output(&mut self) -> Vec<Msg> {
        let bytes = self.take_bytes();
        let mut buf = &bytes[..];
        let mut msgs = Vec::new();
        while let Some((m, used)) = decode_message(buf, self.max_len).unwrap() {
            msgs.push(Msg::from(m));
            buf = &buf[used..];
        }
        assert!(buf.is_empty(), "output ends in a partial message");
        msgs
    }

    /// Applies the torrent's queued commands.
    pub(super) fn commands(&mut self, now: Instant) -> Result<(), PeerError> {
        while let Ok(cmd) = self.cmds.try_recv() {
            self.conn.handle_command(now, cmd, &self.shared)?;
        }
        Ok(())
    }

    /// Serves the disk reads the connection asks for, from the torrent's storage.
    pub(super) fn serve_reads(&mut self, now: Instant) {
        while let Some(read) = self.conn.poll_disk_read() {
            let storage = &self.storage;
            let blocks = read
                .blocks
                .iter()
                .map(|r| {
                    let mut buf = vec![0u8; r.length as usize];
                    storage.read(r.index, r.begin, &mut buf).unwrap();
                    (*r, bytes::Bytes::from(buf))
                })
                .collect();
            self.conn.handle_disk_read(now, read, blocks);
        }
    }

    /// Waits until the pieces this side completed are hashed and stored.
    pub(super) async fn settle(&self) {
        while !self.shared.tasks.is_empty() {
            tokio::task::yield_now().await;
        }
    }

    pub(super) fn timeout(&mut self, now: Instant) -> Result<(), PeerError> {
        self.conn.handle_timeout(now, &self.shared)
    }

    pub(super) fn have_count(&self) -> u32 {
        self.shared.have_snapshot().count_ones()
    }
}

pub(super) fn peer_id(n: u8) -> PeerId {
    let mut id = *b"-XX0000-peerpeerpeer";
    id[19] = n;
    PeerId(id)
}

pub(super) fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 6881))
}

/// Two connections wired together in memory: `a` and `b` see each other.
pub(super) struct Pair {
    pub a: Side,
    pub b: Side,
    pub now: Instant,
}

impl Pair {
    /// Passes bytes and commands both ways, and serves disk reads, until nothing moves.
    pub(super) async fn drive(&mut self) -> Result<(), PeerError> {
        for _ in 0..10_000 {
            let now = self.now;
            self.a.serve_reads(now);
            self.b.serve_reads(now);
            let ab = self.a.take_bytes();
            let ba = self.b.take_bytes();
            if ab.is_empty() && ba.is_empty() {
                self.a.settle().await;
                self.b.settle().await;
                self.a.commands(now)?;
                self.b.commands(now)?;
                if !self.a.conn.has_transmit() && !self.b.conn.has_transmit() {
                    return Ok(());
                }
                continue;
            }
            self.b.input(now, &ab)?;
            self.a.input(now, &ba)?;
            self.a.commands(now)?;
            self.b.commands(now)?;
        }
        panic!("the pair never went quiet");
    }

    /// Advances time by `d` and runs both sides' timers.
    pub(super) fn advance(&mut self, d: std::time::Duration) -> Result<(), PeerError> {
        self.now += d;
        self.a.timeout(self.now)?;
        self.b.timeout(self.now)
    }
}
