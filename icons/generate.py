#!/usr/bin/env python3
"""Draws the app and tray icons of CamionBack Relay as RGBA PNG files, with the standard
library only (no PIL, no ImageMagick): a white truck on a rounded square, and for the tray the
same truck on a disc whose colour and badge say the state (idle, sending, paused, disconnected).

Run from anywhere: python3 icons/generate.py — the PNGs are written next to this script.
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = 4  # 4x4 samples per pixel: smooth edges without a drawing library


def png(path, size, pixels):
    """Writes an 8-bit RGBA PNG; `pixels` is a list of rows of (r, g, b, a)."""
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(chunk(b"IHDR", header))
        out.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        out.write(chunk(b"IEND", b""))


# Shapes in unit coordinates (0..1, y down); each answers "is this point inside?".
def rounded_rect(x0, y0, x1, y1, r):
    def inside(x, y):
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return False
        cx = min(max(x, x0 + r), x1 - r)
        cy = min(max(y, y0 + r), y1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    return inside


def rect(x0, y0, x1, y1):
    return lambda x, y: x0 <= x <= x1 and y0 <= y <= y1


def circle(cx, cy, r):
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def ring(cx, cy, r_out, r_in):
    return lambda x, y: r_in * r_in <= (x - cx) ** 2 + (y - cy) ** 2 <= r_out * r_out


def polygon(points):
    def inside(x, y):
        hit = False
        j = len(points) - 1
        for i, (xi, yi) in enumerate(points):
            xj, yj = points[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                hit = not hit
            j = i
        return hit
    return inside


def thick_line(x0, y0, x1, y1, width):
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length

    def inside(x, y):
        t = (x - x0) * ux + (y - y0) * uy
        if t < 0 or t > length:
            return False
        return abs((x - x0) * uy - (y - y0) * ux) <= width / 2
    return inside


def truck(scale, ox, oy, body, window, wheel):
    """The truck as (shape, colour) layers, drawn in a box of `scale` at (ox, oy)."""
    def s(x, y):
        return ox + x * scale, oy + y * scale

    def r(x0, y0, x1, y1, rad=0.0):
        a, b = s(x0, y0)
        c, d = s(x1, y1)
        return rounded_rect(a, b, c, d, rad * scale) if rad else rect(a, b, c, d)

    def c(cx, cy, rad):
        a, b = s(cx, cy)
        return circle(a, b, rad * scale)

    cab = polygon([s(0.64, 0.36), s(0.84, 0.36), s(0.98, 0.56), s(0.98, 0.76), s(0.64, 0.76)])
    return [
        (r(0.02, 0.22, 0.60, 0.76, 0.04), body),   # cargo box
        (cab, body),                               # cab
        (polygon([s(0.70, 0.42), s(0.82, 0.42), s(0.91, 0.55), s(0.70, 0.55)]), window),
        (c(0.22, 0.78, 0.11), wheel),
        (c(0.80, 0.78, 0.11), wheel),
        (c(0.22, 0.78, 0.045), body),
        (c(0.80, 0.78, 0.045), body),
    ]


def render(size, layers):
    rows = []
    n = SAMPLES
    for py in range(size):
        row = []
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(n):
                for sx in range(n):
                    x = (px + (sx + 0.5) / n) / size
                    y = (py + (sy + 0.5) / n) / size
                    colour = (0, 0, 0, 0)
                    for shape, fill in layers:
                        if shape(x, y):
                            colour = fill
                    a = colour[3] / 255.0
                    acc[0] += colour[0] * a
                    acc[1] += colour[1] * a
                    acc[2] += colour[2] * a
                    acc[3] += a
            alpha = acc[3] / (n * n)
            if acc[3] > 0:
                rgb = [round(acc[i] / acc[3]) for i in range(3)]
            else:
                rgb = [0, 0, 0]
            row.append((rgb[0], rgb[1], rgb[2], round(alpha * 255)))
        rows.append(row)
    return rows


WHITE = (255, 255, 255, 255)
BRAND = (14, 122, 94, 255)        # CamionBack green
BRAND_DARK = (8, 84, 64, 255)
ACCENT = (255, 184, 28, 255)      # the road line


def app_icon_layers():
    layers = [(rounded_rect(0.04, 0.04, 0.96, 0.96, 0.2), BRAND)]
    layers.append((rect(0.12, 0.80, 0.88, 0.83), ACCENT))
    layers += truck(0.72, 0.14, 0.10, WHITE, BRAND_DARK, (30, 30, 30, 255))
    return layers


def tray_layers(state):
    colours = {
        "idle": (14, 122, 94, 255),
        "sending": (25, 103, 210, 255),
        "paused": (230, 140, 0, 255),
        "disconnected": (198, 40, 40, 255),
    }
    bg = colours[state]
    layers = [(circle(0.5, 0.5, 0.48), bg)]
    if state == "idle":
        layers += truck(0.66, 0.14, 0.12, WHITE, bg, (25, 25, 25, 255))
        return layers
    # Smaller and lower, leaving the top right corner to the state's badge.
    layers += truck(0.58, 0.13, 0.22, WHITE, bg, (25, 25, 25, 255))
    layers.append((circle(0.76, 0.24, 0.18), WHITE))
    if state == "sending":
        # An arrow: messages leaving.
        layers.append((rect(0.66, 0.215, 0.78, 0.265), bg))
        layers.append((polygon([(0.76, 0.14), (0.87, 0.24), (0.76, 0.34)]), bg))
    elif state == "paused":
        layers.append((rect(0.685, 0.15, 0.735, 0.33), bg))
        layers.append((rect(0.785, 0.15, 0.835, 0.33), bg))
    elif state == "disconnected":
        layers.append((thick_line(0.69, 0.17, 0.83, 0.31, 0.06), bg))
        layers.append((thick_line(0.83, 0.17, 0.69, 0.31, 0.06), bg))
    return layers


def main():
    app = app_icon_layers()
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        png(os.path.join(HERE, name), size, render(size, app))
    for state in ["idle", "sending", "paused", "disconnected"]:
        png(os.path.join(HERE, f"tray-{state}.png"), 64, render(64, tray_layers(state)))
    print("icônes écrites dans", HERE)


if __name__ == "__main__":
    main()
