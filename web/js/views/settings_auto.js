// Settings: queue, seeding rules, watch folder and the alternative speed limits (the
// turtle) with their weekly schedule. Returns the form's sections, fill(settings) and
// patch(current) giving the changed keys for PATCH /api/settings.

import { h } from '../ui.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function field(label, input, help) {
  return h('div.field', null, h('label', { for: input.id, text: label }), input, help ? h('div.muted.small', { text: help }) : null);
}

function check(id, text) {
  const input = h('input', { id, type: 'checkbox' });
  return [input, h('label.check', { for: id }, input, h('span', { text }))];
}

const num = (id, attrs = {}) => h('input', { id, type: 'number', step: 'any', inputmode: 'decimal', ...attrs });
const hhmm = (m) => `${String(Math.floor(m / 60) % 25).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
const minutes = (v) => {
  const [hh, mm] = v.split(':').map(Number);
  if (!Number.isFinite(hh) || !Number.isFinite(mm)) throw new Error('Schedule times are HH:MM');
  return hh * 60 + mm;
};
// A limit box: empty means none (-1).
const limit = (el, name) => {
  if (el.value.trim() === '') return -1;
  const v = Number(el.value);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be 0 or more, or empty for none`);
  return v;
};
const whole = (el, name, mult = 1) => {
  const v = Number(el.value);
  if (el.value.trim() === '' || !Number.isFinite(v) || v < 0) throw new Error(`${name} must be a number of 0 or more`);
  return Math.round(v * mult);
};

export function autoSettings() {
  const maxSeeds = num('set-max-seeds', { min: '0', step: '1' });
  const [queueing, queueingRow] = check('set-queueing', 'Hold torrents beyond the limits as queued');
  const stalled = num('set-stalled', { min: '0', step: '1' });
  const ratio = num('set-seed-ratio', { min: '0' });
  const seedTime = num('set-seed-time', { min: '0' });
  const seedIdle = num('set-seed-idle', { min: '0' });
  const action = h('select', { id: 'set-seed-action' }, h('option', { value: 'stop', text: 'Stop seeding' }), h('option', { value: 'remove', text: 'Remove (keep files)' }));
  const fewer = num('set-seed-fewer', { min: '0', step: '1' });
  const watch = h('input', { id: 'set-watch-dir', type: 'text', spellcheck: 'false', placeholder: 'none' });
  const [turtle, turtleRow] = check('set-alt-enabled', '🐢 Use the alternative limits now');
  const altDown = num('set-alt-down', { min: '0', step: '1' });
  const altUp = num('set-alt-up', { min: '0', step: '1' });
  const [sched, schedRow] = check('set-alt-schedule', 'Use them on a schedule');
  const days = DAYS.map((d, i) => h('input', { type: 'checkbox', id: `set-alt-day-${i}`, 'aria-label': d }));
  const begin = h('input', { id: 'set-alt-begin', type: 'time' });
  const end = h('input', { id: 'set-alt-end', type: 'time' });
  const sections = [
    h('div.card-head', null, h('h2', { text: 'Queue and seeding' })),
    h('div.grid2', null,
      field('Active seeds at once', maxSeeds, '0 means no limit.'),
      field('Stalled after (seconds)', stalled, 'Torrents moving nothing this long do not count; 0: they do.'),
      h('div.field', null, h('span.label', { text: 'Queue' }), queueingRow),
      field('Stop at share ratio', ratio, 'Empty: no limit.'),
      field('Stop after seeding (minutes)', seedTime, 'Empty: no limit.'),
      field('Stop after idle (minutes)', seedIdle, 'Minutes without an upload; empty: no limit.'),
      field('When a limit is reached', action),
      field('Keep seeding while seeds are fewer than', fewer, '0: off.')),
    h('div.card-head', null, h('h2', { text: 'Watch folder' })),
    field('Add .torrent and .magnet files from', watch, 'Added files move to added/, failed ones to failed/ with the reason.'),
    h('div.card-head', null, h('h2', { text: 'Alternative speed limits' })),
    h('div.grid2', null,
      field('Alternative download limit (KiB/s)', altDown, '0 means unlimited.'),
      field('Alternative upload limit (KiB/s)', altUp, '0 means unlimited.'),
      h('div.field', null, h('span.label', { text: 'Turtle' }), turtleRow),
      h('div.field', null, h('span.label', { text: 'Schedule' }), schedRow),
      h('div.field', null, h('span.label', { text: 'Days' }),
        h('div.row.days', null, ...days.map((d, i) => h('label.check', { for: d.id }, d, h('span', { text: DAYS[i] }))))),
      h('div.field', null, h('span.label', { text: 'From – to (local time)' }), h('div.row', null, begin, end))),
  ];
  const showLimit = (v) => (v < 0 ? '' : String(v));
  function fill(s) {
    maxSeeds.value = String(s.max_active_seeds);
    queueing.checked = !!s.queueing_enabled;
    stalled.value = String(s.stalled_secs);
    ratio.value = showLimit(s.seed_ratio_limit);
    seedTime.value = showLimit(s.seed_time_limit);
    seedIdle.value = showLimit(s.seed_idle_limit);
    action.value = s.seed_limit_action;
    fewer.value = String(s.seed_while_fewer_seeds);
    watch.value = s.watch_dir || '';
    turtle.checked = !!s.alt_enabled;
    altDown.value = String(Math.round(s.alt_max_down / 1024));
    altUp.value = String(Math.round(s.alt_max_up / 1024));
    sched.checked = !!s.alt_schedule_enabled;
    days.forEach((d, i) => {
      d.checked = (s.alt_schedule_days & (1 << i)) !== 0;
    });
    begin.value = hhmm(s.alt_schedule_begin);
    end.value = s.alt_schedule_end >= 1440 ? '23:59' : hhmm(s.alt_schedule_end);
  }
  function patch(current) {
    const next = {
      max_active_seeds: whole(maxSeeds, 'Active seeds'),
      queueing_enabled: queueing.checked,
      stalled_secs: whole(stalled, 'Stalled after'),
      seed_ratio_limit: limit(ratio, 'Share ratio'),
      seed_time_limit: limit(seedTime, 'Seeding time'),
      seed_idle_limit: limit(seedIdle, 'Idle time'),
      seed_limit_action: action.value,
      seed_while_fewer_seeds: whole(fewer, 'Fewer seeds'),
      watch_dir: watch.value.trim(),
      alt_enabled: turtle.checked,
      alt_schedule_enabled: sched.checked,
      alt_schedule_days: days.reduce((m, d, i) => m | (d.checked ? 1 << i : 0), 0),
      alt_schedule_begin: minutes(begin.value),
    };
    if (!current || hhmm(current.alt_schedule_end) !== end.value) next.alt_schedule_end = minutes(end.value);
    if (!current || String(Math.round(current.alt_max_down / 1024)) !== altDown.value) next.alt_max_down = whole(altDown, 'Alternative download limit', 1024);
    if (!current || String(Math.round(current.alt_max_up / 1024)) !== altUp.value) next.alt_max_up = whole(altUp, 'Alternative upload limit', 1024);
    const out = {};
    for (const [k, v] of Object.entries(next)) {
      const cur = current ? (k === 'watch_dir' ? current[k] || '' : current[k]) : undefined;
      if (JSON.stringify(v) !== JSON.stringify(cur)) out[k] = v;
    }
    return out;
  }
  return { sections, fill, patch };
}
