//! A torrent's own speed limits (`store::speed`): kept in its entry, applied to its
//! run when it starts and at once while it runs.

use shoal_proto::InfoHash;

use super::queue::QueueError;
use super::Node;
use crate::store::speed::{self, SpeedLimits};

impl Node {
    /// Sets a torrent's own limits in bytes per second (absent: unchanged; 0: none).
    pub async fn set_speed_limits(
        &self,
        hash: InfoHash,
        up: Option<u64>,
        down: Option<u64>,
    ) -> Result<SpeedLimits, QueueError> {
        let _ops = self.inner().ops.lock().await;
        let l = {
            let mut map = self.torrents();
            let e = map.get_mut(&hash).ok_or(QueueError::Unknown)?;
            e.speed = SpeedLimits {
                up: up.unwrap_or(e.speed.up),
                down: down.unwrap_or(e.speed.down),
            };
            if let Some(r) = &e.run {
                r.handle.set_limits(e.speed.up, e.speed.down);
            }
            e.speed
        };
        let hex = hash.to_hex();
        self.store()
            .call(move |c| speed::set(c, &hex, l))
            .await
            .map_err(QueueError::Internal)?;
        Ok(l)
    }
}
