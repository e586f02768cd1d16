//! Per-torrent download order (sequential, first and last pieces first): kept in the
//! entry, stored in `torrent_options`, applied to the engine whenever the torrent
//! runs (`runs.rs` applies it at every start).

use shoal_proto::InfoHash;

use super::Node;
use crate::store::options::{self, DownloadOrder};

impl Node {
    /// Changes a torrent's download order (fields left `None` keep their value);
    /// returns the new order, or `None` for an unknown torrent (or a magnet still
    /// waiting for its metadata).
    pub async fn set_order(
        &self,
        hash: InfoHash,
        sequential: Option<bool>,
        first_last_piece: Option<bool>,
    ) -> anyhow::Result<Option<DownloadOrder>> {
        let _ops = self.inner().ops.lock().await;
        let order = {
            let mut map = self.torrents();
            let Some(e) = map.get_mut(&hash) else {
                return Ok(None);
            };
            if let Some(s) = sequential {
                e.order.sequential = s;
            }
            if let Some(f) = first_last_piece {
                e.order.first_last_piece = f;
            }
            if let Some(r) = &e.run {
                let (o, fl) = e.order.engine();
                r.handle.set_download_order(o, fl);
            }
            e.order
        };
        let hex = hash.to_hex();
        self.store()
            .call(move |c| options::set_order(c, &hex, order))
            .await?;
        Ok(Some(order))
    }
}
