/*
 * pilive.audio._ringbuf: the playback ring buffer.
 *
 * One producer (the thread that receives audio from the network) writes 24 kHz mono s16le PCM;
 * one consumer (PortAudio's callback or a playback thread) reads it. The hot paths are lock-free:
 * each side owns one monotonically increasing 64-bit byte index and publishes it with a release
 * store; the other side reads it with an acquire load. A pthread mutex + condition variable exists
 * only so wait_readable()/wait_writable() can sleep; it is touched on the hot path only when
 * somebody is actually waiting.
 *
 * Barge-in (clear) is published by the producer through a tiny seqlock: clear_seq goes odd, the
 * write index at that moment is stored in clear_idx, clear_seq goes even. The consumer notices the
 * new sequence on its next read, fades out from the data at its read position and then jumps its
 * read index to clear_idx. Until it does, the dropped bytes still occupy their space, so the
 * producer can never overwrite data the consumer is about to fade from (no torn audio).
 *
 * end_stream() is a position too (end_idx): the stream ends exactly there, so an end mark followed
 * at once by the next stream is still told apart by the consumer.
 *
 * The reference tap (for echo cancellation) keeps a copy of every byte read_into() handed to the
 * device, silence and fades included, in a second ring the consumer overwrites without waiting:
 * one more memcpy of the block it already filled. tap_pos counts those bytes since construction;
 * a stamp pairs a tap position with the device time the caller gave for that block (PortAudio's
 * output_buffer_dac_time), published through a seqlock. Readers (any thread, any number) copy
 * by absolute position and then check, seqlock fashion, that the consumer had not started to
 * overwrite what they copied (tap_writing is published before each copy begins).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_LINE_BYTES 64
#define MAX_CAPACITY_BYTES ((uint64_t)1 << 30)
#define MAX_FADE_SAMPLES 1000000
#define MAX_GAIN 4.0
/* Copies at least this large run without the GIL (as hashlib does for large inputs); the small
 * chunks of a PortAudio callback keep it, because giving the GIL away there can cost the callback
 * a whole switch interval to get it back. */
#define GIL_RELEASE_MIN_BYTES 8192
/* Waits in the main thread sleep in slices this long so Ctrl-C is noticed; Python runs signal
 * handlers only there, so other threads sleep in one go and rely on the wake-up alone. */
#define MAIN_THREAD_SLICE_S 0.1
#define OTHER_THREAD_SLICE_S 3600.0

typedef struct {
    /* Written by the producer. */
    alignas(CACHE_LINE_BYTES) _Atomic uint64_t write_idx;
    _Atomic uint64_t end_idx;
    _Atomic uint64_t clear_seq; /* odd while a clear is being published */
    _Atomic uint64_t clear_idx;
    _Atomic uint64_t overruns;
    _Atomic uint64_t clears;
    _Atomic int producer_busy;

    /* Written by the consumer. */
    alignas(CACHE_LINE_BYTES) _Atomic uint64_t read_idx;
    _Atomic uint64_t bytes_read;
    _Atomic uint64_t underruns;
    _Atomic bool flowing;
    _Atomic int consumer_busy;

    /* Consumer-private state: never touched by the producer. */
    alignas(CACHE_LINE_BYTES) uint64_t seen_clear_seq;
    uint64_t end_done;     /* the last end mark the consumer has honoured */
    uint64_t clear_target; /* where the read index jumps when the fade is over */
    uint64_t fade_n;       /* fade length in samples; 0 when not fading */
    uint64_t fade_i;       /* samples of the fade already played */

    /* Settings, changeable from any thread. */
    alignas(CACHE_LINE_BYTES) _Atomic uint64_t gain_bits; /* an IEEE double */
    _Atomic uint64_t prebuffer_bytes;

    /* The reference tap: written by the consumer, read by anyone. */
    alignas(CACHE_LINE_BYTES) _Atomic uint64_t tap_pos; /* bytes handed to the device in total */
    _Atomic uint64_t tap_writing;                        /* tap_pos + the block being copied */
    _Atomic uint64_t stamp_seq;                          /* odd while a stamp is being written */
    _Atomic uint64_t stamp_pos;
    _Atomic uint64_t stamp_time_bits; /* an IEEE double, seconds on the caller's clock */

    /* Sleeping only. */
    alignas(CACHE_LINE_BYTES) _Atomic uint32_t waiters;
    pthread_mutex_t mutex;
    pthread_cond_t cond;

    uint64_t capacity;
    uint64_t mask;
    uint64_t fade_samples;
    unsigned char *data;
    uint64_t tap_capacity; /* 0: no tap copy kept (positions and stamps still are) */
    uint64_t tap_mask;
    unsigned char *tap;
} rb_core;

/* ---------------------------------------------------------------- the lock-free core (no Python) */

static double gain_from_bits(uint64_t bits) {
    double g;
    memcpy(&g, &bits, sizeof g);
    return g;
}

static uint64_t bits_from_gain(double g) {
    uint64_t bits;
    memcpy(&bits, &g, sizeof bits);
    return bits;
}

static int16_t saturate(double v) {
    if (v >= 32767.0) {
        return 32767;
    }
    if (v <= -32768.0) {
        return -32768;
    }
    return (int16_t)lrint(v); /* round half to even, as Python's round() */
}

/* Copies nbytes (even) of ring data starting at index idx to out, applying gain. */
static void copy_out(const rb_core *c, unsigned char *out, uint64_t idx, uint64_t nbytes, double g) {
    uint64_t off = idx & c->mask;
    uint64_t first = c->capacity - off;
    if (first > nbytes) {
        first = nbytes;
    }
    if (g == 1.0) {
        memcpy(out, c->data + off, first);
        memcpy(out + first, c->data, nbytes - first);
        return;
    }
    for (uint64_t i = 0; i < nbytes; i += 2) {
        int16_t s;
        memcpy(&s, c->data + ((idx + i) & c->mask), 2);
        int16_t o = saturate((double)s * g);
        memcpy(out + i, &o, 2);
    }
}

static void wake_waiters(rb_core *c) {
    /* Read-modify-writes of `waiters` are totally ordered: either this one comes after a waiter's
     * increment and sees it, or the waiter's increment reads from this release and then sees the
     * index we just published. No fences, so ThreadSanitizer understands it too. */
    if (atomic_fetch_add_explicit(&c->waiters, 0, memory_order_acq_rel) != 0) {
        pthread_mutex_lock(&c->mutex);
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->mutex);
    }
}

static uint64_t rb_write(rb_core *c, const unsigned char *src, uint64_t len) {
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_relaxed);
    uint64_t r = atomic_load_explicit(&c->read_idx, memory_order_acquire);
    uint64_t room = c->capacity - (w - r);
    uint64_t n = len < room ? len : room;
    uint64_t off = w & c->mask;
    uint64_t first = c->capacity - off;
    if (first > n) {
        first = n;
    }
    memcpy(c->data + off, src, first);
    memcpy(c->data, src + first, n - first);
    atomic_store_explicit(&c->write_idx, w + n, memory_order_release);
    if (n < len) {
        atomic_fetch_add_explicit(&c->overruns, 1, memory_order_relaxed);
    }
    wake_waiters(c);
    return n;
}

static void rb_clear(rb_core *c) {
    uint64_t seq = atomic_load_explicit(&c->clear_seq, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_relaxed);
    atomic_store_explicit(&c->clear_seq, seq + 1, memory_order_relaxed);
    /* Release: whoever sees the new clear_idx also sees the odd sequence stored before it. */
    atomic_store_explicit(&c->clear_idx, w, memory_order_release);
    atomic_store_explicit(&c->clear_seq, seq + 2, memory_order_release);
    atomic_fetch_add_explicit(&c->clears, 1, memory_order_relaxed);
    wake_waiters(c);
}

static void rb_end_stream(rb_core *c) {
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_relaxed);
    atomic_store_explicit(&c->end_idx, w, memory_order_release);
    wake_waiters(c);
}

/* The consumer. Fills out[0:n] (n even) and returns the number of real audio bytes in it. */
static uint64_t rb_read(rb_core *c, unsigned char *out, uint64_t n) {
    uint64_t seq, seq2, clear_at = 0, e, w;
    /* A consistent snapshot: no clear may complete between reading the clear record and the
     * write index, or we could play audio written after a clear we have not seen yet. Retries
     * only when the producer made progress (lock-free), never while it is mid-clear. */
    for (;;) {
        seq = atomic_load_explicit(&c->clear_seq, memory_order_acquire);
        clear_at = atomic_load_explicit(&c->clear_idx, memory_order_acquire);
        e = atomic_load_explicit(&c->end_idx, memory_order_acquire);
        w = atomic_load_explicit(&c->write_idx, memory_order_acquire);
        /* Ordered after the acquire loads above: a newer clear_idx or write index implies a
         * newer sequence here. */
        seq2 = atomic_load_explicit(&c->clear_seq, memory_order_relaxed);
        if (seq2 == seq) {
            break;
        }
    }
    uint64_t r = atomic_load_explicit(&c->read_idx, memory_order_relaxed);
    bool flowing = atomic_load_explicit(&c->flowing, memory_order_relaxed);
    double g = gain_from_bits(atomic_load_explicit(&c->gain_bits, memory_order_relaxed));
    uint64_t prebuffer = atomic_load_explicit(&c->prebuffer_bytes, memory_order_relaxed);
    uint64_t pos = 0, audio = 0, underruns = 0;

    if ((seq & 1) == 0 && seq != c->seen_clear_seq) {
        c->seen_clear_seq = seq;
        if (clear_at > r) {
            c->clear_target = clear_at;
            if (c->fade_n == 0) {
                uint64_t fade = (clear_at - r) / 2;
                if (fade > c->fade_samples) {
                    fade = c->fade_samples;
                }
                if (flowing && fade > 0) {
                    c->fade_n = fade;
                    c->fade_i = 0;
                } else {
                    r = clear_at;
                }
            }
        }
        flowing = false;
    }

    if (c->fade_n != 0) {
        uint64_t k = c->fade_n - c->fade_i;
        if (k > (n - pos) / 2) {
            k = (n - pos) / 2;
        }
        for (uint64_t i = 0; i < k; i++) {
            int16_t s;
            memcpy(&s, c->data + (r & c->mask), 2);
            double f = (double)(c->fade_n - c->fade_i) / (double)c->fade_n;
            int16_t o = saturate((double)s * g * f);
            memcpy(out + pos, &o, 2);
            pos += 2;
            r += 2;
            c->fade_i++;
        }
        audio += 2 * k;
        if (c->fade_i == c->fade_n) {
            c->fade_n = 0;
            c->fade_i = 0;
            r = c->clear_target;
        }
    }

    if (c->fade_n == 0) {
        for (;;) {
            bool ending = e > c->end_done;
            if (ending && e <= r) {
                c->end_done = e; /* drained up to the end mark: a clean stop, not an underrun */
                flowing = false;
                continue;
            }
            if (pos == n) {
                break;
            }
            uint64_t avail = w - r;
            if (!flowing) {
                if (avail == 0 || (!ending && avail < prebuffer)) {
                    break;
                }
                flowing = true;
            }
            uint64_t k = ending ? e - r : avail;
            if (k > n - pos) {
                k = n - pos;
            }
            copy_out(c, out + pos, r, k, g);
            r += k;
            pos += k;
            audio += k;
            if (ending && r == e) {
                continue;
            }
            if (pos < n) {
                underruns++;
                flowing = false;
            }
            break;
        }
    }

    memset(out + pos, 0, n - pos);
    atomic_store_explicit(&c->flowing, flowing, memory_order_relaxed);
    if (underruns) {
        atomic_fetch_add_explicit(&c->underruns, underruns, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&c->bytes_read, audio, memory_order_relaxed);
    if (r != atomic_load_explicit(&c->read_idx, memory_order_relaxed)) {
        atomic_store_explicit(&c->read_idx, r, memory_order_release);
        wake_waiters(c);
    }
    return audio;
}

/* The consumer, after filling out[0:n]: keep a copy for the tap and stamp it with the block's
 * device time (when the caller gave one). */
static void rb_tap_block(rb_core *c, const unsigned char *out, uint64_t n, bool stamped,
                         double dac_time_s) {
    uint64_t pos = atomic_load_explicit(&c->tap_pos, memory_order_relaxed);
    if (stamped) {
        uint64_t seq = atomic_load_explicit(&c->stamp_seq, memory_order_relaxed);
        /* A seqlock without fences (ThreadSanitizer cannot follow fences): the odd count is
         * stored before the fields, whose release stores carry it to any reader that sees them. */
        atomic_store_explicit(&c->stamp_seq, seq + 1, memory_order_relaxed);
        atomic_store_explicit(&c->stamp_pos, pos, memory_order_release);
        atomic_store_explicit(&c->stamp_time_bits, bits_from_gain(dac_time_s),
                              memory_order_release);
        atomic_store_explicit(&c->stamp_seq, seq + 2, memory_order_release);
    }
    if (c->tap_capacity != 0 && n != 0) {
        uint64_t keep = n < c->tap_capacity ? n : c->tap_capacity;
        const unsigned char *src = out + (n - keep);
        uint64_t at = pos + (n - keep);
        /* The claim comes before the bytes: the exchange's acquire half keeps the copy below
         * after it (a fence would do the same, but ThreadSanitizer cannot follow fences). */
        atomic_exchange_explicit(&c->tap_writing, pos + n, memory_order_acq_rel);
        uint64_t off = at & c->tap_mask;
        uint64_t first = c->tap_capacity - off;
        if (first > keep) {
            first = keep;
        }
        memcpy(c->tap + off, src, first);
        memcpy(c->tap, src + first, keep - first);
    }
    atomic_store_explicit(&c->tap_pos, pos + n, memory_order_release);
}

/* Any thread: copies tap bytes [pos, pos + n) that have been handed to the device into out.
 * Returns the count copied (0 when pos is not reached yet), or -1 when part of that range is no
 * longer held (overwritten, or being overwritten during the copy). */
static int64_t rb_tap_read(rb_core *c, unsigned char *out, uint64_t pos, uint64_t n) {
    uint64_t end = atomic_load_explicit(&c->tap_pos, memory_order_acquire);
    if (pos >= end) {
        return 0;
    }
    if (n > end - pos) {
        n = end - pos;
    }
    if (end - pos > c->tap_capacity) {
        return -1;
    }
    uint64_t off = pos & c->tap_mask;
    uint64_t first = c->tap_capacity - off;
    if (first > n) {
        first = n;
    }
    memcpy(out, c->tap + off, first);
    memcpy(out + first, c->tap, n - first);
    /* Read-don't-modify-write: its release half keeps the copy above before this check, and
     * as a read-modify-write it reads the newest claim. */
    uint64_t writing = atomic_fetch_add_explicit(&c->tap_writing, 0, memory_order_acq_rel);
    if (writing > c->tap_capacity && pos < writing - c->tap_capacity) {
        return -1;
    }
    return (int64_t)n;
}

/* Any thread: the newest stamp (false when there is none yet). */
static bool rb_tap_stamp(rb_core *c, uint64_t *pos, double *time_s) {
    for (;;) {
        uint64_t seq = atomic_load_explicit(&c->stamp_seq, memory_order_acquire);
        if (seq == 0) {
            return false;
        }
        if (seq & 1) {
            continue;
        }
        /* Acquire loads: the check below cannot move before them, and a field that is newer
         * than `seq` brings the odd count with it, so the check then fails and we retry. */
        uint64_t p = atomic_load_explicit(&c->stamp_pos, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&c->stamp_time_bits, memory_order_acquire);
        if (atomic_load_explicit(&c->stamp_seq, memory_order_relaxed) == seq) {
            *pos = p;
            *time_s = gain_from_bits(t);
            return true;
        }
    }
}

/* Audio the consumer has yet to play: what was written after the newest clear. */
static uint64_t rb_available(rb_core *c) {
    uint64_t clear_at = atomic_load_explicit(&c->clear_idx, memory_order_acquire);
    uint64_t r = atomic_load_explicit(&c->read_idx, memory_order_acquire);
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_acquire);
    uint64_t from = r > clear_at ? r : clear_at;
    return w > from ? w - from : 0;
}

/* Room for the producer: the dropped audio of a pending clear still occupies space until the
 * consumer has faded out from it. */
static uint64_t rb_free(rb_core *c) {
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_acquire);
    uint64_t r = atomic_load_explicit(&c->read_idx, memory_order_acquire);
    if (r >= w) {
        return c->capacity;
    }
    return w - r >= c->capacity ? 0 : c->capacity - (w - r);
}

/* A stream end the consumer has not reached yet: its tail should play even if short. */
static bool rb_end_pending(rb_core *c) {
    uint64_t e = atomic_load_explicit(&c->end_idx, memory_order_acquire);
    uint64_t clear_at = atomic_load_explicit(&c->clear_idx, memory_order_acquire);
    uint64_t r = atomic_load_explicit(&c->read_idx, memory_order_acquire);
    uint64_t from = r > clear_at ? r : clear_at;
    return e > from;
}

static bool rb_ready(rb_core *c, bool readable, uint64_t nbytes) {
    if (readable) {
        return rb_available(c) >= nbytes || rb_end_pending(c);
    }
    return rb_free(c) >= nbytes;
}

/* Sleeps until the condition holds or the absolute CLOCK_MONOTONIC deadline passes. */
static bool rb_wait(rb_core *c, bool readable, uint64_t nbytes, const struct timespec *deadline) {
    if (rb_ready(c, readable, nbytes)) {
        return true;
    }
    atomic_fetch_add_explicit(&c->waiters, 1, memory_order_acq_rel); /* pairs with wake_waiters */
    pthread_mutex_lock(&c->mutex);
    bool ok;
    for (;;) {
        ok = rb_ready(c, readable, nbytes);
        if (ok) {
            break;
        }
        if (pthread_cond_timedwait(&c->cond, &c->mutex, deadline) == ETIMEDOUT) {
            ok = rb_ready(c, readable, nbytes);
            break;
        }
    }
    pthread_mutex_unlock(&c->mutex);
    atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
    return ok;
}

static rb_core *rb_new(uint64_t capacity, uint64_t fade_samples, uint64_t prebuffer,
                       uint64_t tap_capacity) {
    void *mem = NULL;
    if (posix_memalign(&mem, CACHE_LINE_BYTES, sizeof(rb_core)) != 0) {
        return NULL;
    }
    rb_core *c = mem;
    memset(c, 0, sizeof *c);
    c->data = calloc(1, capacity);
    if (c->data == NULL) {
        free(c);
        return NULL;
    }
    if (tap_capacity != 0) {
        c->tap = calloc(1, tap_capacity);
        if (c->tap == NULL) {
            free(c->data);
            free(c);
            return NULL;
        }
        c->tap_capacity = tap_capacity;
        c->tap_mask = tap_capacity - 1;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mutex, NULL);
    c->capacity = capacity;
    c->mask = capacity - 1;
    c->fade_samples = fade_samples;
    atomic_store(&c->gain_bits, bits_from_gain(1.0));
    atomic_store(&c->prebuffer_bytes, prebuffer);
    return c;
}

static void rb_free_core(rb_core *c) {
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mutex);
    free(c->data);
    free(c->tap);
    free(c);
}

/* ------------------------------------------------------------------------- the Python binding */

typedef struct {
    PyObject_HEAD rb_core *core;
} RingBufferObject;

/* A non-negative integer argument; anything else is a clear ValueError/TypeError naming it. */
static int get_count(PyObject *obj, const char *what, uint64_t limit, uint64_t *out) {
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0 || (overflow == 0 && v >= 0 && (uint64_t)v > limit)) {
        PyErr_Format(PyExc_ValueError, "%s must be <= %llu, got %R", what, (unsigned long long)limit,
                     obj);
        return -1;
    }
    if (overflow < 0 || v < 0) {
        PyErr_Format(PyExc_ValueError, "%s must be >= 0, got %R", what, obj);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* Formats whose bytes are s16le PCM as they stand: raw bytes, or native/little-endian int16. */
static bool pcm_format_ok(const char *fmt) {
    if (fmt == NULL) {
        return true;
    }
    static const char *ok[] = {"B", "b", "c", "@B", "@b", "=B", "=b", "<B", "<b",
#if PY_LITTLE_ENDIAN
                               "h", "@h", "=h", "<h",
#endif
                               NULL};
    for (int i = 0; ok[i] != NULL; i++) {
        if (strcmp(fmt, ok[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Gets a C-contiguous buffer of PCM bytes; on failure sets an exception that names the problem. */
static int get_pcm_buffer(PyObject *obj, Py_buffer *view, bool writable, const char *method) {
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s() needs a bytes-like object (bytes, bytearray, memoryview, numpy array), "
                     "not %.100s",
                     method, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    const char *problem = NULL;
    PyObject *exc = PyExc_BufferError;
    if (writable && view->readonly) {
        problem = "a writable buffer, got a read-only one";
    } else if (!PyBuffer_IsContiguous(view, 'C')) {
        problem = "a C-contiguous buffer, got a non-contiguous one (copy it first)";
    } else if (!pcm_format_ok(view->format)) {
        exc = PyExc_TypeError;
        PyErr_Format(exc, "%s() needs s16le PCM bytes or an int16 array, got item format '%s'",
                     method, view->format);
        PyBuffer_Release(view);
        return -1;
    } else if (view->len % 2 != 0) {
        exc = PyExc_ValueError;
        PyErr_Format(exc, "%s() needs an even number of bytes (whole 16-bit samples), got %zd",
                     method, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    if (problem != NULL) {
        PyErr_Format(exc, "%s() needs %s (%.100s)", method, problem, Py_TYPE(obj)->tp_name);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *RingBuffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"capacity_bytes", "fade_samples", "prebuffer_bytes", "tap_bytes",
                             NULL};
    PyObject *cap_obj, *fade_obj = NULL, *pre_obj = NULL, *tap_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$OOO:RingBuffer", kwlist, &cap_obj, &fade_obj,
                                     &pre_obj, &tap_obj)) {
        return NULL;
    }
    uint64_t cap, fade = 96, pre = 0, tap = 0;
    if (get_count(cap_obj, "capacity_bytes", MAX_CAPACITY_BYTES, &cap) < 0) {
        return NULL;
    }
    if (cap == 0) {
        PyErr_SetString(PyExc_ValueError, "capacity_bytes must be > 0, got 0");
        return NULL;
    }
    if (fade_obj != NULL && get_count(fade_obj, "fade_samples", MAX_FADE_SAMPLES, &fade) < 0) {
        return NULL;
    }
    uint64_t rounded = 2;
    while (rounded < cap) {
        rounded <<= 1;
    }
    if (pre_obj != NULL && get_count(pre_obj, "prebuffer_bytes", rounded, &pre) < 0) {
        return NULL;
    }
    if (tap_obj != NULL && get_count(tap_obj, "tap_bytes", MAX_CAPACITY_BYTES, &tap) < 0) {
        return NULL;
    }
    uint64_t tap_rounded = 0;
    if (tap != 0) {
        tap_rounded = 2;
        while (tap_rounded < tap) {
            tap_rounded <<= 1;
        }
    }
    RingBufferObject *self = (RingBufferObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->core = rb_new(rounded, fade, pre, tap_rounded);
    if (self->core == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void RingBuffer_dealloc(RingBufferObject *self) {
    if (self->core != NULL) {
        rb_free_core(self->core);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int claim(_Atomic int *busy, const char *role) {
    if (atomic_exchange_explicit(busy, 1, memory_order_acquire) != 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "RingBuffer has a single %s: called from two threads at once", role);
        return -1;
    }
    return 0;
}

static void release_claim(_Atomic int *busy) {
    atomic_store_explicit(busy, 0, memory_order_release);
}

static PyObject *RingBuffer_write(RingBufferObject *self, PyObject *data) {
    Py_buffer view;
    if (get_pcm_buffer(data, &view, false, "write") < 0) {
        return NULL;
    }
    rb_core *c = self->core;
    if (claim(&c->producer_busy, "producer") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint64_t n;
    if (view.len >= GIL_RELEASE_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS n = rb_write(c, view.buf, (uint64_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        n = rb_write(c, view.buf, (uint64_t)view.len);
    }
    release_claim(&c->producer_busy);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *RingBuffer_read_into(RingBufferObject *self, PyObject *const *args,
                                      Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "read_into() takes 1 or 2 arguments (out, dac_time_s), got %zd",
                     nargs);
        return NULL;
    }
    PyObject *out = args[0];
    bool stamped = nargs == 2 && args[1] != Py_None;
    double dac_time_s = 0.0;
    if (stamped) {
        dac_time_s = PyFloat_AsDouble(args[1]);
        if (dac_time_s == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (!isfinite(dac_time_s)) {
            PyErr_Format(PyExc_ValueError, "dac_time_s must be a finite time, got %R", args[1]);
            return NULL;
        }
    }
    Py_buffer view;
    if (get_pcm_buffer(out, &view, true, "read_into") < 0) {
        return NULL;
    }
    rb_core *c = self->core;
    if (claim(&c->consumer_busy, "consumer") < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    uint64_t n;
    if (view.len >= GIL_RELEASE_MIN_BYTES) {
        Py_BEGIN_ALLOW_THREADS n = rb_read(c, view.buf, (uint64_t)view.len);
        rb_tap_block(c, view.buf, (uint64_t)view.len, stamped, dac_time_s);
        Py_END_ALLOW_THREADS
    } else {
        n = rb_read(c, view.buf, (uint64_t)view.len);
        rb_tap_block(c, view.buf, (uint64_t)view.len, stamped, dac_time_s);
    }
    release_claim(&c->consumer_busy);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *RingBuffer_clear(RingBufferObject *self, PyObject *Py_UNUSED(ignored)) {
    rb_core *c = self->core;
    if (claim(&c->producer_busy, "producer") < 0) {
        return NULL;
    }
    rb_clear(c);
    release_claim(&c->producer_busy);
    Py_RETURN_NONE;
}

static PyObject *RingBuffer_end_stream(RingBufferObject *self, PyObject *Py_UNUSED(ignored)) {
    rb_core *c = self->core;
    if (claim(&c->producer_busy, "producer") < 0) {
        return NULL;
    }
    rb_end_stream(c);
    release_claim(&c->producer_busy);
    Py_RETURN_NONE;
}

static struct timespec deadline_after(double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double whole = floor(seconds);
    ts.tv_sec += (time_t)whole;
    ts.tv_nsec += (long)((seconds - whole) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1 in the thread that runs Python's signal handlers, 0 elsewhere, -1 with an exception. */
static int is_main_thread(void) {
    static unsigned long main_ident = 0;
    if (main_ident == 0) {
        PyObject *threading = PyImport_ImportModule("threading");
        if (threading == NULL) {
            return -1;
        }
        PyObject *thread = PyObject_CallMethod(threading, "main_thread", NULL);
        Py_DECREF(threading);
        if (thread == NULL) {
            return -1;
        }
        PyObject *ident = PyObject_GetAttrString(thread, "ident");
        Py_DECREF(thread);
        if (ident == NULL) {
            return -1;
        }
        main_ident = PyLong_AsUnsignedLong(ident);
        Py_DECREF(ident);
        if (PyErr_Occurred()) {
            return -1;
        }
    }
    return PyThread_get_thread_ident() == main_ident;
}

static PyObject *wait_for(RingBufferObject *self, PyObject *const *args, Py_ssize_t nargs,
                          bool readable, const char *method) {
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes 2 arguments (nbytes, timeout_s), got %zd", method,
                     nargs);
        return NULL;
    }
    rb_core *c = self->core;
    uint64_t nbytes;
    if (get_count(args[0], "nbytes", c->capacity, &nbytes) < 0) {
        return NULL;
    }
    if (nbytes % 2 != 0) {
        PyErr_Format(PyExc_ValueError, "nbytes must be even (whole 16-bit samples), got %llu",
                     (unsigned long long)nbytes);
        return NULL;
    }
    double timeout_s = PyFloat_AsDouble(args[1]);
    if (timeout_s == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (isnan(timeout_s) || timeout_s < 0.0) {
        PyErr_Format(PyExc_ValueError, "timeout_s must be >= 0 seconds, got %R", args[1]);
        return NULL;
    }
    int on_main = is_main_thread();
    if (on_main < 0) {
        return NULL;
    }
    double max_slice_s = on_main ? MAIN_THREAD_SLICE_S : OTHER_THREAD_SLICE_S;
    double end_s = monotonic_s() + timeout_s; /* inf stays inf: wait until it holds */
    for (;;) {
        double left_s = end_s - monotonic_s();
        double slice_s = left_s < max_slice_s ? (left_s > 0.0 ? left_s : 0.0) : max_slice_s;
        struct timespec deadline = deadline_after(slice_s);
        bool ok;
        Py_BEGIN_ALLOW_THREADS ok = rb_wait(c, readable, nbytes, &deadline);
        Py_END_ALLOW_THREADS
        if (ok) {
            Py_RETURN_TRUE;
        }
        if (monotonic_s() >= end_s) {
            Py_RETURN_FALSE;
        }
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
    }
}

static PyObject *RingBuffer_wait_readable(RingBufferObject *self, PyObject *const *args,
                                          Py_ssize_t nargs) {
    return wait_for(self, args, nargs, true, "wait_readable");
}

static PyObject *RingBuffer_wait_writable(RingBufferObject *self, PyObject *const *args,
                                          Py_ssize_t nargs) {
    return wait_for(self, args, nargs, false, "wait_writable");
}

static PyObject *RingBuffer_tap_read(RingBufferObject *self, PyObject *const *args,
                                     Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "tap_read() takes 2 arguments (out, position), got %zd",
                     nargs);
        return NULL;
    }
    rb_core *c = self->core;
    uint64_t pos;
    if (get_count(args[1], "position", UINT64_MAX >> 1, &pos) < 0) {
        return NULL;
    }
    if (c->tap_capacity == 0) {
        PyErr_SetString(PyExc_ValueError, "this RingBuffer keeps no tap (tap_bytes=0)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    int64_t n = rb_tap_read(c, view.buf, pos, (uint64_t)view.len);
    PyBuffer_Release(&view);
    if (n < 0) {
        PyErr_Format(PyExc_LookupError,
                     "tap position %llu is no longer held (the tap keeps the last %llu bytes)",
                     (unsigned long long)pos, (unsigned long long)c->tap_capacity);
        return NULL;
    }
    return PyLong_FromLongLong(n);
}

static PyObject *RingBuffer_tap_stamp(RingBufferObject *self, PyObject *Py_UNUSED(ignored)) {
    uint64_t pos;
    double time_s;
    if (!rb_tap_stamp(self->core, &pos, &time_s)) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(Kd)", (unsigned long long)pos, time_s);
}

static PyObject *RingBuffer_repr(RingBufferObject *self) {
    rb_core *c = self->core;
    return PyUnicode_FromFormat("<RingBuffer capacity=%llu available=%llu flowing=%s>",
                                (unsigned long long)c->capacity,
                                (unsigned long long)rb_available(c),
                                atomic_load(&c->flowing) ? "True" : "False");
}

#define U64_GETTER(name, expr)                                                                     \
    static PyObject *get_##name(RingBufferObject *self, void *Py_UNUSED(closure)) {                \
        rb_core *c = self->core;                                                                   \
        return PyLong_FromUnsignedLongLong((unsigned long long)(expr));                            \
    }

U64_GETTER(capacity, c->capacity)
U64_GETTER(fade_samples, c->fade_samples)
U64_GETTER(available, rb_available(c))
U64_GETTER(free, rb_free(c))
U64_GETTER(bytes_written, atomic_load_explicit(&c->write_idx, memory_order_relaxed))
U64_GETTER(bytes_read, atomic_load_explicit(&c->bytes_read, memory_order_relaxed))
U64_GETTER(underruns, atomic_load_explicit(&c->underruns, memory_order_relaxed))
U64_GETTER(overruns, atomic_load_explicit(&c->overruns, memory_order_relaxed))
U64_GETTER(clears, atomic_load_explicit(&c->clears, memory_order_relaxed))
U64_GETTER(prebuffer_bytes, atomic_load_explicit(&c->prebuffer_bytes, memory_order_relaxed))
U64_GETTER(tap_capacity, c->tap_capacity)
U64_GETTER(tap_position, atomic_load_explicit(&c->tap_pos, memory_order_acquire))

static PyObject *get_flowing(RingBufferObject *self, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(atomic_load_explicit(&self->core->flowing, memory_order_relaxed));
}

static PyObject *get_gain(RingBufferObject *self, void *Py_UNUSED(closure)) {
    return PyFloat_FromDouble(
        gain_from_bits(atomic_load_explicit(&self->core->gain_bits, memory_order_relaxed)));
}

static int set_gain(RingBufferObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "gain cannot be deleted");
        return -1;
    }
    if (!PyFloat_Check(value) && !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "gain must be a float, not %.100s", Py_TYPE(value)->tp_name);
        return -1;
    }
    double g = PyFloat_AsDouble(value);
    if (g == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(g >= 0.0 && g <= MAX_GAIN)) {
        PyErr_Format(PyExc_ValueError, "gain must be between 0.0 and 4.0, got %R", value);
        return -1;
    }
    g += 0.0; /* -0.0 becomes 0.0 */
    atomic_store_explicit(&self->core->gain_bits, bits_from_gain(g), memory_order_relaxed);
    return 0;
}

static int set_prebuffer(RingBufferObject *self, PyObject *value, void *Py_UNUSED(closure)) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "prebuffer_bytes cannot be deleted");
        return -1;
    }
    uint64_t pre;
    if (get_count(value, "prebuffer_bytes", self->core->capacity, &pre) < 0) {
        return -1;
    }
    atomic_store_explicit(&self->core->prebuffer_bytes, pre, memory_order_relaxed);
    return 0;
}

static PyGetSetDef RingBuffer_getset[] = {
    {"capacity", (getter)get_capacity, NULL, "Capacity in bytes (a power of two).", NULL},
    {"fade_samples", (getter)get_fade_samples, NULL, "Length of the fade-out after clear().",
     NULL},
    {"available", (getter)get_available, NULL, "Bytes waiting to play (after any clear).", NULL},
    {"free", (getter)get_free, NULL, "Bytes write() can accept now.", NULL},
    {"bytes_written", (getter)get_bytes_written, NULL, "Total bytes accepted by write().", NULL},
    {"bytes_read", (getter)get_bytes_read, NULL, "Total audio bytes returned by read_into().",
     NULL},
    {"underruns", (getter)get_underruns, NULL, "Reads that ran dry while audio was flowing.", NULL},
    {"overruns", (getter)get_overruns, NULL, "Writes that did not fit completely.", NULL},
    {"clears", (getter)get_clears, NULL, "Number of clear() calls.", NULL},
    {"flowing", (getter)get_flowing, NULL, "True while audio is flowing to the consumer.", NULL},
    {"gain", (getter)get_gain, (setter)set_gain, "Playback gain 0.0..4.0, saturating.", NULL},
    {"prebuffer_bytes", (getter)get_prebuffer_bytes, (setter)set_prebuffer,
     "Bytes that must be buffered before playback (re)starts.", NULL},
    {"tap_capacity", (getter)get_tap_capacity, NULL, "Bytes of device output the tap keeps.",
     NULL},
    {"tap_position", (getter)get_tap_position, NULL,
     "Bytes read_into() has handed to the device in total (silence included).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef RingBuffer_methods[] = {
    {"write", (PyCFunction)RingBuffer_write, METH_O,
     "write($self, data, /)\n--\n\nCopy as much PCM as fits; return the bytes accepted."},
    {"read_into", (PyCFunction)(void (*)(void))RingBuffer_read_into, METH_FASTCALL,
     "read_into($self, out, dac_time_s=None, /)\n--\n\nFill out (silence where audio runs out); "
     "return audio bytes. dac_time_s stamps the block for the tap."},
    {"clear", (PyCFunction)RingBuffer_clear, METH_NOARGS,
     "clear($self, /)\n--\n\nDrop everything written so far; playing audio fades out."},
    {"end_stream", (PyCFunction)RingBuffer_end_stream, METH_NOARGS,
     "end_stream($self, /)\n--\n\nNo more audio for now: play out the tail without an underrun."},
    {"wait_readable", (PyCFunction)(void (*)(void))RingBuffer_wait_readable, METH_FASTCALL,
     "wait_readable($self, nbytes, timeout_s, /)\n--\n\nSleep until nbytes are available."},
    {"wait_writable", (PyCFunction)(void (*)(void))RingBuffer_wait_writable, METH_FASTCALL,
     "wait_writable($self, nbytes, timeout_s, /)\n--\n\nSleep until nbytes are free."},
    {"tap_read", (PyCFunction)(void (*)(void))RingBuffer_tap_read, METH_FASTCALL,
     "tap_read($self, out, position, /)\n--\n\nCopy device output from position on; return "
     "the bytes copied."},
    {"tap_stamp", (PyCFunction)RingBuffer_tap_stamp, METH_NOARGS,
     "tap_stamp($self, /)\n--\n\n(tap position, dac_time_s) of the newest stamped block, or "
     "None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RingBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pilive.audio._ringbuf.RingBuffer",
    .tp_basicsize = sizeof(RingBufferObject),
    .tp_dealloc = (destructor)RingBuffer_dealloc,
    .tp_repr = (reprfunc)RingBuffer_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "RingBuffer(capacity_bytes, *, fade_samples=96, prebuffer_bytes=0, tap_bytes=0)\n--\n\n"
              "Single-producer single-consumer lock-free ring of s16le PCM for playback.",
    .tp_methods = RingBuffer_methods,
    .tp_getset = RingBuffer_getset,
    .tp_new = RingBuffer_new,
};

static struct PyModuleDef ringbuf_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_ringbuf",
    .m_doc = "Lock-free single-producer single-consumer playback ring buffer.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__ringbuf(void) {
    if (PyType_Ready(&RingBufferType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&ringbuf_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "GIL_RELEASE_MIN_BYTES", GIL_RELEASE_MIN_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "MAX_CAPACITY_BYTES", (long)MAX_CAPACITY_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&RingBufferType);
    if (PyModule_AddObject(m, "RingBuffer", (PyObject *)&RingBufferType) < 0) {
        Py_DECREF(&RingBufferType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
