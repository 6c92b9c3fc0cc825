/* A gzip decoder that does not write the zero bytes of sparse data.
 *
 * Why: a mask file of a 512 x 512 x 300 CT decodes to 78 MB, nearly all of them zero, and zlib
 * must write every one into its window and the caller's buffer (16 GB per study of 210 masks).
 * Here a run of zeros is only counted: the 32 KiB window is cleared once, the CRC-32 is advanced
 * over the run by one polynomial multiplication, and an output plane that receives nothing but
 * zeros is never touched. An all-zero plane then costs only its Huffman symbols (one per 258
 * bytes); a plane that holds a non-zero byte is written out whole.
 *
 * Checks are zlib's: gzip magic, method and header fields (with FHCRC), deflate block types and
 * code sets (over-subscribed or incomplete), distances too far back, CRC-32 and ISIZE of every
 * member; members may follow each other and be followed by zero padding, as gzip allows.
 * Truncation raises EOFError; anything else invalid raises `error`. Bounds are checked on every
 * input read and window access, so a hostile file can fail but not overrun.
 *
 * Python API (module flows.codecs._sparse_gzip):
 *   Reader(data)                 the bytes of a whole .gz file (kept referenced)
 *   .readinto(buffer) -> int     decode densely into a writable buffer; 0 at the end
 *   .read(n) -> bytes            up to n decoded bytes
 *   .next_set_plane(buffer, planes) -> int
 *                                decode up to `planes` planes of len(buffer) bytes; the first
 *                                holding a non-zero byte is left in `buffer` and the number of
 *                                all-zero planes before it is returned (== planes: none held one;
 *                                -1: the data ended first, see .position)
 *   .span                        (first, stop) byte offsets of the non-zero bytes in that plane
 *   .finish()                    decode and check everything that is left
 *   .position                    decoded bytes so far
 * A Reader, like a file object, is for one thread at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define WSIZE 65536u /* circular window: twice deflate's reach, so a 32 KiB piece never laps it */
#define WMASK (WSIZE - 1u)
#define MAXDIST 32768u
#define PIECE 32768u /* the most bytes emitted in one step (stored blocks are cut to this) */
#define FAST_BITS 10 /* Huffman codes up to this long decode with one table look-up */
#define FAST_SIZE (1u << FAST_BITS)
#define CRC_POLY 0xedb88320u

enum { OK = 0, E_TRUNC = -1, E_DATA = -2 };
enum { ST_MEMBER, ST_BLOCK, ST_HUFF, ST_STORED, ST_TRAILER, ST_END };
enum { OP_NONE, OP_LIT, OP_COPY, OP_STORED };
enum { SINK_DENSE, SINK_PLANES, SINK_DISCARD };

typedef struct {
    uint16_t fast[FAST_SIZE]; /* (length << 9) | symbol; 0 = longer code, see decode_slow */
    uint16_t count[16];       /* codes of each length */
    uint16_t symbol[288];     /* symbols in canonical order (at most 288 of a code) */
} Huffman;

static PyObject *DecodeError;
static uint32_t crc_table[8][256];
static uint32_t x2n_table[32];         /* x^(2^n) mod P */
static uint32_t zeros_table[32][4][256]; /* the CRC register advanced over 2^k zero bytes */
static Huffman fixed_lit, fixed_dist;

static const uint16_t LEN_BASE[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t LEN_EXTRA[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t DIST_BASE[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                       33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t DIST_EXTRA[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t CODE_ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

typedef struct {
    PyObject_HEAD
    Py_buffer input;
    int has_input;
    const uint8_t *in;
    size_t in_len, in_pos;
    uint64_t bits; /* bit buffer, least significant bit first */
    unsigned nbits;
    int state, last_block;
    int failed;          /* E_TRUNC or E_DATA once the stream has failed: it stays failed */
    const char *message; /* what was invalid, for `error` */
    /* the deflate stream */
    Huffman lit, dist;
    const Huffman *lit_code, *dist_code;
    int op;
    uint32_t op_len, op_dist;
    uint8_t op_byte;
    /* the bits of the last match that produced zeros, repeated to fill a word: a zero run is
     * that match over and over, so many repetitions are recognised with one comparison */
    uint64_t pattern, pattern_word, pattern_mask;
    unsigned pattern_bits, pattern_reps;
    uint32_t pattern_len, pattern_dist;
    uint8_t window[WSIZE];
    uint32_t wpos;
    uint64_t zero_run;   /* trailing zero bytes in the output (window all zero at >= WSIZE) */
    uint64_t member_out; /* bytes of the current member */
    uint32_t crc;        /* CRC register (not inverted) of the member's bytes ... */
    uint64_t crc_zeros;  /* ... followed by this many zero bytes */
    uint64_t position;   /* decoded bytes in all */
    /* the sink: where decoded bytes go */
    int sink;
    uint8_t *out;
    size_t out_size, out_pos;
    int dirty;               /* SINK_PLANES: this plane holds a non-zero byte (out is valid) */
    size_t set_first, set_last; /* SINK_PLANES, once dirty: its first and last non-zero byte */
    Py_ssize_t planes_left;  /* SINK_PLANES: planes still to decode, this one included */
    int stop;                /* the sink wants no more bytes */
} Reader;

/* ---- CRC-32 ------------------------------------------------------------------------------ */

static uint32_t multmodp(uint32_t a, uint32_t b) { /* a * b mod P, reflected, as zlib */
    uint32_t m = 1u << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ CRC_POLY : b >> 1;
    }
    return p;
}

static uint32_t x2nmodp(uint64_t n, unsigned k) { /* x^(n * 2^k) mod P, as zlib */
    uint32_t p = 1u << 31; /* x^0 */
    while (n) {
        if (n & 1) p = multmodp(x2n_table[k & 31], p);
        n >>= 1;
        k++;
    }
    return p;
}

/* The register after n more zero bytes: a product with x^(8n), one table step per set bit. */
static uint32_t crc_zeros(uint32_t c, uint64_t n) {
    for (unsigned k = 0; n && k < 32; k++, n >>= 1)
        if (n & 1) {
            const uint32_t(*t)[256] = zeros_table[k];
            c = t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
        }
    return n ? multmodp(x2nmodp(n, 35), c) : c; /* runs of 4 GiB and more */
}

static uint32_t crc_update(uint32_t c, const uint8_t *p, size_t n) { /* slicing by 8 */
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ CRC_POLY : c >> 1;
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
    uint32_t p = 1u << 30; /* x^1 */
    x2n_table[0] = p;
    for (int n = 1; n < 32; n++) x2n_table[n] = p = multmodp(p, p);
    for (unsigned k = 0; k < 32; k++) {
        uint32_t shift = x2nmodp(1, k + 3); /* x^(8 * 2^k) */
        for (unsigned j = 0; j < 4; j++)
            for (uint32_t b = 0; b < 256; b++) zeros_table[k][j][b] = multmodp(shift, b << (8 * j));
    }
}

static void crc_bytes(Reader *r, const uint8_t *p, size_t n) {
    r->crc = crc_update(crc_zeros(r->crc, r->crc_zeros), p, n);
    r->crc_zeros = 0;
}

/* ---- the sink ---------------------------------------------------------------------------- */

static size_t sink_room(const Reader *r) { return r->out_size - r->out_pos; }

/* Account for n bytes just placed; end planes and stop the sink as needed. */
static void sink_advance(Reader *r, size_t n) {
    r->out_pos += n;
    r->position += n;
    if (r->out_pos < r->out_size) return;
    if (r->sink == SINK_PLANES) {
        if (r->dirty) { r->stop = 1; return; } /* a set plane is complete */
        r->planes_left--;
        r->out_pos = 0;
        if (r->planes_left == 0) r->stop = 1;
        return;
    }
    if (r->sink == SINK_DISCARD) { r->out_pos = 0; return; }
    r->stop = 1; /* dense buffer full */
}

/* The piece about to be written at out_pos holds non-zero bytes at offsets first..last. On the
 * plane's first such piece, zero what came before in the plane (it was never written). */
static void sink_set(Reader *r, size_t first, size_t last) {
    if (r->sink != SINK_PLANES) return;
    if (!r->dirty) {
        memset(r->out, 0, r->out_pos);
        r->dirty = 1;
        r->set_first = r->out_pos + first;
    }
    r->set_last = r->out_pos + last;
}

static int sink_writes(const Reader *r) {
    return r->sink == SINK_DENSE || (r->sink == SINK_PLANES && r->dirty);
}

/* ---- emitting decoded bytes (n <= PIECE and n <= sink_room) ------------------------------ */

static void emit_zeros(Reader *r, size_t n) {
    if (r->zero_run < WSIZE) { /* else the whole window is zero already */
        uint32_t head = WSIZE - r->wpos;
        if (n <= head) memset(r->window + r->wpos, 0, n);
        else {
            memset(r->window + r->wpos, 0, head);
            memset(r->window, 0, n - head);
        }
    }
    r->wpos = (r->wpos + n) & WMASK;
    r->zero_run += n;
    r->crc_zeros += n;
    if (sink_writes(r)) memset(r->out + r->out_pos, 0, n);
    sink_advance(r, n);
}

/* n bytes already placed in the window at `at` (contiguous) go to the CRC and the sink. */
static void emit_placed(Reader *r, uint32_t at, size_t n) {
    const uint8_t *p = r->window + at;
    size_t last = n;
    while (last && !p[last - 1]) last--;
    if (!last) { /* all zero: a zero run after all */
        r->zero_run += n;
        r->crc_zeros += n;
        if (sink_writes(r)) memset(r->out + r->out_pos, 0, n);
    } else {
        size_t first = 0;
        if (r->sink == SINK_PLANES && !r->dirty)
            while (!p[first]) first++; /* stops: p[last - 1] is not zero */
        r->zero_run = n - last;
        crc_bytes(r, p, n);
        sink_set(r, first, last - 1);
        if (sink_writes(r)) memcpy(r->out + r->out_pos, p, n);
    }
    r->wpos = (at + n) & WMASK;
    sink_advance(r, n);
}

static void emit_fill(Reader *r, uint8_t value, size_t n) { /* value != 0 */
    uint32_t head = WSIZE - r->wpos;
    if (n <= head) {
        memset(r->window + r->wpos, value, n);
        emit_placed(r, r->wpos, n);
    } else {
        memset(r->window + r->wpos, value, head);
        emit_placed(r, r->wpos, head);
        memset(r->window, value, n - head);
        emit_placed(r, 0, n - head);
    }
}

/* Copy n bytes from `dist` back, in pieces that neither overlap nor wrap. */
static void emit_copy(Reader *r, uint32_t dist, size_t n) {
    if (dist <= r->zero_run) { emit_zeros(r, n); return; }
    if (dist == 1) { emit_fill(r, r->window[(r->wpos - 1) & WMASK], n); return; }
    while (n) {
        uint32_t src = (r->wpos - dist) & WMASK, dst = r->wpos;
        size_t piece = n < dist ? n : dist;
        if (piece > WSIZE - src) piece = WSIZE - src;
        if (piece > WSIZE - dst) piece = WSIZE - dst;
        memcpy(r->window + dst, r->window + src, piece);
        emit_placed(r, dst, piece);
        n -= piece;
    }
}

static void emit_input(Reader *r, size_t n) { /* stored-block bytes, straight from the input */
    uint32_t head = WSIZE - r->wpos;
    size_t first = n <= head ? n : head;
    uint32_t at = r->wpos;
    memcpy(r->window + at, r->in + r->in_pos, first);
    emit_placed(r, at, first);
    if (n > first) {
        memcpy(r->window, r->in + r->in_pos + first, n - first);
        emit_placed(r, 0, n - first);
    }
    r->in_pos += n;
}

/* ---- bits and Huffman codes -------------------------------------------------------------- */

static inline void refill(Reader *r) {
    if (r->in_len - r->in_pos >= 8) {
        uint64_t word;
        memcpy(&word, r->in + r->in_pos, 8); /* little-endian hosts only: see module init */
        unsigned take = (63 - r->nbits) >> 3;
        r->bits |= word << r->nbits;
        r->in_pos += take;
        r->nbits += take * 8; /* <= 63 */
        r->bits &= (1ull << r->nbits) - 1;
        return;
    }
    while (r->nbits <= 56 && r->in_pos < r->in_len) {
        r->bits |= (uint64_t)r->in[r->in_pos++] << r->nbits;
        r->nbits += 8;
    }
}

static inline int need(Reader *r, unsigned n) {
    if (r->nbits < n) refill(r);
    return r->nbits >= n ? OK : E_TRUNC;
}

static inline uint32_t take(Reader *r, unsigned n) { /* after need(r, n) */
    uint32_t v = (uint32_t)(r->bits & ((1ull << n) - 1));
    r->bits >>= n;
    r->nbits -= n;
    return v;
}

static int bits_value(Reader *r, unsigned n, uint32_t *v) {
    if (need(r, n)) return E_TRUNC;
    *v = take(r, n);
    return OK;
}

static void to_byte_boundary(Reader *r) { /* drop partial-byte bits, give back whole bytes */
    take(r, r->nbits & 7);
    r->in_pos -= r->nbits >> 3;
    r->bits = 0;
    r->nbits = 0;
}

/* Build a canonical code from code lengths. kind 0: code-length code (must be complete);
 * kind 1: literal/length or distance code (incomplete only as a single one-bit code). */
static int build(Huffman *h, const uint8_t *lengths, int n, int kind) {
    uint16_t offsets[16];
    memset(h->count, 0, sizeof h->count);
    for (int s = 0; s < n; s++) h->count[lengths[s]]++;
    memset(h->fast, 0, sizeof h->fast);
    if (h->count[0] == n) return kind == 0 ? E_DATA : OK; /* no codes: any use is an error */
    int left = 1, longest = 0;
    for (int len = 1; len < 16; len++) {
        left = (left << 1) - h->count[len];
        if (left < 0) return E_DATA; /* over-subscribed */
        if (h->count[len]) longest = len;
    }
    if (left > 0 && (kind == 0 || longest != 1)) return E_DATA; /* incomplete */
    offsets[1] = 0;
    for (int len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + h->count[len];
    for (int s = 0; s < n; s++)
        if (lengths[s]) h->symbol[offsets[lengths[s]]++] = (uint16_t)s;
    unsigned code = 0, index = 0;
    for (unsigned len = 1; len <= FAST_BITS; len++) {
        for (unsigned c = 0; c < h->count[len]; c++, code++) {
            unsigned reversed = 0;
            for (unsigned b = 0; b < len; b++) reversed |= ((code >> b) & 1u) << (len - 1 - b);
            uint16_t entry = (uint16_t)((len << 9) | h->symbol[index++]);
            for (unsigned i = reversed; i < FAST_SIZE; i += 1u << len) h->fast[i] = entry;
        }
        code <<= 1;
    }
    return OK;
}

/* Codes longer than FAST_BITS, bit by bit (decode has refilled: fewer than 15 bits left means
 * the input is used up). */
static int decode_slow(Reader *r, const Huffman *h) {
    int code = 0, first = 0, index = 0;
    for (unsigned len = 1; len < 16; len++) {
        if (len > r->nbits) return E_TRUNC;
        code |= (int)((r->bits >> (len - 1)) & 1);
        int count = h->count[len];
        if (code - count < first) {
            take(r, len);
            return h->symbol[index + (code - first)];
        }
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return E_DATA;
}

static inline int decode(Reader *r, const Huffman *h) {
    if (r->nbits < 15) refill(r);
    uint16_t entry = h->fast[r->bits & (FAST_SIZE - 1)];
    unsigned len = entry >> 9;
    if (entry && len <= r->nbits) {
        take(r, len);
        return entry & 511;
    }
    return decode_slow(r, h);
}

/* ---- gzip members and deflate blocks ----------------------------------------------------- */

static int fail(Reader *r, const char *message) {
    r->message = message;
    return E_DATA;
}

static int member_header(Reader *r) {
    const uint8_t *p = r->in + r->in_pos;
    size_t left = r->in_len - r->in_pos, at = 10;
    if (left < 10) return E_TRUNC;
    if (p[0] != 0x1f || p[1] != 0x8b) return fail(r, "not a gzip file");
    if (p[2] != 8) return fail(r, "unknown compression method");
    uint8_t flags = p[3]; /* as Python's gzip: reserved flags and the header CRC are not checked */
    if (flags & 4) { /* FEXTRA */
        if (left < at + 2) return E_TRUNC;
        at += 2 + (size_t)(p[at] | p[at + 1] << 8);
    }
    for (int field = 8; field <= 16; field <<= 1) /* FNAME, FCOMMENT: zero-terminated */
        if (flags & field) {
            while (at < left && p[at]) at++;
            at++;
        }
    if (flags & 2) at += 2; /* FHCRC */
    if (at > left) return E_TRUNC;
    r->in_pos += at;
    r->bits = 0;
    r->nbits = 0;
    r->crc = 0xffffffffu;
    r->crc_zeros = 0;
    r->member_out = 0;
    memset(r->window, 0, WSIZE); /* the window always holds the last WSIZE bytes (zeros before) */
    r->zero_run = WSIZE;
    r->pattern_bits = 0;
    r->state = ST_BLOCK;
    return OK;
}

static int dynamic_codes(Reader *r) {
    uint32_t nlit, ndist, ncode, v;
    uint8_t lengths[320];
    if (bits_value(r, 5, &nlit) || bits_value(r, 5, &ndist) || bits_value(r, 4, &ncode))
        return E_TRUNC;
    nlit += 257;
    ndist += 1;
    ncode += 4;
    if (nlit > 286 || ndist > 30) return fail(r, "too many length or distance symbols");
    memset(lengths, 0, 19);
    for (uint32_t i = 0; i < ncode; i++) {
        if (bits_value(r, 3, &v)) return E_TRUNC;
        lengths[CODE_ORDER[i]] = (uint8_t)v;
    }
    if (build(&r->lit, lengths, 19, 0)) return fail(r, "invalid code lengths set");
    uint32_t i = 0;
    while (i < nlit + ndist) {
        int symbol = decode(r, &r->lit);
        if (symbol < 0) return symbol == E_TRUNC ? E_TRUNC : fail(r, "invalid code lengths set");
        if (symbol < 16) {
            lengths[i++] = (uint8_t)symbol;
            continue;
        }
        uint8_t repeated = 0;
        uint32_t times;
        if (symbol == 16) {
            if (i == 0) return fail(r, "invalid bit length repeat");
            repeated = lengths[i - 1];
            if (bits_value(r, 2, &times)) return E_TRUNC;
            times += 3;
        } else if (symbol == 17) {
            if (bits_value(r, 3, &times)) return E_TRUNC;
            times += 3;
        } else {
            if (bits_value(r, 7, &times)) return E_TRUNC;
            times += 11;
        }
        if (i + times > nlit + ndist) return fail(r, "invalid bit length repeat");
        memset(lengths + i, repeated, times);
        i += times;
    }
    if (lengths[256] == 0) return fail(r, "invalid code -- missing end-of-block");
    if (build(&r->lit, lengths, (int)nlit, 1)) return fail(r, "invalid literal/lengths set");
    if (build(&r->dist, lengths + nlit, (int)ndist, 1)) return fail(r, "invalid distances set");
    r->lit_code = &r->lit;
    r->dist_code = &r->dist;
    return OK;
}

static int block_header(Reader *r) {
    uint32_t last, type;
    if (bits_value(r, 1, &last) || bits_value(r, 2, &type)) return E_TRUNC;
    r->last_block = (int)last;
    r->pattern_bits = 0;
    if (type == 0) {
        to_byte_boundary(r);
        if (r->in_len - r->in_pos < 4) return E_TRUNC;
        const uint8_t *p = r->in + r->in_pos;
        uint32_t len = p[0] | p[1] << 8, inverse = p[2] | p[3] << 8;
        if (len != (~inverse & 0xffffu)) return fail(r, "invalid stored block lengths");
        r->in_pos += 4;
        r->op = OP_STORED;
        r->op_len = len;
        r->state = ST_STORED;
        return OK;
    }
    if (type == 1) {
        r->lit_code = &fixed_lit;
        r->dist_code = &fixed_dist;
    } else if (type == 2) {
        int status = dynamic_codes(r);
        if (status) return status;
    } else return fail(r, "invalid block type");
    r->state = ST_HUFF;
    return OK;
}

static void remember_zero_match(Reader *r, uint64_t bits, unsigned used, uint32_t len,
                                uint32_t dist) {
    if (used == r->pattern_bits && bits == r->pattern && len == r->pattern_len) return;
    r->pattern = bits;
    r->pattern_bits = used;
    r->pattern_len = len;
    r->pattern_dist = dist;
    r->pattern_reps = 56 / used; /* a match is at most 48 bits */
    r->pattern_word = 0;
    for (unsigned i = 0; i < r->pattern_reps; i++) r->pattern_word |= bits << (i * used);
    unsigned width = r->pattern_reps * used;
    r->pattern_mask = width == 64 ? ~0ull : (1ull << width) - 1;
}

/* Consume repetitions of the remembered zero match while the sink has room for them. */
static void skip_zero_matches(Reader *r) {
    const unsigned used = r->pattern_bits, width = r->pattern_reps * used;
    const uint64_t one = (1ull << used) - 1;
    while (!r->stop) {
        if (r->nbits < width) refill(r);
        size_t room = sink_room(r), n;
        if (r->nbits >= width && (r->bits & r->pattern_mask) == r->pattern_word &&
            room >= (size_t)r->pattern_reps * r->pattern_len) {
            take(r, width);
            n = (size_t)r->pattern_reps * r->pattern_len;
        } else if (r->nbits >= used && (r->bits & one) == r->pattern && room >= r->pattern_len) {
            take(r, used);
            n = r->pattern_len;
        } else return;
        emit_zeros(r, n);
        r->member_out += n;
    }
}

static int next_symbol(Reader *r) { /* one literal, match or end of block */
    refill(r);
    const uint64_t bits = r->bits, start = r->in_pos * 8 - r->nbits;
    const unsigned had = r->nbits;
    int symbol = decode(r, r->lit_code);
    if (symbol < 0) return symbol == E_TRUNC ? E_TRUNC : fail(r, "invalid literal/length code");
    if (symbol < 256) {
        r->op = OP_LIT;
        r->op_byte = (uint8_t)symbol;
        r->op_len = 1;
        return OK;
    }
    if (symbol == 256) {
        r->state = r->last_block ? ST_TRAILER : ST_BLOCK;
        return OK;
    }
    symbol -= 257;
    if (symbol >= 29) return fail(r, "invalid literal/length code");
    uint32_t extra, len, dist;
    if (bits_value(r, LEN_EXTRA[symbol], &extra)) return E_TRUNC;
    len = LEN_BASE[symbol] + extra;
    int dsym = decode(r, r->dist_code);
    if (dsym < 0) return dsym == E_TRUNC ? E_TRUNC : fail(r, "invalid distance code");
    if (dsym >= 30) return fail(r, "invalid distance code");
    if (bits_value(r, DIST_EXTRA[dsym], &extra)) return E_TRUNC;
    dist = DIST_BASE[dsym] + extra;
    if (dist > r->member_out) return fail(r, "invalid distance too far back");
    const uint64_t used = r->in_pos * 8 - r->nbits - start; /* exact, refills or not */
    if (dist <= r->zero_run && used <= had && used <= 48)
        remember_zero_match(r, bits & ((1ull << used) - 1), (unsigned)used, len, dist);
    r->op = OP_COPY;
    r->op_len = len;
    r->op_dist = dist;
    return OK;
}

static int member_trailer(Reader *r) {
    to_byte_boundary(r);
    if (r->in_len - r->in_pos < 8) return E_TRUNC;
    const uint8_t *p = r->in + r->in_pos;
    uint32_t crc = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
    uint32_t size = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
    r->crc = crc_zeros(r->crc, r->crc_zeros);
    r->crc_zeros = 0;
    if (crc != ~r->crc) return fail(r, "CRC check failed");
    if (size != (uint32_t)r->member_out) return fail(r, "incorrect length check");
    r->in_pos += 8;
    while (r->in_pos < r->in_len && r->in[r->in_pos] == 0) r->in_pos++; /* zero padding */
    r->state = r->in_pos < r->in_len ? ST_MEMBER : ST_END;
    return OK;
}

/* Emit as much of the pending operation as the sink takes. */
static void drain(Reader *r) {
    while (r->op_len && !r->stop) {
        size_t n = r->op_len, room = sink_room(r);
        if (n > room) n = room;
        if (n > PIECE) n = PIECE;
        if (r->op == OP_LIT) {
            if (r->op_byte) emit_fill(r, r->op_byte, 1);
            else emit_zeros(r, 1);
        } else if (r->op == OP_COPY) emit_copy(r, r->op_dist, n);
        else emit_input(r, n);
        r->op_len -= (uint32_t)n;
        r->member_out += n;
    }
}

/* Decode until the sink stops (OK) or the data ends (ST_END, OK) or fails (E_TRUNC, E_DATA). */
static int run(Reader *r) {
    while (!r->stop) {
        if (r->op_len) {
            drain(r);
            continue;
        }
        int status = OK;
        switch (r->state) {
        case ST_MEMBER: status = member_header(r); break;
        case ST_BLOCK: status = block_header(r); break;
        case ST_HUFF:
            if (r->pattern_bits && r->pattern_dist <= r->zero_run) {
                skip_zero_matches(r);
                if (r->stop) return OK;
            }
            status = next_symbol(r);
            break;
        case ST_STORED: /* its bytes are all out */
            r->state = r->last_block ? ST_TRAILER : ST_BLOCK;
            break;
        case ST_TRAILER: status = member_trailer(r); break;
        case ST_END: return OK;
        }
        if (status) return status;
        if (r->state == ST_STORED && r->in_len - r->in_pos < r->op_len) return E_TRUNC;
    }
    return OK;
}

/* ---- Python ------------------------------------------------------------------------------ */

static PyObject *raise_failure(Reader *r) {
    if (r->failed == E_TRUNC)
        PyErr_SetString(PyExc_EOFError,
                        "compressed file ended before the end-of-stream marker was reached");
    else PyErr_SetString(DecodeError, r->message ? r->message : "invalid data");
    return NULL;
}

static PyObject *decode_into(Reader *r, int sink, uint8_t *out, size_t size) {
    if (r->failed) return raise_failure(r);
    r->sink = sink;
    r->out = out;
    r->out_size = size;
    r->out_pos = 0;
    r->dirty = 0;
    r->stop = size == 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = run(r);
    Py_END_ALLOW_THREADS
    if (status) {
        r->failed = status;
        return raise_failure(r);
    }
    return Py_None;
}

static int Reader_init(Reader *r, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"data", NULL};
    PyObject *data;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Reader", names, &data)) return -1;
    if (r->has_input) {
        PyBuffer_Release(&r->input);
        r->has_input = 0;
    }
    if (PyObject_GetBuffer(data, &r->input, PyBUF_SIMPLE) < 0) return -1;
    r->has_input = 1;
    r->in = r->input.buf;
    r->in_len = (size_t)r->input.len;
    r->in_pos = 0;
    r->bits = 0;
    r->nbits = 0;
    r->state = ST_MEMBER;
    r->failed = 0;
    r->message = NULL;
    r->op = OP_NONE;
    r->op_len = 0;
    r->wpos = 0;
    r->zero_run = WSIZE;
    r->position = 0;
    return 0;
}

static void Reader_dealloc(Reader *r) {
    if (r->has_input) PyBuffer_Release(&r->input);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *Reader_readinto(Reader *r, PyObject *arg) {
    Py_buffer out;
    if (PyObject_GetBuffer(arg, &out, PyBUF_WRITABLE) < 0) return NULL;
    uint64_t before = r->position;
    PyObject *done = decode_into(r, SINK_DENSE, out.buf, (size_t)out.len);
    PyBuffer_Release(&out);
    if (!done) return NULL;
    return PyLong_FromUnsignedLongLong(r->position - before);
}

static PyObject *Reader_read(Reader *r, PyObject *arg) {
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "read(n) needs n >= 0");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, n);
    if (!bytes) return NULL;
    uint64_t before = r->position;
    if (!decode_into(r, SINK_DENSE, (uint8_t *)PyBytes_AS_STRING(bytes), (size_t)n)) {
        Py_DECREF(bytes);
        return NULL;
    }
    if (_PyBytes_Resize(&bytes, (Py_ssize_t)(r->position - before)) < 0) return NULL;
    return bytes;
}

static PyObject *Reader_next_set_plane(Reader *r, PyObject *args) {
    PyObject *target;
    Py_ssize_t planes;
    if (!PyArg_ParseTuple(args, "On:next_set_plane", &target, &planes)) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(target, &out, PyBUF_WRITABLE) < 0) return NULL;
    if (out.len == 0) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "next_set_plane needs a plane of at least one byte");
        return NULL;
    }
    if (planes <= 0) {
        PyBuffer_Release(&out);
        return PyLong_FromLong(0);
    }
    r->planes_left = planes;
    PyObject *done = decode_into(r, SINK_PLANES, out.buf, (size_t)out.len);
    PyBuffer_Release(&out);
    if (!done) return NULL;
    if (!r->stop) return PyLong_FromLong(-1); /* the data ended first */
    return PyLong_FromSsize_t(planes - r->planes_left);
}

static PyObject *Reader_finish(Reader *r, PyObject *Py_UNUSED(ignored)) {
    static uint8_t scratch[1];
    if (!decode_into(r, SINK_DISCARD, scratch, PIECE)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Reader_position(Reader *r, void *Py_UNUSED(closure)) {
    return PyLong_FromUnsignedLongLong(r->position);
}

static PyObject *Reader_span(Reader *r, void *Py_UNUSED(closure)) {
    if (r->sink != SINK_PLANES || !r->dirty || !r->stop) Py_RETURN_NONE;
    return Py_BuildValue("nn", (Py_ssize_t)r->set_first, (Py_ssize_t)(r->set_last + 1));
}

static PyObject *Reader_close(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
    Py_RETURN_NONE;
}

static PyMethodDef Reader_methods[] = {
    {"readinto", (PyCFunction)Reader_readinto, METH_O, "Decode densely into a writable buffer."},
    {"read", (PyCFunction)Reader_read, METH_O, "Up to n decoded bytes."},
    {"next_set_plane", (PyCFunction)Reader_next_set_plane, METH_VARARGS,
     "Skip all-zero planes; leave the next set one in the buffer; return how many were skipped."},
    {"finish", (PyCFunction)Reader_finish, METH_NOARGS, "Decode and check the rest."},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, "Nothing to release early."},
    {NULL}};

static PyGetSetDef Reader_getset[] = {
    {"position", (getter)Reader_position, NULL, "Decoded bytes so far.", NULL},
    {"span", (getter)Reader_span, NULL,
     "(first, stop): where the non-zero bytes of the plane next_set_plane returned lie.", NULL},
    {NULL}};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "flows.codecs._sparse_gzip.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A gzip decoder that skips all-zero planes without writing them.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Reader_init,
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_methods = Reader_methods,
    .tp_getset = Reader_getset,
};

/* The first byte of row[0, n) that is not zero, or n; eight bytes per comparison. */
static Py_ssize_t first_set(const uint8_t *row, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, row + i, 8);
        if (word) break;
    }
    while (i < n && !row[i]) i++;
    return i;
}

/* The last byte of row[0, n) that is not zero, or -1. */
static Py_ssize_t last_set(const uint8_t *row, Py_ssize_t n) {
    Py_ssize_t i = n;
    for (; i >= 8; i -= 8) {
        uint64_t word;
        memcpy(&word, row + i - 8, 8);
        if (word) break;
    }
    while (i > 0 && !row[i - 1]) i--;
    return i - 1;
}

static PyObject *set_bounds(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer b;
    Py_ssize_t cols;
    if (!PyArg_ParseTuple(args, "y*n:set_bounds", &b, &cols)) return NULL;
    if (cols <= 0 || b.len % cols) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_ValueError, "set_bounds needs whole rows of a positive width");
        return NULL;
    }
    const uint8_t *p = b.buf;
    Py_ssize_t rows = b.len / cols, r0 = -1, r1 = 0, c0 = cols, c1 = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint8_t *row = p + r * cols;
        Py_ssize_t first = first_set(row, cols);
        if (first == cols) continue;
        Py_ssize_t last = last_set(row, cols);
        if (r0 < 0) r0 = r;
        r1 = r + 1;
        if (first < c0) c0 = first;
        if (last + 1 > c1) c1 = last + 1;
    }
    PyBuffer_Release(&b);
    if (r0 < 0) Py_RETURN_NONE;
    return Py_BuildValue("nnnn", r0, r1, c0, c1);
}

static PyMethodDef module_methods[] = {
    {"set_bounds", set_bounds, METH_VARARGS,
     "set_bounds(rows, width): (r0, r1, c0, c1) around the non-zero bytes of C-ordered rows of "
     "width bytes, or None."},
    {NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sparse_gzip",
                                    "A gzip decoder that does not write zero runs.", -1, module_methods, NULL, NULL, NULL, NULL};

static int fixed_codes(void) {
    uint8_t lengths[288];
    int s = 0;
    for (; s < 144; s++) lengths[s] = 8;
    for (; s < 256; s++) lengths[s] = 9;
    for (; s < 280; s++) lengths[s] = 7;
    for (; s < 288; s++) lengths[s] = 8;
    if (build(&fixed_lit, lengths, 288, 1)) return -1;
    memset(lengths, 5, 32); /* 32 codes, complete; 30 and 31 are refused when decoded */
    return build(&fixed_dist, lengths, 32, 1);
}

PyMODINIT_FUNC PyInit__sparse_gzip(void) {
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe != 1) {
        PyErr_SetString(PyExc_ImportError, "flows.codecs._sparse_gzip needs a little-endian host");
        return NULL;
    }
    crc_init();
    if (fixed_codes()) {
        PyErr_SetString(PyExc_ImportError, "flows.codecs._sparse_gzip: bad fixed Huffman codes");
        return NULL;
    }
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    DecodeError = PyErr_NewException("flows.codecs._sparse_gzip.error", PyExc_ValueError, NULL);
    if (!DecodeError || PyModule_AddObject(m, "error", DecodeError) < 0) return NULL;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0) return NULL;
    return m;
}
