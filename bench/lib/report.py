"""Markdown summary of a bench/run JSON-lines file (used by bench/run and bench/summarize).

Every figure is "median (min-max)" over the successful runs; every ratio is against
reference clients measured in the same file, never against remembered figures. Targets are
judged on the median and on Shoal's slowest run against the reference's median (see
`Target`). Older results files (before per-run machine state, HEAD and command line were
recorded) still summarize: missing fields show as "-" or "not recorded".
"""

import json
import os
import statistics

REFS = ["qbittorrent", "libtorrent", "rqbit", "aria2"]
GiB = 1 << 30


def load(path):
    meta, runs, skips = {}, [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            t = r.get("type", "run")
            if t == "meta":
                meta.update(r)
            elif t == "end":
                meta["end"] = r
            elif t == "skip":
                skips.append(r)
            else:
                runs.append(r)
    return meta, runs, skips


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float) and nd == 0:
        return f"{v:.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def mm(rows, key, nd=1):
    """'median (min-max)' of KEY over ROWS."""
    vals = [r[key] for r in rows if r.get(key) is not None]
    if not vals:
        return "-"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(float(m), nd)
    return f"{fmt(float(m), nd)} ({fmt(float(min(vals)), nd)}-{fmt(float(max(vals)), nd)})"


def group(runs, scenario, key="client"):
    out = {}
    for r in runs:
        if r.get("scenario") == scenario:
            out.setdefault(r.get(key), []).append(r)
    return out


def ok_rows(rows):
    return [r for r in rows if r.get("ok")]


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def vals_of(rows, key):
    return [r[key] for r in rows if r.get(key) is not None]


def lo(rows, key):
    v = vals_of(rows, key)
    return min(v) if v else None


def hi(rows, key):
    v = vals_of(rows, key)
    return max(v) if v else None


def dirty_wb(st):
    """Dirty + writeback MiB of a machine state dict, or None."""
    if not st or st.get("dirty_mib") is None:
        return None
    return st.get("dirty_mib", 0) + st.get("writeback_mib", 0)


def state_brief(st):
    """'load 1.2/1.5/2.0, avail 20.1 GiB, free 3.2 GiB, dirty+wb 0.4 MiB' of a state dict."""
    if not st:
        return "not recorded"
    parts = []
    if st.get("load"):
        parts.append("load " + "/".join(f"{x:.2f}" for x in st["load"]))
    if st.get("mem_available_mib") is not None:
        parts.append(f"available {st['mem_available_mib'] / 1024:.1f} GiB")
    if st.get("mem_free_mib") is not None:
        parts.append(f"free {st['mem_free_mib'] / 1024:.1f} GiB")
    if dirty_wb(st) is not None:
        parts.append(f"dirty {st['dirty_mib']:.1f} + writeback {st.get('writeback_mib', 0):.1f} MiB")
    return ", ".join(parts)


def state_column(rows):
    """Compact machine state over ROWS at run start: load1 median (min-max), max dirty+wb."""
    sts = [r.get("state") for r in rows if r.get("state")]
    if not sts:
        loads = [r["load1"] for r in rows if r.get("load1") is not None]
        return f"load1 after run {fmt(float(med(loads)), 2)}" if loads else "-"
    l1 = [{"v": st["load"][0]} for st in sts if st.get("load")]
    dw = [d for d in (dirty_wb(st) for st in sts) if d is not None]
    return (f"load1 {mm(l1, 'v', 2)}; dirty+wb max {max(dw):.0f} MiB" if dw
            else f"load1 {mm(l1, 'v', 2)}")


class Target:
    """A target judged on the median and on the slowest run.

    median: the figure at the median (str); slowest: the same figure for Shoal's slowest run
    against the reference's median (str, or None when the target has no such form); ok_med
    and ok_slow: whether each holds (ok_slow None: judged on the median only, the slowest
    run shown for information); judged False: not judged (e.g. data size is not the
    issue's), with `why`."""

    def __init__(self, name, median, ok_med, slowest=None, ok_slow=None, judged=True, why=""):
        self.name, self.median, self.ok_med = name, median, ok_med
        self.slowest, self.ok_slow = slowest, ok_slow
        self.judged, self.why = judged, why

    def met(self):
        if not self.judged:
            return f"not judged ({self.why})"
        ok = self.ok_med and (self.ok_slow is None or self.ok_slow)
        return "yes" if ok else "**no**"


def runs_text(runs):
    if isinstance(runs, dict):
        return ", ".join(f"{k} {v}" for k, v in runs.items()) + " run(s) per case"
    return f"{runs} run(s) per case"


def transfer_table(runs, scenario, lines):
    g = group(runs, scenario)
    if not g:
        return None
    med_mbs = {c: med([r.get("mb_s") for r in ok_rows(rs)]) for c, rs in g.items()}
    refs = {c: v for c, v in med_mbs.items() if c in REFS and v}
    best = max(refs.items(), key=lambda kv: kv[1]) if refs else None
    lines.append("| client | ok/runs | MB/s | wall s | leecher CPU s | leecher CPU s/GiB | "
                 "leecher peak RSS MiB | leecher peak anon MiB | seeder CPU s | "
                 "seeder peak anon MiB | seeder cache | vs best ref | machine at run start |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    order = sorted(g, key=lambda c: (c != "shoal", -(med_mbs.get(c) or 0)))
    for c in order:
        rs = g[c]
        ok = ok_rows(rs)
        for r in ok:
            r["_cpu_gib"] = r["leecher_cpu_s"] / (r["bytes"] / GiB) if r.get("leecher_cpu_s") else None
        cache = med([r.get("seeder_cache") for r in ok])
        lines.append(
            f"| {c} | {len(ok)}/{len(rs)} | {mm(ok, 'mb_s')} | {mm(ok, 'wall_s', 2)} | "
            f"{mm(ok, 'leecher_cpu_s', 2)} | {mm(ok, '_cpu_gib', 2)} | "
            f"{mm(ok, 'leecher_peak_rss_mib')} | {mm(ok, 'leecher_peak_anon_mib')} | "
            f"{mm(ok, 'seeder_cpu_s', 2)} | {mm(ok, 'seeder_peak_anon_mib')} | "
            f"{'-' if cache is None else f'{cache:.0%}'} | "
            f"{ratio(med_mbs.get(c), best[1]) if best else '-'} | {state_column(rs)} |")
    if best:
        lines.append(f"\nBest reference client: {best[0]} ({best[1]:.1f} MB/s median).")
    return med_mbs


def size_of(runs, scenario):
    for r in runs:
        if r.get("scenario") == scenario and r.get("bytes"):
            b = r["bytes"]
            return f"{b / GiB:g} GiB" if b >= GiB else f"{b / (1 << 20):g} MiB"
    return "?"


def files_of(runs, scenario):
    for r in runs:
        if r.get("scenario") == scenario and r.get("files"):
            return r["files"]
    return "?"


def errors(runs, lines):
    bad = [r for r in runs if not r.get("ok")]
    if bad:
        lines.append("\n### Failed runs\n")
        for r in bad:
            lines.append(f"- {r.get('scenario')} {r.get('client')} {r.get('mode', '')} "
                         f"run {r.get('run')}: {r.get('error')}")


def mse_section(runs, L):
    """Scenario `mse`: Shoal plaintext against Shoal with RC4 at both ends, interleaved;
    returns the Target (RC4 median within 15% of plaintext's, and RC4's slowest run within
    15% of plaintext's median) or None."""
    if not group(runs, "mse"):
        return None
    L.append(f"\n## M. Message Stream Encryption ({size_of(runs, 'mse')}, 256 KiB pieces): "
             "Shoal plaintext and Shoal `--encryption require` (RC4) at both ends\n")
    m = transfer_table(runs, "mse", L) or {}
    plain, rc4 = m.get("shoal"), m.get("shoal-rc4")
    if not plain or not rc4:
        return None
    slow = lo(ok_rows(group(runs, "mse").get("shoal-rc4", [])), "mb_s")
    L.append(f"\nRC4 / plaintext throughput: {rc4 / plain:.2f} at the median"
             f"{f', {slow / plain:.2f} for the slowest RC4 run' if slow else ''}.")
    size = next((r["bytes"] for r in runs if r.get("scenario") == "mse" and r.get("bytes")), 0)
    return Target("MSE: RC4 at most 15% slower than plaintext (median and slowest run)",
                  f"{rc4 / plain:.2f}x", rc4 >= 0.85 * plain,
                  f"{slow / plain:.2f}x" if slow else None,
                  slow >= 0.85 * plain if slow else None,
                  judged=size == GiB, why=f"{size_of(runs, 'mse')} data, target on 1 GiB")


def utp_section(runs, L):
    """Scenario `utp`: Shoal over TCP, Shoal over uTP and libtorrent over uTP, interleaved;
    returns the Targets (transports issue: Shoal uTP >= 50% of Shoal TCP by median and
    slowest run; Shoal uTP's median >= libtorrent uTP's median), judged on 1 GiB."""
    if not group(runs, "utp"):
        return []
    L.append(f"\n## U. uTP ({size_of(runs, 'utp')}, 256 KiB pieces): Shoal `--utp false` "
             "(TCP), Shoal on defaults (uTP) and libtorrent with TCP off (uTP), one seeder one "
             "leecher each\n")
    m = transfer_table(runs, "utp", L) or {}
    for c, rs in group(runs, "utp").items():
        ok = ok_rows(rs)
        per_gib = [r["seeder_cpu_s"] / (r["bytes"] / GiB) for r in ok if r.get("seeder_cpu_s")]
        if per_gib:
            L.append(f"- {c}: seeder CPU s/GiB {fmt(med(per_gib), 2)} "
                     f"({fmt(min(per_gib), 2)}-{fmt(max(per_gib), 2)})")
    tcp, utp, lt = m.get("shoal"), m.get("shoal-utp"), m.get("libtorrent-utp")
    size = next((r["bytes"] for r in runs if r.get("scenario") == "utp" and r.get("bytes")), 0)
    judged, why = size == GiB, f"{size_of(runs, 'utp')} data, target on 1 GiB"
    out = []
    if tcp and utp:
        slow = lo(ok_rows(group(runs, "utp").get("shoal-utp", [])), "mb_s")
        L.append(f"\nShoal uTP / Shoal TCP: {utp / tcp:.2f} at the median"
                 f"{f', {slow / tcp:.2f} for the slowest uTP run' if slow else ''}.")
        out.append(Target("uTP: Shoal over uTP >= 50% of Shoal over TCP (median and slowest run)",
                          f"{utp / tcp:.0%}", utp >= 0.5 * tcp,
                          f"{slow / tcp:.0%}" if slow else None,
                          slow >= 0.5 * tcp if slow else None, judged=judged, why=why))
    if utp and lt:
        L.append(f"\nShoal uTP / libtorrent uTP: {utp / lt:.2f} at the median.")
        out.append(Target("uTP: Shoal over uTP no slower than libtorrent over uTP (median)",
                          f"{utp / lt:.2f}x", utp >= lt, judged=judged, why=why))
    return out


def repeat_section(runs, L):
    """Scenario `repeat`: N back-to-back Shoal transfers, every run with its machine state;
    returns the stability Target (slowest within 1.5x of the fastest) or None."""
    rs = [r for r in runs if r.get("scenario") == "repeat"]
    if not rs:
        return None
    ok = ok_rows(rs)
    L.append(f"\n## R. Repeatability: {len(rs)} back-to-back `shoal seed` -> `shoal download` "
             f"transfers ({size_of(runs, 'repeat')}, 256 KiB pieces)\n")
    L.append("| run | started | ok | wall s | MB/s | leecher CPU s | leecher peak anon MiB | "
             "load 1/5/15 at start | MemAvailable MiB | dirty + writeback MiB at start | "
             "dirty + writeback MiB when the clock starts |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rs, key=lambda r: r.get("run", 0)):
        st = r.get("state") or {}
        L.append(f"| {r.get('run')} | {st.get('at', '-')} | {'yes' if r.get('ok') else 'no'} | "
                 f"{fmt(r.get('wall_s'), 3)} | {fmt(r.get('mb_s'))} | {fmt(r.get('leecher_cpu_s'), 2)} | "
                 f"{fmt(r.get('leecher_peak_anon_mib'))} | "
                 f"{'/'.join(f'{x:.2f}' for x in st['load']) if st.get('load') else '-'} | "
                 f"{fmt(st.get('mem_available_mib'), 0)} | {fmt(dirty_wb(st), 1)} | "
                 f"{fmt(r.get('dirty_wb_at_clock_mib'), 1)} |")
    walls = vals_of(ok, "wall_s")
    if not walls:
        return None
    fast, slow = min(walls), max(walls)
    L.append(f"\nWall time over {len(walls)} successful run(s): min {fast:.3f} s, median "
             f"{med(walls):.3f} s, max {slow:.3f} s; MB/s min {lo(ok, 'mb_s')}, median "
             f"{fmt(float(med(vals_of(ok, 'mb_s'))))}, max {hi(ok, 'mb_s')}. Slowest / fastest = "
             f"{slow / fast:.2f}: the slowest run is {'within' if slow <= 1.5 * fast else '**not** within'} "
             "1.5x of the fastest.")
    size = ok[0].get("bytes")
    return Target(f"Repeat: slowest of {len(walls)} back-to-back 512 MiB Shoal transfers within "
                  "1.5x of the fastest", f"median {med(walls):.3f} s (fastest {fast:.3f} s)",
                  slow <= 1.5 * fast, f"{slow:.3f} s = {slow / fast:.2f}x the fastest",
                  slow <= 1.5 * fast, judged=size == 512 * (1 << 20) and len(walls) >= 20,
                  why="needs 20 runs of 512 MiB")


def magnet_section(runs, L):
    """Scenario `magnet`: a bare magnet link (x.pe = the one seeder, no tracker) to the
    metadata, the first verified piece and done, per client; returns the Targets "no slower
    than libtorrent" for the first piece and for done (judged like S3: Shoal's median and
    Shoal's slowest run against libtorrent's median, on 1 GiB only)."""
    g = group(runs, "magnet")
    if not g:
        return []
    L.append(f"\n## M. Magnet link: bare magnet to first piece and to done "
             f"({size_of(runs, 'magnet')}, 256 KiB pieces, metadata from one peer)\n")
    L.append("| client | ok/runs | metadata s | first piece s | done s | MB/s (size / done) | "
             "leecher CPU s | leecher peak anon MiB | seeder CPU s | vs libtorrent (done, median) | "
             "machine at run start |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    lt_ok = ok_rows(g.get("libtorrent", []))
    lt_done = med(vals_of(lt_ok, "wall_s"))
    for c in sorted(g, key=lambda c: c != "shoal"):
        ok = ok_rows(g[c])
        w = med(vals_of(ok, "wall_s"))
        L.append(f"| {c} | {len(ok)}/{len(g[c])} | {mm(ok, 't_metadata_s', 3)} | "
                 f"{mm(ok, 't_first_piece_s', 3)} | {mm(ok, 'wall_s', 2)} | {mm(ok, 'mb_s')} | "
                 f"{mm(ok, 'leecher_cpu_s', 2)} | {mm(ok, 'leecher_peak_anon_mib')} | "
                 f"{mm(ok, 'seeder_cpu_s', 2)} | "
                 f"{f'{w / lt_done:.2f}x time' if w and lt_done and c != 'libtorrent' else '-'} | "
                 f"{state_column(g[c])} |")
    L.append("\nEvery time is median (min-max) in seconds from the leecher's spawn (process start, "
             "given only `magnet:?xt=urn:btih:<hex>&x.pe=127.0.0.1:<seeder port>`) to its "
             "`metadata received:`, `first piece verified` and `complete:` lines. The seeder "
             "starts from a tracker-less .torrent and serves metadata (libtorrent: session with "
             "default plugins); no tracker runs. libtorrent's times include the Python "
             "interpreter's start and libtorrent's own connection scheduling.")
    sh = ok_rows(g.get("shoal", []))
    if not sh or not lt_ok:
        return []
    size = sh[0].get("bytes")
    judged = dict(judged=size == GiB, why=f"{size_of(runs, 'magnet')} data, target on 1 GiB")
    out = []
    for key, what in (("t_first_piece_s", "first verified piece"), ("wall_s", "done")):
        v, ref, slow = med(vals_of(sh, key)), med(vals_of(lt_ok, key)), hi(sh, key)
        if v is None or ref is None:
            continue
        out.append(Target(f"Magnet: Shoal's bare magnet to {what} no slower than libtorrent's "
                          "median (median and slowest run)", f"{v:.3f} s vs {ref:.3f} s",
                          v <= ref, f"{slow:.3f} s vs {ref:.3f} s", slow <= ref, **judged))
    return out


def headline(r):
    """The main figure of a run record, for the per-run table."""
    sc = r.get("scenario")
    if sc == "magnet" and r.get("wall_s") is not None:
        return (f"metadata {fmt(r.get('t_metadata_s'), 3)} s, first piece "
                f"{fmt(r.get('t_first_piece_s'), 3)} s, done {fmt(r.get('wall_s'), 3)} s "
                f"({fmt(r.get('mb_s'))} MB/s)")
    if sc == "stream" and r.get("t_first_byte_s") is not None:
        from stream_report import headline as stream_headline  # it imports this module
        return stream_headline(r)
    if sc == "tracker-http":
        return f"{fmt(r.get('req_s'), 0)} announces/s ({r.get('mode')})"
    if sc == "tracker-udp":
        return f"{fmt(r.get('resp_s'), 0)} responses/s"
    if sc == "node":
        return f"all seeding after restart {fmt(r.get('startup_all_active_s'), 3)} s"
    if sc == "hash":
        return f"{fmt(r.get('mb_s'))} MB/s ({r.get('cores')} core(s))"
    if r.get("mb_s") is not None:
        return f"{fmt(r.get('mb_s'))} MB/s, {fmt(r.get('wall_s'), 3)} s"
    return "-"


def every_run(runs, L):
    """Every run with the machine's state just before it started (older results files
    have only the 1-minute load average taken after the run)."""
    if not runs:
        return
    L.append("\n## Every run, with the machine's state at its start\n")
    L.append("State taken just before each run: load average (1/5/15 min) and MemAvailable, "
             "MemFree, Dirty + Writeback from /proc/meminfo. Transfers also give dirty + "
             "writeback when the clock starts. Runs are listed in the order they ran.\n")
    L.append("| # | started | scenario | client | run | ok | figure | load 1/5/15 | "
             "MemAvailable MiB | MemFree MiB | dirty + writeback MiB (at clock) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        st = r.get("state")
        if st:
            load = "/".join(f"{x:.2f}" for x in st.get("load", []))
            dw = fmt(dirty_wb(st), 1) + (f" ({fmt(r['dirty_wb_at_clock_mib'], 1)})"
                                         if r.get("dirty_wb_at_clock_mib") is not None else "")
            avail, free = fmt(st.get("mem_available_mib"), 0), fmt(st.get("mem_free_mib"), 0)
        else:
            load = (f"{r['load1']:.2f} (1 min, after the run)" if r.get("load1") is not None
                    else "-")
            dw = avail = free = "not recorded"
        when = st.get("at") if st and st.get("at") else f"ended {r.get('time', '-')}"
        L.append(f"| {i} | {when} | {r.get('scenario')} | {r.get('client')} | "
                 f"{r.get('run')} | {'yes' if r.get('ok') else 'no'} | {headline(r)} | {load} | "
                 f"{avail} | {free} | {dw} |")


def summarize(paths):
    """Summary of one results file, or of several (the first gives the machine section;
    the others are runs of more scenarios, listed with their own start and load)."""
    if isinstance(paths, str):
        paths = [paths]
    path = paths[0]
    meta, runs, skips = load(path)
    extra = []
    for p in paths[1:]:
        m2, r2, s2 = load(p)
        extra.append(m2)
        runs += r2
        skips += s2
    L = []
    L.append(f"# Shoal benchmark results\n")
    names = " ".join(m.get("results_file", p) for m, p in zip([meta] + extra, paths))
    L.append(f"Generated by `bench/summarize {names}` from the raw results (JSON lines) of "
             f"{'one `bench/run`' if not extra else f'{len(paths)} `bench/run`s'}; "
             "do not edit by hand.\n")
    L.append("## Machine and run\n")
    m = meta.get("machine", {})
    end = meta.get("end", {})
    if meta.get("git_head"):
        changed = meta.get("changed_files") or []
        L.append(f"- commit `{meta['git_head']}` ({meta.get('git_commit')}), working tree "
                 + ("clean" if not meta.get("git_dirty") else
                    f"**dirty** ({len(changed)} changed files: {', '.join(changed[:8])}"
                    + (", ..." if len(changed) > 8 else "") + ")")
                 + f"; Shoal binary: {meta.get('binary', '?')}")
    else:
        L.append(f"- commit {meta.get('git_commit')} (full HEAD and dirty flag not recorded by "
                 "this older harness)"
                 + (f"; working tree with uncommitted changes in {len(meta['uncommitted_files'])} "
                    "files by other engineers, built as found" if meta.get("uncommitted_files")
                    else "") + f"; Shoal binary: {meta.get('binary', 'built by that run')}")
    L.append(f"- date: started {meta.get('started')}; command: "
             + (f"`{meta['command']}`" if meta.get("command") else "not recorded"))
    L.append(f"- mode {'quick' if meta.get('quick') else 'full'}, {runs_text(meta.get('runs'))}, "
             f"Shoal build profile `{meta.get('profile')}`"
             + (f", data size override {meta['size_mib']} MiB (targets not judged)"
                if meta.get("size_mib") else ""))
    L.append(f"- machine state before the first run: {state_brief(meta.get('state_start'))}")
    L.append(f"- {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('mem_gib')} GiB, kernel "
             f"{m.get('kernel')}, {m.get('os')}")
    L.append(f"- load average at start: {meta.get('loadavg_start')}; at end: "
             f"{end.get('loadavg_end', '-')}; total time {end.get('elapsed_s', '-')} s")
    if meta.get("concurrent_note"):
        L.append(f"- concurrent load: {meta['concurrent_note']}")
    for m2 in extra:
        e2 = m2.get("end", {})
        L.append(f"- also merged: `{m2.get('results_file')}` (scenarios {', '.join(m2.get('only', []))}; "
                 f"started {m2.get('started')}; {runs_text(m2.get('runs'))}; command "
                 f"`{m2.get('command', 'not recorded')}`; Shoal binary "
                 f"{m2.get('binary', 'built by that run')}, commit {m2.get('git_head') or m2.get('git_commit')}"
                 + (" (dirty tree)" if m2.get("git_dirty") else "") + "; load "
                 f"average at start {m2.get('loadavg_start')}, at end {e2.get('loadavg_end', '-')}; "
                 f"{m2.get('concurrent_note', '')})")
    L.append(f"- tracker for transfers: {meta.get('tracker')} on 127.0.0.1"
             + (" (scenario `magnet`: none, the seeder is in the link's x.pe)"
                if group(runs, "magnet") else "")
             + "; all traffic on loopback; data: " + str(meta.get("data_generator")))
    L.append("- wall time: from starting the leecher (process spawn; for qBittorrent the Web API "
             "add call) to every piece verified (completion line, process exit for aria2 and "
             "rqbit, Web API poll every 50 ms for qBittorrent). CPU: user+system seconds of the "
             "leecher (whole process; qBittorrent from the add call) and of the seeder during "
             "the transfer. Peak RSS: VmHWM; peak anon: RssAnon sampled every 50 ms. Seeder "
             "data read once before each run (warm page cache, fraction from fincore). Every "
             "figure is the median (min-max) over the successful runs; pairs run interleaved. "
             "Machine at run start: load average and /proc/meminfo taken just before each run "
             "(per run under \"Every run\").")
    vers = meta.get("versions", {})
    if vers:
        L.append("- versions: " + "; ".join(f"{k}: {v}" for k, v in sorted(vers.items())))
    if skips:
        L.append("\n### Skipped comparisons\n")
        seen = set()
        for s in skips:
            key = (s.get("scenario"), s.get("client"), s.get("reason"))
            if key not in seen:
                seen.add(key)
                L.append(f"- {s.get('scenario')} / {s.get('client')}: {s.get('reason')}")

    targets = []
    if group(runs, "single"):
        L.append(f"\n## 1. Single file ({size_of(runs, 'single')}, 256 KiB pieces), one seeder, "
                 "one leecher\n")
    s1 = transfer_table(runs, "single", L) or {}
    g1 = group(runs, "single")
    # The issue defines S1 on 1 GiB: on other sizes (--size-mib) the targets are not judged.
    size1 = next((r["bytes"] for r in runs if r.get("scenario") == "single" and r.get("bytes")), 0)
    full1 = dict(judged=size1 == GiB, why=f"{size_of(runs, 'single')} data, target on 1 GiB")
    if s1.get("shoal"):
        ok = ok_rows(g1.get("shoal", []))
        lt = s1.get("libtorrent")
        if lt:
            slow = lo(ok, "mb_s")
            targets.append(Target(
                "S1: Shoal's median >= 1.5x libtorrent's median; Shoal's slowest run >= 1.2x "
                "libtorrent's median", f"{s1['shoal'] / lt:.2f}x", s1["shoal"] / lt >= 1.5,
                f"{slow / lt:.2f}x", slow / lt >= 1.2, **full1))
        cgs = [r["leecher_cpu_s"] / (r["bytes"] / GiB) for r in ok if r.get("leecher_cpu_s")]
        an = med([r.get("leecher_peak_anon_mib") for r in ok])
        if cgs:
            cg = med(cgs)
            targets.append(Target("S1: leecher <= 2.0 CPU-s per GiB at the median",
                                  f"{cg:.2f} CPU-s/GiB", cg <= 2.0,
                                  f"(dearest run {max(cgs):.2f})", None, **full1))
        if an is not None:
            targets.append(Target("S1: leecher peak anon <= 32 MiB (median)", f"{an:.1f} MiB",
                                  an <= 32, f"(largest run {hi(ok, 'leecher_peak_anon_mib'):.1f} MiB)",
                                  None, **full1))
    if group(runs, "tree"):
        L.append(f"\n## 2. {files_of(runs, 'tree')} files of 64 KiB in a deep folder tree, "
                 "256 KiB pieces\n")
    s2 = transfer_table(runs, "tree", L) or {}
    if s2.get("shoal") and s2.get("rqbit"):
        slow = lo(ok_rows(group(runs, "tree").get("shoal", [])), "mb_s")
        targets.append(Target("S2: Shoal >= 1.5x rqbit's median (median and slowest run)",
                              f"{s2['shoal'] / s2['rqbit']:.2f}x", s2["shoal"] / s2["rqbit"] >= 1.5,
                              f"{slow / s2['rqbit']:.2f}x", slow / s2["rqbit"] >= 1.5))

    g3 = group(runs, "crowd")
    if g3:
        L.append(f"\n## 3. Flash crowd: one seeder, leechers started together ({size_of(runs, 'crowd')})\n")
        L.append("| client | ok/runs | leechers | last finish s | MB/s (size / last finish) | "
                 "mean leecher CPU s | leecher peak anon MiB | seeder uploaded (x size) | "
                 "seeder CPU s | vs libtorrent (last finish) | machine at run start |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        lt = med([r.get("wall_s") for r in ok_rows(g3.get("libtorrent", []))])
        for c in sorted(g3, key=lambda c: c != "shoal"):
            ok = ok_rows(g3[c])
            w = med([r.get("wall_s") for r in ok])
            n = g3[c][0].get("leechers")
            L.append(f"| {c} | {len(ok)}/{len(g3[c])} | {n} | {mm(ok, 'wall_s', 2)} | "
                     f"{mm(ok, 'mb_s')} | {mm(ok, 'leecher_cpu_s', 2)} | "
                     f"{mm(ok, 'leecher_peak_anon_mib')} | {mm(ok, 'seeder_uploaded_x', 2)} | "
                     f"{mm(ok, 'seeder_cpu_s', 2)} | "
                     f"{(f'{w / lt:.2f}x time' if w and lt else '-')} | {state_column(g3[c])} |")
        sh = ok_rows(g3.get("shoal", []))
        if sh and lt:
            w = med([r["wall_s"] for r in sh])
            wmax = hi(sh, "wall_s")
            targets.append(Target("S3: last Shoal leecher no later than libtorrent's median "
                                  "(median and slowest run)", f"{w:.2f} s vs {lt:.2f} s", w <= lt,
                                  f"{wmax:.2f} s vs {lt:.2f} s", wmax <= lt))
        up = med([r.get("seeder_uploaded_x") for r in sh])
        if up is not None:
            upmax = hi(sh, "seeder_uploaded_x")
            targets.append(Target("S3: Shoal seeder uploads < 2x the file (median and largest run)",
                                  f"{up:.2f}x", up < 2, f"{upmax:.2f}x", upmax < 2))
        L.append("\nSeeder uploaded: payload bytes the seeder sent (Shoal: its `uploaded:` line; "
                 "libtorrent: total_payload_upload), over the file size; lower means the "
                 "leechers traded among themselves.")

    g4 = group(runs, "mixed")
    if g4:
        L.append(f"\n## 4. Mixed: Shoal with other clients ({size_of(runs, 'mixed')})\n")
        L.append("| seeder -> leecher | ok/runs | MB/s | same-client pair MB/s (scenario 1) | "
                 "ratio | leecher CPU s | leecher peak anon MiB | machine at run start |")
        L.append("|---|---|---|---|---|---|---|---|")
        for c in sorted(g4):
            ok = ok_rows(g4[c])
            s, l = g4[c][0]["seeder"], g4[c][0]["leecher"]
            v = med([r.get("mb_s") for r in ok])
            base = s1.get(s) if l == "shoal" else s1.get(l)
            basename = f"{s}->{s}" if l == "shoal" else f"{l}->{l}"
            L.append(f"| {c} | {len(ok)}/{len(g4[c])} | {mm(ok, 'mb_s')} | "
                     f"{basename}: {fmt(base)} | {ratio(v, base)} | {mm(ok, 'leecher_cpu_s', 2)} | "
                     f"{mm(ok, 'leecher_peak_anon_mib')} | {state_column(g4[c])} |")
            if l == "shoal" and v and base:
                slow = lo(ok, "mb_s")
                size4 = g4[c][0].get("bytes")
                targets.append(Target(
                    f"S4: Shoal leecher from {s} >= 90% of {s}->{s}'s median (median and "
                    "slowest run)", f"{v / base:.0%}", v / base >= 0.9, f"{slow / base:.0%}",
                    slow / base >= 0.9, judged=size4 == GiB,
                    why=f"{size_of(runs, 'mixed')} data, target on 1 GiB"))

    gh = [r for r in runs if r.get("scenario") == "tracker-http"]
    if gh:
        L.append("\n## 5. Tracker: HTTP announces per second (wrk, 2 threads, 32 connections, "
                 "1000 torrents, random peers)\n")
        L.append("| tracker | mode | ok/runs | announces/s | tracker CPU s | announces per "
                 "tracker CPU-s | tracker peak RSS MiB | failed answers | vs opentracker |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        by = {}
        for r in gh:
            by.setdefault((r["client"], r.get("mode")), []).append(r)
        for (c, mode) in sorted(by, key=lambda k: (k[1], k[0] != "shoal")):
            rs = by[(c, mode)]
            ok = ok_rows(rs)
            v = med([r.get("req_s") for r in ok])
            ref = med([r.get("req_s") for r in ok_rows(by.get(("opentracker", mode), []))])
            L.append(f"| {c} | {mode} | {len(ok)}/{len(rs)} | {mm(ok, 'req_s', 0)} | "
                     f"{mm(ok, 'tracker_cpu_s', 2)} | {mm(ok, 'req_per_cpu_s', 0)} | "
                     f"{mm(ok, 'tracker_peak_rss_mib')} | {mm(rs, 'failures', 0)} | "
                     f"{ratio(v, ref) if c != 'opentracker' else '-'} |")
            if c == "shoal" and v and ref:
                slow = lo(ok, "req_s")
                what = ("a new connection per request" if mode == "close" else
                        "keep-alive" if mode == "keepalive" else mode)
                targets.append(Target(f"S5: HTTP ({what}) >= 1.5x opentracker's median (median)",
                                      f"{v / ref:.2f}x", v / ref >= 1.5,
                                      f"({slow / ref:.2f}x)", None))
    gu = [r for r in runs if r.get("scenario") == "tracker-udp"]
    if gu:
        L.append("\n## 5b. Tracker: UDP announces per second (aquatic_udp_load_test)\n")
        L.append("| tracker | ok/runs | responses/s | announce responses/s | tracker CPU s | "
                 "tracker peak RSS MiB | vs aquatic_udp |")
        L.append("|---|---|---|---|---|---|---|")
        by = {}
        for r in gu:
            by.setdefault(r["client"], []).append(r)
        ref = med([r.get("resp_s") for r in ok_rows(by.get("aquatic_udp", []))])
        for c in sorted(by, key=lambda c: c != "shoal"):
            ok = ok_rows(by[c])
            v = med([r.get("resp_s") for r in ok])
            L.append(f"| {c} | {len(ok)}/{len(by[c])} | {mm(ok, 'resp_s', 0)} | "
                     f"{mm(ok, 'announce_s', 0)} | {mm(ok, 'tracker_cpu_s', 2)} | "
                     f"{mm(ok, 'tracker_peak_rss_mib')} | "
                     f"{ratio(v, ref) if c != 'aquatic_udp' else '-'} |")
            if c == "shoal" and v and ref:
                slow = lo(ok, "resp_s")
                targets.append(Target("S5: UDP >= aquatic_udp's median (median)", f"{v / ref:.2f}x",
                                      v / ref >= 1.0, f"({slow / ref:.2f}x)", None))

    gn = ok_rows([r for r in runs if r.get("scenario") == "node"])
    gn_all = [r for r in runs if r.get("scenario") == "node"]
    if gn_all:
        L.append("\n## 6. One node, many torrents (`shoal up`)\n")
        L.append(f"{len(gn)}/{len(gn_all)} run(s) ok; figures are median (min-max).\n")
        L.append("| figure | value | target |")
        L.append("|---|---|---|")
        if gn:
            r = gn[0]
            L.append(f"| torrents shared through `POST /api/share` | {r['torrents']} "
                     f"(all seeding after {mm(gn, 'share_all_s', 2)} s) | |")
            L.append(f"| restart: API answering | {mm(gn, 'api_up_s', 3)} s | |")
            L.append(f"| restart: all torrents seeding | {mm(gn, 'startup_all_active_s', 3)} s | < 2 s |")
            L.append(f"| CPU used by the restart until all seeding | {mm(gn, 'startup_cpu_s', 2)} s | |")
            L.append(f"| idle CPU over {r.get('idle_window_s')} s | {mm(gn, 'idle_cpu_pct', 2)} % "
                     "of a core | < 1 % |")
            L.append(f"| resident memory after idle: RSS | {mm(gn, 'rss_mib')} MiB | < 150 MiB |")
            L.append(f"| resident memory after idle: anon / peak RSS | {mm(gn, 'anon_mib')} / "
                     f"{mm(gn, 'node_peak_rss_mib')} MiB | |")
            L.append(f"| machine at run start | {state_column(gn_all)} | |")
            if r["torrents"] >= 1000:
                for key, name, unit, lim in (
                        ("startup_all_active_s", "S6: start-up with 1000 torrents < 2 s", " s", 2),
                        ("idle_cpu_pct", "S6: idle CPU < 1% of a core", " %", 1),
                        ("rss_mib", "S6: RSS < 150 MiB", " MiB", 150)):
                    v, worst = med(vals_of(gn, key)), hi(gn, key)
                    if v is None:
                        continue
                    targets.append(Target(name + " (median and worst run)", f"{v}{unit}", v < lim,
                                          f"{worst}{unit}", worst < lim))
        for r in gn_all:
            if not r.get("ok"):
                L.append(f"| failed | {r.get('error')} | |")
    ghs = group(runs, "hash", key="cores")
    if ghs:
        L.append("\n### `shoal create` hashing speed (256 KiB pieces, file in page cache)\n")
        L.append("| cores | ok/runs | MB/s (wall) | CPU s | MB per CPU-second | openssl speed -evp "
                 "sha1 MB/s (per CPU-second, one core) | wall vs openssl | per CPU-s vs openssl |")
        L.append("|---|---|---|---|---|---|---|---|")
        for c in sorted(ghs):
            ok = ok_rows(ghs[c])
            for r in ok:
                r["_mb_cpu"] = r["bytes"] / 1e6 / r["cpu_s"] if r.get("cpu_s") else None
            sha = med([r.get("openssl_sha1_mb_s") for r in ok])
            v = med([r.get("mb_s") for r in ok])
            vc = med([r.get("_mb_cpu") for r in ok])
            L.append(f"| {'1 (taskset -c 0)' if c == '1' else 'all'} | {len(ok)}/{len(ghs[c])} | "
                     f"{mm(ok, 'mb_s')} | {mm(ok, 'cpu_s', 2)} | {mm(ok, '_mb_cpu')} | {fmt(sha)} | "
                     f"{ratio(v, sha)} | {ratio(vc, sha)} |")
            if c == "1" and v and sha and ok[0]["bytes"] >= (1 << 30):
                slow = lo(ok, "mb_s")
                targets.append(Target("S6: create on one core >= 80% of openssl SHA-1 (median "
                                      "and slowest run, by wall time)",
                                      f"{v / sha:.0%} by wall time, {vc / sha:.0%} per CPU-second",
                                      v / sha >= 0.8, f"{slow / sha:.0%}", slow / sha >= 0.8))
            if c == "all" and v and sha and ok[0]["bytes"] >= (1 << 30):
                slow = lo(ok, "mb_s")
                targets.append(Target("S6: create on all cores faster than one core's SHA-1 "
                                      "(median and slowest run)", f"{v / sha:.2f}x", v > sha,
                                      f"{slow / sha:.2f}x", slow > sha))
        L.append("\n`openssl speed` rates by CPU time, so under concurrent load the per-CPU-second "
                 "column is the fair comparison; wall-time rates suffer from other processes.")

    rep_target = repeat_section(runs, L)
    if rep_target:
        targets.append(rep_target)
    targets += magnet_section(runs, L)
    mse_target = mse_section(runs, L)
    if mse_target:
        targets.append(mse_target)
    targets += utp_section(runs, L)
    from stream_report import stream_section  # it imports this module
    targets += stream_section(runs, L)

    errors(runs, L)
    every_run(runs, L)
    if meta.get("quick"):
        targets = []  # tiny data on a debug build: no figures worth judging
        L.insert(1, "**Quick run (tiny data, debug build): a smoke test of the harness, not figures.**\n")
    if targets:
        head = ["\n## Targets of issue 7\n",
                "Judged on the median of this run and on Shoal's slowest run against the "
                "reference's median: a target is met only if both hold where the issue defines "
                "both (S1's throughput with its two thresholds; S2, S3, S4, S6 and the magnet "
                "times with the same threshold for both). A figure in parentheses is shown for information only "
                "(S1 CPU and memory are defined at the median, S5 on the median).\n",
                "| target | median | slowest run | met |", "|---|---|---|---|"]
        head += [f"| {t.name} | {t.median} | {t.slowest or '-'} | {t.met()} |" for t in targets]
        # Put the targets right after the machine section.
        idx = next(i for i, l in enumerate(L) if l.startswith("\n## 1.") or l.startswith("\n## "))
        L[idx:idx] = head
    notes = path[:-len(".jsonl")] + ".notes.md" if path.endswith(".jsonl") else None
    if notes and os.path.exists(notes):
        L.append(f"\n## Notes on this run (hand-written, `{os.path.basename(notes)}`)\n")
        with open(notes) as f:
            L.append(f.read().rstrip())
    return "\n".join(L) + "\n"
