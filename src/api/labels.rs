//! `/api/categories`, `/api/tags` and `PUT /api/torrents/:id/labels`: categories and
//! tags (see `node/labels.rs`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, resolve, ApiError, ApiResult};
use crate::node::labels::LabelError;
use crate::node::{Node, Summary};

impl From<LabelError> for ApiError {
    fn from(e: LabelError) -> ApiError {
        match e {
            LabelError::Store(e) => ApiError::internal(e),
            LabelError::CategoryExists(ref n) => ApiError::conflict(e.to_string(), n.clone()),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

/// `GET /api/categories`: `[{"name", "save_path"}]`, by name.
pub async fn categories(State(node): State<Node>) -> Json<Vec<Value>> {
    Json(
        node.labels()
            .categories
            .iter()
            .map(|(name, path)| json!({"name": name, "save_path": path}))
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCategory {
    name: String,
    #[serde(default)]
    save_path: String,
}

/// `POST /api/categories`: 201, 400 (bad name) or 409 (exists).
pub async fn create_category(
    State(node): State<Node>,
    b: Result<Json<NewCategory>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let c = body(b)?;
    node.put_category(&c.name, &c.save_path, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": c.name, "save_path": c.save_path})),
    ))
}

/// `DELETE /api/categories/:name`: 204, or 404 when there is no such category.
pub async fn remove_category(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !node.labels().categories.contains_key(&name) {
        return Err(ApiError::not_found(
            LabelError::NoCategory(name).to_string(),
        ));
    }
    node.remove_categories(&[name]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/tags`: every tag, sorted.
pub async fn tags(State(node): State<Node>) -> Json<Vec<String>> {
    Json(node.labels().tags.into_iter().collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelChange {
    /// `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "serde_with_null::deserialize")]
    category: Option<Option<String>>,
    tags: Option<Vec<String>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// `PUT /api/torrents/:id/labels`: sets the category and/or tags; the summary.
pub async fn set_labels(
    State(node): State<Node>,
    Path(id): Path<String>,
    b: Result<Json<LabelChange>, JsonRejection>,
) -> ApiResult<Json<Summary>> {
    let hash = resolve(&node, &id)?;
    let change = body(b)?;
    if let Some(c) = change.category {
        let c = c.filter(|c| !c.is_empty());
        node.set_category(&[hash], c.as_deref()).await?;
    }
    if let Some(t) = change.tags {
        node.set_tags(hash, &t).await?;
    }
    node.summary(hash)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("torrent {hash} was removed")))
}
