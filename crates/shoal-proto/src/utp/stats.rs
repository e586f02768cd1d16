//! What a uTP connection reports about itself.

use std::time::Duration;

/// Counters and estimates of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UtpStats {
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Payload bytes in flight.
    pub in_flight: u32,
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Round-trip variation.
    pub rtt_var: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// LEDBAT's base delay sample (microseconds, the peer's clock minus ours).
    pub base_delay_us: Option<u32>,
    /// LEDBAT's current queueing delay estimate.
    pub queuing_delay: Option<Duration>,
    /// Packets sent, first transmissions and resends, acks included.
    pub packets_sent: u64,
    /// Packets resent (after loss or timeout).
    pub retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Packets received and accepted as this connection's.
    pub packets_received: u64,
    /// Sequenced packets received twice.
    pub duplicates: u64,
    /// Payload bytes handed to the network for the first time.
    pub bytes_sent: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
}
