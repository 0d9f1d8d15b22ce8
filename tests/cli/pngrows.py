"""The rows of an 8-bit PNG (gray, RGB or RGBA; no interlace), unfiltered, with only the
standard library: for the tests' checks of pixels that loom (or Chromium) wrote.

  read(path) -> (w, h, bpp, rows): rows[y] a bytearray of w * bpp samples
"""

import struct
import zlib


def read(path):
    b = open(path, 'rb').read()
    assert b[:8] == b'\x89PNG\r\n\x1a\n', path + ': not a PNG file'
    i, idat, w, h, bpp = 8, b'', 0, 0, 0
    while i < len(b):
        n, t = struct.unpack('>I4s', b[i:i + 8]); d = b[i + 8:i + 8 + n]; i += 12 + n
        if t == b'IHDR':
            w, h, depth, ct = struct.unpack('>IIBB', d[:10]); bpp = {0: 1, 2: 3, 6: 4}[ct]
        if t == b'IDAT': idat += d
    raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0; c = prev[x - bpp] if x >= bpp else 0; up = prev[x]
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + up) & 255
            elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
        rows.append(line); prev = line
    return w, h, bpp, rows
