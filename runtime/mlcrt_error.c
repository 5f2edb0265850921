/* mlcrt_error.c - message formatting for runtime errors (see mlcrt_error.h). */
#include "mlcrt_error.h"

#include <stdarg.h>
#include <stdio.h>

int mlcrt_fail(char *msg, size_t cap, int code, const char *fmt, ...) {
    if (msg && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *mlcrt_strerror(int code) {
    switch (code) {
    case MLCRT_OK: return "success";
    case MLCRT_EIO: return "I/O error";
    case MLCRT_EFORMAT: return "format error";
    case MLCRT_ETRUNC: return "truncated file";
    case MLCRT_EMISMATCH: return "mismatch";
    case MLCRT_ECRC: return "checksum mismatch";
    case MLCRT_ENOMEM: return "out of memory";
    case MLCRT_EARG: return "invalid argument";
    default: return "unknown error";
    }
}
