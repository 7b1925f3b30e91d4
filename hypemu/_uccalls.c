/* hypemu._uccalls: the Unicorn calls a trapped instruction makes (registers, a soft-TLB flush,
 * the stop that ends a run), made from C (the Python side is hypemu/engine_regs.py).
 *
 * Why C: through ctypes every uc_reg_read / uc_reg_write costs about a microsecond (argument
 * conversion, and the GIL released and taken back around a call that takes nanoseconds), and an
 * HVC round trip makes some twenty of them. Here a call is a C function call with the GIL held.
 *
 * Nothing is linked at build time: the Unicorn functions are handed over as addresses, taken by
 * ctypes from the libunicorn that the unicorn binding loaded (as hypemu._budget does).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define NREGS 17   /* architectural numbers: 0-12 R0-R12, 13 SP, 14 LR, 15 PC, 16 CPSR */

typedef int (*reg_fn)(void *uc, int regid, void *value);
typedef int (*reg_batch_fn)(void *uc, int *regids, void *const *values, int count);
typedef int (*ctl_fn)(void *uc, int control, ...);
typedef int (*stop_fn)(void *uc);

typedef struct {
    PyObject_HEAD
    void *uc;
    reg_fn reg_read, reg_write;
    reg_batch_fn write_batch;
    ctl_fn ctl;
    stop_fn emu_stop;
    int cp_reg;                    /* UC_ARM_REG_CP_REG */
    int regid[NREGS];              /* Unicorn's register ids, by architectural number */
    PyObject *error;               /* the exception class a failed call raises */
} Calls;

static PyObject *fail(Calls *c, const char *what)
{
    PyErr_Format(c->error, "%s failed", what);
    return NULL;
}

/* a Calls made by __new__ without __init__ has no engine: refuse instead of calling NULL */
#define READY(c)                                                                  \
    do {                                                                          \
        if ((c)->uc == NULL || (c)->error == NULL) {                              \
            PyErr_SetString(PyExc_RuntimeError, "Calls: not initialized");        \
            return NULL;                                                          \
        }                                                                         \
    } while (0)

static int arch_number(PyObject *arg, int *n)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (value < 0 || value >= NREGS) {
        PyErr_Format(PyExc_ValueError, "no register %ld (0-16)", value);
        return -1;
    }
    *n = (int)value;
    return 0;
}

static int word(PyObject *arg, uint32_t *value)
{
    unsigned long long v = PyLong_AsUnsignedLongLongMask(arg);   /* modulo 2**64, as & does */
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *value = (uint32_t)v;
    return 0;
}

static int Calls_init(Calls *c, PyObject *args, PyObject *kw)
{
    unsigned long long uc, read, write, batch, ctl, stop;
    int cp_reg;
    PyObject *ids, *error;
    if (!PyArg_ParseTuple(args, "KKKKKKiOO", &uc, &read, &write, &batch, &ctl, &stop, &cp_reg,
                          &ids, &error))
        return -1;
    if (!PyTuple_Check(ids) || PyTuple_GET_SIZE(ids) != NREGS) {
        PyErr_SetString(PyExc_ValueError, "register ids: a tuple of 17 (R0-R12, SP, LR, PC, CPSR)");
        return -1;
    }
    for (int n = 0; n < NREGS; n++) {
        long id = PyLong_AsLong(PyTuple_GET_ITEM(ids, n));
        if (id == -1 && PyErr_Occurred())
            return -1;
        c->regid[n] = (int)id;
    }
    c->uc = (void *)(uintptr_t)uc;
    c->reg_read = (reg_fn)(uintptr_t)read;
    c->reg_write = (reg_fn)(uintptr_t)write;
    c->write_batch = (reg_batch_fn)(uintptr_t)batch;
    c->ctl = (ctl_fn)(uintptr_t)ctl;
    c->emu_stop = (stop_fn)(uintptr_t)stop;
    c->cp_reg = cp_reg;
    Py_INCREF(error);
    Py_XSETREF(c->error, error);
    return 0;
}

static void Calls_dealloc(Calls *c)
{
    Py_XDECREF(c->error);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *Calls_read(Calls *c, PyObject *arg)
{
    READY(c);
    int n;
    uint32_t value = 0;
    if (arch_number(arg, &n))
        return NULL;
    if (c->reg_read(c->uc, c->regid[n], &value))
        return fail(c, "uc_reg_read");
    return PyLong_FromUnsignedLong(value);
}

static PyObject *Calls_write(Calls *c, PyObject *const *args, Py_ssize_t nargs)
{
    READY(c);
    int n;
    uint32_t value;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "write(register, value)");
        return NULL;
    }
    if (arch_number(args[0], &n) || word(args[1], &value))
        return NULL;
    if (c->reg_write(c->uc, c->regid[n], &value))
        return fail(c, "uc_reg_write");
    Py_RETURN_NONE;
}

/* exchange_sp_lr(sp, lr) -> (old SP, old LR): a mode switch's bank swap */
static PyObject *Calls_exchange_sp_lr(Calls *c, PyObject *const *args, Py_ssize_t nargs)
{
    READY(c);
    uint32_t sp, lr, old_sp = 0, old_lr = 0;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "exchange_sp_lr(sp, lr)");
        return NULL;
    }
    if (word(args[0], &sp) || word(args[1], &lr))
        return NULL;
    if (c->reg_read(c->uc, c->regid[13], &old_sp) || c->reg_read(c->uc, c->regid[14], &old_lr))
        return fail(c, "uc_reg_read(SP, LR)");
    if (c->reg_write(c->uc, c->regid[13], &sp) || c->reg_write(c->uc, c->regid[14], &lr))
        return fail(c, "uc_reg_write(SP, LR)");
    return Py_BuildValue("(kk)", (unsigned long)old_sp, (unsigned long)old_lr);
}

/* write_call(r0, r1, r2, r3, lr): the registers of a call, in one batch */
static PyObject *Calls_write_call(Calls *c, PyObject *const *args, Py_ssize_t nargs)
{
    READY(c);
    uint32_t values[5];
    void *pointers[5];
    int ids[5] = {c->regid[0], c->regid[1], c->regid[2], c->regid[3], c->regid[14]};
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "write_call(r0, r1, r2, r3, lr)");
        return NULL;
    }
    for (int n = 0; n < 5; n++) {
        if (word(args[n], &values[n]))
            return NULL;
        pointers[n] = &values[n];
    }
    if (c->write_batch(c->uc, ids, pointers, 5))
        return fail(c, "uc_reg_write_batch(R0-R3, LR)");
    Py_RETURN_NONE;
}

/* read_raw / write_raw(regid, address): a register whose value is a structure at address
 * (UC_ARM_REG_CP_REG's uc_arm_cp_reg, a ctypes structure of the caller) */
static PyObject *raw(Calls *c, PyObject *const *args, Py_ssize_t nargs, reg_fn fn, const char *what)
{
    long regid;
    unsigned long long address;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "%s(regid, address)", what);
        return NULL;
    }
    regid = PyLong_AsLong(args[0]);
    if (regid == -1 && PyErr_Occurred())
        return NULL;
    address = PyLong_AsUnsignedLongLong(args[1]);
    if (address == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (fn(c->uc, (int)regid, (void *)(uintptr_t)address))
        return fail(c, what);
    Py_RETURN_NONE;
}

static PyObject *Calls_read_raw(Calls *c, PyObject *const *args, Py_ssize_t nargs)
{
    READY(c);
    return raw(c, args, nargs, c->reg_read, "uc_reg_read");
}

static PyObject *Calls_write_raw(Calls *c, PyObject *const *args, Py_ssize_t nargs)
{
    READY(c);
    return raw(c, args, nargs, c->reg_write, "uc_reg_write");
}

/* ctl(code): uc_ctl with no argument (UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0), say) */
static PyObject *Calls_ctl(Calls *c, PyObject *arg)
{
    READY(c);
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    if (c->ctl(c->uc, (int)code))
        return fail(c, "uc_ctl");
    Py_RETURN_NONE;
}

/* stop(): uc_emu_stop (from a hook: the run ends when the hook returns) */
static PyObject *Calls_stop(Calls *c, PyObject *unused)
{
    READY(c);
    if (c->emu_stop(c->uc))
        return fail(c, "uc_emu_stop");
    Py_RETURN_NONE;
}

/* Unicorn's uc_arm_cp_reg: a cp15 register by encoding; sec 1 is the Secure copy of a banked one */
typedef struct {
    uint32_t cp, is64, sec, crn, crm, opc1, opc2;
    uint64_t val;
} cp_reg;

/* use_tlb(hyp): the soft TLB of the HYP MMU (SCR.NS = 0) or the flat one (SCR.NS = 1), and the
 * user thread ID registers TPIDRURW and TPIDRURO (c13, c0, 2 and 3; banked by security state)
 * carried over from the copy left to the copy entered (see engine_regs.SoftTlbChoice) */
static PyObject *Calls_use_tlb(Calls *c, PyObject *arg)
{
    READY(c);
    int hyp = PyObject_IsTrue(arg);
    if (hyp < 0)
        return NULL;
    for (uint32_t opc2 = 2; opc2 <= 3; opc2++) {
        cp_reg r = {15, 0, hyp ? 0 : 1, 13, 0, 0, opc2, 0};
        if (c->reg_read(c->uc, c->cp_reg, &r))
            return fail(c, "uc_reg_read(TPIDRURW/TPIDRURO)");
        r.sec = hyp ? 1 : 0;
        if (c->reg_write(c->uc, c->cp_reg, &r))
            return fail(c, "uc_reg_write(TPIDRURW/TPIDRURO)");
    }
    cp_reg scr = {15, 0, 1, 1, 1, 0, 0, hyp ? 0 : 1};
    if (c->reg_write(c->uc, c->cp_reg, &scr))
        return fail(c, "uc_reg_write(SCR)");
    Py_RETURN_NONE;
}

static PyMethodDef Calls_methods[] = {
    {"read", (PyCFunction)Calls_read, METH_O, "read(n): register n (0-15, 16 the CPSR)"},
    {"write", (PyCFunction)(void (*)(void))Calls_write, METH_FASTCALL,
     "write(n, value): register n, value modulo 2**32"},
    {"exchange_sp_lr", (PyCFunction)(void (*)(void))Calls_exchange_sp_lr, METH_FASTCALL,
     "exchange_sp_lr(sp, lr) -> (old SP, old LR)"},
    {"write_call", (PyCFunction)(void (*)(void))Calls_write_call, METH_FASTCALL,
     "write_call(r0, r1, r2, r3, lr): one batch"},
    {"read_raw", (PyCFunction)(void (*)(void))Calls_read_raw, METH_FASTCALL,
     "read_raw(regid, address): uc_reg_read into the structure at address"},
    {"write_raw", (PyCFunction)(void (*)(void))Calls_write_raw, METH_FASTCALL,
     "write_raw(regid, address): uc_reg_write from the structure at address"},
    {"ctl", (PyCFunction)Calls_ctl, METH_O, "ctl(code): uc_ctl with no argument"},
    {"stop", (PyCFunction)Calls_stop, METH_NOARGS, "stop(): uc_emu_stop"},
    {"use_tlb", (PyCFunction)Calls_use_tlb, METH_O,
     "use_tlb(hyp): SCR.NS = not hyp, TPIDRURW/TPIDRURO carried over"},
    {NULL}
};

static PyTypeObject CallsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hypemu._uccalls.Calls",
    .tp_basicsize = sizeof(Calls),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Calls(uc, uc_reg_read, uc_reg_write, uc_reg_write_batch, uc_ctl, uc_emu_stop, "
              "UC_ARM_REG_CP_REG, register_ids, error): Unicorn calls on the uc_engine at uc, from C",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Calls_init,
    .tp_dealloc = (destructor)Calls_dealloc,
    .tp_methods = Calls_methods,
};

static struct PyModuleDef uccalls_module = {
    PyModuleDef_HEAD_INIT, "hypemu._uccalls",
    "Unicorn's register and control calls made from C (see engine_regs).", -1, NULL
};

PyMODINIT_FUNC PyInit__uccalls(void)
{
    PyObject *m;
    if (PyType_Ready(&CallsType) < 0)
        return NULL;
    m = PyModule_Create(&uccalls_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CallsType);
    if (PyModule_AddObject(m, "Calls", (PyObject *)&CallsType) < 0) {
        Py_DECREF(&CallsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
