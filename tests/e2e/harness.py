"""What the three e2e files share around their story: the app's environment in a temporary
directory, the tray and notification server for screenshots, tauri-driver, and the `main` that
prints the closing line scripts/test.sh counts ("e2e: N vérifications réussies en …")."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import fakes


def app_env(work, **settings):
    """The process environment with the app's data, XDG folders and `settings` in `work`."""
    env = dict(os.environ)
    env.update({
        "RELAY_DATA_DIR": os.path.join(work, "data"),
        "XDG_DATA_HOME": os.path.join(work, "xdg-data"),
        "XDG_CACHE_HOME": os.path.join(work, "xdg-cache"),
        "XDG_CONFIG_HOME": os.path.join(work, "xdg-config"),
        "RELAY_LOG": "info",
    })
    env.update(settings)
    return env


def cloud_api_env(work, fake_url, **settings):
    """`app_env` for the app on the Cloud API channel against the loopback fakes of
    tests/e2e/fakes.py (CamionBack API and Cloud API at `fake_url`), then `settings`."""
    return app_env(
        work,
        RELAY_CHANNEL="cloud-api",
        RELAY_WEBHOOK_ADDR="127.0.0.1:0",
        CAMIONBACK_API_URL=fake_url,
        CAMIONBACK_API_TOKEN=fakes.CAMIONBACK_TOKEN,
        CAMIONBACK_POLL_SECS="1",
        WHATSAPP_API_URL=fake_url,
        WHATSAPP_PHONE_NUMBER_ID=fakes.PHONE_NUMBER_ID,
        WHATSAPP_TOKEN=fakes.WHATSAPP_TOKEN,
        **settings,
    )


def trayer(env, *extra):
    """A panel with a system tray (XEmbed), top right."""
    return subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "28",
         "--transparent", "false", "--SetDockType", "true", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def screenshot_helpers(screenshots, work, env):
    """A tray and a notification server, so captures show both; none without screenshots."""
    helpers = []
    if not screenshots:
        return helpers
    os.makedirs(screenshots, exist_ok=True)
    if shutil.which("trayer"):
        helpers.append(trayer(env, "--tint", "0x10231e"))
    if shutil.which("dunst"):
        # Bottom right, so notifications do not hide the window's buttons in captures.
        dunstrc = os.path.join(work, "dunstrc")
        with open(dunstrc, "w") as f:
            f.write("[global]\norigin = bottom-right\noffset = 16x16\nfont = DejaVu Sans 10\n"
                    "frame_width = 1\nwidth = 360\n")
        helpers.append(subprocess.Popen(["dunst", "-config", dunstrc], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return helpers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    """tauri-driver on free ports (its native WebKitWebDriver port too: the default 4445 is
    taken when another run is going on), logging to `work`/tauri-driver.log."""

    def __init__(self, args, work, env):
        self.port = free_port()
        self.log = open(os.path.join(work, "tauri-driver.log"), "w")
        self.process = subprocess.Popen(
            [args.tauri_driver, "--port", str(self.port), "--native-port", str(free_port()),
             "--native-driver", args.native_driver],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, wait_for):
        wait_for("tauri-driver",
                 lambda: socket.create_connection(("127.0.0.1", self.port), 0.5).close() or True,
                 timeout=15)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run_main(args, run, *, prefix, label="", logs=("tauri-driver.log",)):
    """Runs `run(args, work)` in a fresh temporary directory and prints the closing line; on a
    failure, the end of each log in `logs` and where the files were kept. Returns the exit code."""
    suffix = f" ({label})" if label else ""
    work = tempfile.mkdtemp(prefix=prefix)
    started = time.monotonic()
    ok = False
    try:
        checks = run(args, work)
        ok = True
        print(f"e2e: {len(checks.passed)} vérifications réussies en {time.monotonic() - started:.1f} s{suffix}")
    except Exception as err:
        traceback.print_exc()
        print(f"e2e: ÉCHEC{suffix} : {err}", file=sys.stderr)
        for name in logs:
            log = os.path.join(work, name)
            if os.path.exists(log):
                print(f"--- {name} (fin) ---", file=sys.stderr)
                with open(log, errors="replace") as f:
                    print("".join(f.readlines()[-60:]), file=sys.stderr)
    finally:
        if args.keep or not ok:
            print(f"e2e: fichiers gardés dans {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1
