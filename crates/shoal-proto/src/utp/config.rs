//! Settings of a uTP connection.

use std::time::Duration;

use super::ledbat::LedbatConfig;

/// Connection settings; [`Default`] follows BEP 29 and libtorrent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtpConfig {
    /// Largest payload per packet (bytes); also the congestion window's unit.
    pub max_payload: usize,
    /// Most bytes [`Connection::write`] holds before they are sent.
    pub send_buffer: usize,
    /// Receive buffer (bytes): the window we advertise.
    pub recv_buffer: usize,
    /// Timeout before the first round-trip sample (BEP 29: 1 s).
    pub initial_rto: Duration,
    /// Floor of the timeout (BEP 29: 500 ms).
    pub min_rto: Duration,
    /// Ceiling of the backed-off timeout.
    pub max_rto: Duration,
    /// Timeouts in a row that end a connected connection.
    pub max_timeouts: u32,
    /// SYN retransmissions before connecting fails.
    pub syn_retries: u32,
    /// Send an ack after this long without sending anything.
    pub keepalive: Duration,
    /// End the connection after this long without receiving anything.
    pub idle_timeout: Duration,
    /// Congestion control.
    pub ledbat: LedbatConfig,
}

impl Default for UtpConfig {
    fn default() -> Self {
        UtpConfig {
            max_payload: 1400,
            send_buffer: 1 << 20,
            recv_buffer: 1 << 20,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(60),
            max_timeouts: 6,
            syn_retries: 3,
            keepalive: Duration::from_secs(29),
            idle_timeout: Duration::from_secs(120),
            ledbat: LedbatConfig::default(),
        }
    }
}
