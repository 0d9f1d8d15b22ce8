"""loom's per-image randomness for the latent-variable models, in Python, written from
docs/draw.md ("Random numbers, exactly"): the binarized image and the posterior noise eps
that loom's draw and rae draw for an image, so that a PyTorch reference computes the very
same loss as loom without reading any C code or output.

  binarize(img, noise_seed)          -> x (HW,) float in {0, 1}
  normals(img, noise_seed, k, count) -> count standard normals, float32
"""

import math

import numpy as np

M64 = (1 << 64) - 1
STATIC_BIN_SEED = 0x5EEDB1A7C0DE2015


def splitmix64(state):
    """-> (new state, output)"""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro256ss:
    """xoshiro256** (Blackman & Vigna); the state is four successive splitmix64 outputs"""

    def __init__(self, seed):
        self.s, st = [], seed & M64
        for _ in range(4):
            st, v = splitmix64(st)
            self.s.append(v)

    def next(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform24(self):
        """float32 in [0, 1): the top 24 bits"""
        return np.float32((self.next() >> 40) * (1.0 / 16777216.0))


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in bytes(data):
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def binarize(img, noise_seed):
    """x_i = 1 if u_i * 255 < v_i (float32 arithmetic), u_i the image stream's 24-bit uniforms"""
    flat = np.asarray(img, dtype=np.uint8).reshape(-1)
    key = noise_seed if noise_seed else STATIC_BIN_SEED
    r = Xoshiro256ss(fnv1a(flat) ^ ((key * 0x9E3779B97F4A7C15) & M64))
    x = np.zeros(flat.size, dtype=np.float32)
    for i, v in enumerate(flat):
        x[i] = 1.0 if r.uniform24() * np.float32(255.0) < np.float32(v) else 0.0
    return x


def noise_stream(img, noise_seed, k):
    flat = np.asarray(img, dtype=np.uint8).reshape(-1)
    seed = fnv1a(flat) ^ ((noise_seed * 0xBF58476D1CE4E5B9) & M64) ^ (((k + 1) * 0x94D049BB133111EB) & M64)
    return Xoshiro256ss(seed)


def normals(r, count):
    """count N(0, 1) values (float32) from stream r: Box-Muller pairs (cos, sin), the
    unused sin of the last pair dropped when count is odd"""
    out = np.zeros(count, dtype=np.float32)
    for j in range(0, count, 2):
        u1 = ((r.next() >> 11) + 1.0) * (1.0 / 9007199254740992.0)
        u2 = (r.next() >> 11) * (1.0 / 9007199254740992.0)
        rad, th = math.sqrt(-2.0 * math.log(u1)), 6.283185307179586 * u2
        out[j] = rad * math.cos(th)
        if j + 1 < count:
            out[j + 1] = rad * math.sin(th)
    return out


def self_check():
    """the published xoshiro256** / splitmix64 test vectors would need the reference C
    code; instead, two properties that any transcription error breaks"""
    r = Xoshiro256ss(1)
    u = np.array([r.uniform24() for _ in range(20000)], dtype=np.float64)
    assert 0.49 < u.mean() < 0.51, u.mean()
    z = normals(Xoshiro256ss(2), 20001)
    assert abs(z.mean()) < 0.03 and 0.97 < z.std() < 1.03, (z.mean(), z.std())
