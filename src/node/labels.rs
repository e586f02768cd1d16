//! Categories and tags: a category (a name with an optional save path) and any number
//! of tags per torrent, as qBittorrent has them. Kept in memory (`Inner::labels`) and
//! written through to the label tables of [`crate::store::labels`].
//!
//! Changes persist before they show: the new state is computed on a copy, written,
//! then swapped in. Lock order: `Inner::labels` is taken alone, never with
//! `Inner::torrents`; [`LABEL_WRITES`] serialises writers so two changes cannot
//! interleave between compute and swap.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use shoal_proto::InfoHash;

use super::Node;
use crate::store::labels::{self as rows, TorrentLabels};

/// Serialises label changes across their database write.
static LABEL_WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every category, tag and torrent label.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Category name → save path ("" when none).
    pub categories: BTreeMap<String, String>,
    /// Every known tag.
    pub tags: BTreeSet<String>,
    /// Labels of torrents that have any.
    pub torrents: HashMap<InfoHash, TorrentLabels>,
}

/// Why a label change was refused.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// Not a usable category name.
    #[error("{0:?} is not a valid category name: give a non-empty name without `\\`, `//` or a leading or trailing `/`")]
    BadCategory(String),
    /// Not a usable tag name.
    #[error("{0:?} is not a valid tag name: give a non-empty name without `,`")]
    BadTag(String),
    /// The category does not exist.
    #[error("no category {0:?}; create it first")]
    NoCategory(String),
    /// The category exists already.
    #[error("category {0:?} exists already")]
    CategoryExists(String),
    /// The database write failed.
    #[error("cannot save the labels: {0:#}")]
    Store(#[from] anyhow::Error),
}

/// Whether `name` is a valid category name (qBittorrent's rule: `/` separates
/// subcategories, so no empty part).
pub fn valid_category(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.contains('\\')
        && name.trim() == name
}

/// Whether `name` is a valid tag name.
pub fn valid_tag(name: &str) -> bool {
    !name.trim().is_empty() && !name.contains(',') && name.trim() == name
}

impl Labels {
    /// From the database rows; unparsable hashes are skipped.
    pub fn from_rows(r: rows::LabelRows) -> Labels {
        Labels {
            categories: r.categories,
            tags: r.tags,
            torrents: r
                .torrents
                .into_iter()
                .filter_map(|(h, l)| Some((InfoHash::from_hex(&h)?, l)))
                .collect(),
        }
    }
}

impl Node {
    /// A snapshot of every label.
    pub fn labels(&self) -> Labels {
        self.inner()
            .labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One torrent's labels.
    pub fn labels_of(&self, hash: InfoHash) -> TorrentLabels {
        let l = self
            .inner()
            .labels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        l.torrents.get(&hash).cloned().unwrap_or_default()
    }

    /// Applies `change` to a copy of the labels, persists the torrents it touched
    /// with `save`, and swaps the copy in.
    async fn change_labels<F, S>(&self, change: F, save: S) -> Result<(), LabelError>
    where
        F: FnOnce(&mut Labels) -> Result<(), LabelError>,
        S: FnOnce(
            &Labels,
        )
            -> Box<dyn FnOnce(&mut rusqlite::Connection) -> anyhow::Result<()> + Send>,
    {
        let _w = LABEL_WRITES.lock().await;
        let mut next = self.labels();
        change(&mut next)?;
        let job = save(&next);
        self.store().call(job).await?;
        *self
            .inner()
            .labels
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    /// Creates a category, or with `replace` changes an existing one's save path.
    pub async fn put_category(
        &self,
        name: &str,
        save_path: &str,
        replace: bool,
    ) -> Result<(), LabelError> {
        if !valid_category(name) {
            return Err(LabelError::BadCategory(name.into()));
        }
        let (n, p) = (name.to_string(), save_path.to_string());
        self.change_labels(
            |l| match (l.categories.contains_key(name), replace) {
                (true, false) => Err(LabelError::CategoryExists(name.into())),
                (false, true) => Err(LabelError::NoCategory(name.into())),
                _ => {
                    l.categories.insert(name.into(), save_path.into());
                    Ok(())
                }
            },
            |_| Box::new(move |c| rows::put_category(c, &n, &p)),
        )
        .await
    }

    /// Removes categories (unknown names are ignored) and clears them from torrents.
    pub async fn remove_categories(&self, names: &[String]) -> Result<(), LabelError> {
        let names = names.to_vec();
        let n2 = names.clone();
        self.change_labels(
            |l| {
                for n in &names {
                    l.categories.remove(n);
                }
                for t in l.torrents.values_mut() {
                    if t.category.as_ref().is_some_and(|c| names.contains(c)) {
                        t.category = None;
                    }
                }
                l.torrents
                    .retain(|_, t| t.category.is_some() || !t.tags.is_empty());
                Ok(())
            },
            |_| Box::new(move |c| rows::delete_categories(c, &n2)),
        )
        .await
    }

    /// Sets (or with `None` clears) the category of torrents; the category must exist.
    pub async fn set_category(
        &self,
        hashes: &[InfoHash],
        category: Option<&str>,
    ) -> Result<(), LabelError> {
        let category = category.map(str::to_string);
        self.edit_torrents(hashes, move |l, t| {
            if let Some(c) = &category {
                if !l.categories.contains_key(c) {
                    return Err(LabelError::NoCategory(c.clone()));
                }
            }
            t.category = category.clone();
            Ok(())
        })
        .await
    }

    /// Adds tags to torrents, creating unknown tags.
    pub async fn add_tags(&self, hashes: &[InfoHash], tags: &[String]) -> Result<(), LabelError> {
        check_tags(tags)?;
        self.create_tags(tags).await?;
        let tags = tags.to_vec();
        self.edit_torrents(hashes, move |_, t| {
            t.tags.extend(tags.iter().cloned());
            Ok(())
        })
        .await
    }

    /// Removes tags from torrents (all tags when `tags` is empty, as qBittorrent does).
    pub async fn remove_tags(
        &self,
        hashes: &[InfoHash],
        tags: &[String],
    ) -> Result<(), LabelError> {
        let tags = tags.to_vec();
        self.edit_torrents(hashes, move |_, t| {
            if tags.is_empty() {
                t.tags.clear();
            } else {
                t.tags.retain(|x| !tags.contains(x));
            }
            Ok(())
        })
        .await
    }

    /// Replaces a torrent's tags, creating unknown tags.
    pub async fn set_tags(&self, hash: InfoHash, tags: &[String]) -> Result<(), LabelError> {
        check_tags(tags)?;
        self.create_tags(tags).await?;
        let tags: BTreeSet<String> = tags.iter().cloned().collect();
        self.edit_torrents(&[hash], move |_, t| {
            t.tags = tags.clone();
            Ok(())
        })
        .await
    }

    /// Adds tags to the known set.
    pub async fn create_tags(&self, tags: &[String]) -> Result<(), LabelError> {
        check_tags(tags)?;
        let tags = tags.to_vec();
        let t2 = tags.clone();
        self.change_labels(
            |l| {
                l.tags.extend(t2);
                Ok(())
            },
            |_| Box::new(move |c| rows::put_tags(c, &tags)),
        )
        .await
    }

    /// Deletes tags from the known set and from every torrent.
    pub async fn delete_tags(&self, tags: &[String]) -> Result<(), LabelError> {
        let tags = tags.to_vec();
        let every: Vec<InfoHash> = self.labels().torrents.keys().copied().collect();
        self.remove_tags(&every, &tags).await?;
        let t2 = tags.clone();
        self.change_labels(
            |l| {
                for t in &t2 {
                    l.tags.remove(t);
                }
                Ok(())
            },
            |_| Box::new(move |c| rows::delete_tags(c, &tags)),
        )
        .await
    }

    /// Forgets a removed torrent's labels.
    pub(crate) async fn forget_labels(&self, hash: InfoHash) {
        let hex = hash.to_hex();
        let r = self
            .change_labels(
                |l| {
                    l.torrents.remove(&hash);
                    Ok(())
                },
                |_| Box::new(move |c| rows::delete_torrent(c, &hex)),
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(%hash, "cannot forget the torrent's labels: {e}");
        }
    }

    /// Runs `edit` on the labels of each torrent in `hashes` and saves them.
    async fn edit_torrents<F>(&self, hashes: &[InfoHash], edit: F) -> Result<(), LabelError>
    where
        F: Fn(&Labels, &mut TorrentLabels) -> Result<(), LabelError>,
    {
        let hashes = hashes.to_vec();
        let h2 = hashes.clone();
        self.change_labels(
            |l| {
                for h in &hashes {
                    let mut t = l.torrents.get(h).cloned().unwrap_or_default();
                    edit(l, &mut t)?;
                    l.torrents.insert(*h, t);
                }
                l.torrents
                    .retain(|_, t| t.category.is_some() || !t.tags.is_empty());
                Ok(())
            },
            move |l| {
                let rows: Vec<(String, TorrentLabels)> = h2
                    .iter()
                    .map(|h| (h.to_hex(), l.torrents.get(h).cloned().unwrap_or_default()))
                    .collect();
                Box::new(move |c| rows::put_torrents(c, &rows))
            },
        )
        .await
    }
}

/// `s` with its torrent's labels from `labels`.
pub fn with_labels(s: super::Summary, labels: &Labels) -> super::Summary {
    let l = InfoHash::from_hex(&s.id).and_then(|h| labels.torrents.get(&h));
    match l {
        Some(l) => super::Summary {
            category: l.category.clone(),
            tags: l.tags.iter().cloned().collect(),
            ..s
        },
        None => s,
    }
}

fn check_tags(tags: &[String]) -> Result<(), LabelError> {
    match tags.iter().find(|t| !valid_tag(t)) {
        Some(bad) => Err(LabelError::BadTag(bad.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_and_tag_names() {
        assert!(valid_category("tv"));
        assert!(valid_category("tv/hd"));
        for bad in ["", "/tv", "tv/", "a//b", "a\\b", " tv"] {
            assert!(!valid_category(bad), "{bad:?}");
        }
        assert!(valid_tag("x y"));
        for bad in ["", " ", "a,b", " a"] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }
}
