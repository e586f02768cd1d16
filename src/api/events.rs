//! `GET /api/events`: Server-Sent Events, one `update` a second with the node stats,
//! every torrent summary and the sharing jobs.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use serde_json::json;

use crate::node::{Node, ShareJob, Summary};

#[derive(Serialize)]
struct Update {
    stats: serde_json::Value,
    torrents: Vec<Summary>,
    jobs: Vec<ShareJob>,
}

pub async fn events(
    State(node): State<Node>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tick = tokio::time::interval(Duration::from_secs(1));
    let stream = stream::unfold((node, tick), |(node, mut tick)| async move {
        tick.tick().await;
        // One summary per torrent, serialised straight to text (building a
        // `serde_json::Value` of 1000 summaries first cost more than the rest).
        let torrents = node.summaries();
        let stats = node
            .stats_of(&torrents)
            .await
            .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        let update = Update {
            stats,
            torrents,
            jobs: node.jobs(),
        };
        let data = serde_json::to_string(&update).unwrap_or_default();
        let ev = Event::default().event("update").data(data);
        Some((Ok(ev), (node, tick)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
