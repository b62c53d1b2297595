/*
 * pilive.audio._speexdsp: speexdsp's echo canceller and preprocessor for the microphone path.
 *
 * One object holds one SpeexEchoState (the adaptive filter, MDF) and, when any of residual echo
 * suppression, noise suppression or automatic gain is wanted, one SpeexPreprocessState tied to
 * it. process() runs one frame: the echo canceller (when on), then the preprocessor, without the
 * GIL. speexdsp states are not thread-safe, so a second thread calling in while one is inside is
 * refused with RuntimeError rather than corrupting the filter.
 *
 * The preprocessor applies its spectral gains (and with them the residual echo suppression) only
 * while its denoiser is on; without noise suppression the denoiser stays on with a noise
 * attenuation of 0 dB, so the residual echo is still suppressed but the noise is left alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define MAX_FRAME_SAMPLES 4800   /* 100 ms at 48 kHz */
#define MAX_FILTER_SAMPLES 96000 /* 2 s at 48 kHz */
/* Residual echo attenuation, in dB, with and without near-end speech (speexdsp's defaults). */
#define ECHO_SUPPRESS_DB (-40)
#define ECHO_SUPPRESS_ACTIVE_DB (-15)

typedef struct {
    PyObject_HEAD SpeexEchoState *echo;
    SpeexPreprocessState *pre;
    int frame_samples;
    int filter_samples;
    int rate_hz;
    bool cancel;
    _Atomic int busy;
} EchoObject;

static int configure(EchoObject *self, bool residual_echo, bool denoise, bool agc) {
    if (self->cancel) {
        self->echo = speex_echo_state_init(self->frame_samples, self->filter_samples);
        if (self->echo == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        int rate = self->rate_hz;
        speex_echo_ctl(self->echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
    }
    if (!(residual_echo && self->cancel) && !denoise && !agc) {
        return 0;
    }
    self->pre = speex_preprocess_state_init(self->frame_samples, self->rate_hz);
    if (self->pre == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int on = 1, off = 0;
    int keep_noise_db = 0;
    speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
    if (!denoise) {
        speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &keep_noise_db);
    }
    speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_AGC, agc ? &on : &off);
    speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_DEREVERB, &off);
    if (residual_echo && self->cancel) {
        int suppress = ECHO_SUPPRESS_DB, active = ECHO_SUPPRESS_ACTIVE_DB;
        speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_ECHO_STATE, self->echo);
        speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &suppress);
        speex_preprocess_ctl(self->pre, SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE, &active);
    }
    return 0;
}

static PyObject *Echo_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"frame_samples", "filter_samples", "rate_hz", "cancel",
                             "residual_echo", "denoise", "agc", NULL};
    int frame = 0, filter = 0, rate = 0, cancel = 1, residual = 1, denoise = 0, agc = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iii|$pppp:EchoCanceller", kwlist, &frame,
                                     &filter, &rate, &cancel, &residual, &denoise, &agc)) {
        return NULL;
    }
    if (frame < 1 || frame > MAX_FRAME_SAMPLES) {
        return PyErr_Format(PyExc_ValueError, "frame_samples must be in 1..%d, got %d",
                            MAX_FRAME_SAMPLES, frame);
    }
    if (filter < frame || filter > MAX_FILTER_SAMPLES) {
        return PyErr_Format(PyExc_ValueError, "filter_samples must be in %d..%d, got %d", frame,
                            MAX_FILTER_SAMPLES, filter);
    }
    if (rate < 8000 || rate > 48000) {
        return PyErr_Format(PyExc_ValueError, "rate_hz must be in 8000..48000, got %d", rate);
    }
    EchoObject *self = (EchoObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->frame_samples = frame;
    self->filter_samples = filter;
    self->rate_hz = rate;
    self->cancel = cancel != 0;
    if (configure(self, residual != 0, denoise != 0, agc != 0) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void Echo_dealloc(EchoObject *self) {
    if (self->pre != NULL) {
        speex_preprocess_state_destroy(self->pre);
    }
    if (self->echo != NULL) {
        speex_echo_state_destroy(self->echo);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A C-contiguous buffer of exactly `samples` 16-bit samples. */
static int get_frame(PyObject *obj, Py_buffer *view, bool writable, int samples, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->len != (Py_ssize_t)samples * 2) {
        PyErr_Format(PyExc_ValueError, "%s must be %d bytes (%d samples), got %zd", what,
                     samples * 2, samples, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Echo_process(EchoObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        return PyErr_Format(PyExc_TypeError,
                            "process() takes 3 arguments (near, far, out), got %zd", nargs);
    }
    Py_buffer near, far, out;
    int n = self->frame_samples;
    if (get_frame(args[0], &near, false, n, "near") < 0) {
        return NULL;
    }
    if (get_frame(args[1], &far, false, n, "far") < 0) {
        PyBuffer_Release(&near);
        return NULL;
    }
    if (get_frame(args[2], &out, true, n, "out") < 0) {
        PyBuffer_Release(&near);
        PyBuffer_Release(&far);
        return NULL;
    }
    if (self->echo != NULL && (out.buf == near.buf || out.buf == far.buf)) {
        PyBuffer_Release(&near);
        PyBuffer_Release(&far);
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "out must be a buffer of its own (not near or far)");
        return NULL;
    }
    PyObject *result = Py_None;
    if (atomic_exchange(&self->busy, 1) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "EchoCanceller used from two threads at once");
        result = NULL;
    } else {
        PyThreadState *saved = PyEval_SaveThread();
        if (self->echo != NULL) {
            speex_echo_cancellation(self->echo, near.buf, far.buf, out.buf);
        } else {
            memmove(out.buf, near.buf, (size_t)n * 2);
        }
        if (self->pre != NULL) {
            speex_preprocess_run(self->pre, out.buf);
        }
        PyEval_RestoreThread(saved);
        atomic_store(&self->busy, 0);
    }
    PyBuffer_Release(&near);
    PyBuffer_Release(&far);
    PyBuffer_Release(&out);
    if (result == NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Echo_reset(EchoObject *self, PyObject *Py_UNUSED(ignored)) {
    if (atomic_exchange(&self->busy, 1) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "EchoCanceller used from two threads at once");
        return NULL;
    }
    if (self->echo != NULL) {
        speex_echo_state_reset(self->echo);
    }
    atomic_store(&self->busy, 0);
    Py_RETURN_NONE;
}

static PyObject *get_frame_samples(EchoObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLong(self->frame_samples);
}

static PyObject *get_filter_samples(EchoObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLong(self->filter_samples);
}

static PyObject *get_rate_hz(EchoObject *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLong(self->rate_hz);
}

static PyGetSetDef Echo_getset[] = {
    {"frame_samples", (getter)get_frame_samples, NULL, "Samples per process() call.", NULL},
    {"filter_samples", (getter)get_filter_samples, NULL, "Length of the echo filter.", NULL},
    {"rate_hz", (getter)get_rate_hz, NULL, "Sample rate.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Echo_methods[] = {
    {"process", (PyCFunction)(void (*)(void))Echo_process, METH_FASTCALL,
     "process($self, near, far, out, /)\n--\n\nOne frame: the microphone's near, the speaker's "
     "far (what played while near was captured), the result into out (a buffer of its own)."},
    {"reset", (PyCFunction)Echo_reset, METH_NOARGS,
     "reset($self, /)\n--\n\nForget the echo path (the filter starts again from nothing)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EchoType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pilive.audio._speexdsp.EchoCanceller",
    .tp_basicsize = sizeof(EchoObject),
    .tp_dealloc = (destructor)Echo_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "EchoCanceller(frame_samples, filter_samples, rate_hz, *, cancel=True, "
              "residual_echo=True, denoise=False, agc=False)\n--\n\n"
              "speexdsp's echo canceller and preprocessor on 16-bit mono frames.",
    .tp_methods = Echo_methods,
    .tp_getset = Echo_getset,
    .tp_new = Echo_new,
};

static struct PyModuleDef speexdsp_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_speexdsp",
    .m_doc = "speexdsp's acoustic echo canceller and preprocessor (Debian's libspeexdsp).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__speexdsp(void) {
    if (PyType_Ready(&EchoType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&speexdsp_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&EchoType);
    if (PyModule_AddObject(m, "EchoCanceller", (PyObject *)&EchoType) < 0) {
        Py_DECREF(&EchoType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
