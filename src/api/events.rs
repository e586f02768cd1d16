//! `GET /api/events`: Server-Sent Events, one `update` a second with the node stats,
//! every torrent summary and the sharing jobs.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;

use crate::node::Node;

pub async fn events(
    State(node): State<Node>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tick = tokio::time::interval(Duration::from_secs(1));
    let stream = stream::unfold((node, tick), |(node, mut tick)| async move {
        tick.tick().await;
        let stats = node
            .stats()
            .await
            .unwrap_or_else(|e| json!({"error": format!("{e:#}")}));
        let data = json!({
            "stats": stats,
            "torrents": node.summaries(),
            "jobs": node.jobs(),
        });
        let ev = Event::default().event("update").data(data.to_string());
        Some((Ok(ev), (node, tick)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
