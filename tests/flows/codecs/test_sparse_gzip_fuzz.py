"""Differential fuzzing of the C gzip reader (``_sparse_gzip.c``) against Python's gzip and zlib.

Every case is a gzip file, made by one generator below: zlib's own streams (all levels and
strategies, flushes, window sizes, header fields, several members, zero padding), hand-made
deflate blocks (stored, fixed, and dynamic with odd code sets), random bytes, and damaged copies
of all these. The C reader must agree with ``gzip.decompress``: the same bytes, or a failure
(EOFError or ``SparseGzipError``, nothing else, and EOFError for a cut file), through dense reads
in random pieces and through ``next_set_plane``, whose planes, skips, spans and positions must be
those of the reference bytes cut into planes.

Cases are drawn from ``random.Random(f"{seed}:{family}:{index}")``, so each reproduces alone:
a failure names ``RGA_FUZZ_SEED=... RGA_FUZZ_CASE=family:index``; set both to rerun that case.
The run is bounded by ``RGA_FUZZ_SECONDS`` (20 s by default, shared by the families). Under
AddressSanitizer: ``tests/flows/codecs/asan.sh`` (docs/DESIGN.md).
"""

from __future__ import annotations

import faulthandler
import gzip
import os
import random
import struct
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from flows.codecs.plane_reader import SparseGzipError

SEED = int(os.environ.get("RGA_FUZZ_SEED", "17"))
SECONDS = float(os.environ.get("RGA_FUZZ_SECONDS", "20"))
ONLY = os.environ.get("RGA_FUZZ_CASE", "")  # "family:index": that case alone
MIN_CASES = 25  # per family, however slow the machine
HANG_SECONDS = 300  # one test this long means a hang: dump every thread's stack and exit

FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT = 1, 2, 4, 8, 16
STRATEGIES = [
    zlib.Z_DEFAULT_STRATEGY,
    zlib.Z_FILTERED,
    zlib.Z_HUFFMAN_ONLY,
    zlib.Z_RLE,
    zlib.Z_FIXED,
]
FLUSHES = [zlib.Z_SYNC_FLUSH, zlib.Z_FULL_FLUSH, zlib.Z_PARTIAL_FLUSH, zlib.Z_BLOCK]
LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99]
LEN_BASE += [115, 131, 163, 195, 227, 258]
LEN_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
DIST_EXTRA = [0, 0] + [k // 2 for k in range(28)]
DIST_BASE = [1]
for _extra in DIST_EXTRA[:-1]:
    DIST_BASE.append(DIST_BASE[-1] + (1 << _extra))
CODE_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
FIXED_LIT = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 8


@pytest.fixture(autouse=True)
def _watchdog():
    """A hang in C (which never returns to Python) still ends the run, with a stack dump."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---- data and zlib's streams ------------------------------------------------------------------


def payload(rng: random.Random) -> bytes:
    """Bytes like a mask file's: zero runs with islands of labels, noise, text, or a mix."""
    n = rng.choice([0, 1, 2, 3, 258, 1000, 32767, 32768, 32769, 65536, 65537, 100_000, 250_000])
    n = n if rng.random() < 0.5 else rng.randrange(n + 1)
    kind = rng.choice(["zeros", "mask", "mask", "labels", "noise", "text", "mixed"])
    if kind == "zeros":
        return bytes(n)
    if kind == "noise":
        return rng.randbytes(n)
    if kind == "text":
        words = [rng.randbytes(rng.randint(1, 12)) for _ in range(20)]
        return b"".join(rng.choice(words) for _ in range(n // 6 + 1))[:n]
    if kind == "mixed":
        return b"".join(payload(rng) for _ in range(rng.randint(2, 4)))[:400_000]
    data = bytearray(n)
    for _ in range(rng.randint(0, 20) if n else 0):
        start, length = rng.randrange(n), rng.choice([1, 2, 3, 50, 258, 300, 3000])
        value = 1 if kind == "mask" else rng.randint(1, 255)
        data[start : start + length] = bytes([value]) * len(data[start : start + length])
    return bytes(data)


def zlib_deflate(rng: random.Random, data: bytes) -> bytes:
    """A raw deflate stream by zlib: random level, strategy, window, memory and flushes."""
    level = rng.choice([0, 1, 2, 4, 6, 9, -1])
    packer = zlib.compressobj(
        level, zlib.DEFLATED, -rng.randint(9, 15), rng.randint(1, 9), rng.choice(STRATEGIES)
    )
    pieces, at = [], 0
    while at < len(data):
        step = rng.choice([1, 100, 5000, 70_000, len(data)])
        pieces.append(packer.compress(data[at : at + step]))
        at += step
        if rng.random() < 0.2:
            pieces.append(packer.flush(rng.choice(FLUSHES)))
    return b"".join(pieces) + packer.flush()


def gzip_header(rng: random.Random) -> bytes:
    """A member header with a random set of optional fields (reserved flag bits sometimes)."""
    flags = rng.getrandbits(5) if rng.random() < 0.5 else 0
    flags |= rng.choice([0, 0, 0, 32, 64, 128])
    header = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, flags, rng.getrandbits(32), 0, 255)
    if flags & FEXTRA:
        extra = rng.randbytes(rng.choice([0, 1, 6, 300]))
        header += struct.pack("<H", len(extra)) + extra
    for field in (FNAME, FCOMMENT):
        if flags & field:
            header += rng.randbytes(rng.randint(0, 30)).replace(b"\0", b"x") + b"\0"
    if flags & FHCRC:
        header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    return header


def trailer(data: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def zlib_members(rng: random.Random) -> list[bytes]:
    """One to three gzip members of zlib's making (some by gzip.compress), zero padding after
    some (gzip accepts it between and after members)."""
    members = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data = payload(rng)
        if rng.random() < 0.2:
            member = gzip.compress(data, rng.randint(0, 9), mtime=0)
        else:
            member = gzip_header(rng) + zlib_deflate(rng, data) + trailer(data)
        members.append(member + bytes(rng.choice([0, 0, 0, 1, 9, 1000])))
    return members


# ---- hand-made deflate blocks -----------------------------------------------------------------


class Bits:
    """Deflate's bit order: values least significant bit first, Huffman codes most first."""

    def __init__(self) -> None:
        self.out, self.acc, self.nacc = bytearray(), 0, 0

    def put(self, value: int, n: int) -> None:
        self.acc |= (value & ((1 << n) - 1)) << self.nacc
        self.nacc += n
        while self.nacc >= 8:
            self.out.append(self.acc & 255)
            self.acc >>= 8
            self.nacc -= 8

    def code(self, codes: dict[int, tuple[int, int]], symbol: int) -> None:
        code, length = codes[symbol]
        self.put(int(format(code, f"0{length}b")[::-1], 2), length)

    def align(self, rng: random.Random) -> None:  # the pad bits are ignored: make them random
        self.put(rng.getrandbits(8), -self.nacc % 8)

    def tobytes(self) -> bytes:
        return bytes(self.out) + (bytes([self.acc]) if self.nacc else b"")


def canonical(lengths: list[int]) -> dict[int, tuple[int, int]]:
    """symbol: (code, length), as deflate assigns them (meaningless if over-subscribed)."""
    codes, code = {}, 0
    for length in range(1, 16):
        for symbol, used in enumerate(lengths):
            if used == length:
                codes[symbol] = (code & ((1 << length) - 1), length)
                code += 1
        code <<= 1
    return codes


def complete_depths(rng: random.Random, n: int, longest: int) -> list[int]:
    """Code lengths of a complete prefix code of n >= 2 codes: leaves split until n (deepest
    first at times, so that codes as long as ``longest`` occur)."""
    depths = [0]
    while len(depths) < n:
        open_ = [i for i, d in enumerate(depths) if d < longest]
        i = max(open_, key=depths.__getitem__) if rng.random() < 0.3 else rng.choice(open_)
        depth = depths.pop(i)
        depths += [depth + 1, depth + 1]
    return depths


def code_set(rng: random.Random, n: int, needed: list[int], longest: int, edge: float) -> list[int]:
    """Code lengths for n symbols: a complete code holding ``needed``, or (with probability
    ``edge``) one with an edge: a single code, incomplete, over-subscribed, empty, a chain of
    lengths 1, 2, ... up to ``longest``, or noise."""
    shape = "complete"
    if rng.random() < edge:
        shape = rng.choice(["single", "incomplete", "over", "empty", "chain", "chain", "noise"])
    if shape == "noise":
        return [rng.randint(0, longest) if rng.random() < 0.3 else 0 for _ in range(n)]
    lengths = [0] * n
    if shape == "empty":
        return lengths
    if shape == "single" or n < 2:
        depths = [rng.choice([1, 1, 1, 2, longest])]
    elif shape == "chain" and n >= 3:
        k = rng.randint(2, min(longest, n - 1))
        depths = [*range(1, k + 1), k]
    else:
        count = rng.randint(max(2, len(needed)), min(n, 1 << longest))
        depths = complete_depths(rng, count, longest)
    others = [s for s in range(n) if s not in needed]
    symbols = (needed + rng.sample(others, len(others)))[: len(depths)]
    for symbol, depth in zip(symbols, rng.sample(depths, len(depths)), strict=False):
        lengths[symbol] = depth
    used = [s for s in range(n) if lengths[s]]
    if shape == "incomplete" and len(used) > 1:
        lengths[rng.choice(used)] = 0
    if shape == "over":
        unused = [s for s in range(n) if not lengths[s]]
        if unused:
            lengths[rng.choice(unused)] = rng.randint(1, longest)
        elif longer := [s for s in used if lengths[s] > 1]:
            lengths[rng.choice(longer)] -= 1  # a shorter code in a complete set over-fills it
    return lengths


def run_lengths(rng: random.Random, lengths: list[int]) -> list[tuple[int, int, int]]:
    """The code-length symbols (symbol, extra value, extra bits) that send ``lengths``; now and
    then a repeat with nothing before it, or one that runs past the end."""
    out, i = [], 0
    if rng.random() < 0.03:
        out.append((16, rng.getrandbits(2), 2))
    while i < len(lengths):
        value, run = lengths[i], 1
        while i + run < len(lengths) and lengths[i + run] == value:
            run += 1
        if rng.random() < 0.15 or run < 3:
            out.append((value, 0, 0))
            i += 1
        elif value == 0:
            n = min(run, 138 if run >= 11 else 10)
            out.append((18, n - 11, 7) if n >= 11 else (17, n - 3, 3))
            i += n
        else:
            n = min(run - 1, 6)
            out.append((value, 0, 0))
            if n >= 3:
                out.append((16, n - 3, 2))
            i += 1 + (n if n >= 3 else 0)
    if rng.random() < 0.03:
        out.append((18, 127, 7))
    return out


def write_symbols(
    rng: random.Random, bits: Bits, lit: dict, dist: dict, made: int, odd: bool = False
) -> int:
    """Literals, matches (some too far back) and runs of one repeated match, then end-of-block;
    returns the member's decoded length so far. ``odd``: allow symbols 286-287 and 30-31."""
    literals = [s for s in lit if s < 256]
    lengths = [s for s in lit if 257 <= s < (288 if odd else 286)]
    dists = [s for s in dist if s < (32 if odd else 30)]
    last, reckless = None, rng.random() < 0.1  # reckless: distances past the start, too
    for _ in range(rng.randint(0, 80)):
        op = rng.random()
        if op < 0.4 and literals:
            bits.code(lit, rng.choice(literals))
            made += 1
        elif op < 0.85 and lengths and dists:
            ls, ds = rng.choice(lengths), rng.choice(dists)
            near = [s for s in dists if s < 30 and DIST_BASE[s] <= made]
            if not reckless:
                if not near:
                    continue
                ds = rng.choice(near)
            lx = rng.getrandbits(LEN_EXTRA[ls - 257]) if ls < 286 else 0
            dx = rng.getrandbits(DIST_EXTRA[ds]) if ds < 30 else 0
            if ds < 30 and DIST_BASE[ds] <= made:
                dx = min(dx, made - DIST_BASE[ds])
            last = (ls, lx, ds, dx)
            for _ in range(rng.choice([1, 1, 1, 2, 50, 300])):  # zero runs: one match repeated
                bits.code(lit, ls)
                bits.put(lx, LEN_EXTRA[ls - 257] if ls < 286 else 0)
                bits.code(dist, ds)
                bits.put(dx, DIST_EXTRA[ds] if ds < 30 else 0)
                made += LEN_BASE[ls - 257] + lx if ls < 286 else 0
        elif last is None and 0 in lit:
            bits.code(lit, 0)  # a zero byte for matches to repeat
            made += 1
    if 256 in lit and rng.random() < 0.98:
        bits.code(lit, 256)
    return made


def dynamic_block(rng: random.Random, bits: Bits, made: int) -> int:
    nlit = rng.randint(257, 286) if rng.random() < 0.97 else rng.randint(287, 288)
    ndist = rng.randint(1, 30) if rng.random() < 0.97 else rng.randint(31, 32)
    lit = code_set(rng, nlit, [256] if rng.random() < 0.98 else [], 15, 0.3)
    dist = code_set(rng, ndist, [], 15, 0.3)
    symbols = run_lengths(rng, lit + dist)
    needed = sorted({s for s, _, _ in symbols})
    cl = code_set(rng, 19, needed, 7, 0.1)
    sent = max([4] + [i + 1 for i in range(19) if cl[CODE_ORDER[i]]])
    if rng.random() < 0.05:
        sent = rng.randint(4, 19)
    bits.put(nlit - 257, 5)
    bits.put(ndist - 1, 5)
    bits.put(sent - 4, 4)
    for i in range(sent):
        bits.put(cl[CODE_ORDER[i]], 3)
    cl_codes = canonical(cl)
    for symbol, extra, n in symbols:
        if symbol not in cl_codes:  # the code lacks it: the block is refused before this
            bits.put(rng.getrandbits(16), 16)
            return made
        bits.code(cl_codes, symbol)
        bits.put(extra, n)
    return write_symbols(rng, bits, canonical(lit), canonical(dist), made)


def crafted_deflate(rng: random.Random) -> bytes:
    """One to four blocks (stored, fixed, dynamic; type 3 rarely), the last one final (nearly
    always), then a few junk bits."""
    bits, made = Bits(), 0
    blocks = rng.randint(1, 4)
    for b in range(blocks):
        final = b == blocks - 1 and rng.random() < 0.97
        kind = rng.choice([0, 1, 2, 2, 2]) if rng.random() < 0.99 else 3
        bits.put(int(final), 1)
        bits.put(kind, 2)
        if kind == 0:
            bits.align(rng)
            data = rng.choice([bytes, rng.randbytes])(rng.choice([0, 1, 300, 40_000, 65535]))
            bits.put(len(data), 16)
            bits.put(~len(data) if rng.random() < 0.97 else rng.getrandbits(16), 16)
            bits.out += data[: len(data) if rng.random() < 0.97 else rng.randrange(len(data) + 1)]
            made += len(data)
        elif kind == 1:
            odd = rng.random() < 0.05
            made = write_symbols(rng, bits, canonical(FIXED_LIT), canonical([5] * 32), made, odd)
        elif kind == 2:
            made = dynamic_block(rng, bits, made)
    bits.put(rng.getrandbits(16), rng.randint(0, 16))
    return bits.tobytes()


def crafted_member(rng: random.Random) -> bytes:
    """A gzip member around hand-made deflate data: with the right trailer where zlib decodes
    the data (the member is then valid), with random bytes where it does not."""
    raw = crafted_deflate(rng)
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(raw)
    except zlib.error:
        return gzip_header(rng) + raw + rng.randbytes(8)
    if not inflater.eof:
        return gzip_header(rng) + raw + rng.randbytes(rng.choice([0, 8]))
    body = raw[: len(raw) - len(inflater.unused_data)]
    end = trailer(data) if rng.random() < 0.95 else rng.randbytes(8)
    return gzip_header(rng) + body + end


# ---- damage -----------------------------------------------------------------------------------


def damage(rng: random.Random, members: list[bytes]) -> bytes:
    """One to three of: a flipped bit (anywhere, in a header, in a trailer), a byte overwritten,
    inserted or deleted, a wrong CRC-32 or ISIZE, junk or a partial header after the end."""
    members = list(members)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(members))
        member = bytearray(members[i])
        how = rng.choice(["flip", "flip", "flip", "head", "tail", "byte", "insert", "delete"])
        how = rng.choice([how, "crc", "isize", "append"]) if rng.random() < 0.3 else how
        if how == "crc" and len(member) >= 8:
            member[-8 + rng.randrange(4)] ^= 1 << rng.randrange(8)
        elif how == "isize" and len(member) >= 8:
            size = (struct.unpack("<I", member[-4:])[0] + rng.choice([-1, 1, 1 << 31])) % (1 << 32)
            member[-4:] = struct.pack("<I", size)
        elif how == "append":
            member += rng.choice([b"\x1f", b"\x1f\x8b", b"\x1f\x8b\x08\x00", rng.randbytes(20)])
        elif member:
            span = {"head": min(len(member), 24), "tail": min(len(member), 12)}.get(how)
            at = rng.randrange(span) if how == "head" else rng.randrange(len(member))
            at = len(member) - 1 - rng.randrange(span) if how == "tail" else at
            if how in ("flip", "head", "tail"):
                member[at] ^= 1 << rng.randrange(8)
            elif how == "byte":
                member[at] = rng.randrange(256)
            elif how == "insert":
                member.insert(at, rng.randrange(256))
            else:
                del member[at]
        members[i] = bytes(member)
    return b"".join(members)


# ---- the comparison ---------------------------------------------------------------------------


def reference(stream: bytes) -> bytes | None:
    """What Python's gzip module decodes, or None where it refuses the file."""
    try:
        return gzip.decompress(stream)
    except (EOFError, OSError, zlib.error):
        return None


def read_dense(reader, rng: random.Random) -> tuple[bytes, BaseException | None]:
    """Everything, by read and readinto in random sizes, then finish; the bytes read before a
    failure, and the failure (which must stay: a failed reader fails again)."""
    pieces: list[bytes] = []
    try:
        while True:
            size = rng.choice([1, 7, 352, 4096, 65536, 1 << 20])
            if rng.random() < 0.5:
                piece = reader.read(size)
            else:
                buffer = bytearray(size)
                piece = bytes(buffer[: reader.readinto(buffer)])
            if not piece:
                break
            pieces.append(piece)
        reader.finish()
    except (EOFError, SparseGzipError) as error:
        with pytest.raises(type(error)):
            reader.read(1)
        return b"".join(pieces), error
    assert reader.position == sum(map(len, pieces))
    return b"".join(pieces), None


def expected_planes(data: bytes, at: int, size: int, planes: int) -> tuple[int, int]:
    """next_set_plane's answer on ``data`` from ``at``: (its result, the position after it)."""
    for skipped in range(planes):
        plane = data[at : at + size]
        if len(plane) < size:
            return -1, len(data)
        at += size
        if plane.count(0) < size:
            return skipped, at
    return planes, at


def check_planes(reader, data: bytes, rng: random.Random) -> None:
    """A header read densely, then planes (with a dense read now and then): the same set planes,
    skips, spans and positions as ``data`` cut into planes."""
    at = min(len(data), rng.choice([0, 0, 1, 348, 352]))
    assert reader.read(at) == data[:at]
    size = max(rng.choice([1, 2, 3, 64, 777, 1000, 4096, 65536, 70_000]), len(data) // 200)
    plane = bytearray(size)
    while True:
        planes = rng.choice([1, 2, 5, 1000, 1 << 40])
        want, after = expected_planes(data, at, size, planes)
        got = reader.next_set_plane(plane, planes)
        assert (got, reader.position) == (want, after), f"planes of {size} from {at}"
        if 0 <= got < planes:
            expect = data[after - size : after]
            assert plane == expect, f"plane {(after - at) // size - 1} of {size} from {at}"
            first = size - len(expect.lstrip(b"\0"))
            assert reader.span == (first, len(expect.rstrip(b"\0")))
        at = after
        if got < 0:
            break
        if rng.random() < 0.1:
            n = rng.choice([1, 100, size])
            assert reader.read(n) == data[at : at + n]
            at = min(len(data), at + n)
    reader.finish()
    assert reader.position == len(data)


def check(reader_class: type, stream: bytes, rng: random.Random, cut_of: bytes | None = None):
    """The C reader against the reference on one file. ``cut_of``: the stream is a prefix of a
    valid file that decodes to these bytes, so the C reader must give EOFError (or everything,
    where the cut lies after the last member), and the bytes it gives before must begin them."""
    expected = reference(stream)
    got, error = read_dense(reader_class(stream), rng)
    if expected is None:
        assert error is not None, f"C accepted {len(got)} bytes from a file gzip refuses"
    else:
        assert error is None, f"C refused a file gzip decodes: {error!r}"
        assert got == expected, "C decoded other bytes than gzip"
        check_planes(reader_class(stream), expected, rng)
    if cut_of is not None:
        assert cut_of.startswith(got), "C gave bytes before the cut that are not the file's"
        assert error is None or isinstance(error, EOFError), f"a cut file gave {error!r}"


# ---- the families -----------------------------------------------------------------------------


def cases(family: str, share: float) -> Iterator[tuple[int, random.Random]]:
    """(index, its generator): for ``share`` of the budget, at least MIN_CASES of them."""
    if ONLY:
        name, _, index = ONLY.partition(":")
        if name == family:
            yield int(index), random.Random(f"{SEED}:{family}:{index}")
        return
    stop = time.monotonic() + SECONDS * share
    index = 0
    while index < MIN_CASES or time.monotonic() < stop:
        yield index, random.Random(f"{SEED}:{family}:{index}")
        index += 1
    print(f"{family}: {index} cases")


def fuzz(family: str, share: float, one_case: Callable[[random.Random], None]) -> None:
    for index, rng in cases(family, share):
        try:
            one_case(rng)
        except Exception as error:  # name the case, whatever went wrong
            raise AssertionError(f"RGA_FUZZ_SEED={SEED} RGA_FUZZ_CASE={family}:{index}") from error


def test_zlib_streams_decode_as_gzip_decodes_them(c_reader):
    fuzz("zlib", 0.25, lambda rng: check(c_reader, b"".join(zlib_members(rng)), rng))


def test_hand_made_deflate_blocks_agree_with_zlib(c_reader):
    def one(rng):
        members = [crafted_member(rng) for _ in range(rng.choice([1, 1, 1, 2]))]
        check(c_reader, b"".join(members), rng)

    fuzz("crafted", 0.3, one)


def test_damaged_streams_agree_with_gzip(c_reader):
    def one(rng):
        make = crafted_member if rng.random() < 0.4 else lambda rng: b"".join(zlib_members(rng))
        members = [make(rng) for _ in range(rng.choice([1, 1, 2]))]
        whole = b"".join(members)
        if rng.random() < 0.25 and (data := reference(whole)) is not None:
            check(c_reader, whole[: rng.randint(1, len(whole))], rng, cut_of=data)
        else:
            check(c_reader, damage(rng, members), rng)

    fuzz("damaged", 0.3, one)


def test_random_bytes_are_refused_as_gzip_refuses_them(c_reader):
    """Noise, after nothing, gzip's magic, or a whole header (and the bits of a block type)."""

    def one(rng):
        start = rng.choice([b"", b"\x1f\x8b", b"\x1f\x8b\x08", gzip_header(rng)])
        start += rng.choice([b"", bytes([rng.choice([0, 1, 2, 3]) * 2 + rng.getrandbits(1)])])
        stream = start + rng.randbytes(rng.choice([1, 5, 40, 1000]))
        check(c_reader, stream, rng)

    fuzz("random", 0.15, one)


def test_every_cut_of_small_files_is_truncation(c_reader):
    """Each small file cut at every length: EOFError (or, cut in the final padding, the file).
    Dynamic, stored and fixed blocks, every header field, two members, a hand-made member."""
    rng = random.Random(f"{SEED}:cuts")
    files = [gzip.compress(b"sparse" + bytes(3000) + b"\x01" * 40, 9)]  # dynamic, header as gzip
    text = b"the quick brown fox " * 30
    files.append(gzip_header(random.Random(3)) + zlib.compress(text, 0, -15) + trailer(text))
    packer = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_FIXED)
    fixed = packer.compress(b"\x02" * 500 + bytes(500)) + packer.flush()
    member = struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 31, 0, 0, 3) + b"\0\0" + b"n\0" + b"c\0"
    files.append(member + b"\0\0" + fixed + trailer(b"\x02" * 500 + bytes(500)) + bytes(3))
    files.append(gzip.compress(b"") + gzip.compress(b"a" * 100, 1))  # two members
    crafted = (crafted_member(random.Random(f"{SEED}:cut:{i}")) for i in range(1000))
    files.append(next(m for m in crafted if 200 < len(m) < 3000 and reference(m) is not None))
    for whole in files:
        data = gzip.decompress(whole)
        for n in range(1, len(whole) + 1):
            check(c_reader, whole[:n], rng, cut_of=data)
