#define PY_SSIZE_T_CLEAN
#include <Python.h>
static struct PyModuleDef m={PyModuleDef_HEAD_INIT,"_ringbuf",NULL,-1,NULL};
PyMODINIT_FUNC PyInit__ringbuf(void){return PyModule_Create(&m);}
