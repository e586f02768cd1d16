#!/usr/bin/env python3
"""Drives a qBittorrent WebUI API v2 server (Shoal's /api/v2, or qbittorrent-nox as the
reference) for tests/qbt_api.rs.

  qbt_client.py scenario URL TORRENT SAVE MAGNET   the qbittorrent-api walk-through;
                                                   exits 1 with a reason on the first
                                                   check that fails
  qbt_client.py login URL PASSWORD                 a node with a password: refusals
                                                   without a login, with a wrong password
                                                   and after logout; access with the right
  qbt_client.py shapes URL TORRENT SAVE MAGNET     adds the torrent and magnet, then
                                                   prints {endpoint: shape} as JSON, a
                                                   shape being keys and JSON types

Only loopback URLs are used. No login: Shoal's login layer is a separate part, and the
reference runs with WebUI\\LocalHostAuth=false.
"""
import hashlib
import http.server
import json
import os
import sys
import threading
import time

import qbittorrentapi
import requests


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def info_hash(torrent_path):
    """The v1 info-hash of a .torrent (hash of the raw bencoded info dict)."""
    data = open(torrent_path, "rb").read()
    start = data.index(b"4:info") + len(b"4:info")
    end = skip(data, start)
    return hashlib.sha1(data[start:end]).hexdigest()


def skip(b, i):
    """The index just past the bencoded value at b[i]."""
    c = b[i : i + 1]
    if c == b"i":
        return b.index(b"e", i) + 1
    if c in (b"l", b"d"):
        i += 1
        while b[i : i + 1] != b"e":
            i = skip(b, i)
        return i + 1
    colon = b.index(b":", i)
    return colon + 1 + int(b[i:colon])


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def benc(v):
    """Bencodes ints, bytes, strs, lists and dicts (keys sorted)."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
    return b"d" + b"".join(benc(k) + benc(x) for k, x in items) + b"e"


class Tracker:
    """A loopback HTTP tracker that counts announces and answers with no peers and a
    30-minute interval, so any announce within a test is one asked for."""

    def __init__(self):
        self.announces = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.announces += 1
                body = benc({"interval": 1800, "peers": b""})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/announce"


def incomplete_torrent(path, announce):
    """Writes a .torrent of data nobody has (so it never completes); returns its hash."""
    info = {"length": 3 * 16384, "name": "nobody-has-this.bin", "piece length": 16384,
            "pieces": os.urandom(60)}
    with open(path, "wb") as f:
        f.write(benc({"announce": announce, "info": info}))
    return hashlib.sha1(benc(info)).hexdigest()


def native(url, method, path, **kw):
    """A call to Shoal's own JSON API (the node's state as it sees it)."""
    r = requests.request(method, f"{url}/api/{path}", timeout=20, **kw)
    return r.status_code, (r.json() if r.content else None)


def automation(c, url, h, save):
    """Share limits, queue moves, force start, download order, reannounce, seeding and
    queue preferences, alternative speed limits: each through qbittorrent-api, each
    checked in the qBittorrent answer and in the node's own API."""
    tracker = Tracker()
    path = os.path.join(os.path.dirname(save.rstrip("/")), "second.torrent")
    h2 = incomplete_torrent(path, tracker.url)

    def info(x):
        return c.torrents_info(torrent_hashes=x)[0]

    def node(x):
        code, v = native(url, "GET", f"torrents/{x}")
        check(code == 200, f"GET /api/torrents/{x} answered {code}")
        return v

    r = c.torrents_add(torrent_files=path, save_path=save, is_stopped=True,
                       is_sequential_download=True, is_first_last_piece_priority=True,
                       ratio_limit=1.5, seeding_time_limit=60)
    check(r == "Ok.", f"add with options answered {r!r}")
    t = info(h2)
    check(t.seq_dl is True and t.f_l_piece_prio is True, f"add order: {t.seq_dl} {t.f_l_piece_prio}")
    check(t.ratio_limit == 1.5 and t.seeding_time_limit == 60, f"add limits: {t.ratio_limit} {t.seeding_time_limit}")
    check(t.inactive_seeding_time_limit == -2 and t.max_ratio == 1.5, f"limits: {t}")
    n = node(h2)
    check(n["sequential"] and n["first_last_piece"] and n["ratio_limit"] == 1.5, f"node after add: {n}")

    # Download order toggles.
    c.torrents_toggle_sequential_download(torrent_hashes=h2)
    c.torrents_toggle_first_last_piece_priority(torrent_hashes=h2)
    t = info(h2)
    check(t.seq_dl is False and t.f_l_piece_prio is False, f"toggled order: {t.seq_dl} {t.f_l_piece_prio}")
    n = node(h2)
    check(not n["sequential"] and not n["first_last_piece"], f"node order: {n}")
    c.torrents_toggle_sequential_download(torrent_hashes=h2)
    check(info(h2).seq_dl is True and node(h2)["sequential"], "sequential toggled back on")

    # Share limits: the torrent's own, and the global ones through the preferences.
    c.torrents_set_share_limits(torrent_hashes=h2, ratio_limit=-1, seeding_time_limit=-2,
                                inactive_seeding_time_limit=30)
    t = info(h2)
    check((t.ratio_limit, t.seeding_time_limit, t.inactive_seeding_time_limit) == (-1, -2, 30),
          f"share limits: {t.ratio_limit} {t.seeding_time_limit} {t.inactive_seeding_time_limit}")
    check(t.max_ratio == -1 and t.max_inactive_seeding_time == 30, f"effective limits: {t}")
    n = node(h2)
    check((n["ratio_limit"], n["seed_time_limit"], n["seed_idle_limit"]) == (-1, -2, 30), f"node limits: {n}")
    r = requests.post(f"{url}/api/v2/torrents/setShareLimits", data={"hashes": h2, "ratioLimit": 1},
                      timeout=20)
    check(r.status_code == 400, f"setShareLimits without all limits answered {r.status_code}")
    c.app.set_preferences({"max_ratio_enabled": True, "max_ratio": 3, "max_seeding_time_enabled": True,
                           "max_seeding_time": 600, "max_ratio_act": 1})
    prefs = c.app.preferences
    check(prefs["max_ratio_enabled"] and prefs["max_ratio"] == 3 and prefs["max_seeding_time"] == 600,
          f"share preferences: {prefs['max_ratio']} {prefs['max_seeding_time']}")
    check(prefs["max_ratio_act"] == 1, f"max_ratio_act {prefs['max_ratio_act']}")
    _, st = native(url, "GET", "settings")
    check(st["seed_ratio_limit"] == 3 and st["seed_time_limit"] == 600 and st["seed_limit_action"] == "remove",
          f"node settings: {st}")
    check(info(h2).max_seeding_time == 600, "seedingTimeLimit -2 follows the global limit")
    check(info(h).max_ratio == 3, "a torrent on global limits shows them in max_ratio")
    c.app.set_preferences({"max_ratio_enabled": False, "max_seeding_time_enabled": False, "max_ratio_act": 0})
    _, st = native(url, "GET", "settings")
    check(st["seed_ratio_limit"] < 0 and st["seed_time_limit"] < 0 and st["seed_limit_action"] == "stop",
          f"limits off: {st}")

    # Queue: refused while queueing is off, then moves.
    c.app.set_preferences({"queueing_enabled": False})
    try:
        c.torrents_increase_priority(torrent_hashes=h2)
        fail("increasePrio with queueing off did not answer 409")
    except qbittorrentapi.Conflict409Error:
        pass
    c.app.set_preferences({"queueing_enabled": True, "max_active_downloads": 4, "max_active_uploads": 3,
                           "dont_count_slow_torrents": True})
    prefs = c.app.preferences
    check(prefs["queueing_enabled"] and prefs["max_active_uploads"] == 3 and prefs["max_active_downloads"] == 4,
          f"queue preferences: {prefs['queueing_enabled']} {prefs['max_active_uploads']}")
    _, st = native(url, "GET", "settings")
    check(st["queueing_enabled"] and st["max_active_seeds"] == 3 and st["max_active"] == 4, f"queue settings: {st}")
    pos = lambda x: node(x)["queue_position"]
    c.torrents_top_priority(torrent_hashes=h2)
    check(pos(h2) == 1 and pos(h) == 2, f"topPrio: {pos(h2)} {pos(h)}")
    check(info(h2).priority == 1, f"priority of a queued download: {info(h2).priority}")
    check(info(h).priority == 0, "a complete torrent shows priority 0, as in qBittorrent")
    c.torrents_bottom_priority(torrent_hashes=h2)
    check(pos(h2) == 2 and info(h2).priority == 2, f"bottomPrio: {pos(h2)}")
    c.torrents_increase_priority(torrent_hashes=h2)
    check(pos(h2) == 1, f"increasePrio: {pos(h2)}")
    c.torrents_decrease_priority(torrent_hashes=h2)
    check(pos(h2) == 2, f"decreasePrio: {pos(h2)}")

    # Force start resumes the stopped torrent; it announces to the tracker at once.
    c.torrents_set_force_start(enable=True, torrent_hashes=h2)
    check(node(h2)["force_start"] is True, "force_start not set in the node")
    wait_for("forcedDL", lambda: info(h2).state == "forcedDL")
    check(info(h2).force_start is True, "force_start key")
    check([x.hash for x in c.torrents_info(status_filter="downloading") if x.hash == h2] == [h2],
          "forcedDL passes the downloading filter")
    wait_for("the first announce", lambda: tracker.announces >= 1)
    time.sleep(1)
    first = tracker.announces
    c.torrents_reannounce(torrent_hashes=h2)
    wait_for("the reannounce", lambda: tracker.announces > first, timeout=10)
    second = tracker.announces
    code, _ = native(url, "POST", f"torrents/{h2}/reannounce")
    check(code == 200, f"native reannounce answered {code}")
    wait_for("the native reannounce", lambda: tracker.announces > second, timeout=10)
    c.torrents_set_force_start(enable=False, torrent_hashes=h2)
    check(node(h2)["force_start"] is False and info(h2).force_start is False, "force start not cleared")
    wait_for("no longer forced", lambda: info(h2).state != "forcedDL")
    c.torrents_stop(torrent_hashes=h2)
    wait_for("stoppedDL", lambda: info(h2).state == "stoppedDL")
    code, _ = native(url, "POST", f"torrents/{h2}/reannounce")
    check(code == 409, f"native reannounce of a stopped torrent answered {code}")

    # Alternative speed limits and their schedule.
    c.app.set_preferences({"alt_dl_limit": 4096, "alt_up_limit": 2048, "scheduler_enabled": False,
                           "schedule_from_hour": 22, "schedule_from_min": 30, "schedule_to_hour": 6,
                           "schedule_to_min": 0, "scheduler_days": 1})
    prefs = c.app.preferences
    got = [prefs[k] for k in ("alt_dl_limit", "alt_up_limit", "schedule_from_hour", "schedule_from_min",
                              "schedule_to_hour", "schedule_to_min", "scheduler_days")]
    check(got == [4096, 2048, 22, 30, 6, 0, 1], f"alt preferences: {got}")
    _, st = native(url, "GET", "settings")
    check(st["alt_max_down"] == 4096 and st["alt_schedule_begin"] == 22 * 60 + 30
          and st["alt_schedule_end"] == 360 and st["alt_schedule_days"] == 0x3E, f"alt settings: {st}")
    check(c.transfer.speed_limits_mode == "0", "alternative limits on before the toggle")
    c.transfer_toggle_speed_limits_mode()
    check(c.transfer.speed_limits_mode == "1", "toggleSpeedLimitsMode did not turn them on")
    check(native(url, "GET", "settings")[1]["alt_enabled"] is True, "alt_enabled not set")
    check(c.sync_maindata(rid=0).server_state["use_alt_speed_limits"] is True, "server_state alt limits")
    c.transfer_set_speed_limits_mode(intended_state=False)
    check(c.transfer.speed_limits_mode == "0", "setSpeedLimitsMode 0")
    check(native(url, "GET", "settings")[1]["alt_enabled"] is False, "alt_enabled not cleared")

    c.torrents_delete(torrent_hashes=h2, delete_files=True)
    wait_for("the second torrent to go", lambda: not c.torrents_info(torrent_hashes=h2))
    tracker.server.shutdown()


def client(url):
    c = qbittorrentapi.Client(host=url, REQUESTS_ARGS={"timeout": 20})
    return c


def scenario(url, torrent, save, magnet):
    c = client(url)
    h = info_hash(torrent)
    mh = magnet.split("btih:")[1].split("&")[0].lower()

    # Versions: what tools gate features on.
    check(c.app.version.startswith("v"), f"app version {c.app.version!r}")
    check(c.app.web_api_version == "2.11.2", f"webapi version {c.app.web_api_version!r}")
    check("libtorrent" in c.app.build_info, "buildInfo lacks libtorrent")
    check(c.app.default_save_path, "no default save path")

    # Preferences: read, change, read back.
    prefs = c.app.preferences
    for key in ("save_path", "queueing_enabled", "max_ratio", "dht", "listen_port", "dl_limit"):
        check(key in prefs, f"preferences lack {key}")
    c.app.set_preferences({"dl_limit": 1 << 20, "queueing_enabled": True, "max_active_downloads": 4})
    prefs = c.app.preferences
    check(prefs["dl_limit"] == 1 << 20, f"dl_limit not set: {prefs['dl_limit']}")
    check(prefs["max_active_downloads"] == 4, f"max_active_downloads: {prefs['max_active_downloads']}")
    c.app.set_preferences({"dl_limit": 0, "queueing_enabled": False})
    check(c.app.preferences["queueing_enabled"] is False, "queueing still on")
    check(c.transfer.info["dl_rate_limit"] == 0, "transfer/info dl_rate_limit")

    # Categories and tags, then adds that use them.
    c.torrents_create_category(name="tv", save_path=save)
    check("tv" in c.torrents_categories(), "category tv missing")
    c.torrents_create_tags(tags=["keep"])
    check("keep" in c.torrents_tags(), "tag keep missing")
    r = c.torrents_add(torrent_files=torrent, category="tv", tags=["a", "b"])
    check(r == "Ok.", f"add .torrent answered {r!r}")
    r = c.torrents_add(urls=magnet, save_path=save, is_stopped=True, tags="m")
    check(r == "Ok.", f"add magnet answered {r!r}")
    check(c.torrents_add(torrent_files=torrent) == "Fails.", "a duplicate add must fail")

    # Info with filters.
    t = wait_for("the .torrent to seed",
                 lambda: [x for x in c.torrents_info(torrent_hashes=h) if x.state in ("stalledUP", "uploading")])[0]
    check(t.category == "tv" and t.tags == "a, b", f"labels: {t.category!r} {t.tags!r}")
    check(t.save_path.rstrip("/") == save.rstrip("/"), f"category save path not used: {t.save_path}")
    check(t.progress == 1 and t.amount_left == 0, f"progress {t.progress}")
    check(len(c.torrents_info()) == 2, "info lists two torrents")
    check([x.hash for x in c.torrents_info(category="tv")] == [h], "category filter")
    check([x.hash for x in c.torrents_info(tag="m")] == [mh], "tag filter")
    check([x.hash for x in c.torrents_info(status_filter="seeding")] == [h], "seeding filter")
    check([x.hash for x in c.torrents_info(status_filter="stopped")] == [mh], "stopped filter")
    m = c.torrents_info(torrent_hashes=mh)[0]
    check(m.state in ("stoppedDL", "pausedDL"), f"stopped magnet state {m.state}")
    check(len(c.torrents_info(limit=1, offset=1, sort="name")) == 1, "limit/offset")

    # Stop/start and the old pause/resume names.
    c.torrents_stop(torrent_hashes=h)
    wait_for("stoppedUP", lambda: c.torrents_info(torrent_hashes=h)[0].state == "stoppedUP")
    c.torrents_start(torrent_hashes=h)
    wait_for("seeding again", lambda: c.torrents_info(torrent_hashes=h)[0].state in ("stalledUP", "uploading"))
    requests.post(f"{url}/api/v2/torrents/pause", data={"hashes": h}, timeout=20).raise_for_status()
    wait_for("paused", lambda: c.torrents_info(torrent_hashes=h)[0].state == "stoppedUP")
    requests.post(f"{url}/api/v2/torrents/resume", data={"hashes": "all"}, timeout=20).raise_for_status()
    wait_for("resumed", lambda: c.torrents_info(torrent_hashes=h)[0].state in ("stalledUP", "uploading", "checkingUP"))
    c.torrents_stop(torrent_hashes=mh)

    # Details.
    files = c.torrents_files(torrent_hash=h)
    check(len(files) >= 1 and files[0].progress == 1, f"files: {files}")
    c.torrents_file_priority(torrent_hash=h, file_ids=0, priority=7)
    check(c.torrents_files(torrent_hash=h)[0].priority == 6 or c.torrents_files(torrent_hash=h)[0].priority == 7,
          "file priority not set")
    props = c.torrents_properties(torrent_hash=h)
    check(props.total_size == t.total_size and props.pieces_have == props.pieces_num, f"properties: {props}")
    trackers = c.torrents_trackers(torrent_hash=h)
    check(any(x.url.startswith("http") for x in trackers), f"trackers: {trackers}")
    states = c.torrents_piece_states(torrent_hash=h)
    check(len(states) == props.pieces_num and all(s == 2 for s in states), "pieceStates")
    bad = requests.get(f"{url}/api/v2/torrents/properties", params={"hash": "0" * 40}, timeout=20)
    check(bad.status_code == 404, f"unknown hash answered {bad.status_code}")

    # sync/maindata: full, then a delta after a change.
    full = c.sync_maindata(rid=0)
    check(full.get("full_update") is True and h in full.torrents, "full update")
    check("tv" in full.categories and "keep" in full.tags, "full update labels")
    check("server_state" in full and "dl_info_speed" in full.server_state, "server_state")
    c.torrents_set_category(torrent_hashes=h, category="")
    c.torrents_add_tags(torrent_hashes=h, tags="new")
    delta = c.sync_maindata(rid=full.rid)
    check("full_update" not in delta, f"delta is a full update: {delta}")
    check(delta.rid > full.rid, "rid does not grow")
    changed = delta.get("torrents", {}).get(h, {})
    check(changed.get("category") == "" and "new" in changed.get("tags", ""), f"delta torrent: {changed}")
    check("name" not in changed, "delta repeats unchanged keys")
    check("new" in delta.get("tags", []), "delta lacks the new tag")
    c.torrents_remove_tags(torrent_hashes=h, tags="new")
    c.torrents_remove_categories(categories="tv")
    check("tv" not in c.torrents_categories(), "category not removed")

    automation(c, url, h, save)

    # Delete, with files for the magnet (nothing on disk) and the .torrent.
    before = c.sync_maindata(rid=0).rid
    c.torrents_delete(torrent_hashes=mh, delete_files=True)
    wait_for("the magnet to go", lambda: not c.torrents_info(torrent_hashes=mh))
    delta = c.sync_maindata(rid=before)
    check(mh in delta.get("torrents_removed", []), f"torrents_removed: {delta}")
    c.torrents_delete(torrent_hashes=h, delete_files=True)
    wait_for("the torrent to go", lambda: not c.torrents_info())
    print("OK", flush=True)


def shape(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return {k: shape(x) for k, x in v.items()}


def shapes(url, torrent, save, magnet):
    """Adds the torrent (complete in SAVE) and the magnet, then records the shapes."""
    s = requests.Session()
    api = f"{url}/api/v2"
    h = info_hash(torrent)

    def get(path, **params):
        r = s.get(f"{api}/{path}", params=params, timeout=20)
        r.raise_for_status()
        try:
            return r.json()
        except ValueError:
            return r.text

    def post(path, **data):
        r = s.post(f"{api}/{path}", data=data, timeout=20)
        r.raise_for_status()
        return r.text

    post("torrents/createCategory", category="cat", savePath="")
    with open(torrent, "rb") as f:
        r = s.post(f"{api}/torrents/add", files={"torrents": ("t.torrent", f)},
                   data={"savepath": save, "category": "cat", "tags": "x,y"}, timeout=20)
    check(r.text == "Ok.", f"add answered {r.text!r}")
    check(post("torrents/add", urls=magnet, paused="true", stopped="true") == "Ok.", "magnet add")
    wait_for("the torrent to be checked", lambda: [t for t in get("torrents/info", hashes=h)
                                                  if t["state"] in ("stalledUP", "uploading")])
    out = {}
    for path in ("app/version", "app/webapiVersion", "app/buildInfo", "app/defaultSavePath",
                 "app/preferences", "transfer/info", "torrents/categories", "torrents/tags"):
        v = get(path)
        if path == "torrents/categories":
            v = v["cat"]
        out[path] = shape(v)
    out["torrents/info"] = shape([t for t in get("torrents/info") if t["hash"] == h][0])
    out["torrents/properties"] = shape(get("torrents/properties", hash=h))
    out["torrents/files"] = shape(get("torrents/files", hash=h))
    trackers = get("torrents/trackers", hash=h)
    out["torrents/trackers"] = shape([t for t in trackers if t["url"].startswith("http")])
    out["torrents/trackers (peer sources)"] = shape([t for t in trackers if t["url"].startswith("**")])
    out["torrents/pieceStates"] = shape(get("torrents/pieceStates", hash=h))
    full = get("sync/maindata", rid=0)
    torrents = full.pop("torrents")
    out["sync/maindata (torrent)"] = shape(torrents[h])
    out["sync/maindata (category)"] = shape(full.pop("categories")["cat"])
    out["sync/maindata (trackers)"] = shape(list(full.pop("trackers").values())[0])
    out["sync/maindata"] = shape(full)
    for path in ("torrents/properties", "torrents/trackers"):
        r = s.get(f"{api}/{path}", params={"hash": "0" * 40}, timeout=20)
        out[f"{path} (unknown hash status)"] = r.status_code
    r = s.post(f"{api}/torrents/setCategory", data={"hashes": h, "category": "nope"}, timeout=20)
    out["torrents/setCategory (unknown category status)"] = r.status_code
    r = s.post(f"{api}/torrents/createCategory", data={"category": "cat"}, timeout=20)
    out["torrents/createCategory (existing status)"] = r.status_code
    r = s.post(f"{api}/torrents/filePrio", data={"hash": h, "id": "0", "priority": "3"}, timeout=20)
    out["torrents/filePrio (bad priority status)"] = r.status_code
    r = s.get(f"{api}/torrents/noSuchEndpoint", timeout=20)
    out["unknown endpoint status"] = r.status_code
    out["transfer/speedLimitsMode"] = get("transfer/speedLimitsMode")
    # The queue, share limits, order and force start calls, by status.
    post("app/setPreferences", json=json.dumps({"queueing_enabled": False}))
    r = s.post(f"{api}/torrents/topPrio", data={"hashes": h}, timeout=20)
    out["torrents/topPrio (queueing off status)"] = r.status_code
    post("app/setPreferences", json=json.dumps({"queueing_enabled": True}))
    for path, data in (
        ("torrents/topPrio", {"hashes": h}),
        ("torrents/increasePrio", {"hashes": h}),
        ("torrents/setShareLimits", {"hashes": h, "ratioLimit": "1"}),
        ("torrents/setShareLimits", {"hashes": h, "ratioLimit": "2", "seedingTimeLimit": "-2",
                                     "inactiveSeedingTimeLimit": "-1"}),
        ("torrents/toggleSequentialDownload", {"hashes": h}),
        ("torrents/toggleFirstLastPiecePrio", {"hashes": h}),
        ("torrents/setForceStart", {"hashes": h, "value": "true"}),
        ("torrents/reannounce", {"hashes": h}),
        ("transfer/toggleSpeedLimitsMode", {}),
    ):
        r = s.post(f"{api}/{path}", data=data, timeout=20)
        out[f"{path} {sorted(data)} status"] = r.status_code
    t = [t for t in get("torrents/info") if t["hash"] == h][0]
    # Values, not shapes; numbers as floats (qBittorrent writes 2 where Shoal writes
    # 2.0), and only the keys the server has (older references lack some).
    num = lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    out["torrents/info after the calls"] = {
        k: num(t[k]) for k in ("ratio_limit", "seeding_time_limit", "inactive_seeding_time_limit",
                               "max_ratio", "seq_dl", "f_l_piece_prio", "force_start") if k in t}
    out["transfer/speedLimitsMode after the toggle"] = get("transfer/speedLimitsMode")
    print(json.dumps(out, sort_keys=True), flush=True)


def login(url, password):
    """Against a server with a password: every call is refused without a login, a wrong
    password is refused, the right one opens the API, and logging out closes it again."""
    anonymous = qbittorrentapi.Client(
        host=url, REQUESTS_ARGS={"timeout": 20}, VERIFY_WEBUI_CERTIFICATE=False
    )
    try:
        anonymous.torrents_info()
        fail("torrents/info answered without a login")
    except (qbittorrentapi.Forbidden403Error, qbittorrentapi.LoginFailed):
        # 403, after which the client tries a login with no credentials, which fails.
        pass
    wrong = qbittorrentapi.Client(host=url, username="admin", password=password + "x",
                                  REQUESTS_ARGS={"timeout": 20})
    try:
        wrong.auth_log_in()
        fail("a wrong password logged in")
    except qbittorrentapi.LoginFailed:
        pass
    right = qbittorrentapi.Client(host=url, username="admin", password=password,
                                  REQUESTS_ARGS={"timeout": 20})
    right.auth_log_in()
    check(right.is_logged_in, "the right password did not log in")
    check(right.app_version().startswith("v"), "app/version after login")
    check(len(right.torrents_info()) == 0, "torrents/info after login")
    right.auth_log_out()
    try:
        # A fresh client with the old cookie: the session must be gone.
        sid = right._http_session.cookies.get("SID") if right._http_session else None
        r = requests.get(f"{url}/api/v2/torrents/info", cookies={"SID": sid or "none"},
                         timeout=20)
        check(r.status_code == 403, f"torrents/info after logout answered {r.status_code}")
    except requests.RequestException as e:
        fail(f"request after logout failed: {e}")
    print("OK", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "login":
        login(sys.argv[2].rstrip("/"), sys.argv[3])
        sys.exit(0)
    mode, url, torrent, save, magnet = sys.argv[1:6]
    {"scenario": scenario, "shapes": shapes}[mode](url.rstrip("/"), torrent, save, magnet)
