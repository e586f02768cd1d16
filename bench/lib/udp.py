"""Scenario 5, UDP: aquatic_udp_load_test against `shoal tracker` and aquatic_udp."""

import os


def aquatic_bins(cfg):
    """(load test binary, aquatic_udp binary or None, why missing)."""
    cache = os.path.join(cfg.bench, "cache")
    load = os.path.join(cache, "aquatic_udp_load_test", "bin", "aquatic_udp_load_test")
    server = os.path.join(cache, "aquatic_udp", "bin", "aquatic_udp")
    why = []
    for b, crate in ((load, "aquatic_udp_load_test"), (server, "aquatic_udp")):
        if not os.access(b, os.X_OK):
            failed = os.path.join(cache, crate + ".failed")
            why.append(f"{crate}: " + ("cargo install failed (bench/cache/" + crate + ".failed)"
                                       if os.path.exists(failed) else "not built (bench/install)"))
    return (load if os.access(load, os.X_OK) else None,
            server if os.access(server, os.X_OK) else None, "; ".join(why))


def udp_bench(sess, kind, run, load_bin, server_bin):
    raise NotImplementedError("UDP load test driver pending")
