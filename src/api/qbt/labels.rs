//! Categories and tags: `torrents/categories`, `createCategory`, `editCategory`,
//! `removeCategories`, `setCategory`, `tags`, `createTags`, `deleteTags`, `addTags`,
//! `removeTags`, over the node's labels (`node/labels.rs`).

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{json, text, Params, Qbt, QbtError, QbtResult};
use crate::node::labels::{LabelError, Labels};

/// `tags` as qBittorrent sends them: comma-separated, blanks trimmed, empties dropped.
pub fn tag_list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `categories` object of `torrents/categories` and `sync/maindata`.
pub fn categories_json(l: &Labels) -> Map<String, Value> {
    l.categories
        .iter()
        .map(|(name, path)| (name.clone(), json!({"name": name, "savePath": path})))
        .collect()
}

fn refused(e: LabelError) -> QbtError {
    match e {
        LabelError::Store(e) => QbtError::internal(format!("{e:#}")),
        LabelError::BadCategory(_) | LabelError::BadTag(_) => QbtError::bad(e.to_string()),
        _ => QbtError::conflict(e.to_string()),
    }
}

pub async fn categories(State(q): State<Qbt>) -> Response {
    json(Value::Object(categories_json(&q.node.labels())))
}

async fn put_category(q: &Qbt, p: &Params, replace: bool) -> QbtResult<Response> {
    let name = p.need("category")?.trim();
    if name.is_empty() {
        return Err(QbtError::bad("Category cannot be empty"));
    }
    let path = p.get("savePath").unwrap_or("").trim();
    q.node
        .put_category(name, path, replace)
        .await
        .map_err(refused)?;
    Ok(text(""))
}

pub async fn create_category(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    put_category(&q, &p, false).await
}

pub async fn edit_category(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    put_category(&q, &p, true).await
}

pub async fn remove_categories(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let names: Vec<String> = p
        .need("categories")?
        .lines()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    q.node.remove_categories(&names).await.map_err(refused)?;
    Ok(text(""))
}

pub async fn set_category(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    let c = p.need("category")?.trim();
    let c = (!c.is_empty()).then_some(c);
    q.node.set_category(&hashes, c).await.map_err(refused)?;
    Ok(text(""))
}

pub async fn tags(State(q): State<Qbt>) -> Response {
    json(json!(q.node.labels().tags))
}

pub async fn create_tags(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let tags = tag_list(Some(p.need("tags")?));
    q.node.create_tags(&tags).await.map_err(refused)?;
    Ok(text(""))
}

pub async fn delete_tags(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let tags = tag_list(Some(p.need("tags")?));
    q.node.delete_tags(&tags).await.map_err(refused)?;
    Ok(text(""))
}

pub async fn add_tags(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    let tags = tag_list(Some(p.need("tags")?));
    q.node.add_tags(&hashes, &tags).await.map_err(refused)?;
    Ok(text(""))
}

pub async fn remove_tags(State(q): State<Qbt>, p: Params) -> QbtResult<Response> {
    let hashes = p.hashes(&q.node)?;
    let tags = tag_list(p.get("tags"));
    q.node.remove_tags(&hashes, &tags).await.map_err(refused)?;
    Ok(text(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_lists() {
        assert_eq!(tag_list(Some(" a, b ,,c")), vec!["a", "b", "c"]);
        assert!(tag_list(None).is_empty());
    }
}
