//! The files of a torrent that the user chose and how urgent each is: selection and
//! priorities reach the picker per piece, and completion of the wanted set switches
//! the torrent between downloading and seeding.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use super::{Phase, Shared, State, TorrentEvent};
use crate::picker::Priority;

impl Shared {
    /// Applies the files' selection and priorities a torrent starts with (lists of
    /// the wrong length are ignored).
    pub(crate) fn init_file_choices(
        &self,
        wanted: Option<&[bool]>,
        priorities: Option<&[Priority]>,
    ) {
        let mut st = self.lock();
        let n = st.wanted_files.len();
        if let Some(w) = wanted.filter(|w| w.len() == n) {
            st.wanted_files.copy_from_slice(w);
        }
        if let Some(p) = priorities.filter(|p| p.len() == n) {
            st.file_priorities.copy_from_slice(p);
        }
        for i in 0..n {
            if !st.wanted_files[i] || st.file_priorities[i] != Priority::Normal {
                self.update_file_pieces(&mut st, i);
            }
        }
    }

    /// Marks a file wanted or not; a piece is wanted while any file it overlaps is.
    pub(crate) fn set_file_wanted(self: &Arc<Self>, index: usize, wanted: bool) {
        let mut st = self.lock();
        let Some(slot) = st.wanted_files.get_mut(index) else {
            return;
        };
        *slot = wanted;
        self.update_file_pieces(&mut st, index);
        let done = st.picker.is_complete_wanted();
        drop(st);
        self.update_completion(done);
    }

    /// Sets a file's download priority; a piece gets the highest priority of the
    /// wanted files it overlaps.
    pub(crate) fn set_file_priority(&self, index: usize, priority: Priority) {
        let mut st = self.lock();
        let Some(slot) = st.file_priorities.get_mut(index) else {
            return;
        };
        *slot = priority;
        self.update_file_pieces(&mut st, index);
    }

    /// Recomputes whether the pieces of file `index` are wanted, and their priority,
    /// from every file each of them overlaps.
    fn update_file_pieces(&self, st: &mut State, index: usize) {
        let info = &self.meta.info;
        let Some(file) = info.files.get(index) else {
            return;
        };
        if file.length == 0 {
            return;
        }
        let pl = info.piece_length;
        let first = (file.offset / pl) as u32;
        let last = ((file.offset + file.length - 1) / pl) as u32;
        for piece in first..=last {
            let (start, end) = (
                u64::from(piece) * pl,
                u64::from(piece) * pl + info.piece_size(piece),
            );
            // Files are in offset order: skip those that end before the piece.
            let from = info.files.partition_point(|f| f.offset + f.length <= start);
            let overlapping = info
                .files
                .iter()
                .zip(st.wanted_files.iter().zip(&st.file_priorities))
                .skip(from)
                .take_while(|(f, _)| f.offset < end)
                .filter(|(f, _)| f.length > 0);
            let mut wanted = false;
            let mut priority = Priority::Low;
            for (_, (&w, &p)) in overlapping {
                if w {
                    wanted = true;
                    priority = priority.max(p);
                }
            }
            st.picker.set_wanted(piece, wanted);
            st.picker
                .set_priority(piece, if wanted { priority } else { Priority::Normal });
        }
    }

    /// Switches between downloading and seeding as the wanted set is (in)complete.
    pub(super) fn update_completion(&self, done: bool) {
        let was = self.seeding.swap(done, Ordering::Relaxed);
        if done != was {
            // Slots differ between downloading and seeding: recompute now, not at the
            // next recheck (up to 10 s away).
            self.lock().choker.invalidate();
            self.rechoke.notify_one();
        }
        if done && !was {
            self.set_phase(Phase::Seeding);
            self.completed.notify_one();
            self.emit(TorrentEvent::Completed);
            info!(name = %self.meta.info.name, "download complete; seeding");
        } else if !done && was {
            self.set_phase(Phase::Downloading);
        }
    }

    /// Bytes of verified pieces that fall in each file.
    pub(crate) fn file_progress(&self) -> Vec<u64> {
        let info = &self.meta.info;
        let st = self.lock();
        let mut out = vec![0u64; info.files.len()];
        let mut fi = 0;
        for piece in st.have.iter_set() {
            let start = u64::from(piece) * info.piece_length;
            let end = start + info.piece_size(piece);
            while fi < info.files.len() && info.files[fi].offset + info.files[fi].length <= start {
                fi += 1;
            }
            let mut j = fi;
            while j < info.files.len() && info.files[j].offset < end {
                let f = &info.files[j];
                let lo = start.max(f.offset);
                let hi = end.min(f.offset + f.length);
                if hi > lo {
                    out[j] += hi - lo;
                }
                j += 1;
            }
        }
        out
    }
}
