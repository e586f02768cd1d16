//! The driver's outgoing datagrams, sent in as few system calls as the kernel allows.
//!
//! Handling an event queues every datagram it causes (a window's worth of data
//! packets, acks, resets). Runs of datagrams to one address with one size (the run's
//! last may be shorter: a partial packet ends it) go out as one segmented send
//! (`UDP_SEGMENT`, [`crate::udp::offload`]), up to the kernel's 64 datagrams or
//! ~64 KB; the kernel puts each on the wire as a datagram of its own, so peers see
//! what separate sends would have produced. Where segmentation is not available, or
//! the kernel refuses it once, datagrams go one by one from then on.

use std::io::IoSlice;
use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tracing::debug;

use super::UtpSockets;
use crate::udp::offload;

/// Sends datagrams, each on its destination's socket, segmenting runs when the
/// kernel can.
#[derive(Debug)]
pub(super) struct Output {
    gso: bool,
}

impl Output {
    pub(super) fn new(socket: &UdpSocket) -> Self {
        Output {
            gso: offload::gso_supported(socket),
        }
    }

    /// Sends and empties `out`, in order.
    pub(super) async fn send(
        &mut self,
        sockets: &UtpSockets,
        out: &mut Vec<(SocketAddr, Vec<u8>)>,
    ) {
        let mut i = 0;
        while i < out.len() {
            let n = if self.gso { run_len(&out[i..]) } else { 1 };
            let (addr, first) = &out[i];
            // A run has one address, so one socket.
            let socket = sockets.for_dest(addr);
            if n == 1 {
                send_one(socket, *addr, first).await;
            } else {
                // Gathered by the kernel from the packets where they are: no copy.
                let parts: Vec<IoSlice<'_>> =
                    out[i..i + n].iter().map(|(_, p)| IoSlice::new(p)).collect();
                if let Err(e) = offload::send_segments(socket, *addr, &parts, first.len()).await {
                    // EIO or EINVAL: this system cannot segment (say, a device without
                    // checksum offload); stop trying and send these one by one.
                    debug!(%addr, "uTP segmented send failed ({e}); sending datagrams singly");
                    self.gso = false;
                    for (_, p) in &out[i..i + n] {
                        send_one(socket, *addr, p).await;
                    }
                }
            }
            i += n;
        }
        out.clear();
    }
}

async fn send_one(socket: &UdpSocket, addr: SocketAddr, packet: &[u8]) {
    if let Err(e) = socket.send_to(packet, addr).await {
        debug!(%addr, "uTP send: {e}");
    }
}

/// How many datagrams from the start of `out` make one segmented send: same address,
/// same size as the first (the last may be shorter), within the kernel's limits.
fn run_len(out: &[(SocketAddr, Vec<u8>)]) -> usize {
    let Some((addr, first)) = out.first() else {
        return 0;
    };
    let size = first.len();
    if size == 0 {
        return 1;
    }
    let mut n = 1;
    let mut bytes = size;
    for (a, p) in &out[1..] {
        if a != addr
            || p.len() > size
            || n == offload::MAX_SEGMENTS
            || bytes + p.len() > offload::MAX_SEND_BYTES
        {
            break;
        }
        n += 1;
        bytes += p.len();
        if p.len() < size {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn out(list: &[(u16, usize)]) -> Vec<(SocketAddr, Vec<u8>)> {
        list.iter()
            .map(|&(port, len)| (SocketAddr::from(([127, 0, 0, 1], port)), vec![0; len]))
            .collect()
    }

    #[test]
    fn runs_end_at_another_address_a_larger_or_a_shorter_datagram() {
        assert_eq!(run_len(&out(&[(1, 100), (1, 100), (2, 100)])), 2);
        assert_eq!(run_len(&out(&[(1, 100), (1, 100), (1, 120)])), 2);
        assert_eq!(
            run_len(&out(&[(1, 100), (1, 60), (1, 100)])),
            2,
            "short ends it"
        );
        assert_eq!(run_len(&out(&[(1, 20), (1, 20)])), 2);
        assert_eq!(run_len(&out(&[])), 0);
    }

    #[test]
    fn runs_stay_within_the_kernel_limits() {
        let many = out(&[(1, 100); 100]);
        assert_eq!(run_len(&many), offload::MAX_SEGMENTS);
        let big = out(&[(1, 1420); 100]);
        assert_eq!(run_len(&big), offload::MAX_SEND_BYTES / 1420);
    }

    /// A run and its neighbours reach the peer as the separate datagrams queued, each
    /// from the socket of its destination's family.
    #[tokio::test]
    async fn sends_every_datagram_in_order() {
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let tx6 = UdpSocket::bind("[::1]:0").await.ok().map(Arc::new);
        let sockets = UtpSockets::new(tx.clone()).with_v6(tx6.clone());
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rx6 = match &tx6 {
            Some(_) => Some(UdpSocket::bind("[::1]:0").await.unwrap()),
            None => None, // no IPv6 on this host: the IPv4 half still runs
        };
        let sizes = [1400, 1400, 1400, 700, 20, 1400, 1400];
        let mut queue: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for r in std::iter::once(&rx).chain(rx6.as_ref()) {
            let to = r.local_addr().unwrap();
            queue.extend(
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| (to, vec![i as u8; len])),
            );
        }
        let want = queue.clone();
        let mut o = Output::new(&tx);
        o.send(&sockets, &mut queue).await;
        assert!(queue.is_empty());
        let mut buf = [0u8; 2048];
        for (to, w) in want {
            let r = if to.is_ipv6() {
                rx6.as_ref().unwrap()
            } else {
                &rx
            };
            let (n, from) = r.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &w[..]);
            let sent_from = if to.is_ipv6() {
                &tx6
            } else {
                &Some(tx.clone())
            };
            assert_eq!(from, sent_from.as_ref().unwrap().local_addr().unwrap());
        }
    }
}
