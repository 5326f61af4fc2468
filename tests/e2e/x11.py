"""What the X server says about the app's windows, for the tray test and the benchmarks:
finding windows (xdotool), reading pixels back and asking a window to close as a window
manager would (libX11 through ctypes). Standard library only, plus the xdotool command.
"""

import ctypes
import subprocess

Z_PIXMAP = 2
ALL_PLANES = 0xFFFFFFFFFFFFFFFF
CLIENT_MESSAGE = 33
NO_EVENT_MASK = 0


class ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    # XEvent is a union padded to 24 longs.
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


class Display:
    """One connection to the X server of $DISPLAY."""

    def __init__(self):
        lib = ctypes.cdll.LoadLibrary("libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XGetImage.restype = ctypes.c_void_p
        lib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_uint, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
        lib.XGetPixel.restype = ctypes.c_ulong
        lib.XGetPixel.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.XDestroyImage.argtypes = [ctypes.c_void_p]
        lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.XInternAtom.restype = ctypes.c_ulong
        lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                   ctypes.POINTER(XEvent)]
        # A window unmapped between two calls answers BadMatch or BadWindow: ignore it instead
        # of letting Xlib's default handler exit the process.
        self._handler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)(lambda d, e: 0)
        lib.XSetErrorHandler(self._handler)
        self.display = lib.XOpenDisplay(None)
        if not self.display:
            raise RuntimeError("no X display: run under xvfb-run")
        self.lib = lib

    def pixels(self, window, x, y, width, height):
        """The RGB triples of a window's rectangle, row by row; None if it cannot be read."""
        image = self.lib.XGetImage(self.display, window, x, y, width, height, ALL_PLANES, Z_PIXMAP)
        self.lib.XSync(self.display, 0)
        if not image:
            return None
        out = []
        for j in range(height):
            for i in range(width):
                p = self.lib.XGetPixel(image, i, j)
                out.append(((p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF))
        self.lib.XDestroyImage(image)
        return out

    def rgb(self, window, x, y):
        found = self.pixels(window, x, y, 1, 1)
        return found[0] if found else None

    def ask_to_close(self, window):
        """WM_DELETE_WINDOW, as a window manager sends it when the user clicks the close button."""
        protocols = self.lib.XInternAtom(self.display, b"WM_PROTOCOLS", 0)
        delete = self.lib.XInternAtom(self.display, b"WM_DELETE_WINDOW", 0)
        event = XEvent()
        event.xclient.type = CLIENT_MESSAGE
        event.xclient.window = window
        event.xclient.message_type = protocols
        event.xclient.format = 32
        event.xclient.data[0] = delete
        event.xclient.data[1] = 0  # CurrentTime
        self.lib.XSendEvent(self.display, window, 0, NO_EVENT_MASK, ctypes.byref(event))
        self.lib.XSync(self.display, 0)


def xdotool(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True).stdout


def search(*args):
    """Window ids from `xdotool search ARGS`."""
    return [int(w) for w in xdotool("search", *args).split()]


def visible_windows():
    return set(search("--onlyvisible", "--name", "."))


def geometry(window):
    """(x, y, width, height) of a window on the screen."""
    values = {}
    for line in xdotool("getwindowgeometry", "--shell", str(window)).splitlines():
        key, _, value = line.partition("=")
        values[key] = int(value) if value.lstrip("-").isdigit() else value
    return values.get("X"), values.get("Y"), values.get("WIDTH"), values.get("HEIGHT")
