#!/usr/bin/env python3
"""Benchmarks of the desktop app (figures, not tests): run by scripts/bench-desktop.sh, which
builds the release binary and provides Xvfb and a private D-Bus session.

  launch     window visible after launch: process spawn → window mapped, then → the first
             screen painted (the sidebar's colour read back from the X server); several runs,
             the first one cold (new data directory, migrations, empty WebKit caches), the
             median over the warm ones; PSS after start (10 s, like the minimal Tauri app of
             ../shared/DESKTOP.md).
  broadcast  PSS while the app broadcasts an order to 10,000 carriers on the Cloud API channel
             against the loopback fake at throttle 0, the history screen open and live.
  history    history grid page change at 1,000,000 rows, end to end through WebDriver: click
             "Plus anciens →" → the next 100 rows rendered and painted; median of several.
  idle       PSS sampled while the app sits idle for --idle-secs (an hour by default).

PSS comes from /proc/<pid>/smaps_rollup, for the app process and for each WebKit process
(every descendant of the app), reported separately and in total. The machine may be shared:
the load average is printed with the figures.

Standard library only: the e2e tests' WebDriver client and X helpers (tests/e2e/x11.py: the
pixel is read back through libX11 with ctypes, every 5 ms).
"""

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import fakes as fake_services  # noqa: E402
import x11  # noqa: E402
import harness  # noqa: E402
from test_desktop import Session, wait_for  # noqa: E402

TITLE = "CamionBack Relay"
# The sidebar's background (ui/styles.css `.sidebar`): once it is on screen, the page's HTML and
# CSS are painted. Read at a point of the sidebar's left padding, below the navigation.
SIDEBAR_RGB = (0x10, 0x23, 0x1E)
SIDEBAR_PROBE = (5, 500)
# Minimal Tauri app of ../shared/DESKTOP.md, release build, after 10 s under Xvfb: the floor
# when the minimal app (src-tauri/examples/minimal_tauri.rs) is not there to be measured.
MINIMAL_TAURI_PSS_MB = 288.0
# Issue 4: the app's total PSS within 60 MB of the minimal Tauri app.
MARGIN_MB = 60.0
SCREEN_NAMES = {"dashboard": "Tableau de bord", "history": "Historique (en direct)"}


# ------------------------------------------------------------------------------------------
# Processes and memory
# ------------------------------------------------------------------------------------------

def children_map():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def program(pid):
    """The program's file name (`comm` is cut at 15 characters: WebKitNetworkPr…)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return "?"
    return os.path.basename(argv0) or comm(pid)


ROLLUP_KEYS = ("Pss", "Anonymous", "Pss_Anon", "Pss_File", "Pss_Shmem")


def rollup_kb(pid):
    """{key: kB} for ROLLUP_KEYS. PSS divides each library page among the processes mapping it,
    so it moves when other programs using the same binary or WebKit start or stop on the
    machine (so does USS: a page stops being private when another process maps it). Anonymous
    memory (heaps, JS heap, caches) belongs to the process alone: it is what a leak grows.
    PSS splits into anonymous, file-backed (libraries, JIT-free code) and shared memory
    (WebKit's painted tiles and IPC buffers, memfd), which tells where a growth comes from."""
    values = dict.fromkeys(ROLLUP_KEYS, 0)
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def find_app(root_pid, binary_name):
    """The app process: `root_pid` itself, or its descendant running the binary (WebDriver)."""
    if comm(root_pid) == binary_name[:15]:
        return root_pid
    for pid in descendants(root_pid):
        if comm(pid) == binary_name[:15]:
            return pid
    return None


def memory(app_pid):
    """PSS in MB by process: {'app': …, 'WebKitWebProcess': …, 'WebKitNetworkProcess': …,
    'total': …}, and anonymous memory the same way under 'uss'."""
    pss, uss, kinds = {}, {}, {}
    for pid, name in [(app_pid, "app")] + [(p, program(p)) for p in descendants(app_pid)]:
        values = rollup_kb(pid)
        pss[name] = pss.get(name, 0.0) + values["Pss"] / 1024
        uss[name] = uss.get(name, 0.0) + values["Anonymous"] / 1024
        split = kinds.setdefault(name, {"anon": 0.0, "file": 0.0, "shmem": 0.0})
        for kind, key in (("anon", "Pss_Anon"), ("file", "Pss_File"), ("shmem", "Pss_Shmem")):
            split[kind] += values[key] / 1024
    pss["total"] = sum(pss.values())
    uss["total"] = sum(uss.values())
    pss["uss"] = uss
    pss["kinds"] = kinds
    return pss


def fmt_kinds(figures):
    """PSS of each process split into anonymous / file / shared memory, in MB."""
    return " ; ".join(f"{name} {k['anon']:.0f}/{k['file']:.0f}/{k['shmem']:.0f}"
                      for name, k in sorted(figures["kinds"].items(), key=lambda item: item[0] != "app"))


def fmt_memory(figures):
    def parts(values):
        names = ["app"] + sorted(n for n in values if n not in ("app", "total", "uss", "kinds"))
        return ", ".join(f"{n} {values[n]:.0f}" for n in names)
    uss = figures["uss"]
    return (f"total {figures['total']:.0f} MB PSS ({parts(figures)}) ; "
            f"anonyme {uss['total']:.0f} MB ({parts(uss)})")


def spaced(number):
    return f"{number:,}".replace(",", " ")


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ------------------------------------------------------------------------------------------
# The X server: is the window mapped, is its first screen painted?
# ------------------------------------------------------------------------------------------

def visible_window():
    found = x11.search("--onlyvisible", "--name", f"^{TITLE}$")
    return found[0] if found else None


# ------------------------------------------------------------------------------------------
# The app and its world
# ------------------------------------------------------------------------------------------

class World:
    """Fakes of the CamionBack API and the Cloud API, and the app's environment."""

    def __init__(self, work, carriers, throttle_ms=0):
        self.work = work
        self.fakes, self.server = fake_services.start(carriers=carriers, failing=0)
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.env = harness.cloud_api_env(work, url, RELAY_THROTTLE_MS=str(throttle_ms),
                                         RELAY_JITTER_MS="0", RELAY_LOG="warn")

    def database(self):
        return os.path.join(self.env["RELAY_DATA_DIR"], "relay.db")

    def close(self):
        self.server.shutdown()


def stop(process, timeout=30):
    """SIGTERM (quits like "Quitter"), then SIGKILL if it does not exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(binary, world, pixels, log):
    """Starts the app; returns (process, seconds to mapped, seconds to painted)."""
    started = time.monotonic()
    process = subprocess.Popen([binary], env=world.env, stdout=log, stderr=subprocess.STDOUT)
    window = mapped = None
    deadline = started + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode} (see {log.name})")
        if window is None:
            window = visible_window()
            if window is not None:
                mapped = time.monotonic() - started
        if window is not None and pixels.rgb(window, *SIDEBAR_PROBE) == SIDEBAR_RGB:
            return process, mapped, time.monotonic() - started
        time.sleep(0.005)
    stop(process)
    raise RuntimeError("the window did not show its first screen within 60 s")


# ------------------------------------------------------------------------------------------
# The floor: the minimal Tauri app, measured here and now
# ------------------------------------------------------------------------------------------

# PSS moves by tens of megabytes with what else maps the same libraries (other WebKit programs
# on the machine, a WebDriver session), so the app is compared with the minimal Tauri app
# measured in the same run, the same way (started directly, or by tauri-driver), 10 s after start.
_floors = {}


def floor(args, work, through_driver):
    """(total PSS in MB, how it was obtained) of the minimal Tauri app."""
    key = "driver" if through_driver else "direct"
    if key in _floors:
        return _floors[key]
    if not args.minimal or not os.path.exists(args.minimal):
        _floors[key] = (MINIMAL_TAURI_PSS_MB, f"Tauri minimal de DESKTOP.md {MINIMAL_TAURI_PSS_MB:.0f}")
        return _floors[key]
    env = harness.app_env(os.path.join(work, f"minimal-{key}"))
    if through_driver:
        driver = Driver(args, env, work, binary=args.minimal)
        try:
            time.sleep(10)
            figures = memory(driver.app_pid)
        finally:
            driver.close()
    else:
        with open(os.path.join(work, f"minimal-{key}.log"), "w") as log:
            process = subprocess.Popen([args.minimal], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                time.sleep(10)
                figures = memory(process.pid)
            finally:
                stop(process)
    how = "lancé par tauri-driver" if through_driver else "lancé directement"
    print(f"  Tauri minimal ({how}), à 10 s : {fmt_memory(figures)}", flush=True)
    _floors[key] = (figures["total"], f"Tauri minimal mesuré ici, {how} : {figures['total']:.0f}")
    return _floors[key]


def memory_target(args, work, through_driver):
    """(limit in MB, its wording) for a total PSS."""
    total, how = floor(args, work, through_driver)
    return total + MARGIN_MB, f"< {total + MARGIN_MB:.0f} MB ({how} + {MARGIN_MB:.0f})"


# ------------------------------------------------------------------------------------------
# The benchmarks
# ------------------------------------------------------------------------------------------

def bench_launch(args, work, report):
    print(f"1. fenêtre visible après le lancement ({args.runs} lancements, le premier à froid)")
    world = World(os.path.join(work, "launch"), carriers=12)
    pixels = x11.Display()
    mapped, painted, memories = [], [], []
    try:
        with open(os.path.join(work, "launch.log"), "w") as log:
            for run in range(args.runs):
                process, t_map, t_paint = launch(args.binary, world, pixels, log)
                mapped.append(t_map)
                painted.append(t_paint)
                note = ""
                if run == 0 or run == args.runs - 1:
                    # The same moment as the minimal app's figure: 10 s after start.
                    time.sleep(max(0.0, 10 - t_paint))
                    figures = memory(process.pid)
                    memories.append(figures)
                    note = f" ; à 10 s : {fmt_memory(figures)}"
                print(f"  lancement {run + 1}{' (à froid)' if run == 0 else ''} : fenêtre affichée "
                      f"{t_map * 1000:.0f} ms, premier écran peint {t_paint * 1000:.0f} ms{note}",
                      flush=True)
                stop(process)
                # The single-instance lock and the data-directory lock go with the process.
                time.sleep(0.5)
    finally:
        world.close()
    warm = sorted(painted[1:]) or painted
    median = statistics.median(warm)
    report.target("fenêtre visible (premier écran peint), médiane à chaud",
                  f"{median * 1000:.0f} ms (min {warm[0] * 1000:.0f}, max {warm[-1] * 1000:.0f}, "
                  f"n={len(warm)}) ; à froid {painted[0] * 1000:.0f} ms",
                  "< 1500 ms", median < 1.5)
    report.info("fenêtre affichée (mappée), médiane à chaud",
                f"{statistics.median(sorted(mapped[1:]) or mapped) * 1000:.0f} ms")
    after = memories[-1]
    limit, wording = memory_target(args, work, through_driver=False)
    report.target("PSS après démarrage (10 s)", fmt_memory(after), wording, after["total"] < limit)


class Driver(harness.Driver):
    """The e2e tests' tauri-driver, with a session on `binary` (the app by default) and the pid
    of the process it started; the app inherits `env`."""

    def __init__(self, args, env, work, binary=None):
        binary = binary or args.binary
        super().__init__(args, work, env)
        self.wait_ready(wait_for)
        self.session = Session(self.url, os.path.abspath(binary))
        self.app_pid = wait_for("the app process",
                                lambda: find_app(self.process.pid, os.path.basename(binary)), timeout=10)

    def close(self):
        app = self.app_pid
        self.session.close()
        self.stop()
        # The session's end normally ends the app; make sure it is gone before the next step.
        for _ in range(100):
            if not os.path.exists(f"/proc/{app}"):
                break
            time.sleep(0.1)
        else:
            os.kill(app, signal.SIGKILL)


def bench_broadcast(args, work, report):
    carriers = args.carriers
    screen = args.broadcast_screen
    print(f"2. mémoire pendant une diffusion à {carriers} transporteurs (API Cloud factice, cadence 0), "
          f"écran {SCREEN_NAMES[screen]} ouvert")
    # Measured first, alone: the app's web process must not be running beside it.
    limit, wording = memory_target(args, work, through_driver=True)
    world = World(os.path.join(work, "broadcast"), carriers=carriers, throttle_ms=0)
    driver = None
    try:
        driver = Driver(args, world.env, work)
        session = driver.session
        wait_for("the engine running", lambda: session.script(
            "return document.querySelector('#engine-banner').hidden;"), timeout=60)
        time.sleep(3)
        before = memory(driver.app_pid)
        print(f"  avant : {fmt_memory(before)}", flush=True)
        session.click(f"#nav-{screen}")
        # The fake lists one blocked, one pending and one unusable number.
        expected = carriers - 3
        started = time.monotonic()
        world.fakes.add_order(fake_services.order(777, "CMD-2025-777"))
        peak, samples, live = before, [], None
        while len(world.fakes.sent_messages()) < expected:
            if live is None and screen == "history" and len(world.fakes.sent_messages()) > expected // 10:
                live = session.script("return !document.querySelector('#history-live').hidden;")
            if time.monotonic() - started > args.broadcast_timeout:
                raise RuntimeError(f"broadcast not over after {args.broadcast_timeout} s: "
                                   f"{len(world.fakes.sent_messages())}/{expected}")
            figures = memory(driver.app_pid)
            figures["at"] = time.monotonic()
            figures["sent"] = len(world.fakes.sent_messages())
            samples.append(figures)
            if figures["total"] > peak["total"]:
                peak = figures
            time.sleep(1)
        elapsed = time.monotonic() - started
        time.sleep(5)
        after = memory(driver.app_pid)
        mid = samples[len(samples) // 2] if samples else before
        print(f"  pendant (milieu) : {fmt_memory(mid)}")
        print(f"  pic : {fmt_memory(peak)}")
        print(f"  pic, PSS anonyme/fichiers/mémoire partagée : {fmt_kinds(peak)} ; avant : {fmt_kinds(before)}")
        if args.samples:
            write_samples(args.samples, started, samples)
        print(f"  après (5 s) : {fmt_memory(after)}")
        print(f"  {expected} messages reçus par le faux en {elapsed:.1f} s "
              f"({expected / elapsed:.0f}/s)" + ("" if live is None else f" ; « en direct » affiché pendant l'envoi : {live}"))
        report.target(f"PSS pendant la diffusion à {carriers} (pic, écran {SCREEN_NAMES[screen]})",
                      fmt_memory(peak), wording, peak["total"] < limit)
        report.info(f"diffusion de bout en bout (cadence 0, faux en Python, écran {SCREEN_NAMES[screen]})",
                    f"{expected} messages en {elapsed:.1f} s ; PSS 5 s après la fin : {after['total']:.0f} MB")
    finally:
        if driver:
            driver.close()
        world.close()


def write_samples(path, started, samples):
    """One CSV line per second of the broadcast: seconds, messages sent, then per process
    total PSS and its anonymous / file / shared parts (MB), to see a growth's shape."""
    names = sorted({name for figures in samples for name in figures["kinds"]}, key=lambda n: n != "app")
    with open(path, "w") as out:
        columns = ["s", "sent", "total"] + [f"{n}_{k}" for n in names for k in ("pss", "anon", "file", "shmem")]
        out.write(",".join(columns) + "\n")
        for figures in samples:
            row = [f"{figures['at'] - started:.1f}", str(figures["sent"]), f"{figures['total']:.1f}"]
            for n in names:
                kinds = figures["kinds"].get(n, {"anon": 0, "file": 0, "shmem": 0})
                row += [f"{figures.get(n, 0):.1f}"] + [f"{kinds[k]:.1f}" for k in ("anon", "file", "shmem")]
            out.write(",".join(row) + "\n")
    print(f"  échantillons : {path}")


def seed_history(database, rows):
    """Adds `rows` deliveries (100 orders) in final states, like crates/cli/benches/history.rs."""
    db = sqlite3.connect(database, timeout=30)
    orders = max(1, rows // 10000)
    now_ms = int(time.time() * 1000)
    db.executemany(
        "INSERT INTO orders (id, reference, ville_depart, ville_arrivee, date_souhaitee, prix,"
        " type_marchandise, statut, created_at, source, received_at, fanned_out_at)"
        " VALUES (?, ?, ?, ?, '2025-11-03', 4500, 'Palettes', 'ouverte', NULL, 'webhook', ?, ?)",
        [(i, f"CMD-BENCH-{i}", c[0], c[1], now_ms, now_ms)
         for i in range(1, orders + 1) for c in [fake_services.CITIES[i % len(fake_services.CITIES)]]])
    db.execute(f"""
        INSERT INTO deliveries (order_id, carrier_id, batch, carrier_name, phone, status, attempts,
                                error, message_id, queued_at, next_attempt_at, sent_at, updated_at)
        WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {rows - 1}),
        r AS (SELECT n, CASE WHEN n % 1000 = 999 THEN 'interrupted'
                             WHEN n % 100 < 40 THEN 'delivered'
                             WHEN n % 100 < 65 THEN 'read'
                             WHEN n % 100 < 88 THEN 'sent'
                             WHEN n % 100 < 93 THEN 'failed'
                             WHEN n % 100 < 95 THEN 'invalid_number'
                             ELSE 'skipped' END AS status FROM seq)
        SELECT n / 10000 + 1, n % 10000 + 1, 0, 'Transporteur ' || (n % 10000),
               '+21261' || printf('%07d', n % 10000), status, 1,
               CASE WHEN status = 'failed' THEN 'HTTP 500 (après 3 tentatives)'
                    WHEN status = 'invalid_number' THEN 'numéro invalide' ELSE NULL END,
               CASE WHEN status IN ('sent', 'delivered', 'read') THEN 'wamid.BENCH' || n END,
               1700000000000 + n * 10, 1700000000000 + n * 10,
               CASE WHEN status IN ('sent', 'delivered', 'read') THEN 1700000000000 + n * 10 + 5 END,
               1700000000000 + n * 10 + 5
        FROM r""")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    db.close()
    return count


# Clicks "Plus anciens →" and resolves once the grid's rows were replaced and the next frame
# painted: what the user waits for, measured inside the page (performance.now()).
PAGE_CHANGE_JS = """
const done = arguments[arguments.length - 1];
const rows = document.querySelector('#history-rows');
const before = rows.querySelector('tr.delivery')?.dataset.id ?? null;
const started = performance.now();
const observer = new MutationObserver(() => {
  const first = rows.querySelector('tr.delivery');
  if (!first || first.dataset.id === before) return;
  observer.disconnect();
  const rendered = performance.now();
  // A task queued from the next animation frame runs once that frame is painted.
  requestAnimationFrame(() => setTimeout(() =>
    done({rendered: rendered - started, painted: performance.now() - started,
          first: first.dataset.id, rows: rows.querySelectorAll('tr.delivery').length}), 0));
});
observer.observe(rows, {childList: true});
document.querySelector('#page-older').click();
"""


def bench_history(args, work, report):
    rows = args.history_rows
    print(f"3. changement de page de l'historique à {spaced(rows)} lignes (WebDriver, {args.page_runs} pages)")
    world = World(os.path.join(work, "history"), carriers=12)
    pixels = x11.Display()
    try:
        # The app creates its database (migrations) at its first start.
        with open(os.path.join(work, "history-first-start.log"), "w") as log:
            process, _, _ = launch(args.binary, world, pixels, log)
            wait_for("the database", lambda: os.path.exists(world.database()), timeout=30)
            time.sleep(2)
            stop(process)
        started = time.monotonic()
        count = seed_history(world.database(), rows)
        print(f"  {spaced(count)} envois écrits en {time.monotonic() - started:.1f} s", flush=True)
        driver = Driver(args, world.env, work)
        try:
            session = driver.session
            wait_for("the engine running", lambda: session.script(
                "return document.querySelector('#engine-banner').hidden;"), timeout=60)
            session.click("#nav-history")
            wait_for("the first page", lambda: len(session.find("tr.delivery")) == 100, timeout=30)
            in_page, painted, wall = [], [], []
            seen = set()
            for run in range(args.page_runs + 1):
                session.cmd("POST", "/timeouts", {"script": 30000})
                t0 = time.monotonic()
                result = session.cmd("POST", "/execute/async", {"script": PAGE_CHANGE_JS, "args": []})
                t1 = time.monotonic()
                if result["rows"] != 100 or result["first"] in seen:
                    raise RuntimeError(f"unexpected page: {result}")
                seen.add(result["first"])
                if run == 0:
                    continue  # the first page change prepares the query's statement
                in_page.append(result["rendered"])
                painted.append(result["painted"])
                wall.append((t1 - t0) * 1000)
            page_info = session.text("#page-info")
        finally:
            driver.close()
    finally:
        world.close()
    median = statistics.median(painted)
    print(f"  dans la page (clic → lignes remplacées) : médiane {statistics.median(in_page):.1f} ms ; "
          f"→ image suivante peinte : médiane {median:.1f} ms, max {max(painted):.1f} ms ; "
          f"aller-retour WebDriver compris : médiane {statistics.median(wall):.0f} ms ; {page_info}")
    report.target(f"page suivante à {spaced(rows)} lignes, clic → lignes peintes, médiane",
                  f"{median:.1f} ms (n={len(painted)}, WebDriver compris {statistics.median(wall):.0f} ms)",
                  "< 100 ms", median < 100)


def bench_idle(args, work, report):
    print(f"4. mémoire au repos pendant {args.idle_secs} s (un relevé toutes les {args.idle_every} s)")
    limit, wording = memory_target(args, work, through_driver=False)
    world = World(os.path.join(work, "idle"), carriers=12)
    pixels = x11.Display()
    samples = []
    try:
        with open(os.path.join(work, "idle.log"), "w") as log:
            process, _, _ = launch(args.binary, world, pixels, log)
            started = time.monotonic()
            try:
                while True:
                    elapsed = time.monotonic() - started
                    figures = memory(process.pid)
                    samples.append((elapsed, figures))
                    print(f"  {elapsed / 60:5.1f} min : {fmt_memory(figures)} (charge {load_average()})", flush=True)
                    if elapsed >= args.idle_secs:
                        break
                    time.sleep(min(args.idle_every, max(0.0, args.idle_secs - elapsed)))
            finally:
                stop(process)
    finally:
        world.close()
    totals = [f["total"] for _, f in samples]
    # The first minute includes start-up settling (the first screen's data, WebKit's caches):
    # "flat" compares what follows it, when the run is long enough to have both, in anonymous
    # memory (PSS also moves with the other WebKit programs of the machine).
    settled = [f["uss"]["total"] for t, f in samples if t >= 60]
    since = "après la 1re minute"
    if len(settled) < 2:
        settled, since = [f["uss"]["total"] for _, f in samples], "depuis le lancement"
    drift = settled[-1] - settled[0]
    report.target(f"mémoire au repos sur {args.idle_secs / 60:.0f} min",
                  f"PSS début {totals[0]:.0f} MB, fin {totals[-1]:.0f} MB, max {max(totals):.0f} MB ; "
                  f"anonyme {since} {settled[0]:.0f} → {settled[-1]:.0f} MB ({drift:+.1f}, max {max(settled):.0f}) ; "
                  f"fin : {fmt_memory(samples[-1][1])}",
                  f"PSS {wording} et plat",
                  max(totals) < limit and abs(drift) < 10)


class Report:
    def __init__(self):
        self.lines = []

    def target(self, measure, figure, target, met):
        self.lines.append((measure, figure, f"{target} {'✔' if met else '✘'}"))

    def info(self, measure, figure):
        self.lines.append((measure, figure, ""))

    def print(self):
        print(f"\n== résultats (charge moyenne {load_average()}, {os.cpu_count()} cœurs)")
        for measure, figure, target in self.lines:
            print(f"- {measure} : {figure}{'  [' + target + ']' if target else ''}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--only", default="launch,broadcast,history",
                        help="comma-separated: launch, broadcast, history, idle")
    parser.add_argument("--runs", type=int, default=7, help="launches (the first is cold)")
    parser.add_argument("--carriers", type=int, default=10000)
    parser.add_argument("--broadcast-timeout", type=float, default=900)
    parser.add_argument("--broadcast-screen", choices=sorted(SCREEN_NAMES), default="history",
                        help="the screen open during the broadcast (history: refreshed every second)")
    parser.add_argument("--history-rows", type=int, default=1_000_000)
    parser.add_argument("--page-runs", type=int, default=9)
    parser.add_argument("--idle-secs", "--duration", type=float, default=3600)
    parser.add_argument("--idle-every", type=float, default=60)
    parser.add_argument("--tauri-driver", default=shutil.which("tauri-driver") or "tauri-driver")
    parser.add_argument("--native-driver", default="/usr/bin/WebKitWebDriver")
    parser.add_argument("--minimal", help="the minimal Tauri app to compare memory with "
                        "(default: examples/minimal_tauri next to --binary)")
    parser.add_argument("--samples", help="write the broadcast's per-second memory samples to this CSV file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.minimal is None:
        args.minimal = os.path.join(os.path.dirname(os.path.abspath(args.binary)), "examples", "minimal_tauri")
    benches = {"launch": bench_launch, "broadcast": bench_broadcast, "history": bench_history, "idle": bench_idle}
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in benches]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    work = tempfile.mkdtemp(prefix="relay-bench-")
    report = Report()
    print(f"binaire : {args.binary} ; charge moyenne au départ {load_average()}", flush=True)
    try:
        for name in wanted:
            benches[name](args, work, report)
    finally:
        report.print()
        if args.keep:
            print(f"fichiers gardés dans {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
