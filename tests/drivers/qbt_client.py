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
import json
import sys
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
