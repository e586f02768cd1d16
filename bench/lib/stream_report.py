"""Summary section of scenario `stream` (lib/stream.py): time to the first byte of a range
in the middle of a file while downloading, Shoal against rqbit, per seeder."""

from report import GiB, Target, hi, med, mm, ok_rows, size_of, state_column, vals_of

SEEDER_TEXT = {
    "libtorrent": "libtorrent, TCP only",
    "libtorrent-utp": "libtorrent, TCP and uTP",
    "shoal": "Shoal (`shoal seed`)",
}
CLIENT_ORDER = ["shoal", "shoal-tcp", "rqbit"]


def headline(r):
    """The figure of one stream run for the table of every run."""
    return (f"{r.get('seeder')} seeder: first byte {r['t_first_byte_s']:.3f} s, 64 KiB "
            f"{r['t_range_s']:.3f} s")


def stream_section(runs, L):
    """Per seeder, per downloader: times from the add call to the headers, the first body
    byte and the whole 64 KiB; returns the Targets "Shoal's first byte no later than
    rqbit's" (median, and Shoal's slowest run against rqbit's median), on 1 GiB only."""
    rows = [r for r in runs if r.get("scenario") == "stream"]
    if not rows:
        return []
    L.append(f"\n## T. Stream: time to the first byte of 64 KiB in the middle of the file "
             f"while it downloads ({size_of(runs, 'stream')}, 256 KiB pieces, one seeder)\n")
    L.append("| seeder | downloader | ok/runs | add answered s | headers s | first byte s | "
             "first byte, slowest s | 64 KiB s | first byte vs rqbit (median) | "
             "downloader peak anon MiB | machine at run start |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    seeders = list(dict.fromkeys(r.get("seeder") for r in rows))
    targets = []
    for s in seeders:
        g = {}
        for r in rows:
            if r.get("seeder") == s:
                g.setdefault(r.get("client"), []).append(r)
        ref = med(vals_of(ok_rows(g.get("rqbit", [])), "t_first_byte_s"))
        for c in sorted(g, key=lambda c: CLIENT_ORDER.index(c) if c in CLIENT_ORDER else 9):
            ok = ok_rows(g[c])
            v = med(vals_of(ok, "t_first_byte_s"))
            vs = f"{v / ref:.2f}x" if v and ref and c != "rqbit" else "-"
            slow = hi(ok, "t_first_byte_s")
            L.append(f"| {SEEDER_TEXT.get(s, s)} | {c} | {len(ok)}/{len(g[c])} | "
                     f"{mm(ok, 't_added_s', 3)} | {mm(ok, 't_headers_s', 3)} | "
                     f"{mm(ok, 't_first_byte_s', 3)} | "
                     f"{'-' if slow is None else f'{slow:.3f}'} | {mm(ok, 't_range_s', 3)} | "
                     f"{vs} | {mm(ok, 'downloader_peak_anon_mib')} | {state_column(g[c])} |")
        sh = ok_rows(g.get("shoal", []))
        if sh and ref is not None:
            v, slow = med(vals_of(sh, "t_first_byte_s")), hi(sh, "t_first_byte_s")
            targets.append(Target(
                f"Stream, seeder {SEEDER_TEXT.get(s, s)}: Shoal's first byte of a range in "
                "the middle of the file no later than rqbit's median (median and slowest run)",
                f"{v:.3f} s vs {ref:.3f} s", v <= ref, f"{slow:.3f} s vs {ref:.3f} s",
                slow <= ref, judged=sh[0].get("bytes") == GiB,
                why=f"{size_of(runs, 'stream')} data, target on 1 GiB"))
    L.append("\nEvery time is median (min-max) in seconds from just before the add call "
             "(`POST /api/torrents` of `shoal up --no-tracker`; `POST /torrents` of `rqbit "
             "server start`, each daemon started and listening before) to: the add call's "
             "answer, the stream's response headers, its first body byte, and the last of "
             "the 64 KiB (`Range: bytes=M-(M+65535)`, M the middle of the file, sent as soon "
             "as the add answered; `GET /api/torrents/:id/files/0/stream` and `GET "
             "/torrents/:id/stream/0`). Both learn the one seeder from a fresh loopback "
             "tracker that lists it before the clock starts. `shoal` is `shoal up` with its "
             "defaults (uTP tried first when dialling), `shoal-tcp` the same with "
             "`--utp false` (TCP only, as rqbit by default). The bytes are checked against "
             "the source. Seeders: libtorrent TCP only is the harness's convention (every client "
             "on TCP); libtorrent TCP and uTP is its default, what a seeder in the wild runs.")
    return targets
